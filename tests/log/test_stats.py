"""GET /stats through the models function's handler, over rows seeded in the log on
SQLite, PostgreSQL and MariaDB: every number is checked against SQL over the same rows
(the predictions_hourly view, and the engine's own percentile function where it has one)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from lens import log as prediction_log
from lens import settings
from lens.log import stats as aggregates
from lens.log.schema import HOURLY_VIEW, predictions
from lens.log.writer import writer_for
from lens.predict.forecast import ARTIFACTS_DIR

from tests.function.events import FakeContext, rest_event
from tests.log.rows import sample_row
from tests.log.test_writer import logged  # noqa: F401 (fixture: the log on, URL in SSM)

pytestmark = pytest.mark.emulator

# (minutes before now, route, model, latency, status, error_code, tokens in/out, cache)
SEEDED: list[tuple[int, str, str | None, float, int, str | None, int | None, int | None, Any]] = [
    (10, "/analyze", "gemini-3.5-flash", 812.0, 200, None, 1200, 300, "miss"),
    (12, "/analyze", "gemini-3.5-flash", 4.0, 200, None, None, None, "hit"),
    (14, "/analyze", "gemini-3.1-pro-preview", 2300.5, 200, None, 1500, 2200, "miss"),
    (16, "/analyze", "gemini-3.5-flash-lite", 390.0, 200, None, 900, 40, "bypass"),
    (18, "/analyze", "gemini-3.5-flash", 20.0, 400, "missing_image", None, None, None),
    (75, "/predict/{model_id}", "digits", 6.25, 200, None, None, None, "miss"),
    (80, "/predict/{model_id}", "digits", 1.5, 200, None, None, None, "hit"),
    (85, "/predict/{model_id}", "digits", 1.0, 200, None, None, None, "hit"),
    (90, "/predict/{model_id}", "nope", 2.0, 404, "unknown_model", None, None, None),
    (200, "/predict/{model_id}", "tabular", 9.0, 503, "model_unavailable", None, None, None),
    (210, "/forecast/{model_id}", "bikes-1h", 15.0, 200, None, None, None, "miss"),
    # Outside a 24h window (and in no hour the window reaches).
    (48 * 60, "/analyze", "gemini-3.5-flash", 999.0, 200, None, 5000, 5000, "miss"),
]


def _stored_hours(name: str) -> list[tuple[datetime, float]]:
    with (ARTIFACTS_DIR / f"{name}.csv").open() as f:
        rows = [(datetime.fromisoformat(r["at"]), float(r["count"])) for r in csv.DictReader(f)]
    return sorted(rows)[-24:]


def _forecast_output() -> str:
    """A bikes-1h forecast made two hours before its stored observations end: its hour is
    observed, so /stats shows the actual next to it."""
    hours = _stored_hours("bikes-1h")
    at = hours[-2][0]
    return json.dumps(
        {
            "model": "bikes-1h",
            "model_version": "1",
            "observed_until": hours[-3][0].isoformat(),
            "forecast": [{"at": at.isoformat(), "value": 41.5, "lower": 20.0, "upper": 70.0}],
            "metrics": {},
        }
    )


@pytest.fixture
def seeded(logged: str) -> Iterator[tuple[str, datetime]]:  # noqa: F811
    now = prediction_log.now()
    writer = writer_for(logged)
    for i, (minutes, route, model, latency, status, code, t_in, t_out, cache) in enumerate(SEEDED):
        writer.write(
            sample_row(
                at=now - timedelta(minutes=minutes),
                request_id=f"r-{i}",
                route=route,
                model=model,
                model_version="1",
                latency_ms=latency,
                status=status,
                error_code=code,
                tokens_in=t_in,
                tokens_out=t_out,
                cache=cache,
                output=_forecast_output() if route.startswith("/forecast") else None,
            )
        )
    yield logged, now


def _stats(query: dict[str, str] | None = None) -> tuple[int, Any]:
    from lens.entry.models import lambda_handler

    event = rest_event("GET", "/stats", query=query, headers={"Origin": "https://x.example"})
    response = lambda_handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"])


def _sql(url: str, statement: str, **params: Any) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(sa.text(statement), params)]
    finally:
        engine.dispose()


def _sql_percentile(url: str, q: float, start: datetime) -> float:
    """The q-percentile of the window's latencies computed by the database."""
    backend = sa.engine.make_url(url).get_backend_name()
    if backend == "postgresql":
        sql = (
            "SELECT percentile_cont(:q) WITHIN GROUP (ORDER BY latency_ms) AS p "
            "FROM predictions WHERE at >= :start"
        )
    elif backend in ("mysql", "mariadb"):
        sql = (
            "SELECT DISTINCT PERCENTILE_CONT(:q) WITHIN GROUP (ORDER BY latency_ms) OVER () AS p"
            " FROM predictions WHERE at >= :start"
        )
    else:  # SQLite has no percentile function: the two neighbouring ranks, interpolated
        (count,) = _sql(url, "SELECT COUNT(*) AS n FROM predictions WHERE at >= :s", s=start)
        rank = q * (count["n"] - 1)
        low = _sql(
            url,
            "SELECT latency_ms FROM predictions WHERE at >= :s ORDER BY latency_ms "
            "LIMIT 2 OFFSET :k",
            s=start,
            k=int(rank),
        )
        values = [r["latency_ms"] for r in low] + [low[-1]["latency_ms"]]
        return float(values[0] + (values[1] - values[0]) * (rank - int(rank)))
    (row,) = _sql(url, sql, q=q, start=start)
    return float(row["p"])


