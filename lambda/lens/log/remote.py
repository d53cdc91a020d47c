"""The prediction log read through the function: `scarab predictions` (without --local)
calls `lambda:Invoke` with a direct event, so a database only the function can reach
(inside a VPC) is readable from a laptop:

    {"scarab": "predictions", "since": 3600, "model": "digits",
     "route": "/predict/{model_id}", "limit": 50}

`since` is in seconds (null: any age; left out: the last hour); `model` and `route` may
be left out, and `limit` (50 by default, at most 1000). The
answer is {"columns": [...], "rows": [...], "truncated": false} (rows newest first, as
lens.log.query reads them for --local too), or {"error": {"code", "message"}}.

Only a direct invocation reaches this: API Gateway and Function URLs always deliver an
HTTP event (lens.intake.event_kind recognises it first, whatever its body says), and
API Gateway's permission on the function is for API Gateway alone; so only a principal
with lambda:InvokeFunction on the function can read its log. The stage read is the
function's own (SCARAB_STAGE), never one the caller names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from lens import log as prediction_log
from lens.observability import logger

DIRECT_KEY = "scarab"
PREDICTIONS = "predictions"
# The logged routes as the log records them (API form of lens.log.LOGGED_RULES).
ROUTES = tuple(rule.replace("<", "{").replace(">", "}") for rule in prediction_log.LOGGED_RULES)
_FIELDS = {DIRECT_KEY, "since", "model", "route", "limit"}
# Room under Lambda's 6 MB answer for the envelope: rows past it are left off.
MAX_ANSWER_BYTES = 5_500_000
_MAX_MODEL = 128  # the model column's length


def is_direct(event: Any) -> bool:
    """A direct (non-HTTP) invocation asking scarab for something."""
    return isinstance(event, dict) and DIRECT_KEY in event


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _Bad(ValueError):
    pass


def _filters(event: Mapping[str, Any], stage: str) -> Any:
    from lens.log.query import Filters

    unknown = sorted(set(event) - _FIELDS)
    if unknown:
        raise _Bad(
            f"unknown fields {', '.join(unknown)}; the fields are {', '.join(sorted(_FIELDS))}"
        )
    since = event.get("since")
    if since is not None and (
        isinstance(since, bool)
        or not isinstance(since, int | float)
        or not math.isfinite(since)
        or since <= 0
    ):
        raise _Bad("since is a positive number of seconds, or null for any age")
    limit = event.get("limit", prediction_log.READ_DEFAULT_LIMIT)
    top = prediction_log.READ_MAX_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= top:
        raise _Bad(f"limit is a whole number from 1 to {top}")
    model = event.get("model")
    if model is not None and (not isinstance(model, str) or not 0 < len(model) <= _MAX_MODEL):
        raise _Bad(f"model is a model's name (1 to {_MAX_MODEL} characters)")
    route = event.get("route")
    if route is not None and route not in ROUTES:
        raise _Bad(f"route is one of {', '.join(ROUTES)}")
    if "since" not in event:  # the last hour, as `scarab predictions` reads by default
        return Filters(stage=stage, model=model, route=route, limit=limit)
    return Filters(
        stage=stage, since_s=None if since is None else float(since), model=model,
        route=route, limit=limit,
    )  # fmt: skip


def answer(event: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to a direct invocation; never raises."""
    action = event.get(DIRECT_KEY)
    if action != PREDICTIONS:
        return _error(
            "unknown_request", f"this function answers only {{{DIRECT_KEY!r}: {PREDICTIONS!r}}}"
        )
    settings = prediction_log.log_settings()
    if not settings.enabled or settings.stage is None:
        return _error(
            "log_off", "the prediction log is off on this function ([log] enabled, and its"
            " database URL stored with 'scarab secrets set prediction-db-url --stdin')",
        )  # fmt: skip
    try:
        filters = _filters(event, settings.stage)
    except _Bad as exc:
        return _error("bad_request", str(exc))
    url = prediction_log.database_url(settings)
    if url is None:
        return _error("log_off", "the function cannot read its prediction log's database URL")
    try:
        return _read(url, filters)
    except Exception as exc:
        from lens.log.database import redacted

        detail = prediction_log.failure_detail(exc, url)
        logger.error(
            "prediction log read failed",
            extra={"error": type(exc).__name__, "detail": detail, "database": redacted(url)},
        )
        return _error(
            "read_failed", f"the prediction log could not be read ({type(exc).__name__}: {detail})"
        )


def _read(url: str, filters: Any) -> dict[str, Any]:
    from lens.log.query import columns, jsonable, read_rows
    from lens.log.writer import writer_for

    # The process's engine for this URL (the writer's): one pool, short timeouts.
    with writer_for(url).engine.connect() as connection:
        rows = [jsonable(row) for row in read_rows(connection, filters)]
    # Newest first: past Lambda's answer limit the oldest rows are left off, and said so.
    size, kept = 200, []
    for row in rows:
        size += len(json.dumps(row, default=str)) + 2
        if size > MAX_ANSWER_BYTES:
            break
        kept.append(row)
    return {"columns": columns(), "rows": kept, "truncated": len(kept) < len(rows)}
