"""Every answer of /analyze, /predict and /forecast becomes a row, written by the handler
(lens.function) to the database whose URL is a secret in SSM (the moto server), on
SQLite, PostgreSQL and MariaDB; a failing database never fails or stalls the request."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from lens import log as prediction_log
from lens import secrets
from lens.log import json_digest
from lens.log.schema import predictions

from tests.conftest import TEST_GEMINI_KEY
from tests.deploy.conftest import REPO
from tests.function.events import FakeContext, b64, jpeg, response_json, rest_event
from tests.predict.conftest import Call
from tests.predict.drawing import b64 as digit_b64
from tests.predict.drawing import draw_digit
from tests.support.gemini_server import GeminiServer
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator
PARAM = "/scarab/scarab/dev/prediction-db-url"


def _configure(monkeypatch: pytest.MonkeyPatch, url: str, *, store_inputs: bool = False) -> None:
    boto3.client("ssm").put_parameter(Name=PARAM, Value=url, Type="SecureString", Overwrite=True)
    monkeypatch.setenv(prediction_log.ENABLED_ENV, "true")
    monkeypatch.setenv(prediction_log.STORE_INPUTS_ENV, "true" if store_inputs else "false")
    monkeypatch.setenv(prediction_log.URL_PARAM_ENV, PARAM)
    monkeypatch.setenv(prediction_log.URL_BACKEND_ENV, "ssm")
    monkeypatch.setenv(prediction_log.STAGE_ENV, "dev")
    secrets.reset_key_cache()
    prediction_log.reset()


@pytest.fixture
def logged(db_url: str, aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The log on, its URL (db_url) stored in SSM where the function reads it."""
    _configure(monkeypatch, db_url)
    yield db_url
    secrets.reset_key_cache()
    prediction_log.reset()


