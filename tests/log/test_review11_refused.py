"""The log's secret after a deploy points at a real PostgreSQL or MariaDB that refuses
(a wrong password, a user allowed to read only) or at a host that does not resolve:
every request still answers at once with its own status, each failed write is counted
as LogWriteFailures, and no log line, answer, or `scarab predictions` error carries the
password. A read-only user can still read the log (GET /stats)."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from lens import log as prediction_log
from lens.log.writer import writer_for
from sqlalchemy.engine import make_url

from tests.function.events import FakeContext, rest_event
from tests.log.rows import sample_row
from tests.log.test_writer import _configure
from tests.predict.conftest import Call
from tests.predict.drawing import b64 as digit_b64
from tests.predict.drawing import draw_digit
from tests.support.databases import DatabaseServer
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator
SECRET = "Wr0ng-Pass-r11"
# A request's budget with a refusing database: well under the connect timeout (a refusal
# is one round trip on 127.0.0.1), generous for a loaded machine.
FAST_S = 1.5


def _failures(out: str) -> int:
    return sum(json.loads(line).get("LogWriteFailures") is not None
               for line in out.splitlines() if '"LogWriteFailures"' in line)  # fmt: skip


def _requests(call: Call, n: int = 3) -> list[float]:
    took = []
    for _ in range(n):
        started = time.monotonic()
        status, answer, _ = call("POST", "/predict/digits", {"image": digit_b64(draw_digit(2))})
        took.append(time.monotonic() - started)
        assert status == 200 and answer["label"] == 2
        status, answer, _ = call("POST", "/predict/nope", {"image": digit_b64(draw_digit(2))})
        assert status == 404 and answer["error"]["code"] == "unknown_model"
    return took


def _server(request: pytest.FixtureRequest, engine: str) -> DatabaseServer:
    server: DatabaseServer = request.getfixturevalue(f"{engine}_server")
    return server


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_a_refused_password_never_slows_or_leaks(
    engine: str,
    request: pytest.FixtureRequest,
    aws: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    call: Call,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = _server(request, engine)
    good = server.create_database()
    try:
        url = make_url(good).set(password=SECRET).render_as_string(hide_password=False)
        _configure(monkeypatch, url)
        took = _requests(call)
        # Warm: no request waited for a connect timeout.
        assert max(took[1:]) < FAST_S, took
        out = capsys.readouterr().out
        assert _failures(out) == 6  # every answer's row, counted
        everything = out + "\n".join(str(r.__dict__) for r in caplog.records)
        assert SECRET not in everything
        # /stats over the same secret: 503, no password.
        from lens.entry.models import lambda_handler

        answer = lambda_handler(rest_event("GET", "/stats"), FakeContext())
        assert answer["statusCode"] == 503 and SECRET not in json.dumps(answer)
        assert SECRET not in capsys.readouterr().out
    finally:
        prediction_log.reset()
        server.drop_database(good)


# MariaDB: the fixture's account may create databases but grant nothing on them.
@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_read_only_user_fails_each_write_and_still_reads(
    engine: str,
    request: pytest.FixtureRequest,
    aws: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    call: Call,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = _server(request, engine)
    url = server.create_database()
    name = url.rsplit("/", 1)[-1]
    reader, password = f"ro_{name}", "R3ad-0nly-r11"
    writer_for(url).write(sample_row(at=prediction_log.now()))  # migrated, one row
    prediction_log.reset()
    if engine == "postgresql":
        server._admin(f"CREATE ROLE {reader} LOGIN PASSWORD '{password}'")
        engine_ = sa.create_engine(url)
        with engine_.begin() as connection:
            connection.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}")
        engine_.dispose()
    else:
        server._admin(f"CREATE USER '{reader}'@'%' IDENTIFIED BY '{password}'")
        server._admin(f"GRANT SELECT ON {name}.* TO '{reader}'@'%'")
    ro = make_url(url).set(username=reader, password=password)
    try:
        _configure(monkeypatch, ro.render_as_string(hide_password=False))
        took = _requests(call)
        assert max(took[1:]) < FAST_S, took
        out = capsys.readouterr().out
        assert _failures(out) == 6 and password not in out
        from lens.entry.models import lambda_handler

        answer = lambda_handler(rest_event("GET", "/stats", query={"since": "1h"}), FakeContext())
        assert answer["statusCode"] == 200, answer
        assert json.loads(answer["body"])["requests"]["total"] == 1
    finally:
        prediction_log.reset()
        server.drop_database(url)
        if engine == "postgresql":
            server._admin(f"DROP ROLE IF EXISTS {reader}")
        else:
            server._admin(f"DROP USER IF EXISTS '{reader}'@'%'")


def test_a_host_that_does_not_resolve_backs_off(
    aws: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    call: Call,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _configure(monkeypatch, f"postgresql://scarab:{SECRET}@db.does-not-resolve.invalid/log")
    try:
        _requests(call, n=2)
        out = capsys.readouterr().out
        assert _failures(out) == 4
        messages = [r.getMessage() for r in caplog.records]
        # One failed connection, then the back-off: the other rows are skipped, counted.
        assert messages.count("prediction log write failed") == 1, messages
        assert "prediction log database unreachable: skipping its writes for a while" in messages
        assert SECRET not in out + "\n".join(str(r.__dict__) for r in caplog.records)
    finally:
        prediction_log.reset()
