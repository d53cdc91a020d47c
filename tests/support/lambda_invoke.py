"""A Lambda Invoke endpoint on 127.0.0.1 that runs a real handler in this process.

The moto server's Invoke needs Docker (it runs functions in containers), and `scarab
serve` routes only HTTP (API Gateway, Function URLs) to its workers, not lambda:Invoke.
This peer speaks Lambda's Invoke protocol (POST /2015-03-31/functions/<name>/invocations,
RequestResponse; 404 ResourceNotFoundException for another function; an exception is a
200 with X-Amz-Function-Error: Unhandled, as Lambda answers; InvocationType Event is
answered 202 with the event recorded in `events`, and run in a thread only when
`run_events` says so), so boto3 clients, the
`scarab` CLI's included, call a handler over HTTP exactly as they would call AWS.
Credentials are not checked (like moto's).
"""

from __future__ import annotations

import json
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PREFIX = "/2015-03-31/functions/"


@contextmanager
def invoke_endpoint(
    functions: dict[str, Callable[[Any, Any], Any]],
    context: Callable[[], Any],
    *,
    events: list[Any] | None = None,
    run_events: bool = False,
    on_event: Callable[[Any], None] | None = None,
) -> Iterator[tuple[str, list[Any]]]:
    """(endpoint URL, the events received) while serving `functions` by name;
    `context()` makes each invocation's context object. Asynchronous (Event) invocations
    are appended to `events` too; `on_event(event)` runs before the 202 answer, and with
    `run_events` the handler then runs the event in a thread (as Lambda would)."""
    received: list[Any] = []
    asynchronous = events if events is not None else []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            name = urllib.parse.unquote(path.removeprefix(_PREFIX).removesuffix("/invocations"))
            name = name.rsplit(":function:", 1)[-1]  # an ARN names the function too
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            handler = functions.get(name)
            if not path.startswith(_PREFIX) or handler is None:
                error = {"Type": "User", "message": f"Function not found: {name}"}
                self._send(404, json.dumps(error).encode(),
                           {"x-amzn-ErrorType": "ResourceNotFoundException"})  # fmt: skip
                return
            event = json.loads(body or b"{}")
            received.append(event)
            if self.headers.get("X-Amz-Invocation-Type", "RequestResponse") == "Event":
                asynchronous.append(event)
                if on_event is not None:
                    on_event(event)
                self._send(202, b"", {})
                if run_events:
                    threading.Thread(target=_quietly, args=(handler, event), daemon=True).start()
                return
            try:
                result = handler(event, context())
            except Exception as exc:
                error = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
                self._send(200, json.dumps(error).encode(), {"X-Amz-Function-Error": "Unhandled"})
                return
            self._send(200, json.dumps(result).encode(), {"X-Amz-Executed-Version": "$LATEST"})

    def _quietly(handler: Callable[[Any, Any], Any], event: Any) -> None:
        try:
            handler(event, context())
        except Exception:  # Lambda would retry; the test reads the job's state
            traceback.print_exc()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
