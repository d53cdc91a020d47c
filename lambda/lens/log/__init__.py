"""The prediction log: one row per answer of /analyze, /predict/{model_id} and
/forecast/{model_id}, written by lens.function after the resolver answered.

Synchronous on purpose: Lambda runs nothing after the handler returns (a background
thread would be frozen with the container). It can never fail the request: any error
is counted (EMF metric LogWriteFailures) and logged with the database URL's password
redacted, and the database's timeouts are short (lens.log.database).

Configuration (set by `scarab deploy` from [log] and [secrets]; `scarab serve` gives its
workers SCARAB_LOG_LOCAL_URL, the SQLite file .scarab/local/predictions.db):
    SCARAB_LOG_ENABLED          "true" to log (anything else, or unset: no log).
    SCARAB_LOG_STORE_INPUTS     "true" to keep the input itself, not only its digest.
    PREDICTION_DB_URL_PARAM     the SSM parameter or Secrets Manager secret holding the
                                database URL (never the URL itself: it is a secret).
    PREDICTION_DB_URL_BACKEND   which store: ssm (default) or secretsmanager.
    SCARAB_LOG_LOCAL_URL        a sqlite:/// URL used when no PREDICTION_DB_URL_PARAM is
                                set (scarab serve); any other URL here is refused, since
                                one with a password would sit in the environment in plain.
    SCARAB_STAGE                the stage recorded in each row.

This module imports neither SQLAlchemy nor boto3: a function whose log is off pays
nothing, and one whose log is on imports them on its first logged answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit

from lens.observability import NAMESPACE, SERVICE, logger

ENABLED_ENV = "SCARAB_LOG_ENABLED"
STORE_INPUTS_ENV = "SCARAB_LOG_STORE_INPUTS"
URL_PARAM_ENV = "PREDICTION_DB_URL_PARAM"
URL_BACKEND_ENV = "PREDICTION_DB_URL_BACKEND"
LOCAL_URL_ENV = "SCARAB_LOG_LOCAL_URL"
STAGE_ENV = "SCARAB_STAGE"
FAILURE_METRIC = "LogWriteFailures"
# The routes whose answers are logged, as Powertools writes their rules.
LOGGED_RULES = ("/analyze", "/predict/<model_id>", "/forecast/<model_id>")
# Rows one read of the log returns by default and at most (a Lambda answer is <= 6 MB).
READ_DEFAULT_LIMIT = 50
READ_MAX_LIMIT = 1000
# How long an unreadable URL is remembered before the store is asked again.
MISSING_URL_RETRY_S = 60.0
# After a database could not be reached (hung, refusing, unresolvable), its writes are
# skipped (each counted as LogWriteFailures) for BACKOFF_FIRST_S, doubled after every
# retry that fails again up to BACKOFF_MAX_S: a dead database costs one request per
# interval a connect timeout, not every request.
BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0

CacheState = Literal["hit", "miss", "bypass"]


@dataclass(frozen=True)
class LogSettings:
    enabled: bool
    store_inputs: bool
    url_param: str | None
    url_backend: Literal["ssm", "secretsmanager"]
    stage: str | None
    local_url: str | None = None


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def log_settings(env: Mapping[str, str] | None = None) -> LogSettings:
    env = os.environ if env is None else env
    backend = (env.get(URL_BACKEND_ENV) or "ssm").strip().lower()
    return LogSettings(
        enabled=_flag(env.get(ENABLED_ENV)),
        store_inputs=_flag(env.get(STORE_INPUTS_ENV)),
        url_param=(env.get(URL_PARAM_ENV) or "").strip() or None,
        url_backend="secretsmanager" if backend == "secretsmanager" else "ssm",
        stage=(env.get(STAGE_ENV) or "").strip() or None,
        local_url=(env.get(LOCAL_URL_ENV) or "").strip() or None,
    )


def digest(data: bytes | str) -> str:
    """The sha256 hex digest recorded for an input."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def json_digest(value: Any) -> str:
    """The digest of a JSON value in canonical form (sorted keys, no spaces)."""
    return digest(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))


# (when to ask the store again, the URL or None) for the URL's parameter
_url_cache: dict[str, tuple[float, str | None]] = {}


