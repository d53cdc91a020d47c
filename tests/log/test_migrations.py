"""The prediction log's alembic migrations, up and down, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from lens.log import migrate
from lens.log.database import create_engine
from lens.log.schema import HOURLY_VIEW, TABLE, predictions
from lens.log.writer import Writer

from tests.log.rows import sample_row


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    return ScriptDirectory.from_config(config)


def _revisions() -> list[str]:
    """Every revision, oldest first."""
    return [r.revision for r in reversed(list(_script().walk_revisions()))]


def _tables_and_views(engine: sa.Engine) -> tuple[set[str], set[str]]:
    inspector = sa.inspect(engine)
    return set(inspector.get_table_names()), set(inspector.get_view_names())


def test_head_constant_is_alembics_head() -> None:
    # The first-use check compares with HEAD without importing alembic: they must agree.
    assert _script().get_current_head() == migrate.HEAD
    assert _revisions() == ["0001", "0002"]


def test_upgrade_gives_the_tables_of_schema_py(db_url: str) -> None:
    engine = create_engine(db_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.HEAD
    inspector = sa.inspect(engine)
    columns = inspector.get_columns(TABLE)
    assert [c["name"] for c in columns] == [c.name for c in predictions.columns]
    nullable = {c["name"]: c["nullable"] for c in columns}
    assert nullable == {c.name: c.nullable for c in predictions.columns} | {"id": False}
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(TABLE)}
    assert indexes == {i.name: [c.name for c in i.columns] for i in predictions.indexes}
    assert HOURLY_VIEW in inspector.get_view_names()
    engine.dispose()


def test_every_migration_goes_down_and_up_again(db_url: str) -> None:
    engine = create_engine(db_url)
    revisions = _revisions()
    for revision in revisions:
        migrate.upgrade(engine, revision)
        assert migrate.current_revision(engine) == revision
    assert _tables_and_views(engine)[1] >= {HOURLY_VIEW}
    # Down one step at a time: the view goes with 0002, the table with 0001.
    migrate.downgrade(engine, "0001")
    tables, views = _tables_and_views(engine)
    assert TABLE in tables and HOURLY_VIEW not in views
    assert migrate.current_revision(engine) == "0001"
    migrate.downgrade(engine, "base")
    tables, views = _tables_and_views(engine)
    assert TABLE not in tables and HOURLY_VIEW not in views
    assert migrate.current_revision(engine) is None
    # And back up, with data written through the table the code uses.
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(predictions.insert(), sample_row())
        assert connection.execute(sa.select(sa.func.count()).select_from(predictions)).scalar() == 1
    engine.dispose()


def test_a_fresh_database_gets_the_schema_on_the_first_write(db_url: str) -> None:
    writer = Writer(db_url)
    assert migrate.current_revision(writer.engine) is None
    writer.write(sample_row())
    assert migrate.current_revision(writer.engine) == migrate.HEAD
    with writer.engine.connect() as connection:
        assert connection.execute(sa.select(predictions.c.request_id)).scalars().all() == ["r-1"]
    # A second writer (another container) finds the schema at HEAD and just writes.
    other = Writer(db_url)
    other.write(sample_row(request_id="r-2"))
    with other.engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(predictions)).scalar()
    assert count == 2
    writer.close()
    other.close()
