"""An HTTP request as the API Gateway event the Lambda handler takes, and its answer back.

The server is an adapter, not a second implementation: every request is turned into the
REST API proxy event (payload format 1.0) API Gateway would send the function, the same
handler answers it, and the proxy result becomes the HTTP response. The body follows
API Gateway's rule: base64 (isBase64Encoded) when the Content-Type or the first Accept
type is one of the API's binary media types, else UTF-8 text (bytes that are not UTF-8
replaced by U+FFFD), so the function sees exactly what it sees behind API Gateway.
"""

from __future__ import annotations

import base64
import fnmatch
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from lens.routing import api_path, rule_matches

# The deployed REST API's binaryMediaTypes (scarab.deploy.models.BINARY_MEDIA_TYPES;
# tests/server/test_events.py checks the two agree).
BINARY_MEDIA_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "application/octet-stream",
)
# What requestContext.stage says: the server is not behind a stage.
STAGE = "server"
# A request gets this long before the core's deadline logic answers 504 (SageMaker
# Serverless Inference allows 60 s per invocation; Fargate has no limit of its own).
DEADLINE_S = 60.0


@dataclass
class ServerContext:
    """The attributes of Lambda's context object the handler and Powertools read."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deadline_s: float = DEADLINE_S
    function_name: str = "lens-server"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:lens-server"
    function_version: str = "$LATEST"
    _start: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline_s - (time.monotonic() - self._start)) * 1000)


@dataclass(frozen=True)
class HttpRequest:
    """What the server received (header names lower-case, in arrival order)."""

    method: str
    path: str
    raw_query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        """The last value of header `name` (lower-case), as API Gateway's single-value map."""
        value = None
        for key, val in self.headers:
            if key == name:
                value = val
        return value


def _binary(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return bool(media) and any(fnmatch.fnmatchcase(media, t) for t in BINARY_MEDIA_TYPES)


def is_binary(request: HttpRequest) -> bool:
    accept = (request.header("accept") or "").split(",", 1)[0].strip()
    return _binary(request.header("content-type")) or _binary(accept)


def resource_for(path: str, rules: Sequence[str]) -> str:
    """The API resource a path is routed to ('/predict/tabular' -> '/predict/{model_id}'),
    or the path itself when no declared rule matches (the core then answers 404)."""
    for rule in rules:
        if rule_matches(rule, path):
            return api_path(rule)
    return path


def rest_event(request: HttpRequest, request_id: str, rules: Sequence[str]) -> dict[str, Any]:
    """The REST API proxy event for `request` (scarab serve's gateway builds the same)."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for key, value in request.headers:
        headers[key] = value
        multi_headers.setdefault(key, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[key] = value
        multi_query.setdefault(key, []).append(value)
    binary = is_binary(request)
    body: str | None
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode("ascii")
    else:
        body = request.body.decode("utf-8", errors="replace")
    resource = resource_for(request.path, rules)
    return {
        "resource": resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": request.method,
            "path": request.path,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": request.header("user-agent"),
            },
        },
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_answer(result: dict[str, Any]) -> HttpAnswer:
    """The HTTP response for the handler's proxy result (headers of both maps, once each)."""
    merged: dict[str, list[str]] = {}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        merged.setdefault(str(name), []).extend(str(v) for v in values)
    for name, value in (result.get("headers") or {}).items():
        values = merged.setdefault(str(name), [])
        if str(value) not in values:
            values.append(str(value))
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    headers = [(name, value) for name, values in merged.items() for value in values]
    # API Gateway's default for a result without one (an empty answer needs none).
    if payload and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpAnswer(int(result.get("statusCode") or 500), headers, payload)
