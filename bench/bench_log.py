"""The prediction log's added latency per request, per engine, against the log off in the
same run: POST /predict/tabular through lens.handler.lambda_handler (a cheap route, so
the log's share shows), the URL read from SSM in a moto server as in AWS (the function's
Parameters cache keeps it, so that is not per request).

Engines: a SQLite file, and the real PostgreSQL and MariaDB servers the tests use
(tests/support/databases.py; Debian's packages). Requests with the log on and off are
interleaved (off, on, off, on...), so a slower moment of the machine touches both alike;
the added latency is p50(on) - p50(off) and p95(on) - p95(off). The first request on each
engine (connect, migrate) is reported apart. Goal: p50 added under 3 ms on SQLite and
PostgreSQL.

Run: .venv/bin/python -m bench bench_log  (BENCH_LOG_ENGINES=sqlite,postgresql to pick)
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAIRS = 300
GOAL_MS = 3.0
PARAM = "/scarab/bench/dev/prediction-db-url"


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def _engine(name: str, workdir: Path) -> Iterator[str]:
    """A fresh database on engine `name`, its URL; stopped afterwards."""
    if name == "sqlite":
        yield f"sqlite:///{workdir / 'predictions.db'}"
        return
    from tests.support.databases import start_mariadb, start_postgres

    server = start_postgres() if name == "postgresql" else start_mariadb()
    try:
        yield server.create_database("bench")
    finally:
        from lens import log as prediction_log

        prediction_log.reset()
        server.stop()


def _toggle(on: bool) -> None:
    from lens import log as prediction_log

    if on:
        os.environ[prediction_log.ENABLED_ENV] = "true"
    else:
        os.environ.pop(prediction_log.ENABLED_ENV, None)


def _timed(call: Callable[[], dict[str, Any]]) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - started) * 1000
    assert response["statusCode"] == 200, response["body"]
    return elapsed


def measure(engine: str, url: str, call: Callable[[], dict[str, Any]]) -> dict[str, float]:
    import boto3
    from lens import log as prediction_log
    from lens import secrets

    boto3.client("ssm").put_parameter(Name=PARAM, Value=url, Type="SecureString", Overwrite=True)
    secrets.reset_key_cache()
    prediction_log.reset()
    _toggle(True)
    first = _timed(call)  # connects, migrates the fresh database, reads the URL
    off: list[float] = []
    on: list[float] = []
    for _ in range(PAIRS):
        _toggle(False)
        off.append(_timed(call))
        _toggle(True)
        on.append(_timed(call))
    _toggle(False)
    written = _count(url)
    assert written == PAIRS + 1, (engine, written)  # every logged request is a row
    return {
        "first": first,
        "off50": statistics.median(off),
        "on50": statistics.median(on),
        "off95": _pct(off, 0.95),
        "on95": _pct(on, 0.95),
    }


def _count(url: str) -> int:
    import sqlalchemy as sa
    from lens.log.database import create_engine
    from lens.log.schema import predictions

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(predictions)).scalar()
                or 0
            )
    finally:
        engine.dispose()


def main() -> None:
    sys.path[:0] = [str(ROOT / "lambda"), str(ROOT)]
    # Before lens is imported: its logger takes the level at import.
    os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ["LOG_LEVEL"] = "ERROR"
    from lens import log as prediction_log
    from lens.predict.registry import registry

    from tests.function.events import FakeContext, rest_event
    from tests.support.moto_server import FAKE_CREDENTIALS, MotoServer

    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    engines = os.environ.get("BENCH_LOG_ENGINES", "sqlite,postgresql,mariadb").split(",")
    moto = MotoServer()
    moto.start()
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            prediction_log.URL_PARAM_ENV: PARAM,
            prediction_log.URL_BACKEND_ENV: "ssm",
            prediction_log.STAGE_ENV: "dev",
        }
    )
    try:
        from lens.handler import lambda_handler

        tabular = registry().get("tabular")
        assert tabular is not None
        event = rest_event(
            "POST", "/predict/tabular", body={"features": dict.fromkeys(tabular.features, 1.0)}
        )
        sink = io.StringIO()

        def call() -> dict[str, Any]:
            with contextlib.redirect_stdout(sink):
                response = lambda_handler(event, FakeContext())
            sink.seek(0)
            sink.truncate()
            return response

        _timed(call)  # loads the model
        print(f"POST /predict/tabular through the handler, {PAIRS} interleaved pairs per engine")
        with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
            for engine in engines:
                with _engine(engine, Path(tmp)) as url:
                    r = measure(engine, url, call)
                added50, added95 = r["on50"] - r["off50"], r["on95"] - r["off95"]
                goal = ""
                if engine in ("sqlite", "postgresql"):
                    verdict = "met" if added50 < GOAL_MS else "MISSED"
                    goal = f" (goal p50 < {GOAL_MS:.0f} ms: {verdict})"
                print(
                    f"{engine:10} added p50 {added50:+.2f} ms, p95 {added95:+.2f} ms{goal};"
                    f" off p50 {r['off50']:.2f} / p95 {r['off95']:.2f} ms,"
                    f" on p50 {r['on50']:.2f} / p95 {r['on95']:.2f} ms;"
                    f" first logged request {r['first']:.0f} ms (connect + migrate)"
                )
    finally:
        prediction_log.reset()
        moto.stop()
