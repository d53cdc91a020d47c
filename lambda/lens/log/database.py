"""Database URLs and engines for the prediction log: drivers, timeouts, redaction.

URLs are SQLAlchemy's (`dialect[+driver]://user:password@host:port/database`). Without
a driver, PostgreSQL gets pg8000 and MySQL/MariaDB PyMySQL: pure-Python drivers, so a
zip built on any machine runs on either Lambda architecture. Every engine gets short
timeouts, because a request must never wait long for its log row: connecting and each
statement give up after CONNECT_TIMEOUT_S / STATEMENT_TIMEOUT_S. One engine per URL is
kept for the life of the process (a Lambda container), so its connection is reused
across invocations.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

CONNECT_TIMEOUT_S = 2
STATEMENT_TIMEOUT_S = 2
# SQLite: how long a write waits for another process's write lock (serve's workers).
SQLITE_BUSY_TIMEOUT_S = 1.0
# Connections older than this are replaced rather than reused (servers and proxies close
# idle connections; a reused dead one costs the request a failed write).
POOL_RECYCLE_S = 300

_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+pg8000",
    "postgres": "postgresql+pg8000",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


# Query parameters that hold a secret: SQLAlchemy passes a URL's query to the driver, so
# `?password=` (pg8000, PyMySQL) and `?passwd=` (PyMySQL) work and are as secret as the
# password in the userinfo.
_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)


class BadDatabaseUrl(ValueError):
    """The URL cannot be used; the message never contains it."""


def parse_url(url: str) -> URL:
    """`url` as a SQLAlchemy URL, with the default driver when none is named."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise BadDatabaseUrl(
            "the prediction log's database URL is not a URL (dialect://user:password@host/db)"
        )
    text = f"{_DEFAULT_DRIVERS.get(scheme.lower(), scheme)}://{rest}"
    try:
        parsed = make_url(text)
    except Exception:  # sqlalchemy.exc.ArgumentError and friends
        raise BadDatabaseUrl("the prediction log's database URL cannot be parsed") from None
    if "@" in (parsed.host or ""):
        # An '@' in the password that is not percent-encoded: the rest of the password
        # would be read as the host (and shown in every connection error).
        raise BadDatabaseUrl(
            "the prediction log's database URL has an '@' in its password or user name:"
            " percent-encode it as %40"
        )
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise BadDatabaseUrl(
            "the prediction log supports sqlite, postgresql and mysql/mariadb URLs, not "
            f"{parsed.get_backend_name()[:20]!r}"
        )
    return parsed


def _secret_query_keys(url: URL) -> list[str]:
    return [key for key in url.query if _SECRET_QUERY_KEY.search(key)]


def redacted(url: str | URL) -> str:
    """The URL with its password (and any password-like query parameter) replaced by
    ***, for logs and messages."""
    try:
        parsed = url if isinstance(url, URL) else parse_url(url)
    except BadDatabaseUrl:
        return "<unparsable database URL>"
    hidden = {key: "***" for key in _secret_query_keys(parsed)}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def scrub(text: str, url: URL) -> str:
    """`text` (a driver's error message) with the URL's password, and the values of its
    password-like query parameters, taken out where present."""
    secrets: list[str] = [url.password] if isinstance(url.password, str) else []
    for key in _secret_query_keys(url):
        value = url.query[key]
        secrets.extend((value,) if isinstance(value, str) else value)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _connect_args(url: URL) -> dict[str, Any]:
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite":
        return {"timeout": SQLITE_BUSY_TIMEOUT_S}
    if backend == "postgresql" and driver == "pg8000":
        # The socket timeout bounds connecting and every read; statement_timeout (ms) has
        # the server cancel a statement that still runs, e.g. one waiting for a lock.
        return {
            "timeout": CONNECT_TIMEOUT_S,
            "application_name": "scarab-prediction-log",
            "startup_params": {"statement_timeout": str(STATEMENT_TIMEOUT_S * 1000)},
        }
    if backend in ("mysql", "mariadb") and driver == "pymysql":
        # read/write timeouts bound each statement on MySQL and MariaDB alike (their
        # server-side statement limits have different names and scopes).
        return {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": STATEMENT_TIMEOUT_S,
            "write_timeout": STATEMENT_TIMEOUT_S,
            "charset": "utf8mb4",
        }
    return {}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers (scarab predictions) never block the writer; synchronous=NORMAL: a
    # commit needs no fsync in WAL mode (a power cut may lose the last rows, never the file).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str | URL) -> Engine:
    """An engine for `url` with the log's timeouts and a small reused pool."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    options: dict[str, Any] = {"connect_args": _connect_args(parsed)}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        # One invocation at a time per container: one connection, kept.
        options.update(pool_size=1, max_overflow=1, pool_timeout=CONNECT_TIMEOUT_S)
    engine = sa.create_engine(parsed, pool_recycle=POOL_RECYCLE_S, **options)
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine
