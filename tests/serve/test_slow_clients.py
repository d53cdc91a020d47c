"""Slowloris: half-sent requests neither hold serve's (or its emulator's) connections
forever nor keep a real request from being answered."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from scarab.serve.guard import (
    BODY_TIMEOUT_VARIABLE,
    HEADER_TIMEOUT_VARIABLE,
    MAX_CONNECTIONS_VARIABLE,
)

from tests.serve.support import clients, emulator_url, http, make_project
from tests.support.serve_process import ServeProcess

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

HEADER_TIMEOUT = 3.0  # shortened from 10 s so the test takes seconds
BODY_TIMEOUT = 3.0
MAX_CONNECTIONS = 100  # below the 120 half-open connections: the oldest make room
HALF_OPEN = 120
# The server's deadline plus generous slack for a busy machine; still far below "forever".
CLOSE_WITHIN = HEADER_TIMEOUT + 20.0


def _partials(port: int) -> list[bytes]:
    host = f"127.0.0.1:{port}".encode()
    return [
        b"GET /dev/hea",  # half a request line
        b"GET /dev/health HTTP/1.1\r\n",  # a request line, no headers
        b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nX-Slow: a",  # headers cut off
    ]


@contextlib.contextmanager
def _half_open(port: int, count: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    partials = _partials(port)
    try:
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(partials[i % len(partials)])
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """True once the server ends the connection (EOF or reset), reading what it sends."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            return False
        except OSError:
            return True  # reset: closed as well


def _timed(call: Callable[[], int]) -> tuple[int, float]:
    started = time.monotonic()
    status = call()
    return status, time.monotonic() - started


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServeProcess]:
    from tests.support.serve_process import start_serve

    project = make_project(tmp_path_factory.mktemp("slow-clients"))
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
        assert http(f"{proc.api_url}/health").status == 200  # warm: the worker is up
        yield proc
    finally:
        proc.stop()
        print(proc.output())


def test_real_requests_are_answered_and_half_open_ones_closed(guarded: ServeProcess) -> None:
    with _half_open(guarded.port, HALF_OPEN) as socks:
        opened = time.monotonic()
        status, took = _timed(lambda: http(f"{guarded.api_url}/health", timeout=30).status)
        assert status == 200
        assert took < 2.0, f"/dev/health took {took:.2f}s beside {HALF_OPEN} half-open connections"
        assert http(f"{guarded.url}/", timeout=30).status == 200
        deadline = opened + CLOSE_WITHIN
        still_open = [s for s in socks if not _closed_by_server(s, deadline)]
        closed_after = time.monotonic() - opened
    assert still_open == [], f"{len(still_open)} of {HALF_OPEN} half-open connections held"
    print(f"{HALF_OPEN} half-open connections closed within {closed_after:.1f}s")


def test_a_slow_drip_of_header_bytes_does_not_extend_the_deadline(guarded: ServeProcess) -> None:
    sock = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
    with sock:
        sock.sendall(b"GET /dev/health HTTP/1.1\r\n")
        started = time.monotonic()
        closed = False
        # One header byte every 0.5 s: progress, but the head never completes.
        while time.monotonic() - started < CLOSE_WITHIN:
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            sock.settimeout(0.5)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
            if data == b"" or data.startswith(b"HTTP/1.1 408"):
                closed = True
                break
    assert closed, "a connection dripping header bytes was held past its deadline"


def test_a_stalled_body_is_cut_off(guarded: ServeProcess) -> None:
    sock = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
    with sock:
        sock.sendall(
            b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"image": "'
            % guarded.port
        )
        assert _closed_by_server(sock, time.monotonic() + BODY_TIMEOUT + 20.0)
    assert http(f"{guarded.api_url}/health").status == 200


def test_the_emulator_closes_half_open_connections(guarded: ServeProcess) -> None:
    url = emulator_url(Path(guarded.project_dir))
    port = urlsplit(url).port
    assert port is not None
    with _half_open(port, 40) as socks:
        opened = time.monotonic()
        apigw, _ = clients(guarded.project_dir)
        started = time.monotonic()
        assert apigw.get_rest_apis()["items"]
        assert time.monotonic() - started < 5.0
        still_open = [s for s in socks if not _closed_by_server(s, opened + CLOSE_WITHIN)]
    assert still_open == [], f"the emulator held {len(still_open)} half-open connections"
