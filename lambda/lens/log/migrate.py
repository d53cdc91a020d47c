"""Applying the prediction log's alembic migrations from code (no alembic.ini, no URL
in a file): `upgrade`, `downgrade`, `current_revision`, and `ensure_schema`, which the
writer calls once per process before its first write.

Why the function migrates on first use rather than `scarab deploy`: the database may sit
in a VPC that only the function can reach, and a stage's first deploy may come before
its database exists. The cost is one `SELECT version_num` per container; alembic itself
is imported only when the database is behind HEAD.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
# The newest revision in migrations/versions (tests/log/test_migrations.py checks it is
# alembic's head), so the check on first use needs no alembic import.
HEAD = "0002"
# The lock first writers take to migrate one at a time (_migration_lock); a waiter gives
# up before the log's statement timeout (lens.log.database) would cut it off.
_LOCK_NAME = "scarab_prediction_log_migrate"
_PG_LOCK_KEY = 0x5CA2AB0013
_LOCK_WAIT_S = 1


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Down to `revision` ("base": nothing left, not even alembic's version table rows)."""
    from alembic import command

    with engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for a database the log never touched."""
    with engine.connect() as connection:
        return _revision(connection)


def _revision(connection: Connection) -> str | None:
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    row = connection.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    return str(row[0]) if row else None


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the database's lock on migrating the log (PostgreSQL: an advisory lock kept
    until the transaction ends; MySQL/MariaDB, whose DDL commits as it goes: a named
    lock; SQLite: its write lock, taken at once)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield
    elif dialect in ("mysql", "mariadb"):
        got = connection.execute(
            sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": _LOCK_NAME, "wait": _LOCK_WAIT_S}
        ).scalar()
        if got != 1:
            raise TimeoutError("another process is migrating the prediction log")
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": _LOCK_NAME})
    elif dialect == "sqlite":
        # Take the write lock now (waiting up to the busy timeout), so the DDL below runs
        # in one transaction no other writer can interleave with.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield
    else:
        yield


def known_revisions() -> frozenset[str]:
    """The revisions this code ships (migrations/versions/<revision>_<name>.py)."""
    return frozenset(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("*_*.py"))


def ensure_schema(engine: Engine) -> None:
    """Bring the database to HEAD if it is behind. Two containers may try at once on a
    fresh database: the loser's DDL fails, and if the winner got it to HEAD that is fine.
    A database at a revision this code does not know was migrated by a newer scarab: it
    is left as it is and written to (migrations add, so this code's columns are there;
    if not, each write fails and is counted like any other)."""
    revision = current_revision(engine)
    if revision == HEAD:
        return
    if revision is not None and revision not in known_revisions():
        from lens.observability import logger

        logger.warning(
            "prediction log database is ahead of this code; writing without migrating",
            extra={"revision": revision[:32], "head": HEAD},
        )
        return
    try:
        # Serialized: on MySQL/MariaDB two first writers at once would otherwise run the
        # same DDL side by side, and the loser would find the schema half built.
        from alembic import command

        with engine.begin() as connection, _migration_lock(connection):
            if _revision(connection) != HEAD:
                command.upgrade(_config(connection), "head")
    except Exception:
        if current_revision(engine) != HEAD:
            raise
