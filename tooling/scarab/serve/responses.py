"""Responses the gateway itself generates: its errors and MOCK integrations.

Errors follow API Gateway's gateway responses: the deployed response for the error's
type if there is one, else the deployed DEFAULT_4XX / DEFAULT_5XX, whose headers
(`gatewayresponse.header.*`) and template are applied to the built-in message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from scarab.serve import vtl
from scarab.serve.snapshot import GatewayResponse, Integration

# type -> (status, message, x-amzn-ErrorType)
ERRORS: dict[str, tuple[int, str, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (
        403,
        "Missing Authentication Token",
        "MissingAuthenticationTokenException",
    ),
    "INVALID_API_KEY": (403, "Forbidden", "ForbiddenException"),
    "THROTTLED": (429, "Too Many Requests", "TooManyRequestsException"),
    "QUOTA_EXCEEDED": (429, "Limit Exceeded", "LimitExceededException"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long", "RequestTooLongException"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out", "InternalServerErrorException"),
    "INTEGRATION_FAILURE": (502, "Internal server error", "InternalServerErrorException"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error", "InternalServerErrorException"),
}

BODY_LIMIT_MESSAGE = "HTTP content length exceeded 10485760 bytes."
DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
# API Gateway's own 5XX for a failed integration has a space after the colon.
_DEFAULT_TEMPLATES = {
    "INTEGRATION_FAILURE": '{"message": $context.error.messageString}',
    "API_CONFIGURATION_ERROR": '{"message": $context.error.messageString}',
}
_PARAM = re.compile(r"^gatewayresponse\.header\.(?P<name>.+)$")
_METHOD_HEADER = re.compile(r"^method\.response\.header\.(?P<name>.+)$")
_STATUS_IN_TEMPLATE = re.compile(r'"statusCode"\s*:\s*"?(\d{3})')


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


@dataclass(frozen=True)
class RequestView:
    """What mapping expressions may read from the request."""

    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    path_parameters: Mapping[str, str]
    stage_variables: Mapping[str, str]
    request_id: str
    stage: str


def _value(expression: str, request: RequestView | None) -> str | None:
    """A mapping value: a 'static' string, or a request/stage value API Gateway allows."""
    expression = expression.strip()
    if len(expression) >= 2 and expression[0] == expression[-1] == "'":
        return expression[1:-1]
    if request is None:
        return None
    for prefix, source in (
        ("method.request.header.", request.headers),
        ("method.request.querystring.", request.query),
        ("method.request.path.", request.path_parameters),
        ("stageVariables.", request.stage_variables),
    ):
        if expression.startswith(prefix):
            name = expression[len(prefix) :]
            if source is request.headers:
                name = name.lower()
            return source.get(name)
    return None


def gateway_error(
    error_type: str,
    responses: Mapping[str, GatewayResponse],
    request_id: str,
    request: RequestView | None = None,
    message: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """The response API Gateway sends for `error_type`, shaped by the deployed responses."""
    status, default_message, amzn_type = ERRORS[error_type]
    message = message or default_message
    specific = responses.get(error_type)
    family = responses.get("DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX")
    if specific is not None and specific.status_code:
        status = specific.status_code
    headers: dict[str, str] = {"Content-Type": "application/json"}
    for source in (family, specific):  # the specific type overrides the family default
        if source is None:
            continue
        for key, expression in source.parameters.items():
            match = _PARAM.match(key)
            value = _value(expression, request) if match else None
            if match and value is not None:
                headers[match.group("name")] = value
    template = _DEFAULT_TEMPLATES.get(error_type, DEFAULT_TEMPLATE)
    for source in (family, specific):
        if source is not None and source.templates.get("application/json"):
            template = source.templates["application/json"]
    body = _render(template, message, error_type, request_id, request)
    headers.update(extra_headers or {})
    headers["x-amzn-RequestId"] = request_id
    headers["x-amzn-ErrorType"] = amzn_type
    return HttpResponse(status, list(headers.items()), body.encode())


def _render(
    template: str, message: str, error_type: str, request_id: str, request: RequestView | None
) -> str:
    values = {
        "$context.error.messageString": json.dumps(message),
        "$context.error.message": message,
        "$context.error.responseType": error_type,
        "$context.requestId": request_id,
        "$context.stage": request.stage if request else "",
    }
    # Longest names first, so `message` does not eat into `messageString`.
    for name in sorted(values, key=len, reverse=True):
        template = template.replace(name, values[name])
    return template


def mock_response(
    integration: Integration, request: RequestView, content_type: str | None
) -> HttpResponse:
    """Answer a MOCK integration: status from its request template, the matching response."""
    templates = integration.request_templates
    template = templates.get(content_type or "") or templates.get("application/json") or ""
    match = _STATUS_IN_TEMPLATE.search(template)
    status_text = match.group(1) if match else "200"
    chosen = None
    for candidate in integration.responses:
        if candidate.selection_pattern and re.fullmatch(candidate.selection_pattern, status_text):
            chosen = candidate
            break
    if chosen is None:
        chosen = next((r for r in integration.responses if not r.selection_pattern), None)
    if chosen is None:
        # No integration response: API Gateway reports a configuration error.
        return _configuration_error(request.request_id)
    headers: dict[str, str] = {"Content-Type": "application/json"}
    for key, expression in chosen.headers.items():
        header = _METHOD_HEADER.match(key)
        value = _value(expression, request) if header else None
        if header and value is not None:
            headers[header.group("name")] = value
    status = int(chosen.status_code)
    body = ""
    template = chosen.templates.get("application/json", "")
    if template:
        try:
            rendered = vtl.render(
                template,
                path_parameters=request.path_parameters,
                query=request.query,
                headers=request.headers,
                context={"requestId": request.request_id, "stage": request.stage},
            )
        except vtl.TemplateError:
            return _configuration_error(request.request_id)
        body = rendered.body if rendered.body.strip() else ""
        headers.update(rendered.headers)
        status = rendered.status or status
    headers["x-amzn-RequestId"] = request.request_id
    return HttpResponse(status, list(headers.items()), body.encode())


def _configuration_error(request_id: str) -> HttpResponse:
    return HttpResponse(
        500,
        [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)],
        b'{"message": "Internal server error"}',
    )