def database_url(settings: LogSettings) -> str | None:
    """The database URL from its secret; None (logged once a minute) when unreadable.
    Without a secret: the local SQLite URL (scarab serve), if that is what it is."""
    name = settings.url_param
    if name is None:
        local = settings.local_url
        return local if local is not None and local.startswith("sqlite:///") else None
    remembered = _url_cache.get(name)
    if remembered is not None and remembered[1] is None and time.monotonic() < remembered[0]:
        return None
    from lens.secrets import read_stored

    try:
        url = read_stored(settings.url_backend, name).strip() or None
    except Exception as exc:  # missing parameter, no permission, throttling...
        logger.warning(
            "prediction log off: its database URL could not be read",
            extra={"source": settings.url_backend, "error": type(exc).__name__},
        )
        url = None
    _url_cache[name] = (time.monotonic() + MISSING_URL_RETRY_S, url)
    return url


def count_failure(reason: str) -> None:
    with single_metric(
        name=FAILURE_METRIC,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ):
        pass
    logger.debug("prediction log failure counted", extra={"reason": reason})


@dataclass
class _Backoff:
    until: float  # writes are skipped before this time (of _clock)
    interval: float  # the last wait; the next failure doubles it


_backoffs: dict[str, _Backoff] = {}
_clock: Callable[[], float] = time.monotonic


def write(row: dict[str, Any], url: str) -> bool:
    """Write `row` to the database at `url`; False (counted and logged) when it failed,
    or was skipped because the database was unreachable a moment ago."""
    backoff = _backoffs.get(url)
    if backoff is not None and _clock() < backoff.until:
        count_failure("backoff")
        return False
    started = time.monotonic()
    try:
        from lens.log.writer import writer_for

        writer_for(url).write(row)
    except Exception as exc:
        _report(exc, url)
        if _unreachable(exc, url, time.monotonic() - started):
            interval = min(BACKOFF_MAX_S, backoff.interval * 2) if backoff else BACKOFF_FIRST_S
            _backoffs[url] = _Backoff(_clock() + interval, interval)
            logger.warning(
                "prediction log database unreachable: skipping its writes for a while",
                extra={"retry_in_s": interval},
            )
        return False
    _backoffs.pop(url, None)
    return True


def _unreachable(exc: Exception, url: str, took_s: float) -> bool:
    """Whether `exc` says the database could not be reached or did not answer in time
    (a failure that took the statement timeout: a server cancelling a statement stuck
    on a lock, a read timing out), not that it refused this row (the next row is then
    tried at once). A SQLite file is always reachable; its lock waits are bounded by its
    busy timeout."""
    if url.startswith("sqlite"):
        return False
    try:
        import sqlalchemy as sa

        from lens.log.writer import slow
    except ImportError:  # a zip built without the log's packages: nothing to reach
        return False
    if slow(took_s):
        return True
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, OSError)
    )


def failure_detail(exc: Exception, url: str) -> str:
    """What went wrong with the database at `url`, for a log line or an answer: the
    driver's first line with the URL's password taken out, or what is wrong with the URL
    itself (a BadDatabaseUrl message never contains the URL)."""
    from lens.log.database import BadDatabaseUrl, parse_url, scrub

    if isinstance(exc, BadDatabaseUrl):
        return str(exc)
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300] if str(exc) else ""
    try:
        return scrub(detail, parse_url(url))
    except BadDatabaseUrl:
        return type(exc).__name__


def _report(exc: Exception, url: str) -> None:
    from lens.log.database import redacted

    count_failure(type(exc).__name__)
    logger.error(
        "prediction log write failed",
        extra={
            "error": type(exc).__name__,
            "detail": failure_detail(exc, url),
            "database": redacted(url),
        },
    )


def now() -> datetime:
    """UTC now without a zone (the log's columns hold UTC, see lens.log.schema)."""
    return datetime.now(UTC).replace(tzinfo=None)


def record(facts: Mapping[str, Any], settings: LogSettings | None = None) -> bool:
    """Write one answer's row when the log is on; never raises. `facts` maps the
    predictions columns (lens.log.answer builds them from an answer); `input` is dropped
    unless store_inputs. True when a row was written."""
    try:
        settings = settings or log_settings()
        if not settings.enabled:
            return False
        url = database_url(settings)
        if url is None:
            return False
        row = dict(facts)
        if not settings.store_inputs:
            row["input"] = None
        return write(row, url)
    except Exception as exc:  # building the row itself failed: still never the request's
        count_failure(type(exc).__name__)
        logger.exception("prediction log failed before writing")
        return False


def reset(*, clock: Callable[[], float] | None = None) -> None:
    """Forget remembered URLs and back-offs and close every database connection (tests;
    `clock`, monotonic seconds, times the back-off)."""
    global _clock
    _url_cache.clear()
    _backoffs.clear()
    _clock = clock or time.monotonic
    import sys

    writer = sys.modules.get("lens.log.writer")
    if writer is not None:
        writer.reset_writers()
