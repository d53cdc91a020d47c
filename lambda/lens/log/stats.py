"""Aggregates of the prediction log for GET /stats (and the web client's dashboard).

One implementation on every engine: the rows of the window are read (only the columns
the aggregates need) and everything is computed here in Python, the latency
percentiles included, because SQLite and MySQL have no percentile function and
MariaDB's is a window function only. Percentiles are continuous (linear interpolation
between the two nearest ranks), the same definition as PostgreSQL's percentile_cont,
so they agree with the predictions_hourly view where the engine computes them.

`parse_since` and `percentile` are pure; `read_rows` imports SQLAlchemy (loaded only
when the log is on and /stats is asked).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Longest window /stats answers: a bounded read (rows of a quarter at most).
MAX_SINCE = timedelta(days=90)
DEFAULT_SINCE = "24h"
_UNITS = {"m": 60, "h": 3600, "d": 86400}
# Columns read for the aggregates (never the input; output only for forecasts).
COLUMNS = (
    "at",
    "route",
    "model",
    "model_version",
    "latency_ms",
    "status",
    "error_code",
    "tokens_in",
    "tokens_out",
    "cache",
)
FORECAST_ROUTES = ("/forecast/{model_id}", "/predict/{model_id}")
# Recent forecasts shown per forecaster.
RECENT_FORECASTS = 5


class BadSince(ValueError):
    """`since` is not a window /stats understands; the message says what is."""


def parse_since(text: str | None) -> timedelta:
    """'30m', '1h', '24h', '7d' -> the window; BadSince for anything else."""
    raw = DEFAULT_SINCE if text is None else text
    m = re.fullmatch(r"\s*(\d{1,6})\s*([mhd])\s*", raw)
    if not m or int(m.group(1)) == 0:
        raise BadSince(
            f"since={raw[:32]!r} is not a window: use a whole number and a unit m, h or d, "
            "such as 30m, 1h, 24h or 7d."
        )
    window = timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    if window > MAX_SINCE:
        raise BadSince(f"since={raw.strip()!r} is longer than the 90 days /stats looks back.")
    return window


def percentile(values: Sequence[float], q: float) -> float | None:
    """The continuous q-quantile (0..1) of `values`, as percentile_cont; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens."""

    input: float
    output: float


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _iso(at: datetime) -> str:
    return at.replace(tzinfo=None).isoformat() + "Z"


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def aggregate(
    rows: Iterable[Mapping[str, Any]],
    *,
    start: datetime,
    end: datetime,
    prices: Mapping[str, Price],
) -> dict[str, Any]:
    """Every aggregate of /stats but the forecasts, over `rows` (dicts of COLUMNS)."""
    rows = list(rows)
    per_hour: Counter[tuple[datetime, str, str | None]] = Counter()
    latencies: list[float] = []
    by_route: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    cache: Counter[str] = Counter()
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        per_hour[(hour_of(row["at"]), row["route"], row["model"])] += 1
        latency = float(row["latency_ms"])
        latencies.append(latency)
        by_route[row["route"]].append(latency)
        if int(row["status"]) >= 400:
            errors[row["error_code"] or f"http_{row['status']}"] += 1
        if row["cache"] in ("hit", "miss", "bypass"):
            cache[row["cache"]] += 1
        if row["tokens_in"] is not None or row["tokens_out"] is not None:
            spent = tokens[row["model"] or "unknown"]
            spent[0] += int(row["tokens_in"] or 0)
            spent[1] += int(row["tokens_out"] or 0)
    asked = cache["hit"] + cache["miss"]
    gemini: list[dict[str, Any]] = []
    for model in sorted(tokens):
        tokens_in, tokens_out = tokens[model]
        price = prices.get(model)
        cost = None
        if price is not None:
            cost = (tokens_in * price.input + tokens_out * price.output) / 1_000_000
        gemini.append(
            {
                "model": model,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "price_per_1m_usd": None
                if price is None
                else {"input": price.input, "output": price.output},
                "estimated_cost_usd": _round(cost, 6),
            }
        )
    costs: list[float] = [
        g["estimated_cost_usd"] for g in gemini if g["estimated_cost_usd"] is not None
    ]
    return {
        "from": _iso(start),
        "to": _iso(end),
        "requests": {
            "total": len(rows),
            "by_hour": [
                {"hour": _iso(hour), "route": route, "model": model, "requests": count}
                for (hour, route, model), count in sorted(
                    per_hour.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")
                )
            ],
        },
        "latency_ms": {
            **_quantiles(latencies),
            "by_route": {route: _quantiles(values) for route, values in sorted(by_route.items())},
        },
        "errors": {"total": sum(errors.values()), "by_code": dict(sorted(errors.items()))},
        "cache": {
            "hit": cache["hit"],
            "miss": cache["miss"],
            "bypass": cache["bypass"],
            "hit_ratio": _round(cache["hit"] / asked, 6) if asked else None,
        },
        "gemini": {
            "tokens_in": sum(t[0] for t in tokens.values()),
            "tokens_out": sum(t[1] for t in tokens.values()),
            "estimated_cost_usd": _round(sum(costs), 6) if costs else None,
            "unpriced_models": [g["model"] for g in gemini if g["price_per_1m_usd"] is None],
            "by_model": gemini,
        },
    }


def _quantiles(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": _round(percentile(values, 0.5)),
        "p95": _round(percentile(values, 0.95)),
        "p99": _round(percentile(values, 0.99)),
    }


def forecasts_vs_actuals(
    rows: Iterable[Mapping[str, Any]], actuals: Mapping[datetime, float]
) -> list[dict[str, Any]]:
    """The newest distinct forecasts among `rows` (one forecaster's logged successful
    answers, newest first, with their output), each point with what was observed at
    its hour (`actuals`, naive local hours of the data) or None when not known yet."""
    seen: set[tuple[Any, ...]] = set()
    recent: list[dict[str, Any]] = []
    for row in rows:
        try:
            output = json.loads(row["output"] or "")
            points = output["forecast"]
            key = (row["model_version"], tuple(p["at"] for p in points))
        except (ValueError, KeyError, TypeError):
            continue
        if key in seen:
            continue  # the same forecast again (a cache hit, or no new observations)
        seen.add(key)
        recent.append(
            {
                "at": _iso(row["at"]),
                "model_version": row["model_version"],
                "observed_until": output.get("observed_until"),
                "points": [
                    {
                        "at": p["at"],
                        "value": p.get("value"),
                        "lower": p.get("lower"),
                        "upper": p.get("upper"),
                        "actual": _actual(actuals, p["at"]),
                    }
                    for p in points
                ],
            }
        )
        if len(recent) == RECENT_FORECASTS:
            break
    return recent


def _actual(actuals: Mapping[datetime, float], text: Any) -> float | None:
    try:
        return actuals.get(datetime.fromisoformat(str(text)).replace(tzinfo=None))
    except ValueError:
        return None


def read_rows(url: str, start: datetime) -> list[dict[str, Any]]:
    """The log's rows since `start` (COLUMNS plus output for forecast routes), oldest first."""
    import sqlalchemy as sa

    from lens.log.schema import predictions
    from lens.log.writer import writer_for

    writer = writer_for(url)
    writer.ensure_schema()  # an empty database answers "no data", not an error
    table = predictions
    forecast_output = sa.case(
        (table.c.route.in_(FORECAST_ROUTES) & (table.c.status < 400), table.c.output),
        else_=sa.null(),
    ).label("output")
    stmt = (
        sa.select(*(table.c[name] for name in COLUMNS), forecast_output)
        .where(table.c.at >= start)
        .order_by(table.c.at, table.c.id)
    )
    with writer.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(stmt)]
