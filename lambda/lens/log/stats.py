"""Aggregates of the prediction log for GET /stats (and the web client's dashboard).

One implementation on every engine, and no row of the window held in memory: the
database counts (GROUP BY hour, route, model, status, error code and cache state, with
the tokens summed), and only the latencies are read, as one float each, because SQLite
and MySQL have no percentile function and MariaDB's is a window function only.
Percentiles are continuous (linear interpolation between the two nearest ranks), the
same definition as PostgreSQL's percentile_cont, so they agree with the
predictions_hourly view where the engine computes them. A forecaster's recent forecasts
are read newest first, a page at a time, until RECENT_FORECASTS distinct ones are found.

`parse_since`, `percentile`, `aggregate` and `summarize` are pure; `read_summary` and
`read_forecasts` import SQLAlchemy (loaded only when the log is on and /stats is asked).
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
# Recent forecasts shown per forecaster, and how many logged ones are read at a time
# while looking for them (repeats, e.g. cache hits, are skipped).
RECENT_FORECASTS = 5
FORECAST_PAGE = 100


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


@dataclass(frozen=True)
class Group:
    """The window's answers that share an hour, route, model, status, error code and
    cache state: how many, and the Gemini tokens of those that spent any."""

    hour: datetime
    route: str
    model: str | None
    status: int
    error_code: str | None
    cache: str | None
    requests: int
    tokens_in: int
    tokens_out: int
    with_tokens: int  # answers with tokens_in or tokens_out set


# Latencies by route, one float (8 bytes) each.
Latencies = dict[str, "array[float]"]


def aggregate(
    rows: Iterable[Mapping[str, Any]],
    *,
    start: datetime,
    end: datetime,
    prices: Mapping[str, Price],
) -> dict[str, Any]:
    """Every aggregate of /stats but the forecasts, over `rows` (dicts of COLUMNS): the
    same as `summarize` over the database's groups of those rows."""
    groups: Counter[tuple[Any, ...]] = Counter()
    spent: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    latencies: Latencies = defaultdict(lambda: array("d"))
    for row in rows:
        key = (
            hour_of(row["at"]), row["route"], row["model"], int(row["status"]),
            row["error_code"], row["cache"],
        )  # fmt: skip
        groups[key] += 1
        if row["tokens_in"] is not None or row["tokens_out"] is not None:
            tokens = spent[key]
            tokens[0] += int(row["tokens_in"] or 0)
            tokens[1] += int(row["tokens_out"] or 0)
            tokens[2] += 1
        latencies[row["route"]].append(float(row["latency_ms"]))
    found = []
    for key, count in groups.items():
        hour, route, model, status, code, state = key
        tokens_in, tokens_out, with_tokens = spent.get(key, (0, 0, 0))
        found.append(
            Group(
                hour, route, model, status, code, state, count, tokens_in, tokens_out, with_tokens
            )
        )
    return summarize(
        found,
        latencies,
        start=start,
        end=end,
        prices=prices,
    )


