"""Outputs with emoji and other characters outside the BMP are logged on a MySQL/MariaDB
database whose default character set is not utf8mb4 (latin1 was MySQL's default before
8.0 and still is the default of many managed databases): the log's tables choose
utf8mb4 themselves."""

from __future__ import annotations

import json
import secrets

import sqlalchemy as sa
from lens import log as prediction_log

from tests.log.rows import sample_row
from tests.log.test_writer import _rows
from tests.support.databases import DatabaseServer


def test_emoji_are_logged_on_a_latin1_database(mariadb_server: DatabaseServer) -> None:
    name = f"latin1_{secrets.token_hex(4)}"
    mariadb_server._admin(f"CREATE DATABASE {name} CHARACTER SET latin1")
    mariadb_server.databases.append(name)
    url = mariadb_server.url(name)
    output = json.dumps(
        {"label": "scarab \U0001fab2", "note": "Ḥr-m-ꜣḫt \u00e9"}, ensure_ascii=False
    )
    prediction_log.reset()
    try:
        assert prediction_log.write(sample_row(output=output, model="\U0001fab2-model"), url)
    finally:
        prediction_log.reset()
    (row,) = _rows(url)
    assert row["output"] == output and row["model"] == "\U0001fab2-model"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            charset = connection.execute(
                sa.text(
                    "SELECT CCSA.character_set_name FROM information_schema.TABLES T JOIN"
                    " information_schema.COLLATION_CHARACTER_SET_APPLICABILITY CCSA"
                    " ON CCSA.collation_name = T.table_collation"
                    " WHERE T.table_schema = :db AND T.table_name = 'predictions'"
                ),
                {"db": name},
            ).scalar()
    finally:
        engine.dispose()
    assert charset == "utf8mb4"
