"""Writing prediction log rows (imports SQLAlchemy: loaded only when a log is configured).

A Writer owns one engine for one URL, kept for the life of the process so that its
connection is reused across invocations, and brings the schema to HEAD before its first
write (lens.log.migrate). `write` raises on failure; lens.log.record turns that into a
metric and a log line.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from lens.log import migrate
from lens.log.database import STATEMENT_TIMEOUT_S, create_engine, parse_url
from lens.log.schema import predictions


class Writer:
    """Rows into the predictions table of the database at `url`."""

    def __init__(self, url: str | URL) -> None:
        self.url = url if isinstance(url, URL) else parse_url(url)
        self.engine = create_engine(self.url)
        self._schema_ready = False
        self._insert = predictions.insert()

    def ensure_schema(self) -> None:
        if not self._schema_ready:
            migrate.ensure_schema(self.engine)
            self._schema_ready = True

    def write(self, row: dict[str, Any]) -> None:
        """Insert one row (a dict of predictions' columns) and commit it."""
        self.ensure_schema()
        started = time.monotonic()
        try:
            self._execute(row)
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated or slow(time.monotonic() - started):
                raise
            # The pooled connection had died (server restart, idle timeout): the pool
            # dropped it, and one retry on a fresh connection is cheap. Not after a
            # timeout: that would make the request wait for it twice.
            self._execute(row)

    def _execute(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            connection.execute(self._insert, row)

    def close(self) -> None:
        self.engine.dispose()


def slow(seconds: float) -> bool:
    """Whether a failure that took `seconds` was a timeout, not a refusal."""
    return seconds >= 0.9 * STATEMENT_TIMEOUT_S


_writers: dict[str, Writer] = {}


def writer_for(url: str) -> Writer:
    """The process's Writer for `url` (created on first use)."""
    writer = _writers.get(url)
    if writer is None:
        writer = _writers[url] = Writer(url)
    return writer


def drop_pools() -> None:
    """Forget every engine's pooled connections without closing them (SQLAlchemy's way
    for a process that shares them: after a SnapStart restore they belong to the
    snapshot); each engine connects again on its next use."""
    for writer in _writers.values():
        writer.engine.dispose(close=False)


def reset_writers() -> None:
    """Close and forget every Writer (tests, or after the URL changed)."""
    for writer in _writers.values():
        writer.close()
    _writers.clear()
