"""Error answers: ApiError -> Powertools Response, and validation errors -> ApiError.

Every error body is {"error": {"code", "message"}, "request_id"}; messages are written
for people and never carry exception text, paths or secrets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.metrics import MetricUnit

from lens.errors import ApiError
from lens.invocation import current
from lens.observability import NAMESPACE, SERVICE, logger
from lens.schema import ImageType
from lens.settings import TIERS


def spoken(values: Iterable[str]) -> str:
    """'a, b or c': the allowed values of a field, as a sentence says them."""
    *rest, last = values
    return f"{', '.join(rest)} or {last}" if rest else last


_ALLOWED_VALUES = {
    "speed": spoken(TIERS),
    "imageType": spoken(get_args(ImageType)),
}


def record_error(error: ApiError) -> None:
    """Log the failure and count it by code (EMF)."""
    extra = {"status": error.status, "code": error.code}
    if error.status >= 500:
        logger.error("request failed", extra=extra)
    else:
        logger.info("request refused", extra=extra)
    with single_metric(
        name="Errors",
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        metric.add_dimension(name="code", value=error.code)


def error_response(
    error: ApiError, extra_headers: Mapping[str, str] | None = None
) -> Response[str]:
    """The Powertools Response for `error` (CORS headers are added by the resolver)."""
    invocation = current()
    record_error(error)
    headers = {"X-Request-Id": invocation.request_id, **error.headers, **(extra_headers or {})}
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error.body(invocation.request_id)),
        headers=headers,
    )


def internal_error() -> ApiError:
    return ApiError(500, "internal_error", "Something went wrong on our side; please retry.")


def from_validation_errors(errors: Iterable[Mapping[str, Any]]) -> ApiError:
    """Map Powertools/pydantic request validation errors to one client-facing ApiError."""
    items = [(tuple(e.get("loc") or ()), str(e.get("type") or "")) for e in errors]
    if any(kind == "json_invalid" for _, kind in items):
        return ApiError(400, "malformed_json", "The request body is not valid JSON.")
    for loc, kind in items:
        if loc in (("body",), ()) and kind == "missing":
            return ApiError(
                400,
                "missing_image",
                "The request has no body; send JSON with an image field, or the image bytes.",
            )
        if loc in (("body",), ()):
            return ApiError(400, "invalid_body", "The request body must be a JSON object.")
        if loc == ("body", "image") and kind == "missing":
            return ApiError(400, "missing_image", "The request body has no image field.")
    for loc, _kind in items:
        name = str(loc[-1]) if loc else "body"
        if name == "image":
            return ApiError(422, "invalid_field", "The field image must be a base64 string.")
        if name in _ALLOWED_VALUES:
            return ApiError(
                422, "invalid_field", f"The field {name} must be one of {_ALLOWED_VALUES[name]}."
            )
        return ApiError(422, "invalid_field", f"The field {name} has an invalid value.")
    return ApiError(400, "invalid_request", "The request could not be understood.")
