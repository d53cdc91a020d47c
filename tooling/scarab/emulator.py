"""The embedded AWS emulator behind `--local`: a moto server on 127.0.0.1.

`scarab serve` starts one that lives as long as it does and records its address in
`.scarab/local/emulator.json`; any other command run with `--local` reuses that one
(so `scarab keys rotate --local` changes what a running `scarab serve` enforces), or
starts a private one for the duration of the command when none is running.
"""

from __future__ import annotations

import contextlib
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

RECORD_NAME = layout.EMULATOR_RECORD
# Written by a running `scarab serve`: {"url", "api_url", "pid"}.
SERVE_RECORD_NAME = layout.SERVE_RECORD

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


class _HeadDeadlines:
    """Shuts down connections whose request head is late; one thread for all of them.

    Armed when a connection starts waiting for a request (its first, or the next on a
    kept-alive connection), disarmed once the head is read; oldest first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[socket.socket, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator-deadlines", daemon=True)
        self._thread.start()

    def arm(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            self._due.pop(sock, None)
            self._due[sock] = time.monotonic() + seconds

    def disarm(self, sock: socket.socket) -> None:
        with self._lock:
            self._due.pop(sock, None)

    def evict_oldest(self) -> bool:
        """Close the connection that has waited longest for its head; False if none."""
        with self._lock:
            if not self._due:
                return False
            sock = next(iter(self._due))
            del self._due[sock]
        _cut(sock)
        return True

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            now = time.monotonic()
            with self._lock:
                late = [sock for sock, due in self._due.items() if due <= now]
                for sock in late:
                    del self._due[sock]
            for sock in late:
                _cut(sock)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _cut(sock: socket.socket) -> None:
    # shutdown, not close: the handler thread still owns the socket and sees EOF.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _make_server(port: int, limits: ReadLimits) -> Any:
    """moto's WSGI app on a threaded werkzeug server with a Host check, read deadlines
    and a bound on open connections (what ThreadedMotoServer builds, guarded)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import ThreadedWSGIServer

    deadlines = _HeadDeadlines()

    class Handler(MotoRequestHandler):
        timeout = limits.body_timeout  # each read of a body (socket timeout)

        def handle_one_request(self) -> None:
            deadlines.arm(self.connection, limits.header_timeout)
            try:
                super().handle_one_request()
            finally:
                deadlines.disarm(self.connection)

        def parse_request(self) -> bool:
            ok = bool(super().parse_request())
            deadlines.disarm(self.connection)
            return ok

    class Server(ThreadedWSGIServer):
        def __init__(self) -> None:
            app = _HostCheck(DomainDispatcherApplication(create_backend_app), host_names())
            super().__init__("127.0.0.1", port, app, handler=Handler)
            self._count_lock = threading.Lock()
            self.open_connections = 0

        def process_request(self, request: Any, client_address: Any) -> None:
            with self._count_lock:
                full = self.open_connections >= limits.max_connections
                if full and not deadlines.evict_oldest():
                    self.shutdown_request(request)  # all busy with real requests
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


def start_embedded(project_dir: Path | None = None, port: int = 0) -> Emulator:
    """Start moto in this process on 127.0.0.1 (port 0: any free port).

    With `project_dir`, the address is recorded so other scarab commands reuse it.
    """
    os.environ.update(EMULATOR_SETTINGS)
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
    try:
        url = str(json.loads((project_dir / SERVE_RECORD_NAME).read_text())["api_url"])
    except (OSError, ValueError, KeyError):
        return None
    return url if url.rstrip("/").endswith(f"/{stage}") else None


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
