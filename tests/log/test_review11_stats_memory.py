"""GET /stats over a large window holds no row of it in memory: the database groups and
sums, only the latencies (one float each) are read, and a forecaster's recent forecasts
are read a page at a time. The answer is the same as the aggregates of every row (the
pure `aggregate`) on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import tracemalloc
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from lens import log as prediction_log
from lens.log import stats as aggregates
from lens.log.schema import predictions
from lens.log.writer import writer_for
from lens.settings import get_settings

from tests.log.rows import sample_row
from tests.log.test_stats import _forecast_output, _stats, seeded  # noqa: F401 (fixture)
from tests.log.test_writer import logged  # noqa: F401 (fixture: the log on, URL in SSM)

pytestmark = pytest.mark.emulator

ROWS = 50_000
# A /predict answer's size in the log (label and probabilities); a row of the window
# held in memory costs several hundred bytes, so 50k of them are tens of MB.
OUTPUT = json.dumps({"label": 5, "probabilities": [0.1] * 10, "model_version": "1"})
PEAK_LIMIT_MB = 12


def _all_rows(url: str, start: datetime) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            stmt = sa.select(*(predictions.c[n] for n in aggregates.COLUMNS)).where(
                predictions.c.at >= start
            )
            return [dict(r._mapping) for r in connection.execute(stmt)]
    finally:
        engine.dispose()


def test_stats_equal_the_aggregates_of_every_row(
    seeded: tuple[str, datetime],  # noqa: F811
    cache_dir: Any,
) -> None:
    url, _ = seeded
    status, body = _stats({"since": "7d"})
    assert status == 200, body
    start = datetime.fromisoformat(body["from"].removesuffix("Z"))
    end = datetime.fromisoformat(body["to"].removesuffix("Z"))
    prices = {m: aggregates.Price(*rates) for m, rates in get_settings().gemini_prices.items()}
    expected = aggregates.aggregate(_all_rows(url, start), start=start, end=end, prices=prices)
    assert {k: v for k, v in body.items() if k not in ("since", "forecasts")} == expected
    assert expected["requests"]["total"] == 12  # every seeded row is in a 7d window


@pytest.mark.parametrize("engine_name", ["sqlite"])
def test_a_large_window_is_not_read_into_memory(
    logged: str,  # noqa: F811
    cache_dir: Any,
) -> None:
    now = prediction_log.now()
    rows = [
        sample_row(
            at=now - timedelta(seconds=7 * i),
            request_id=f"r-{i}",
            model="digits" if i % 3 else "bikes-1h",
            route="/predict/{model_id}",
            latency_ms=float(i % 997) / 10,
            status=404 if i % 50 == 0 else 200,
            error_code="unknown_model" if i % 50 == 0 else None,
            cache=("hit", "miss", None)[i % 3],
            output=OUTPUT,
        )
        for i in range(ROWS)
    ]
    writer = writer_for(logged)
    writer.ensure_schema()
    with writer.engine.begin() as connection:
        connection.execute(predictions.insert(), rows)
    del rows
    assert _stats({"since": "1h"})[0] == 200  # imports and connections made before measuring

    tracemalloc.start()
    try:
        status, body = _stats({"since": "7d"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200, body
    assert body["requests"]["total"] == ROWS
    assert body["errors"]["by_code"] == {"unknown_model": ROWS // 50}
    assert peak / 2**20 < PEAK_LIMIT_MB


@pytest.mark.parametrize("engine_name", ["sqlite"])
def test_repeated_forecasts_over_many_pages_do_not_hide_an_older_one(
    logged: str,  # noqa: F811
    cache_dir: Any,
) -> None:
    """The newest forecasts are all the same (cache hits): the distinct older one, more
    than a page further back, is still listed."""
    now = prediction_log.now()
    older = json.loads(_forecast_output())
    older["model_version"] = "0"
    writer = writer_for(logged)
    writer.write(
        sample_row(
            at=now - timedelta(hours=2),
            route="/forecast/{model_id}",
            model="bikes-1h",
            model_version="0",
            output=json.dumps(older),
        )
    )
    for i in range(aggregates.FORECAST_PAGE * 2 + 5):
        writer.write(
            sample_row(
                at=now - timedelta(minutes=1, seconds=i),
                request_id=f"r-{i}",
                route="/forecast/{model_id}",
                model="bikes-1h",
                output=_forecast_output(),
                cache="hit",
            )
        )
    status, body = _stats({"since": "24h"})
    assert status == 200, body
    recent = {f["model"]: f["recent"] for f in body["forecasts"]}["bikes-1h"]
    assert [r["model_version"] for r in recent] == ["1", "0"]
