"""The embedded AWS emulator behind `--local`: a moto server on 127.0.0.1.

`scarab serve` starts one that lives as long as it does and records its address in
`.scarab/local/emulator.json`; any other command run with `--local` reuses that one
(so `scarab keys rotate --local` changes what a running `scarab serve` enforces), or
starts a private one for the duration of the command when none is running.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from scarab import layout
from scarab.serve.guard import (
    MISDIRECTED_MESSAGE,
    MISDIRECTED_STATUS,
    ReadLimits,
    host_allowed,
    host_names,
)
from scarab.serve.record import ServeRecord

RECORD_NAME = layout.EMULATOR_RECORD

# The emulator accepts any credentials; these are the ones scarab gives it (a session,
# and the environment of a function running locally).
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def emulator_session(region: str) -> boto3.Session:
    """A session with the fake credentials the emulator accepts (no AWS account needed)."""
    return boto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=region,
    )


# moto reads these at call time; they make the emulator behave like an account:
# AWS-managed IAM policies exist, and image URIs are checked against ECR.
EMULATOR_SETTINGS = {
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    "MOTO_LAMBDA_STUB_ECR": "false",
}


@dataclass
class Emulator:
    """A running embedded moto server."""

    url: str
    _server: Any = None
    _record: Path | None = None

    def stop(self) -> None:
        if self._record is not None:
            with contextlib.suppress(FileNotFoundError):
                self._record.unlink()
            self._record = None
        if self._server is not None:
            self._server.stop()
            self._server = None


def _post(url: str, payload: object) -> None:
    data = json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - loopback
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        resp.read()


def is_alive(url: str) -> bool:
    """True when a moto server answers at `url`."""
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class _HostCheck:
    """WSGI middleware: only loopback's Host names (a DNS-rebinding page is refused)."""

    def __init__(self, app: Any, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if host_allowed(environ.get("HTTP_HOST"), self.names, environ.get("SERVER_PORT")):
            return self.app(environ, start_response)
        start_response(
            f"{MISDIRECTED_STATUS} Misdirected Request",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(MISDIRECTED_MESSAGE))),
            ],
        )
        return [MISDIRECTED_MESSAGE]


class _Watch:
    """What one connection is waited for: its request head, or the pace of its body."""

    __slots__ = ("due", "left", "need", "phase", "received", "started", "window")

    def __init__(self, phase: str, due: float, left: int | None = None, need: int = 0) -> None:
        self.phase = phase  # "head" (or idle before one) | "body"
        self.due = due  # head: its deadline; body: the end of the current pace window
        self.started = time.monotonic()
        self.left = left  # body bytes still to come (None: chunked)
        self.need = need  # what the current window must bring
        self.received = 0  # bytes so far (of the head, then of the body)
        self.window = 0  # body bytes in the current window


