"""A hung database (accepts TCP, never answers) costs one request the connect timeout,
not every request: after a failed connection the log skips writes for a growing
interval (each skip counted as LogWriteFailures), then tries again. The clock is
injected, so nothing here waits for the interval."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from lens import log as prediction_log

from tests.log.test_writer import _configure
from tests.predict.conftest import Call
from tests.predict.drawing import b64 as digit_b64
from tests.predict.drawing import draw_digit
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator


class HungDatabase:
    """Accepts every connection (counted) and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hung(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HungDatabase]:
    server = HungDatabase()
    _configure(monkeypatch, f"postgresql://scarab:pw-Hung-1@127.0.0.1:{server.port}/predictions")
    try:
        yield server
    finally:
        server.close()
        prediction_log.reset()


def _failures(out: str) -> int:
    return sum(1 for line in out.splitlines() if '"LogWriteFailures"' in line and json.loads(line))


def test_a_hung_database_is_asked_once_per_backoff_interval_not_on_every_request(
    hung: HungDatabase, call: Call, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    prediction_log.reset(clock=clock)
    body = {"image": digit_b64(draw_digit(5))}
    for _ in range(3):
        status, answer, _ = call("POST", "/predict/digits", body)
        assert status == 200 and answer["label"] == 5
    # One connection (the first request's), then two skipped writes: all three counted.
    assert len(hung.accepted) == 1
    assert _failures(capsys.readouterr().out) == 3

    clock.now += prediction_log.BACKOFF_FIRST_S + 0.001  # the interval is over: try again
    assert call("POST", "/predict/digits", body)[0] == 200
    assert len(hung.accepted) == 2
    # It failed again: the next interval is longer than the first.
    clock.now += prediction_log.BACKOFF_FIRST_S + 0.001
    assert call("POST", "/predict/digits", body)[0] == 200
    assert len(hung.accepted) == 2
    assert _failures(capsys.readouterr().out) == 2


def test_a_row_the_database_refuses_does_not_stop_the_next_rows(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch, call: Call, tmp_path: object
) -> None:
    """Only an unreachable database backs off: a reachable one that refused a write is
    asked again at once, so no row that could be written is skipped."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path}/predictions.db"
    _configure(monkeypatch, url)
    prediction_log.reset(clock=Clock())
    body = {"image": digit_b64(draw_digit(5))}
    assert call("POST", "/predict/digits", body)[0] == 200
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # every insert now fails, fast
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON predictions"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    assert call("POST", "/predict/digits", body)[0] == 200
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER refuse")
    assert call("POST", "/predict/digits", body)[0] == 200
    with engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM predictions").scalar()
    engine.dispose()
    assert count == 2
