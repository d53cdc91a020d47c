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
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD_NAME = Path(".scarab") / "local" / "emulator.json"
# Written by a running `scarab serve`: {"url", "api_url", "pid"}.
SERVE_RECORD_NAME = Path(".scarab") / "local" / "serve.json"

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


def start_embedded(project_dir: Path | None = None, port: int = 0) -> Emulator:
    """Start moto in this process on 127.0.0.1 (port 0: any free port).

    With `project_dir`, the address is recorded so other scarab commands reuse it.
    """
    os.environ.update(EMULATOR_SETTINGS)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on our terminal
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
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