class _Deadlines:
    """Cuts connections whose request head is late or whose body is below the pace of
    `ReadLimits`; one thread for all of them.

    Every change of a connection's phase and every cut happen under one lock, and a
    connection once cut stays cut: a head finished or a body read in the same instant
    as its cut is refused (`head_done`, `body_done` say False), so a request is either
    processed whole or not at all, never acted on with nobody left to answer (botocore
    would retry it).
    """

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._watches: dict[socket.socket, _Watch] = {}  # oldest first
        self._cut: set[socket.socket] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator-deadlines", daemon=True)
        self._thread.start()

    def await_head(self, sock: socket.socket) -> None:
        """The connection waits for a request (its first, or the next one kept alive)."""
        with self._lock:
            self._watches.pop(sock, None)
            self._watches[sock] = _Watch("head", time.monotonic() + self.limits.header_timeout)

    def head_done(
        self, sock: socket.socket, body: bool, declared: int | None, head_size: int
    ) -> bool:
        """The head (`head_size` bytes) is read; False when the connection was cut
        meanwhile (refuse it). Bytes beyond the head that came with it are body."""
        with self._lock:
            if sock in self._cut:
                return False
            watch = self._watches.pop(sock, None)
            if body:
                early = max(0, (watch.received if watch else 0) - head_size)
                left = None if declared is None else max(declared - early, 0)
                need = self.limits.min_body_bytes
                due = time.monotonic() + self.limits.body_timeout
                body_watch = _Watch("body", due, left, need if left is None else min(need, left))
                body_watch.received = early
                self._watches[sock] = body_watch
            return True

    def progress(self, sock: socket.socket, count: int) -> None:
        """`count` bytes arrived on the connection."""
        with self._lock:
            watch = self._watches.get(sock)
            if watch is not None:
                watch.received += count
                if watch.phase == "body":
                    watch.window += count

    def body_done(self, sock: socket.socket) -> bool:
        """The body is read (the request goes to moto); False when it was cut meanwhile."""
        with self._lock:
            self._watches.pop(sock, None)
            return sock not in self._cut

    def release(self, sock: socket.socket) -> None:
        """The request is over (answered, refused or failed): nothing to wait for."""
        with self._lock:
            self._watches.pop(sock, None)

    def forget(self, sock: socket.socket) -> None:
        """The connection is closed."""
        with self._lock:
            self._watches.pop(sock, None)
            self._cut.discard(sock)

    def evict(self) -> bool:
        """Cut one connection to make room: the one waiting longest for a head (idle
        ones among them), else the slowest body below the pace. False if none."""
        with self._lock:
            now = time.monotonic()
            victim = next((s for s, w in self._watches.items() if w.phase == "head"), None)
            if victim is None:
                slow = [
                    (w.received / max(now - w.started, 1e-3), s)
                    for s, w in self._watches.items()
                    if self.limits.body_slow(w.received, now - w.started)
                ]
                victim = min(slow, key=lambda pair: pair[0])[1] if slow else None
            if victim is None:
                return False
            self._cut_locked(victim)
            return True

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            now = time.monotonic()
            with self._lock:
                for sock, watch in list(self._watches.items()):
                    if watch.due > now:
                        continue
                    if watch.phase == "head" or watch.window < watch.need:
                        self._cut_locked(sock)  # head late, or the body below the pace
                        continue
                    if watch.left is not None:
                        watch.left -= watch.window
                    need = self.limits.min_body_bytes
                    watch.need = need if watch.left is None else min(need, max(watch.left, 0))
                    watch.window = 0
                    watch.due = now + self.limits.body_timeout

    def _cut_locked(self, sock: socket.socket) -> None:
        del self._watches[sock]
        self._cut.add(sock)
        # shutdown, not close: the handler thread still owns the socket and sees EOF.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _CountedReads(io.RawIOBase):
    """A socket's reads, reported to the deadlines (the pace of a body is measured as
    bytes arrive, not as the application asks for them)."""

    def __init__(self, sock: socket.socket, deadlines: _Deadlines) -> None:
        super().__init__()
        self._raw = socket.SocketIO(sock, "rb")
        self._sock = sock
        self._deadlines = deadlines

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        count = self._raw.readinto(buffer)
        if count:
            self._deadlines.progress(self._sock, count)
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


class _BodyFirst:
    """WSGI middleware: read the whole body before moto sees the request, so a body cut
    for its pace is never half-processed, and moto's work is not mistaken for a stall."""

    def __init__(self, app: Any, deadlines: _Deadlines) -> None:
        self.app = app
        self.deadlines = deadlines

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from werkzeug.exceptions import ClientDisconnected
        from werkzeug.wsgi import get_input_stream

        sock = environ.get("werkzeug.socket")
        try:
            body = get_input_stream(environ, max_content_length=None).read()
        except (ClientDisconnected, OSError):
            body = None
        if sock is not None and not self.deadlines.body_done(sock):
            body = None
        if body is None:  # cut or gone: nobody is left to answer, and nothing is done
            start_response("400 Bad Request", [("Content-Length", "0"), ("Connection", "close")])
            return [b""]
        environ["wsgi.input"] = io.BytesIO(body)
        if body or "CONTENT_LENGTH" in environ:
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


_FULL_TEXT = b"Service Unavailable: every connection is busy with a request; retry shortly.\n"
_FULL_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
    % (len(_FULL_TEXT), _FULL_TEXT)
)


