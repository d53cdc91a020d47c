"""The prediction log's tests run on three engines: SQLite (a file), and real PostgreSQL
and MariaDB servers from Debian's packages (tests/support/databases.py), started once
per session on a free port and stopped at its end. `db_url` is a fresh empty database
on each engine; a test that takes it runs three times."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lens import log as prediction_log

# The offline-model tests' handler calls (`call`) and model store (`cache_dir`).
from tests.predict.conftest import cache_dir, call  # noqa: F401 (fixtures)
from tests.support.databases import DatabaseServer, start_mariadb, start_postgres

ENGINES = ("sqlite", "postgresql", "mariadb")


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[DatabaseServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[DatabaseServer]:
    server = start_mariadb()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database on `engine_name` (dropped afterwards)."""
    prediction_log.reset()
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'predictions.db'}"
        prediction_log.reset()
        return
    server: DatabaseServer = request.getfixturevalue(f"{engine_name}_server")
    url = server.create_database()
    try:
        yield url
    finally:
        prediction_log.reset()  # close pooled connections before the drop
        server.drop_database(url)
