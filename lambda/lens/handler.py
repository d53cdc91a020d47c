"""The Lambda entry point: lens.handler.lambda_handler (task root lambda/).

Thin on purpose: tell the event shape (REST v1, HTTP API v2, Function URL), normalize
it, note the invocation's request id and deadline, and let the matching Powertools
resolver answer. Importing this module touches no network and needs no key.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lens import invocation
from lens.app import get_resolver
from lens.cors import EchoCORSConfig, cors_headers
from lens.errors import ApiError
from lens.images import describe_bytes
from lens.intake import body_size, event_kind, header, normalize_event
from lens.observability import logger, metrics
from lens.responses import internal_error, record_error
from lens.settings import get_settings


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


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    safe_event = event if isinstance(event, dict) else {}
    request_id = _request_id(safe_event, context)
    try:
        return _handle(safe_event, context, request_id)
    except ApiError as exc:  # e.g. invalid settings while building the resolver
        return _plain_answer(exc, request_id)
    except Exception:
        logger.exception("unhandled error outside the routes")
        return _plain_answer(internal_error(), request_id)


def _handle(event: dict[str, Any], context: Any, request_id: str) -> dict[str, Any]:
    kind = event_kind(event)
    normalized = normalize_event(event, kind) if kind is not None else None
    if kind is None or normalized is None:
        return _plain_answer(
            ApiError(400, "invalid_event", "The function only answers HTTP requests."),
            request_id,
        )
    origin = header(normalized, "origin") or None
    received = body_size(event)
    limit = get_settings().max_body_bytes
    if received > limit:
        # Before validation, so an oversized body is a 413 whatever its content.
        return _plain_answer(
            ApiError(
                413,
                "body_too_large",
                f"The request body is {describe_bytes(received)}; "
                f"the limit is {describe_bytes(limit)}.",
            ),
            request_id,
            origin,
        )
    token = invocation.begin(
        invocation.Invocation(
            request_id=request_id,
            remaining_ms=_remaining_ms(context),
            origin=origin,
            body_bytes=received,
        )
    )
    try:
        return get_resolver(kind).resolve(normalized, context)
    finally:
        invocation.end(token)