def _hour(value: Any) -> str:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=None).isoformat() + "Z"


def test_stats_match_sql_over_the_same_rows(seeded: tuple[str, datetime], cache_dir: Any) -> None:
    url, now = seeded
    status, body = _stats({"since": "24h"})
    assert status == 200, body
    start = datetime.fromisoformat(body["from"].removesuffix("Z"))
    assert now - timedelta(hours=24) <= start <= prediction_log.now() - timedelta(hours=24)
    window = "WHERE at >= :start"

    (total,) = _sql(url, f"SELECT COUNT(*) AS n FROM predictions {window}", start=start)
    assert body["requests"]["total"] == total["n"] == len(SEEDED) - 1

    # Requests per hour, route and model: the predictions_hourly view (same hours: no
    # row before the window shares an hour with it).
    hourly = _sql(url, f"SELECT hour, route, model, requests FROM {HOURLY_VIEW}")
    expected = sorted(
        (_hour(r["hour"]), r["route"], r["model"], int(r["requests"]))
        for r in hourly
        if _hour(r["hour"]) >= aggregates._iso(aggregates.hour_of(start))
    )
    got = sorted(
        (h["hour"], h["route"], h["model"], h["requests"]) for h in body["requests"]["by_hour"]
    )
    assert got == expected

    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert body["latency_ms"][name] == pytest.approx(_sql_percentile(url, q, start), abs=1e-3)

    codes = _sql(
        url,
        f"SELECT error_code, COUNT(*) AS n FROM predictions {window} AND status >= 400 "
        "GROUP BY error_code",
        start=start,
    )
    assert body["errors"]["by_code"] == {r["error_code"]: r["n"] for r in codes}
    assert body["errors"]["total"] == 3

    cache = {
        r["cache"]: r["n"]
        for r in _sql(
            url,
            f"SELECT cache, COUNT(*) AS n FROM predictions {window} AND cache IS NOT NULL "
            "GROUP BY cache",
            start=start,
        )
    }
    assert {k: body["cache"][k] for k in ("hit", "miss", "bypass")} == cache
    assert body["cache"]["hit_ratio"] == pytest.approx(
        cache["hit"] / (cache["hit"] + cache["miss"])
    )

    tokens = _sql(
        url,
        "SELECT model, SUM(tokens_in) AS tin, SUM(tokens_out) AS tout FROM predictions "
        f"{window} AND (tokens_in IS NOT NULL OR tokens_out IS NOT NULL) GROUP BY model",
        start=start,
    )
    by_model = {g["model"]: g for g in body["gemini"]["by_model"]}
    assert {m: (g["tokens_in"], g["tokens_out"]) for m, g in by_model.items()} == {
        r["model"]: (int(r["tin"]), int(r["tout"])) for r in tokens
    }
    prices = settings.DEFAULT_GEMINI_PRICES
    flash = by_model["gemini-3.5-flash"]
    assert flash["estimated_cost_usd"] == pytest.approx(
        (1200 * prices["gemini-3.5-flash"][0] + 300 * prices["gemini-3.5-flash"][1]) / 1e6
    )
    # No published rate for flash-lite: its tokens counted, its cost not guessed.
    assert by_model["gemini-3.5-flash-lite"]["estimated_cost_usd"] is None
    assert body["gemini"]["unpriced_models"] == ["gemini-3.5-flash-lite"]
    assert body["gemini"]["estimated_cost_usd"] == pytest.approx(
        flash["estimated_cost_usd"] + by_model["gemini-3.1-pro-preview"]["estimated_cost_usd"]
    )

    # The seeded bikes-1h forecast's hour is in its stored observations: the actual shown.
    forecasts = {f["model"]: f["recent"] for f in body["forecasts"]}
    assert set(forecasts) == {"bikes-1h", "bikes-3h"}
    assert forecasts["bikes-3h"] == []
    (recent,) = forecasts["bikes-1h"]
    (point,) = recent["points"]
    hours = dict(_stored_hours("bikes-1h"))
    assert point["value"] == 41.5
    assert point["actual"] == hours[datetime.fromisoformat(point["at"])]


