"""A real `python -m lens.server` process on a free loopback port, and HTTP calls to it.

server = start_server(env={...})      # waits until GET /ping answers 200
status, headers, body = request(server.url, "GET", "/models", headers={...})
server.stop()                          # SIGINT (what uvicorn handles), then SIGKILL
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.moto_server import FAKE_CREDENTIALS, MotoServer
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
TASK_ROOT = REPO / "lambda"
# Quick Gemini retries, as the function's tests use (tests/function/conftest.py).
FAST_ENV = {
    "SCARAB_RETRY_BASE_MS": "10",
    "SCARAB_RETRY_MAX_MS": "40",
    "SCARAB_DEADLINE_MARGIN_MS": "300",
    "POWERTOOLS_METRICS_NAMESPACE": "ScarabTest",
}
# Variables of the test process a server must not inherit (it gets what a test gives it).
_CLEARED = (
    "SCARAB_API_KEYS_SECRET",
    "SCARAB_ENDPOINT_MODELS",
    "SCARAB_MODEL_DIR",
    "MODEL_REGISTRY_TABLE",
    "ARTIFACTS_BUCKET",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY_PARAM",
    "GOOGLE_API_KEY_BACKEND",
    "GOOGLE_GEMINI_BASE_URL",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
)


def aws_env(moto: MotoServer) -> dict[str, str]:
    """What a server needs to reach the moto server (fake credentials, its URL)."""
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": moto.url}


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    env: Mapping[str, str] | None = None, *, args: tuple[str, ...] = (), timeout: float = 90.0
) -> ServerProcess:
    """Start the server with this interpreter (cwd lambda/, so `lens` imports) and wait
    until GET /ping is 200; RuntimeError with its output when it exits or never is."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    child_env.update(FAST_ENV)
    child_env.update(env or {})
    child_env["PYTHONUNBUFFERED"] = "1"
    fd, name = tempfile.mkstemp(prefix="lens-server-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lens.server", "--port", str(port), *args],
            cwd=TASK_ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, port, Path(name))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{server.output()}")
        with contextlib.suppress(OSError):
            if request(server.url, "GET", "/ping")[0] == 200:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the server was not ready in {timeout}s:\n{server.output()}")


def request(
    url: str,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; (status, headers with lower-case names, body)."""
    host, _, port = url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        data = response.read()
        got = {k.lower(): v for k, v in response.getheaders()}
        return response.status, got, data
    finally:
        connection.close()