def _rows(url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            result = connection.execute(sa.select(predictions).order_by(predictions.c.id))
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()


def test_each_logged_answer_is_a_row(logged: str, call: Call) -> None:
    body = {"image": digit_b64(draw_digit(5))}
    status, answer, _ = call("POST", "/predict/digits", body)
    assert status == 200
    status, _, _ = call("POST", "/predict/nope", body)
    assert status == 404
    status, forecast, _ = call("GET", "/forecast/bikes-1h")
    assert status == 200
    assert call("GET", "/models")[0] == 200  # not a prediction: not logged
    rows = _rows(logged)
    assert [(r["route"], r["model"], r["status"]) for r in rows] == [
        ("/predict/{model_id}", "digits", 200),
        ("/predict/{model_id}", "nope", 404),
        ("/forecast/{model_id}", "bikes-1h", 200),
    ]
    ok, refused, forecasted = rows
    assert ok["model_version"] == answer["model_version"]
    assert ok["input_digest"] == json_digest(body)
    assert ok["input"] is None  # store_inputs is off: the digest only
    assert json.loads(ok["output"]) == answer
    assert ok["error_code"] is None and ok["stage"] == "dev" and ok["latency_ms"] > 0
    assert ok["request_id"] and ok["cache"] is None
    assert refused["error_code"] == "unknown_model" and refused["output"] is None
    assert json.loads(forecasted["output"])["forecast"] == forecast["forecast"]
    assert forecasted["model_version"] == forecast["model_version"]
    assert len(forecasted["input_digest"]) == 64


@pytest.mark.parametrize("engine_name", ["sqlite"])
def test_store_inputs_keeps_the_input_itself(
    db_url: str, aws: MotoServer, monkeypatch: pytest.MonkeyPatch, call: Call
) -> None:
    _configure(monkeypatch, db_url, store_inputs=True)
    body = {"image": digit_b64(draw_digit(3))}
    assert call("POST", "/predict/digits", body)[0] == 200
    (row,) = _rows(db_url)
    assert json.loads(row["input"]) == body
    assert row["input_digest"] == json_digest(body)


@pytest.mark.parametrize("engine_name", ["sqlite"])
def test_analyze_rows_carry_the_model_tokens_and_the_image_digest_only(
    db_url: str, aws: MotoServer, monkeypatch: pytest.MonkeyPatch, gemini: GeminiServer
) -> None:
    from lens import cache, settings
    from lens.handler import lambda_handler
    from lens.images import prepare_image

    _configure(monkeypatch, db_url)
    monkeypatch.setenv("SCARAB_CACHE_TTL_S", "300")  # in memory: no table in this test
    settings.reset_settings()
    cache.reset_cache()
    image = jpeg()
    event = rest_event("POST", "/analyze", body={"image": b64(image), "speed": "fast"})
    answer = response_json(lambda_handler(event, FakeContext()))
    again = lambda_handler(event, FakeContext())  # the same question: from the cache
    settings.reset_settings()
    cache.reset_cache()
    first, second = _rows(db_url)
    assert first["route"] == "/analyze" and first["status"] == 200
    assert first["model"] == answer["model"] == first["model_version"]
    assert first["tokens_in"] == answer["usage"]["input_tokens"]
    usage = answer["usage"]
    assert first["tokens_out"] == usage["output_tokens"] + usage["thinking_tokens"]
    # The digest is the prepared image's (the bytes sent to Gemini, the cache's key too).
    s = settings.get_settings()
    prepared = prepare_image(
        image, max_side=s.max_side, max_pixels=s.max_pixels, max_bytes=s.max_image_bytes,
        jpeg_quality=s.jpeg_quality, memory_budget=s.image_memory_bytes,
    )  # fmt: skip
    assert first["input_digest"] == prediction_log.digest(prepared.data)
    assert first["input"] is None
    assert b64(image)[:40] not in json.dumps({k: str(v) for k, v in first.items()})
    assert TEST_GEMINI_KEY not in str(first)
    # The repeat is logged as the hit its X-Cache says, with no tokens of its own.
    assert (first["cache"], second["cache"]) == ("miss", "hit")
    headers = {k.lower(): v for k, v in (again.get("headers") or {}).items()}
    headers.update({k.lower(): v[0] for k, v in (again.get("multiValueHeaders") or {}).items()})
    assert headers["x-cache"] == "hit"
    assert second["input_digest"] == first["input_digest"] and second["model"] == first["model"]
    assert second["tokens_in"] is None and second["tokens_out"] is None


class SilentServer:
    """A TCP server that accepts connections and never says a word (a hung database)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def test_a_hung_database_neither_fails_nor_stalls_the_request(
    aws: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    call: Call,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    silent = SilentServer()
    password = "s3cret-Passw0rd"
    try:
        _configure(
            monkeypatch, f"postgresql://scarab:{password}@127.0.0.1:{silent.port}/predictions"
        )
        started = time.monotonic()
        status, answer, _ = call("POST", "/predict/digits", {"image": digit_b64(draw_digit(5))})
        elapsed = time.monotonic() - started
    finally:
        silent.close()
        prediction_log.reset()
    assert status == 200 and answer["label"] == 5
    # Bounded by the connect timeout (2 s), not by the function's 30 s.
    assert elapsed < 4 * prediction_log_connect_timeout()
    out = capsys.readouterr().out
    metrics = [json.loads(line) for line in out.splitlines() if "LogWriteFailures" in line]
    assert len(metrics) == 1 and metrics[0]["LogWriteFailures"] in (1, [1])
    failures = [r for r in caplog.records if r.getMessage() == "prediction log write failed"]
    assert failures
    assert failures[0].__dict__["database"].startswith("postgresql+pg8000://scarab:***@")
    everything = out + "\n".join(str(r.__dict__) for r in caplog.records)
    assert password not in everything


def prediction_log_connect_timeout() -> float:
    from lens.log.database import CONNECT_TIMEOUT_S

    return float(CONNECT_TIMEOUT_S)


def test_with_the_log_off_sqlalchemy_is_never_imported() -> None:
    # A function without a log pays nothing: the answer path imports no SQLAlchemy.
    code = """
import json, sys
from lens.handler import lambda_handler
event = json.loads(sys.stdin.read())
class Context:
    function_name = "f"; memory_limit_in_mb = 512; aws_request_id = "r-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    function_version = "$LATEST"
    def get_remaining_time_in_millis(self): return 30000
answer = lambda_handler(event, Context())
heavy = sorted(m for m in sys.modules if m.startswith(("sqlalchemy", "alembic")))
print(answer["statusCode"], heavy)
"""
    event = rest_event("POST", "/predict/digits", body={"image": digit_b64(draw_digit(5))})
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "lambda"), "AWS_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(event), capture_output=True, text=True,
        env=env, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "200 []"
