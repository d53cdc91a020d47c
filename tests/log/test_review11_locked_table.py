"""A reachable database whose predictions table is locked by another session (real
PostgreSQL and MariaDB): the first write waits the statement timeout once, not twice
(no retry after a timeout), and the writes after it are skipped by the back-off instead
of each waiting again."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from lens import log as prediction_log
from lens.log.writer import writer_for

from tests.log.rows import sample_row

WRITES = 3


def _inserts_issued(connection: Any) -> int:
    """MariaDB's count of INSERT statements the server was sent (any session)."""
    row = connection.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Com_insert'").first()
    return int(row[1])


@pytest.mark.parametrize("engine_name", ["postgresql", "mariadb"])
def test_a_locked_table_costs_one_timeout_then_backs_off(
    db_url: str, engine_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    writer_for(db_url).write(sample_row(at=prediction_log.now()))  # migrated, warm
    holder = sa.create_engine(db_url)
    connection = holder.connect()
    try:
        connection.begin()
        if engine_name == "mariadb":
            connection.exec_driver_sql("LOCK TABLES predictions WRITE")
        else:
            connection.exec_driver_sql("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
        caplog.clear()
        issued = _inserts_issued(connection) if engine_name == "mariadb" else 0
        results = [
            prediction_log.write(sample_row(at=prediction_log.now()), db_url) for _ in range(WRITES)
        ]
        # One INSERT reached the server: the timed-out one was not sent again.
        sent = _inserts_issued(connection) - issued if engine_name == "mariadb" else None
    finally:
        # Released before anything can fail: the database is dropped afterwards.
        if engine_name == "mariadb":
            connection.exec_driver_sql("UNLOCK TABLES")
        connection.rollback()
        connection.close()
        holder.dispose()
    if engine_name == "mariadb":
        assert sent == 1
    assert results == [False] * WRITES
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("prediction log write failed") == 1, messages
    assert "prediction log database unreachable: skipping its writes for a while" in messages
