"""The predictions table: one row per answer of /analyze, /predict and /forecast.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Spelled out here rather than imported from lens.log.schema: a migration is frozen at
# the schema of its day (tests/log/test_migrations.py compares the result with schema.py).
_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128)),
        sa.Column("model_version", sa.String(64)),
        sa.Column("input_digest", sa.String(64)),
        sa.Column("input", _LONG_TEXT),
        sa.Column("output", _LONG_TEXT),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("tokens_in", sa.Integer),
        sa.Column("tokens_out", sa.Integer),
        sa.Column("cache", sa.String(8)),
        # MySQL/MariaDB: the database's default character set may be latin1 (or utf8mb3),
        # which refuses emoji and anything outside the BMP in an output or a model name.
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_predictions_at", "predictions", ["at"])
    op.create_index("ix_predictions_route_at", "predictions", ["route", "at"])
    op.create_index("ix_predictions_model_at", "predictions", ["model", "at"])


def downgrade() -> None:
    op.drop_index("ix_predictions_model_at", table_name="predictions")
    op.drop_index("ix_predictions_route_at", table_name="predictions")
    op.drop_index("ix_predictions_at", table_name="predictions")
    op.drop_table("predictions")
