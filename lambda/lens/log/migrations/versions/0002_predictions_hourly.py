"""The predictions_hourly view for BI tools: per hour, route and model.

Columns: hour (UTC, the start of the hour), route, model, requests, errors (answers
with status >= 400), cache_hits, latency_avg_ms, latency_p50_ms, latency_p95_ms,
latency_p99_ms, latency_max_ms, tokens_in, tokens_out. The percentiles are exact
(continuous) on PostgreSQL and MariaDB and NULL on SQLite and MySQL, which have no
percentile function.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COUNTS = """
    COUNT(*) AS requests,
    SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors,
    SUM(CASE WHEN cache = 'hit' THEN 1 ELSE 0 END) AS cache_hits,
    AVG(latency_ms) AS latency_avg_ms"""
_TAIL = """
    MAX(latency_ms) AS latency_max_ms,
    SUM(tokens_in) AS tokens_in,
    SUM(tokens_out) AS tokens_out"""

_POSTGRESQL = f"""
CREATE VIEW predictions_hourly AS
SELECT date_trunc('hour', at) AS hour, route, model,{_COUNTS},
    percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS latency_p50_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS latency_p95_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS latency_p99_ms,{_TAIL}
FROM predictions
GROUP BY date_trunc('hour', at), route, model
"""  # noqa: S608 (constant SQL, no input)

# MariaDB has PERCENTILE_CONT as a window function only: computed per row over the
# row's (hour, route, model) group, then the same value is kept by MAX.
_MARIADB_HOUR = "CAST(DATE_FORMAT(at, '%Y-%m-%d %H:00:00') AS DATETIME)"
_MARIADB = f"""
CREATE VIEW predictions_hourly AS
SELECT hour, route, model,{_COUNTS},
    MAX(p50) AS latency_p50_ms,
    MAX(p95) AS latency_p95_ms,
    MAX(p99) AS latency_p99_ms,{_TAIL}
FROM (
    SELECT {_MARIADB_HOUR} AS hour, route, model, status, cache, latency_ms,
        tokens_in, tokens_out,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY latency_ms)
            OVER (PARTITION BY {_MARIADB_HOUR}, route, model) AS p50,
        PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY latency_ms)
            OVER (PARTITION BY {_MARIADB_HOUR}, route, model) AS p95,
        PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY latency_ms)
            OVER (PARTITION BY {_MARIADB_HOUR}, route, model) AS p99
    FROM predictions
) AS rows_with_percentiles
GROUP BY hour, route, model
"""  # noqa: S608 (constant SQL, no input)

_MYSQL = f"""
CREATE VIEW predictions_hourly AS
SELECT {_MARIADB_HOUR} AS hour, route, model,{_COUNTS},
    CAST(NULL AS DOUBLE) AS latency_p50_ms,
    CAST(NULL AS DOUBLE) AS latency_p95_ms,
    CAST(NULL AS DOUBLE) AS latency_p99_ms,{_TAIL}
FROM predictions
GROUP BY {_MARIADB_HOUR}, route, model
"""  # noqa: S608 (constant SQL, no input)

_SQLITE = f"""
CREATE VIEW predictions_hourly AS
SELECT strftime('%Y-%m-%d %H:00:00', at) AS hour, route, model,{_COUNTS},
    CAST(NULL AS REAL) AS latency_p50_ms,
    CAST(NULL AS REAL) AS latency_p95_ms,
    CAST(NULL AS REAL) AS latency_p99_ms,{_TAIL}
FROM predictions
GROUP BY strftime('%Y-%m-%d %H:00:00', at), route, model
"""  # noqa: S608 (constant SQL, no input)


def upgrade() -> None:
    dialect = op.get_bind().dialect
    if dialect.name == "postgresql":
        op.execute(_POSTGRESQL)
    elif dialect.name in ("mysql", "mariadb"):
        op.execute(_MARIADB if getattr(dialect, "is_mariadb", False) else _MYSQL)
    else:
        op.execute(_SQLITE)


def downgrade() -> None:
    op.execute("DROP VIEW predictions_hourly")
