"""A database a newer scarab already migrated (a revision this code does not know, with
a column added) is written to as it is: older functions still running against it (a
rollback, another stage on the same database) keep logging, and never try to migrate
it back or fail every write."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from lens import log as prediction_log
from lens.log import migrate

from tests.log.test_migrations import _script
from tests.log.test_writer import _rows, logged  # noqa: F401 (fixture)
from tests.predict.conftest import Call
from tests.predict.drawing import b64 as digit_b64
from tests.predict.drawing import draw_digit

pytestmark = pytest.mark.emulator


def test_a_database_ahead_of_the_code_is_still_logged_to(
    logged: str,  # noqa: F811
    call: Call,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = sa.create_engine(logged)
    try:
        migrate.upgrade(engine)
        with engine.begin() as connection:  # what a newer scarab's migration 0099 did
            connection.execute(sa.text("ALTER TABLE predictions ADD COLUMN region VARCHAR(16)"))
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    finally:
        engine.dispose()
    prediction_log.reset()
    capsys.readouterr()
    for _ in range(2):
        status, answer, _ = call("POST", "/predict/digits", {"image": digit_b64(draw_digit(3))})
        assert status == 200 and answer["label"] == 3
    prediction_log.reset()
    out = capsys.readouterr().out
    failures = [json.loads(line) for line in out.splitlines() if "LogWriteFailures" in line]
    assert failures == []
    rows = _rows(logged)
    assert [r["route"] for r in rows] == ["/predict/{model_id}"] * 2
    engine = sa.create_engine(logged)
    try:
        assert migrate.current_revision(engine) == "0099"  # never migrated back
    finally:
        engine.dispose()


def test_the_known_revisions_are_alembics() -> None:
    # ensure_schema tells "ahead of the code" from "behind" by this set, without alembic.
    assert migrate.known_revisions() == {s.revision for s in _script().walk_revisions()}
