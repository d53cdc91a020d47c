"""A Lambda function of lens: a name, its routers, and the handler that serves them.

The handler is thin on purpose: tell the event shape (REST v1, HTTP API v2, Function
URL), normalize it, note the invocation's request id and deadline, and let the matching
Powertools resolver (built over this function's routers only) answer. The entry points
are lens.handler (every route: the single function stages deployed before functions
were split) and lens.entry.analyze / lens.entry.models. Importing this module touches
no network and needs no key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lens import invocation
from lens import log as prediction_log
from lens.app import Routers, get_resolver
from lens.cors import EchoCORSConfig, cors_headers
from lens.errors import ApiError
from lens.images import describe_bytes
from lens.intake import body_size, event_kind, header, normalize_event
from lens.log import remote as log_remote
from lens.observability import logger, metrics
from lens.responses import internal_error, record_error
from lens.routing import api_path, declared_routes
from lens.settings import get_settings

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def _request_id(event: dict[str, Any], context: Any) -> str:
    rid = getattr(context, "aws_request_id", None)
    if isinstance(rid, str) and rid:
        return rid
    request_context = event.get("requestContext")
    if isinstance(request_context, dict) and isinstance(request_context.get("requestId"), str):
        return str(request_context["requestId"])
    return str(uuid.uuid4())


def _remaining_ms(context: Any) -> Any:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if callable(getter):
        return lambda: float(getter())
    return invocation.Invocation(request_id="").remaining_ms


def _plain_answer(error: ApiError, request_id: str, origin: str | None = None) -> dict[str, Any]:
    """An answer built without a resolver (unusable event, oversized body, bad settings)."""
    record_error(error)
    cors = cors_headers(EchoCORSConfig(get_settings().allowed_origins), origin) if origin else {}
    return {
        "statusCode": error.status,
        "headers": {
            "Content-Type": "application/json",
            "X-Request-Id": request_id,
            **cors,
            **error.headers,
        },
        "body": json.dumps(error.body(request_id)),
        "isBase64Encoded": False,
    }


class LensFunction:
    """One Lambda function: `name` (as in scarab's function catalog) and its routers."""

    def __init__(self, name: str, routers: Routers) -> None:
        self.name = name
        self.routers = routers
        self.lambda_handler: Handler = _make_handler(routers)

    def routes(self) -> list[tuple[str, str]]:
        """(path as API Gateway writes it, METHOD) for every route this function serves."""
        return [(api_path(rule), method) for rule, method in declared_routes(self.routers)]


def _make_handler(routers: Routers) -> Handler:
    @metrics.log_metrics(capture_cold_start_metric=True)
    @logger.inject_lambda_context(clear_state=True)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        safe_event = event if isinstance(event, dict) else {}
        request_id = _request_id(safe_event, context)
        if event_kind(safe_event) is None and log_remote.is_direct(safe_event):
            # A direct lambda:Invoke (scarab predictions), never an HTTP request.
            return log_remote.answer(safe_event)
        if event_kind(safe_event) is None and (
            "scarab_job" in safe_event or "Records" in safe_event
        ):
            from lens.jobs import worker  # imported for job events only

            if worker.is_job_event(safe_event):
                # The asynchronous self-invoke of POST /jobs; raising makes Lambda retry.
                return worker.run(safe_event, context, request_id)
            if worker.is_sqs_event(safe_event):
                # The jobs' dead-letter queue (an event source mapping).
                return worker.consume_dead_letters(safe_event)
        try:
            return _handle(safe_event, context, request_id, routers)
        except ApiError as exc:  # e.g. invalid settings while building the resolver
            return _plain_answer(exc, request_id)
        except Exception:
            logger.exception("unhandled error outside the routes")
            return _plain_answer(internal_error(), request_id)

    handler: Handler = lambda_handler
    return handler


def _handle(
    event: dict[str, Any], context: Any, request_id: str, routers: Routers
) -> dict[str, Any]:
    kind = event_kind(event)
    normalized = normalize_event(event, kind) if kind is not None else None
    if kind is None or normalized is None:
        return _plain_answer(
            ApiError(400, "invalid_event", "The function only answers HTTP requests."),
            request_id,
        )
    origin = header(normalized, "origin") or None
    received = body_size(event)
    current = invocation.Invocation(
        request_id=request_id,
        remaining_ms=_remaining_ms(context),
        origin=origin,
        body_bytes=received,
    )
    token = invocation.begin(current)
    try:
        limit = get_settings().max_body_bytes
        if received > limit:
            # Before validation, so an oversized body is a 413 whatever its content.
            answer = _plain_answer(
                ApiError(
                    413,
                    "body_too_large",
                    f"The request body is {describe_bytes(received)}; "
                    f"the limit is {describe_bytes(limit)}.",
                ),
                request_id,
                origin,
            )
        else:
            answer = get_resolver(kind, routers).resolve(normalized, context)
        _log_answer(normalized, answer, current, routers)
        return answer
    finally:
        invocation.end(token)


def _log_answer(
    event: dict[str, Any],
    answer: dict[str, Any],
    current: invocation.Invocation,
    routers: Routers,
) -> None:
    """Record the answer in the prediction log when its route is logged and the log is
    on (lens.log.record never raises, and imports nothing heavy while the log is off)."""
    settings = prediction_log.log_settings()
    if not settings.enabled:
        return
    try:
        from lens.log.answer import logged_rule, request_line, row_for

        method, path = request_line(event)
        rule = logged_rule(declared_routes(routers), method, path)
        if rule is None:
            return
        row = row_for(
            rule=rule,
            event=event,
            answer=answer,
            request_id=current.request_id,
            latency_ms=current.elapsed_ms(),
            notes=current.notes(),
            stage=settings.stage,
            store_inputs=settings.store_inputs,
        )
    except Exception:
        prediction_log.count_failure("row")
        logger.exception("prediction log row could not be built")
        return
    prediction_log.record(row, settings)