@pytest.mark.parametrize("engine_name", ["sqlite"])
def test_a_live_forecast_is_listed_with_no_actuals_yet(
    logged: str,  # noqa: F811
    cache_dir: Any,
) -> None:
    from lens.entry.models import lambda_handler

    forecast = lambda_handler(rest_event("GET", "/forecast/bikes-3h", query=None), FakeContext())
    assert forecast["statusCode"] == 200
    answer = json.loads(forecast["body"])
    status, body = _stats({"since": "1h"})
    assert status == 200
    (recent,) = {f["model"]: f["recent"] for f in body["forecasts"]}["bikes-3h"]
    # The hours after the stored observations: nothing observed yet, so no actual.
    assert [(p["at"], p["value"], p["actual"]) for p in recent["points"]] == [
        (p["at"], p["value"], None) for p in answer["forecast"]
    ]
    assert body["requests"]["total"] == 1  # /stats itself is not logged


@pytest.mark.parametrize("engine_name", ["sqlite"])
@pytest.mark.parametrize(
    "since", ["", "24", "h", "0h", "1w", "-1h", "1.5h", "91d", "99999999d", "24h; DROP"]
)
def test_a_bad_since_is_400_naming_the_forms(logged: str, since: str) -> None:  # noqa: F811
    status, body = _stats({"since": since})
    assert status == 400, body
    assert body["error"]["code"] == "invalid_since"
    assert "24h" in body["error"]["message"] or "90 days" in body["error"]["message"]


@pytest.mark.parametrize("engine_name", ["sqlite"])
@pytest.mark.parametrize("since", ["30m", "1h", "7d", " 24h ", "90d"])
def test_good_windows(logged: str, since: str, cache_dir: Any) -> None:  # noqa: F811
    status, body = _stats({"since": since})
    assert status == 200, body
    assert body["requests"] == {"total": 0, "by_hour": []}
    assert body["latency_ms"]["p50"] is None and body["cache"]["hit_ratio"] is None
    span = datetime.fromisoformat(body["to"][:-1]) - datetime.fromisoformat(body["from"][:-1])
    assert span == aggregates.parse_since(since)


def test_log_off_is_503_log_unavailable(monkeypatch: pytest.MonkeyPatch, cache_dir: Any) -> None:
    monkeypatch.delenv(prediction_log.ENABLED_ENV, raising=False)
    prediction_log.reset()
    status, body = _stats()
    assert status == 503
    assert body["error"]["code"] == "log_unavailable"
    assert "prediction-db-url" in body["error"]["message"]


@pytest.mark.parametrize("engine_name", ["sqlite"])
def test_an_unreachable_database_is_503_without_its_password(
    logged: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.log.test_writer import _configure

    # A PostgreSQL URL where nothing listens (port 1), stored as the stage's secret.
    _configure(monkeypatch, "postgresql://scarab:s3cret-pw@127.0.0.1:1/log")
    status, body = _stats()
    assert status == 503 and body["error"]["code"] == "log_unreadable"
    assert "s3cret-pw" not in json.dumps(body) + capsys.readouterr().out


def test_percentile_is_percentile_cont() -> None:
    assert aggregates.percentile([], 0.5) is None
    assert aggregates.percentile([7.0], 0.99) == 7.0
    assert aggregates.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert aggregates.percentile([4.0, 1.0, 3.0, 2.0], 0.95) == pytest.approx(3.85)


def test_rows_use_only_the_logs_columns() -> None:
    assert set(aggregates.COLUMNS) <= set(predictions.c.keys())