def _make_server(port: int, limits: ReadLimits) -> Any:
    """moto's WSGI app on a threaded werkzeug server with a Host check, read deadlines
    and a bound on open connections (what ThreadedMotoServer builds, guarded)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import ThreadedWSGIServer

    deadlines = _Deadlines(limits)

    class Handler(MotoRequestHandler):
        timeout = limits.body_timeout  # any one read (socket timeout); the pace is watched

        def setup(self) -> None:
            super().setup()
            self.rfile.close()
            self.rfile = io.BufferedReader(_CountedReads(self.connection, deadlines), 65536)

        def handle_one_request(self) -> None:
            deadlines.await_head(self.connection)
            try:
                super().handle_one_request()
            finally:
                deadlines.release(self.connection)

        def parse_request(self) -> bool:
            if not super().parse_request():
                deadlines.release(self.connection)
                return False  # malformed: answered with an error already
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            length = self.headers.get("Content-Length", "").strip()
            declared = int(length) if length.isdigit() else None
            body = chunked or bool(declared)
            head_size = (
                len(self.raw_requestline)
                + 2
                + sum(len(k) + len(v) + 4 for k, v in self.headers.items())
            )
            declared = None if chunked else declared
            if not deadlines.head_done(self.connection, body, declared, head_size):
                self.close_connection = True
                return False  # cut while its head arrived: not processed
            return True

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                deadlines.forget(self.connection)

    class Server(ThreadedWSGIServer):
        def __init__(self) -> None:
            app = _HostCheck(
                _BodyFirst(DomainDispatcherApplication(create_backend_app), deadlines),
                host_names(),
            )
            super().__init__("127.0.0.1", port, app, handler=Handler)
            self._count_lock = threading.Lock()
            self.open_connections = 0

        def process_request(self, request: Any, client_address: Any) -> None:
            with self._count_lock:
                full = self.open_connections >= limits.max_connections
                if full and not deadlines.evict():
                    # All busy with real requests: say so (boto retries a 503).
                    with contextlib.suppress(OSError):
                        request.sendall(_FULL_RESPONSE)
                    self.shutdown_request(request)
                    return
                self.open_connections += 1
            super().process_request(request, client_address)

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                with self._count_lock:
                    self.open_connections -= 1

        def stop(self) -> None:
            self.shutdown()
            self.server_close()
            deadlines.stop()

    return Server()


def teach_moto() -> None:
    """Teach moto the calls scarab makes that it does not implement: SageMaker's
    UpdateEndpoint (moves the endpoint to another EndpointConfig; like moto's
    CreateEndpoint, the endpoint is InService at once), and Lambda's asynchronous
    plumbing (see _lambda_async). Idempotent."""
    _lambda_async()
    _sagemaker_update_endpoint()


def _lambda_async() -> None:
    """What `scarab serve` reads to run asynchronous invocations as Lambda does:

    - a function's DeadLetterConfig (moto drops it: CreateFunction and
      UpdateFunctionConfiguration take it, GetFunctionConfiguration reports it);
    - an event source mapping on an alias keeps the alias's ARN as its FunctionArn
      (moto resolves it to the alias's version, so the mapping would not follow the alias);
    - a message sent to a queue with an event source mapping stays in the queue: moto's
      mapping would invoke the function itself (a Docker container, or a fake success
      that deletes the message); serve delivers the dead-letter events of the functions
      it runs to the mapped function itself (scarab.serve.lambda_invoke).
    """
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.sqs.models import Queue

    if getattr(LambdaFunction.get_configuration, "_scarab", False):
        return
    original_init = LambdaFunction.__init__
    original_get = LambdaFunction.get_configuration
    original_update = LambdaFunction.update_configuration
    original_esm = LambdaBackend.create_event_source_mapping
    original_add = Queue.add_message

    def init(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, account_id, spec, *args, **kwargs)
        target = (spec.get("DeadLetterConfig") or {}).get("TargetArn")
        self.scarab_dead_letter = str(target) if target else None

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config: dict[str, Any] = original_get(self, *args, **kwargs)
        target = getattr(self, "scarab_dead_letter", None)
        if target:
            config["DeadLetterConfig"] = {"TargetArn": target}
        return config

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "DeadLetterConfig" in config_updates:
            target = (config_updates.get("DeadLetterConfig") or {}).get("TargetArn")
            self.scarab_dead_letter = str(target) if target else None
        result: dict[str, Any] = original_update(self, config_updates)
        return get_configuration(self) if "DeadLetterConfig" in config_updates else result

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        name = str(spec.get("FunctionName") or "")
        esm = original_esm(self, spec)
        qualifier = name.split(":")[7] if name.startswith("arn:") and name.count(":") == 7 else None
        if qualifier is None and not name.startswith("arn:") and ":" in name:
            qualifier = name.rsplit(":", 1)[1]
        if qualifier and not qualifier.isdigit() and qualifier != "$LATEST":
            base = (
                esm.function_arn.rsplit(":", 1)[0]
                if esm.function_arn.count(":") == 7
                else esm.function_arn
            )
            esm.function_arn = f"{base}:{qualifier}"
        return esm

    def add_message(self: Any, message: Any) -> None:
        mappings = self.lambda_event_source_mappings
        self.lambda_event_source_mappings = {}
        try:
            original_add(self, message)
        finally:
            self.lambda_event_source_mappings = mappings

    get_configuration._scarab = True  # type: ignore[attr-defined]
    LambdaFunction.__init__ = init  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]
    LambdaBackend.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]
    Queue.add_message = add_message  # type: ignore[method-assign]


def _sagemaker_update_endpoint() -> None:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint
    from moto.sagemaker.responses import SageMakerResponse

    if getattr(SageMakerResponse, "update_endpoint", None) is not None:
        return

    def update_endpoint(self: Any) -> ActionResult:
        backend = self.sagemaker_backend
        name = self._get_param("EndpointName")
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        config = backend.describe_endpoint_config(self._get_param("EndpointConfigName"))
        endpoint.endpoint_config_name = config["EndpointConfigName"]
        endpoint.production_variants = endpoint._process_production_variants(
            config["ProductionVariants"]
        )
        endpoint.endpoint_status = "InService"
        endpoint.last_modified_time = utcnow()
        return ActionResult({"EndpointArn": endpoint.arn})

    SageMakerResponse.update_endpoint = update_endpoint  # type: ignore[attr-defined]


def serve_moto(argv: list[str] | None = None) -> None:
    """`python -m scarab.emulator [moto.server's options]`: moto's server, taught what
    teach_moto adds, as a process of its own (the test suite's AWS)."""
    from moto.server import main

    teach_moto()
    main(argv)


def _lambda_version_numbers() -> None:
    """Make moto number a function's versions as Lambda does (once per process).

    moto numbers the next version len(versions) + 1, so after old versions are deleted
    (`keep_versions`) a new one reuses a number that existed, even one that still exists
    (and the alias on it runs old code). Lambda's numbers only grow: here the highest one
    ever published, kept with the function (a function deleted and made again starts
    at 1, as in Lambda). And moto forgets "changed since the last version" only from the
    second version on, so a PublishVersion sent again (botocore retries a call whose
    answer was lost) published the first version twice; Lambda returns the same one.
    For the embedded emulator only (not in teach_moto: the test suite's moto server
    keeps moto's own numbering).
    """
    import copy

    from moto.awslambda.models import LambdaStorage

    if getattr(LambdaStorage.publish_version, "_scarab", False):
        return

    def publish_version(self: Any, name_or_arn: str, description: str = "") -> Any:
        function = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
        group = self._functions.get(function.function_name)
        if group is None or not group["latest"]:
            return None
        versions = group["versions"]
        if versions and not function.code_or_config_updated:
            return versions[-1]  # nothing changed since the newest version: that one
        function.code_or_config_updated = False
        number = max([group.get("scarab_last_version", 0), *(int(v.version) for v in versions)])
        number += 1
        group["scarab_last_version"] = number
        fn = copy.copy(group["latest"])
        fn.set_version(number)
        if description:
            fn.description = description
        versions.append(fn)
        self._arns[fn.function_arn] = fn
        return fn

    publish_version._scarab = True  # type: ignore[attr-defined]
    LambdaStorage.publish_version = publish_version  # type: ignore[method-assign]


def start_embedded(project_dir: Path | None = None, port: int = 0) -> Emulator:
    """Start moto in this process on 127.0.0.1 (port 0: any free port).

    With `project_dir`, the address is recorded so other scarab commands reuse it.
    """
    os.environ.update(EMULATOR_SETTINGS)
    teach_moto()
    _lambda_version_numbers()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on our terminal
    server = _make_server(port, ReadLimits.from_environment())
    threading.Thread(target=server.serve_forever, name="emulator", daemon=True).start()
    host, bound = server.server_address[:2]
    url = f"http://{host}:{bound}"
    # Lambda invocations inside moto would otherwise need a Docker engine.
    _post(f"{url}/moto-api/config", {"lambda": {"use_docker": False}})
    emulator = Emulator(url=url, _server=server)
    if project_dir is not None:
        record = project_dir / RECORD_NAME
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"url": url, "pid": os.getpid()}))
        emulator._record = record
    return emulator


