"""The Lambda proxy integration contract of REST APIs (payload format 1.0), both ways.

`build_event` makes the event API Gateway sends; `read_proxy_result` checks the
function's answer like API Gateway does and turns it into an HTTP response (a
malformed one is the gateway's 502).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scarab.serve.responses import HttpResponse

# REST APIs reject any other top-level field as a malformed proxy response.
ALLOWED_RESULT_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
)


@dataclass(frozen=True)
class IncomingRequest:
    """An HTTP request as the gateway received it (header names lower-case)."""

    method: str
    path: str  # below the stage: "/analyze"
    raw_query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str
    host: str
    port: int

    def header(self, name: str) -> str | None:
        value = None
        for key, val in self.headers:
            if key == name:
                value = val
        return value


def is_binary(content_type: str | None, binary_media_types: Sequence[str]) -> bool:
    """True when `content_type` matches one of the API's binaryMediaTypes."""
    if not content_type or not binary_media_types:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    # API Gateway stores "/" as "~1" in binaryMediaTypes patches; accept both spellings.
    return any(fnmatch.fnmatchcase(media, t.replace("~1", "/").lower()) for t in binary_media_types)


def first_accept(accept: str | None) -> str | None:
    """The first media type of an Accept header: the one API Gateway judges by."""
    first = (accept or "").split(",", 1)[0].strip()
    return first or None


def request_is_binary(request: IncomingRequest, binary_media_types: Sequence[str]) -> bool:
    """API Gateway's rule for a proxy request body: base64 (isBase64Encoded) when the
    Content-Type or the (first) Accept type is a binary media type; otherwise UTF-8 text,
    with bytes that are not UTF-8 replaced by U+FFFD."""
    return is_binary(request.header("content-type"), binary_media_types) or is_binary(
        first_accept(request.header("accept")), binary_media_types
    )


def _query(raw_query: str) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    from urllib.parse import parse_qsl

    if not raw_query:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        single[key] = value
        multi.setdefault(key, []).append(value)
    return (single or None), (multi or None)


def build_event(
    request: IncomingRequest,
    *,
    resource_path: str,
    resource_id: str,
    path_parameters: Mapping[str, str],
    stage: str,
    stage_variables: Mapping[str, str],
    rest_api_id: str,
    account_id: str,
    request_id: str,
    api_key: str | None,
    api_key_id: str | None,
    binary_media_types: Sequence[str],
) -> dict[str, Any]:
    """The REST API proxy event for one request."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    trace_id = f"Root=1-{int(time.time()):08x}-{request_id.replace('-', '')[:24]}"
    extra = (
        ("x-forwarded-for", request.source_ip),
        ("x-forwarded-port", str(request.port)),
        ("x-forwarded-proto", "http"),
        ("x-amzn-trace-id", trace_id),
    )
    for key, value in (*request.headers, *extra):
        if key in {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"} and key in headers:
            continue  # the gateway sets these itself
        headers[key] = value
        multi_headers.setdefault(key, []).append(value)
    query, multi_query = _query(request.raw_query)
    binary = request_is_binary(request, binary_media_types)
    body: str | None
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode("ascii")
    else:
        body = request.body.decode("utf-8", errors="replace")
    now = datetime.now(UTC)
    return {
        "resource": resource_path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": dict(stage_variables) or None,
        "requestContext": {
            "resourceId": resource_id,
            "resourcePath": resource_path,
            "httpMethod": request.method,
            "extendedRequestId": request_id.replace("-", "")[:16] + "=",
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{request.path}",
            "accountId": account_id,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": rest_api_id,
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.header("user-agent"),
                "user": None,
                "apiKey": api_key,
                "apiKeyId": api_key_id,
            },
            "domainName": request.host,
            "apiId": rest_api_id,
        },
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }


class MalformedResult(Exception):
    """The function's answer is not a valid proxy response."""


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedResult(f"header value {value!r} is not a string")


def read_proxy_result(
    result: Any, *, accept: str | None, binary_media_types: Sequence[str]
) -> HttpResponse:
    """Validate a proxy integration result and build the HTTP response, as API Gateway does."""
    if not isinstance(result, dict):
        raise MalformedResult("the result is not a JSON object")
    unknown = set(result) - ALLOWED_RESULT_KEYS
    if unknown:
        raise MalformedResult(f"unexpected fields {sorted(unknown)}")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResult("statusCode is missing or not an HTTP status")
    headers: dict[str, list[str]] = {}
    single = result.get("headers")
    multi = result.get("multiValueHeaders")
    if single is not None and not isinstance(single, dict):
        raise MalformedResult("headers is not an object")
    if multi is not None and not isinstance(multi, dict):
        raise MalformedResult("multiValueHeaders is not an object")
    for name, values in (multi or {}).items():
        if not isinstance(values, list):
            raise MalformedResult("multiValueHeaders values must be lists")
        headers.setdefault(str(name), []).extend(_header_value(v) for v in values)
    for name, value in (single or {}).items():
        merged = headers.setdefault(str(name), [])
        text = _header_value(value)
        if text not in merged:  # a pair in both maps appears once
            merged.append(text)
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedResult("body is not a string")
    is_b64 = result.get("isBase64Encoded", False)
    if not isinstance(is_b64, bool):
        raise MalformedResult("isBase64Encoded is not a boolean")
    payload = (body or "").encode("utf-8")
    # Binary only goes out as binary when the client accepts a binary media type.
    if is_b64 and body and is_binary(first_accept(accept), binary_media_types):
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedResult("body is not valid base64") from exc
    flat = [(name, value) for name, values in headers.items() for value in values]
    if not any(name.lower() == "content-type" for name, _ in flat):
        flat.append(("Content-Type", "application/json"))
    return HttpResponse(status, flat, payload)
