"""The dashboard (web-client/public/dashboard.html) in chromium, against `scarab serve`:
rows seeded in the SQLite log serve writes (.scarab/local/predictions.db) -> the page's
/api/stats (key added server-side) -> the gateway -> the models function's GET /stats.
The charts' points and the numbers shown are checked against SQL over the same file."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from lens import log as prediction_log
from lens.log.schema import predictions
from lens.log.writer import Writer
from playwright.sync_api import expect

from tests.log.rows import sample_row
from tests.log.test_stats import _forecast_output, _sql_percentile
from tests.support.serve_process import ServeProcess

pytestmark = [pytest.mark.browser, pytest.mark.emulator, pytest.mark.slow]

# (minutes ago, route, model, latency, status, error code, tokens in/out, cache)
SEEDED = [
    (5, "/analyze", "gemini-3.5-flash", 700.0, 200, None, 1000, 250, "miss"),
    (6, "/analyze", "gemini-3.5-flash", 3.0, 200, None, None, None, "hit"),
    (7, "/analyze", "gemini-3.1-pro-preview", 2100.0, 200, None, 1400, 1800, "miss"),
    (70, "/predict/{model_id}", "digits", 5.5, 200, None, None, None, "miss"),
    (71, "/predict/{model_id}", "digits", 1.25, 200, None, None, None, "hit"),
    (130, "/predict/{model_id}", "nope", 2.0, 404, "unknown_model", None, None, None),
    (190, "/forecast/{model_id}", "bikes-1h", 12.0, 200, None, None, None, "miss"),
    (3 * 24 * 60, "/analyze", "gemini-3.5-flash", 900.0, 200, None, 10, 10, "miss"),  # outside
]


@pytest.fixture
def log_url(web_project: Path, serve: ServeProcess) -> Iterator[str]:
    """The log serve writes, emptied (other browser tests leave rows in it)."""
    url = f"sqlite:///{web_project / '.scarab' / 'local' / 'predictions.db'}"
    writer = Writer(url)
    writer.ensure_schema()
    with writer.engine.begin() as connection:
        connection.execute(predictions.delete())
    try:
        yield url
    finally:
        writer.close()


def _seed(url: str, rows: list[tuple[Any, ...]]) -> None:
    writer = Writer(url)
    now = prediction_log.now()
    try:
        for i, row in enumerate(rows):
            minutes, route, model, latency, status, code, t_in, t_out, cache = row
            writer.write(
                sample_row(
                    at=now - timedelta(minutes=minutes),
                    request_id=f"web-{i}-{minutes}",
                    route=route,
                    model=model,
                    latency_ms=latency,
                    status=status,
                    error_code=code,
                    tokens_in=t_in,
                    tokens_out=t_out,
                    cache=cache,
                    output=_forecast_output() if route.startswith("/forecast") else None,
                )
            )
    finally:
        writer.close()


def _sql(url: str, statement: str, **params: Any) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(sa.text(statement), params)]
    finally:
        engine.dispose()


def _open(page_factory: Any) -> tuple[Any, list[str]]:
    """The dashboard, loaded, with everything the browser received recorded."""
    page = page_factory()
    received: list[str] = []

    def record(response: Any) -> None:
        received.append(f"{response.url} {response.status} {json.dumps(response.headers)}")
        with contextlib.suppress(Exception):  # a redirect or an aborted body has none
            received.append(response.body().decode("utf-8", "replace"))

    page.on("response", record)
    page.goto("/dashboard.html")
    page.wait_for_selector("html[data-state]")
    return page, received


def _datasets(page: Any, canvas_id: str) -> list[dict[str, Any]]:
    return list(
        page.evaluate(
            """(id) => {
                const chart = Chart.getChart(document.getElementById(id));
                return chart ? chart.data.datasets.map(d => ({label: d.label, data: d.data}))
                             : null;
            }""",
            canvas_id,
        )
        or []
    )


def _stat(page: Any, name: str) -> str:
    return str(page.inner_text(f'[data-stat="{name}"]'))


def test_the_main_page_links_the_dashboard(page: Any) -> None:
    link = page.locator("#dashboard-link")
    assert link.get_attribute("href") == "dashboard.html"
    link.click()
    page.wait_for_selector("html[data-state]")
    assert page.title().endswith("dashboard")


def test_an_empty_log_says_no_data_yet_instead_of_empty_axes(
    page_factory: Any, log_url: str
) -> None:
    page, _ = _open(page_factory)
    assert page.get_attribute("html", "data-state") == "ok"
    for card in page.locator(".chart-card").all():
        expect(card.locator(".no-data")).to_be_visible()
        expect(card.locator(".no-data")).to_have_text("No data yet")
        assert card.locator("canvas:visible").count() == 0
    assert _stat(page, "requests") == "0"
    assert "No data yet" in page.inner_text("#dashboard-status")


def test_seeded_rows_are_charted_and_the_numbers_match_sql(
    page_factory: Any, log_url: str, serve: ServeProcess
) -> None:
    _seed(log_url, SEEDED)
    page, received = _open(page_factory)
    assert page.get_attribute("html", "data-state") == "ok", page.inner_text("#dashboard-status")
    start = prediction_log.now() - timedelta(hours=24)
    window = "WHERE at >= :start"

    # Requests per hour: a dataset per (route, model), a point per hour of the window.
    hours = {
        h["h"]
        for h in _sql(
            log_url, f"SELECT DISTINCT strftime('%Y-%m-%d %H', at) AS h FROM predictions {window}",
            start=start,
        )
    }  # fmt: skip
    pairs = _sql(
        log_url,
        f"SELECT route, model, COUNT(*) AS n FROM predictions {window} GROUP BY route, model",
        start=start,
    )
    requests = _datasets(page, "requests-chart")
    labels = sorted(f"{p['route']} {p['model']}" for p in pairs)
    assert sorted(d["label"] for d in requests) == labels
    assert all(len(d["data"]) == len(hours) for d in requests)
    assert {d["label"]: sum(d["data"]) for d in requests} == {
        f"{p['route']} {p['model']}": p["n"] for p in pairs
    }

    (total,) = _sql(log_url, f"SELECT COUNT(*) AS n FROM predictions {window}", start=start)
    assert _stat(page, "requests") == str(total["n"]) == str(len(SEEDED) - 1)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert _stat(page, name) == f"{_sql_percentile(log_url, q, start):.1f}"
    (errors,) = _sql(
        log_url, f"SELECT COUNT(*) AS n FROM predictions {window} AND status >= 400", start=start
    )
    assert _stat(page, "errors") == str(errors["n"])
    codes = _datasets(page, "errors-chart")
    assert codes == [{"label": "errors", "data": [errors["n"]]}]

    cache = {
        r["cache"]: r["n"]
        for r in _sql(
            log_url,
            f"SELECT cache, COUNT(*) AS n FROM predictions {window} AND cache IS NOT NULL "
            "GROUP BY cache",
            start=start,
        )
    }
    assert _datasets(page, "cache-chart")[0]["data"] == [
        cache.get(s, 0) for s in ("hit", "miss", "bypass")
    ]
    ratio = cache["hit"] / (cache["hit"] + cache["miss"])
    assert _stat(page, "hit-ratio") == f"{ratio * 100:.1f} %"

    tokens = _sql(
        log_url,
        "SELECT model, SUM(tokens_in) AS tin, SUM(tokens_out) AS tout FROM predictions "
        f"{window} AND tokens_in IS NOT NULL GROUP BY model ORDER BY model",
        start=start,
    )
    assert _datasets(page, "tokens-chart") == [
        {"label": "input tokens", "data": [r["tin"] for r in tokens]},
        {"label": "output tokens", "data": [r["tout"] for r in tokens]},
    ]
    assert _stat(page, "tokens") == (
        f"{sum(r['tin'] for r in tokens)} / {sum(r['tout'] for r in tokens)}"
    )
    assert re.fullmatch(r"\$\d+\.\d{4}", _stat(page, "cost"))

    latency = _datasets(page, "latency-chart")
    assert [d["label"] for d in latency] == ["p50", "p95", "p99"]
    assert all(len(d["data"]) == len({p["route"] for p in pairs}) for d in latency)

    # The seeded bikes-1h forecast: one hour, with what was observed then.
    forecast = _datasets(page, "forecast-bikes-1h")
    output = json.loads(_forecast_output())["forecast"]
    assert [d["label"] for d in forecast] == ["forecast", "actual"]
    assert forecast[0]["data"] == [p["value"] for p in output]
    assert len(forecast[1]["data"]) == len(output) and forecast[1]["data"][0] is not None

    assert serve.api_key
    assert len(received) >= 6  # the page, its script, Chart.js, the stylesheet, /api/stats
    assert any("/vendor/chart.umd.min.js" in r for r in received)
    for text in received:
        assert serve.api_key not in text
    assert page.console_errors == []


def test_the_refresh_button_and_the_minute_timer_reload(page_factory: Any, log_url: str) -> None:
    _seed(log_url, SEEDED[:2])
    page = page_factory()
    page.clock.install()
    page.goto("/dashboard.html")
    page.wait_for_selector("html[data-refreshes='1']")
    assert _stat(page, "requests") == "2"
    first = page.get_attribute("#last-updated", "datetime")
    assert first and datetime.fromisoformat(first.replace("Z", "+00:00"))

    _seed(log_url, SEEDED[2:3])
    page.click("#refresh")
    page.wait_for_selector("html[data-refreshes='2']")
    assert _stat(page, "requests") == "3"
    assert len(_datasets(page, "requests-chart")) == 2  # a new (route, model): pro-preview

    _seed(log_url, SEEDED[3:4])
    page.clock.fast_forward(61_000)  # the minute timer, without waiting a minute
    page.wait_for_selector("html[data-refreshes='3']")
    assert _stat(page, "requests") == "4"
    assert page.get_attribute("#last-updated", "datetime") != first
