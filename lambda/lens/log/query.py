"""Reading the prediction log: the one query behind `scarab predictions`, whether it reads
the local SQLite file itself (--local) or asks the stage's function (lens.log.remote),
and the JSON form of a row both print. Imports SQLAlchemy: loaded only to read."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from lens.log import READ_DEFAULT_LIMIT
from lens.log.schema import TABLE, predictions


@dataclass(frozen=True)
class Filters:
    """Which rows: the stage's, newer than `since_s` seconds (None: any age), of one model
    and one route (as the log records it, e.g. /predict/{model_id}), at most `limit`."""

    stage: str
    since_s: float | None = 3600.0
    model: str | None = None
    route: str | None = None
    limit: int = READ_DEFAULT_LIMIT


def columns() -> list[str]:
    """Every column of the log, in table order."""
    return [c.name for c in predictions.columns]


def statement(filters: Filters) -> sa.Select[Any]:
    """The rows `filters` asks for, newest first."""
    table = predictions
    stmt = sa.select(table).where(table.c.stage == filters.stage)
    if filters.since_s is not None:
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        stmt = stmt.where(table.c.at >= now - datetime.timedelta(seconds=filters.since_s))
    if filters.model:
        stmt = stmt.where(table.c.model == filters.model)
    if filters.route:
        stmt = stmt.where(table.c.route == filters.route)
    return stmt.order_by(table.c.at.desc(), table.c.id.desc()).limit(filters.limit)


def read_rows(connection: sa.Connection, filters: Filters) -> list[dict[str, Any]]:
    """The matching rows as dicts (none while the log has no table yet)."""
    if not sa.inspect(connection).has_table(TABLE):
        return []
    return [dict(row._mapping) for row in connection.execute(statement(filters))]


def plain(value: Any) -> Any:
    """A column's value as JSON and CSV show it: times as ISO 8601 UTC with a Z."""
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="milliseconds") + "Z"  # the log holds UTC
    return value


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: plain(value) for key, value in row.items()}
