"""Review 1 (issue 10 items 11-13): ways past serve's connection bound.

The bound closes the oldest connection *still sending its request head*; connections
that are idle between keep-alive requests, or that send a body one byte at a time
(progress, so the body deadline is re-armed forever), are never chosen. A client
holding `max_connections` of those makes serve, and its emulator, close every new
connection unanswered: the slowloris the bound was built against, one phase later.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from scarab.serve.guard import (
    BODY_TIMEOUT_VARIABLE,
    HEADER_TIMEOUT_VARIABLE,
    MAX_CONNECTIONS_VARIABLE,
)

from tests.serve.support import emulator_url, http, make_project
from tests.support.serve_process import ServeProcess, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 3.0
MAX_CONNECTIONS = 20
HOLD = 12.0  # well past both deadlines: a guarded server has cut or evicted by then
DRIP_GAP = 1.0  # one body byte per second: under BODY_TIMEOUT, so "progress"


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    project = make_project(tmp_path_factory.mktemp("review1-bound"))
    proc = start_serve(
        project,
        env={
            HEADER_TIMEOUT_VARIABLE: str(HEADER_TIMEOUT),
            BODY_TIMEOUT_VARIABLE: str(BODY_TIMEOUT),
            MAX_CONNECTIONS_VARIABLE: str(MAX_CONNECTIONS),
            "GOOGLE_API_KEY": None,
            "GEMINI_API_KEY": None,
            "AWS_ENDPOINT_URL": None,
            "AWS_PROFILE": None,
        },
    )
    try:
        assert http(f"{proc.api_url}/health").status == 200
        yield proc
    finally:
        proc.stop()
        print(proc.output())


def _answered(url: str) -> bool:
    try:
        return http(url, timeout=10).status == 200
    except OSError:  # closed unanswered (RemoteDisconnected, reset)
        return False


@contextlib.contextmanager
def _sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _drip_and_probe(socks: list[socket.socket], head: bytes, probe: str) -> list[bool]:
    """Send `head` on every socket, then a body byte each DRIP_GAP for HOLD seconds,
    trying one real request after each round; returns whether each was answered."""
    for sock in socks:
        sock.sendall(head + b"{")
    answered: list[bool] = []
    started = time.monotonic()
    while time.monotonic() - started < HOLD:
        time.sleep(DRIP_GAP)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.sendall(b" ")
        answered.append(_answered(probe))
    return answered


def test_idle_keep_alive_connections_do_not_lock_out_new_clients(bounded: ServeProcess) -> None:
    request = b"GET /dev/health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % bounded.port
    with _sockets(bounded.port, MAX_CONNECTIONS) as socks:
        for sock in socks:
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # answered, kept alive
        # Every connection is now idle between requests (uvicorn keeps it 30 s, and one
        # request every 29 s would keep it forever). A new client must still get in.
        answered = [_answered(f"{bounded.api_url}/health") for _ in range(3)]
    assert any(answered), (
        f"{MAX_CONNECTIONS} idle keep-alive connections locked out every new client: {answered}"
    )


def test_a_body_dripped_byte_by_byte_does_not_hold_the_bound(bounded: ServeProcess) -> None:
    head = (
        b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n" % bounded.port
    )
    with _sockets(bounded.port, MAX_CONNECTIONS) as socks:
        answered = _drip_and_probe(socks, head, f"{bounded.api_url}/health")
    # Past HOLD seconds of one byte a second, a real request must be answered again.
    assert answered[-1], f"real requests while {MAX_CONNECTIONS} bodies dripped: {answered}"


def test_the_emulator_bound_survives_dripped_bodies(bounded: ServeProcess) -> None:
    url = emulator_url(Path(bounded.project_dir))
    port = urlsplit(url).port
    assert port is not None
    head = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n" % port
    )
    with _sockets(port, MAX_CONNECTIONS) as socks:
        answered = _drip_and_probe(socks, head, f"{url}/moto-api/")
    assert answered[-1], f"emulator answers while {MAX_CONNECTIONS} bodies dripped: {answered}"