def summarize(
    groups: Iterable[Group],
    latencies: Latencies,
    *,
    start: datetime,
    end: datetime,
    prices: Mapping[str, Price],
) -> dict[str, Any]:
    """Every aggregate of /stats but the forecasts, from the window's groups and its
    latencies by route."""
    total = 0
    per_hour: Counter[tuple[datetime, str, str | None]] = Counter()
    errors: Counter[str] = Counter()
    cache: Counter[str] = Counter()
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for g in groups:
        total += g.requests
        per_hour[(g.hour, g.route, g.model)] += g.requests
        if g.status >= 400:
            errors[g.error_code or f"http_{g.status}"] += g.requests
        if g.cache in ("hit", "miss", "bypass"):
            cache[g.cache] += g.requests
        if g.with_tokens:
            spent = tokens[g.model or "unknown"]
            spent[0] += g.tokens_in
            spent[1] += g.tokens_out
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
            "total": total,
            "by_hour": [
                {"hour": _iso(hour), "route": route, "model": model, "requests": count}
                for (hour, route, model), count in sorted(
                    per_hour.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")
                )
            ],
        },
        "latency_ms": {
            **_quantiles([v for values in latencies.values() for v in values]),
            "by_route": {
                route: _quantiles(values) for route, values in sorted(latencies.items()) if values
            },
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


def _hour_column(dialect: str, at: Any) -> Any:
    """The start of `at`'s hour, in SQL (grouped by its label, so a bound format string
    is not two different expressions to PostgreSQL)."""
    import sqlalchemy as sa

    if dialect == "postgresql":
        return sa.func.date_trunc("hour", at)
    if dialect in ("mysql", "mariadb"):
        return sa.func.date_format(at, "%Y-%m-%d %H:00:00")
    return sa.func.strftime("%Y-%m-%d %H:00:00", at)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    text = value.decode() if isinstance(value, bytes) else str(value)
    return datetime.fromisoformat(text)


def read_summary(url: str, start: datetime) -> tuple[list[Group], Latencies]:
    """The log's groups since `start`, and its latencies by route (lens.log.stats:
    what `summarize` takes)."""
    import sqlalchemy as sa

    from lens.log.schema import predictions as table
    from lens.log.writer import writer_for

    writer = writer_for(url)
    writer.ensure_schema()  # an empty database answers "no data", not an error
    hour = _hour_column(writer.engine.dialect.name, table.c.at).label("hour")
    with_tokens = sa.case(
        ((table.c.tokens_in.is_not(None)) | (table.c.tokens_out.is_not(None)), 1), else_=0
    )
    keys = (table.c.route, table.c.model, table.c.status, table.c.error_code, table.c.cache)
    grouped = (
        sa.select(
            hour,
            *keys,
            sa.func.count().label("requests"),
            sa.func.coalesce(sa.func.sum(table.c.tokens_in), 0).label("tokens_in"),
            sa.func.coalesce(sa.func.sum(table.c.tokens_out), 0).label("tokens_out"),
            sa.func.sum(with_tokens).label("with_tokens"),
        )
        .where(table.c.at >= start)
        .group_by(sa.literal_column("hour"), *keys)
    )
    latency = sa.select(table.c.route, table.c.latency_ms).where(table.c.at >= start)
    latencies: Latencies = defaultdict(lambda: array("d"))
    with writer.engine.connect() as connection:
        groups = [
            Group(
                hour=_as_datetime(r.hour), route=r.route, model=r.model, status=int(r.status),
                error_code=r.error_code, cache=r.cache, requests=int(r.requests),
                tokens_in=int(r.tokens_in), tokens_out=int(r.tokens_out),
                with_tokens=int(r.with_tokens or 0),
            )
            for r in connection.execute(grouped)
        ]  # fmt: skip
        # Streamed: the driver hands the rows over in batches, never all at once.
        result = connection.execution_options(yield_per=10_000).execute(latency)
        for route, value in result:
            latencies[route].append(float(value))
    return groups, dict(latencies)


def sqlalchemy_error() -> tuple[type[Exception], ...]:
    """What a failed read of the log raises (SQLAlchemy's errors, and the socket's)."""
    import sqlalchemy as sa

    return (sa.exc.SQLAlchemyError, OSError)


def read_forecasts(url: str, start: datetime, model: str) -> Iterator[dict[str, Any]]:
    """`model`'s logged successful answers of FORECAST_ROUTES since `start` (at,
    model_version, output), newest first, read FORECAST_PAGE at a time as consumed."""
    import sqlalchemy as sa

    from lens.log.schema import predictions as table
    from lens.log.writer import writer_for

    engine = writer_for(url).engine
    stmt = (
        sa.select(table.c.at, table.c.model_version, table.c.output)
        .where(
            (table.c.at >= start)
            & (table.c.model == model)
            & table.c.route.in_(FORECAST_ROUTES)
            & (table.c.status < 400)
            & table.c.output.is_not(None)
        )
        .order_by(table.c.at.desc(), table.c.id.desc())
        .limit(FORECAST_PAGE)
    )
    offset = 0
    while True:
        with engine.connect() as connection:
            page = [dict(r._mapping) for r in connection.execute(stmt.offset(offset))]
        yield from page
        if len(page) < FORECAST_PAGE:
            return
        offset += FORECAST_PAGE
