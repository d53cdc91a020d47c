"""Slowloris: half-sent requests, idle kept-alive connections and dripped bodies neither
hold serve's (or its emulator's) connections forever nor keep a real request from being
answered; a slow but steady upload still gets through, and when every connection is
busy with a real request a newcomer is told so (503) rather than dropped."""

from __future__ import annotations

import contextlib
import socket
import threading
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
from tests.support.serve_process import ServeProcess, start_serve

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


BOUND = 20  # a small bound, so a test can fill it
HOLD = 12.0  # well past both deadlines: a guarded server has cut or evicted by then
DRIP_GAP = 1.0  # one body byte per second: under BODY_TIMEOUT, so "progress"


# --- The bound itself: idle kept-alive connections and dripped bodies make room
# (review 1: the bound used to close only connections still sending their head).


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    project = make_project(tmp_path_factory.mktemp("review1-bound"))
    proc = start_serve(
        project,
        env={
            HEADER_TIMEOUT_VARIABLE: str(HEADER_TIMEOUT),
            BODY_TIMEOUT_VARIABLE: str(BODY_TIMEOUT),
            MAX_CONNECTIONS_VARIABLE: str(BOUND),
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
    with _sockets(bounded.port, BOUND) as socks:
        for sock in socks:
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # answered, kept alive
        # Every connection is now idle between requests (uvicorn keeps it 30 s, and one
        # request every 29 s would keep it forever). A new client must still get in.
        answered = [_answered(f"{bounded.api_url}/health") for _ in range(3)]
    assert any(answered), (
        f"{BOUND} idle keep-alive connections locked out every new client: {answered}"
    )


def test_a_body_dripped_byte_by_byte_does_not_hold_the_bound(bounded: ServeProcess) -> None:
    head = (
        b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n" % bounded.port
    )
    with _sockets(bounded.port, BOUND) as socks:
        answered = _drip_and_probe(socks, head, f"{bounded.api_url}/health")
    # Past HOLD seconds of one byte a second, a real request must be answered again.
    assert answered[-1], f"real requests while {BOUND} bodies dripped: {answered}"


def test_the_emulator_bound_survives_dripped_bodies(bounded: ServeProcess) -> None:
    url = emulator_url(Path(bounded.project_dir))
    port = urlsplit(url).port
    assert port is not None
    head = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n" % port
    )
    with _sockets(port, BOUND) as socks:
        answered = _drip_and_probe(socks, head, f"{url}/moto-api/")
    assert answered[-1], f"emulator answers while {BOUND} bodies dripped: {answered}"


def _emulator_port(proc: ServeProcess) -> int:
    port = urlsplit(emulator_url(Path(proc.project_dir))).port
    assert port is not None
    return port


def _read_answer(sock: socket.socket, timeout: float = 30.0) -> bytes:
    """Everything the server sends until it closes (or `timeout`)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(TimeoutError, OSError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


PIECE = 256 * 1024
PIECES = 8  # 2 MB
PIECE_GAP = 2.5  # under BODY_TIMEOUT: each pace window brings a piece


def _steady_upload(port: int, path: bytes, results: dict[int, bytes]) -> None:
    """2 MB in 256 KB pieces 2.5 s apart (slow, but far above the pace), then the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (path, port, PIECE * PIECES)
        )
        try:
            for i in range(PIECES):
                if i:
                    time.sleep(PIECE_GAP)
                sock.sendall(b"{" * PIECE)
        except OSError as exc:
            results[port] = f"cut after {i} pieces: {exc!r}".encode()
            return
        results[port] = _read_answer(sock, 60.0)


def test_a_slow_but_steady_upload_is_not_cut(bounded: ServeProcess) -> None:
    results: dict[int, bytes] = {}
    emulator = _emulator_port(bounded)
    uploads = [
        threading.Thread(target=_steady_upload, args=(bounded.port, b"/api/analyze", results)),
        threading.Thread(target=_steady_upload, args=(emulator, b"/", results)),
    ]
    for upload in uploads:
        upload.start()
    for upload in uploads:
        upload.join(timeout=120)
    # Answered (whatever the answer to a body of braces is), not closed half-way.
    assert results[bounded.port].startswith(b"HTTP/1.1 "), results[bounded.port][:200]
    assert not results[bounded.port].startswith(b"HTTP/1.1 408"), results[bounded.port][:200]
    assert results[emulator].startswith(b"HTTP/1.1 "), results[emulator][:200]


def test_full_of_real_requests_a_newcomer_gets_503(bounded: ServeProcess) -> None:
    for port, path in ((bounded.port, b"/api/analyze"), (_emulator_port(bounded), b"/")):
        head = (
            b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n" % (path, port)
        )
        with _sockets(port, BOUND) as socks:
            # Real uploads at 8 KB a second: above the pace, so none may be closed.
            for sock in socks:
                sock.sendall(head + b"{" * 8192)
            answer = b""
            for _ in range(10):
                time.sleep(0.5)
                for sock in socks:
                    sock.sendall(b" " * 4096)
                with socket.create_connection(("127.0.0.1", port), timeout=10) as newcomer:
                    newcomer.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
                    answer = _read_answer(newcomer, 10.0)
                if answer.startswith(b"HTTP/1.1 503"):
                    break
            for sock in socks:  # the uploads were not the ones closed
                sock.sendall(b" ")
        assert answer.startswith(b"HTTP/1.1 503"), (port, answer[:200])
        assert b"retry-after: 1" in answer.lower(), answer[:300]
        assert b"busy" in answer, answer[:300]


def test_a_connection_that_never_sent_a_byte_gets_no_408(guarded: ServeProcess) -> None:
    silent = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
    partial = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
    with silent, partial:
        partial.sendall(b"GET /dev/health HTTP/1.1\r\n")
        assert _read_answer(silent, CLOSE_WITHIN) == b""  # closed, nothing written
        assert _read_answer(partial, CLOSE_WITHIN).startswith(b"HTTP/1.1 408")
