"""alembic's environment for the prediction log: online only, on a connection given in code.

There is no alembic.ini and no URL here: lens.log.migrate (and the tests) build the
alembic Config in code and pass an open SQLAlchemy connection in
`config.attributes["connection"]`, so the database URL (a secret) is never written to a
file or an argument list.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "The prediction log's migrations run through lens.log.migrate, which passes the"
        " database connection; there is no URL to read from a file."
    )
context.configure(connection=connection, version_table="alembic_version")
with context.begin_transaction():
    context.run_migrations()
