"""The prediction log's tables, in SQLAlchemy 2 Core (no ORM).

One row per answer of /analyze, /predict/{model_id} and /forecast/{model_id}. The
schema is versioned by the alembic migrations next to this module (lens/log/migrations);
this module is what the code reads and writes, and tests/log/test_migrations.py checks
that the migrated database has exactly these columns, on every engine.

Times are UTC and stored without a zone (SQLite has none, MySQL's DATETIME none either),
with microseconds on every engine.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

TABLE = "predictions"
HOURLY_VIEW = "predictions_hourly"

# MySQL/MariaDB: DATETIME keeps no fraction of a second unless asked, and TEXT stops at
# 64 KiB (an analysis or a stored input can be longer).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# SQLite only autoincrements an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

predictions = sa.Table(
    TABLE,
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", Timestamp, nullable=False, doc="when the answer left, UTC"),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("route", sa.String(64), nullable=False, doc="e.g. /predict/{model_id}"),
    sa.Column("model", sa.String(128)),
    sa.Column("model_version", sa.String(64)),
    sa.Column("input_digest", sa.String(64), doc="sha256 hex of the input"),
    sa.Column("input", LongText, doc="the input itself, only with [log] store_inputs"),
    sa.Column("output", LongText, doc="the answer's JSON body (success only)"),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("status", sa.Integer, nullable=False, doc="HTTP status"),
    sa.Column("error_code", sa.String(64)),
    sa.Column("tokens_in", sa.Integer),
    sa.Column("tokens_out", sa.Integer),
    sa.Column("cache", sa.String(8), doc="hit, miss or bypass (X-Cache); NULL: no cache"),
    sa.Index("ix_predictions_at", "at"),
    sa.Index("ix_predictions_route_at", "route", "at"),
    sa.Index("ix_predictions_model_at", "model", "at"),
)