def find_running(project_dir: Path) -> str | None:
    """The URL of the emulator a running `scarab serve` recorded, if it still answers."""
    record = project_dir / RECORD_NAME
    try:
        url = str(json.loads(record.read_text())["url"])
    except (OSError, ValueError, KeyError):
        return None
    return url if is_alive(url) else None


def served_api_url(project_dir: Path, endpoint_url: str | None, stage: str) -> str | None:
    """Where a running `scarab serve` answers `stage`, with API Gateway's rules applied, in
    front of the emulator at `endpoint_url`; None when no such serve is running."""
    if not endpoint_url or find_running(project_dir) != endpoint_url.rstrip("/"):
        return None
    record = ServeRecord.read(project_dir)
    if record is None:
        return None
    return record.api_url if record.api_url.rstrip("/").endswith(f"/{stage}") else None


def served_function_url(project_dir: Path, endpoint_url: str | None, function: str) -> str | None:
    """Where a running `scarab serve` in front of the emulator at `endpoint_url` serves
    `function`'s Function URL (/_url/<function>/); None when no such serve is running."""
    if not endpoint_url or find_running(project_dir) != endpoint_url.rstrip("/"):
        return None
    record = ServeRecord.read(project_dir)
    return f"{record.url.rstrip('/')}/_url/{function}/" if record else None


@contextlib.contextmanager
def local_endpoint(project_dir: Path) -> Iterator[str]:
    """Yield an emulator URL: the running one if any, else a private one for this block."""
    running = find_running(project_dir)
    if running is not None:
        yield running
        return
    emulator = start_embedded()
    try:
        yield emulator.url
    finally:
        emulator.stop()


if __name__ == "__main__":
    serve_moto()
