"""A warm Lambda container for one deployed function version (`python -m scarab.serve.worker`).

Started by `scarab.serve.runtime` with the function's deployed environment, the
extracted code as working directory and PYTHONPATH, and the handler as argument.
Like a Lambda execution environment it runs one invocation at a time (concurrency
comes from more containers), so module-level state is shared only between
consecutive invocations, as in a warm container. Protocol, one JSON object per line:

    stdin:  {"id": 1, "rid": "<request id>", "ms": <remaining ms>, "arn"?: "<invoked ARN>",
             "event": {...}}
    stdout: {"ready": true} once, after the handler module imported (or
            {"ready": false, "errorType", "errorMessage"} and exit)
            {"id": 1, "ok": true, "result": ...} or
            {"id": 1, "ok": false, "errorType": "...", "errorMessage": "..."}

The function's own stdout is sent to stderr (the function log), so prints never
corrupt the protocol. SIGINT is ignored: serve stops the worker by closing stdin.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

# Lambda's limit on a synchronous invocation's response payload.
RESPONSE_LIMIT = 6_291_556


class LambdaContext:
    """The context object Lambda passes to a Python handler."""

    def __init__(self, request_id: str, remaining_ms: int, invoked_arn: str = "") -> None:
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_name = name
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        # What the caller named (an alias's ARN, say), else the function's own.
        self.invoked_function_arn = invoked_arn or os.environ.get("SCARAB_LOCAL_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{name}")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + remaining_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Channel:
    """The protocol's output side."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps(message, separators=(",", ":")).encode())

    def send_raw(self, line: bytes) -> None:
        with self._lock:
            self._stream.write(line + b"\n")
            self._stream.flush()


def _error(exc: BaseException) -> dict[str, str]:
    return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


def invoke(handler: Callable[[Any, Any], Any], channel: Channel, message: dict[str, Any]) -> None:
    """Run one invocation and report its result (or error) on the channel."""
    ident = message["id"]
    request_id = str(message.get("rid", ""))
    context = LambdaContext(request_id, int(message.get("ms", 3000)), str(message.get("arn") or ""))
    started = time.monotonic()
    try:
        result = handler(message["event"], context)
    except Exception as exc:
        # Lambda logs the unhandled error, then reports it to the caller.
        sys.stderr.write(f"[ERROR] {request_id} unhandled {type(exc).__name__}\n")
        traceback.print_exc(file=sys.stderr)
        channel.send({"id": ident, "ok": False, **_error(exc)})
        return
    finally:
        duration = (time.monotonic() - started) * 1000
        sys.stderr.write(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\n")
    try:
        body = json.dumps(result, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        channel.send(
            {
                "id": ident,
                "ok": False,
                "errorType": "Runtime.MarshalError",
                "errorMessage": str(exc),
            }
        )
        return
    if len(body) > RESPONSE_LIMIT:
        channel.send(
            {
                "id": ident,
                "ok": False,
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size exceeded maximum allowed payload size "
                f"({RESPONSE_LIMIT} bytes).",
            }
        )
        return
    channel.send_raw(b'{"id":%d,"ok":true,"result":%s}' % (ident, body))


def load_handler(spec: str) -> Callable[[Any, Any], Any]:
    module_name, _, func_name = spec.rpartition(".")
    if not module_name:
        raise ImportError(f"Bad handler '{spec}': expected module.function")
    module = importlib.import_module(module_name)
    handler = getattr(module, func_name, None)
    if not callable(handler):
        raise AttributeError(f"Handler '{func_name}' missing on module '{module_name}'")
    return handler  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Keep the protocol on the original stdout; the function's prints go to the log.
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    channel = Channel(protocol_out)
    sys.path.insert(0, os.getcwd())
    try:
        handler = load_handler(argv[0])
    except Exception as exc:
        sys.stderr.write(f"[ERROR] Init failed: {type(exc).__name__}: {exc}\n")
        traceback.print_exc(file=sys.stderr)
        channel.send(
            {"ready": False, "errorType": f"Runtime.{type(exc).__name__}", "errorMessage": str(exc)}
        )
        return 1
    channel.send({"ready": True})
    for line in sys.stdin.buffer:
        if line.strip():
            invoke(handler, channel, json.loads(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
