"""Fixtures for the offline-model tests: a fresh model store, and calls through the handler."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lens import app, settings
from lens.predict import loader

Call = Callable[..., tuple[int, Any, dict[str, str]]]
ORIGIN = "https://client.example"


@dataclass
class FakeContext:
    """What the handler and Powertools read from the Lambda context."""

    function_name: str = "scarab-analyze"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:scarab-analyze"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _start: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int(30_000 - (time.monotonic() - self._start) * 1000)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty model store with a private cache dir and no S3 overrides."""
    path = tmp_path / "model-cache"
    monkeypatch.setenv(loader.CACHE_DIR_ENV, str(path))
    monkeypatch.delenv(loader.ARTIFACTS_ENV, raising=False)
    monkeypatch.delenv("ALLOWED_ORIGINS", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScarabTest")
    loader.reset()
    settings.reset_settings()
    app.reset_resolvers()
    yield path
    loader.reset()
    settings.reset_settings()
    app.reset_resolvers()


def rest_event(
    method: str, path: str, body: Any = None, raw: str | None = None, b64: bool = False
) -> dict[str, Any]:
    """An API Gateway REST API (payload 1.0) proxy event."""
    text = raw if raw is not None else (None if body is None else json.dumps(body))
    if b64 and text is not None:
        text = base64.b64encode(text.encode()).decode()
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "Origin": ORIGIN}
    if text is not None:
        headers["Content-Type"] = "application/json"
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.7", "apiKey": "k"},
            "path": f"/prod{path}",
            "requestId": str(uuid.uuid4()),
            "resourcePath": path,
            "stage": "prod",
        },
        "body": text,
        "isBase64Encoded": b64,
    }


@pytest.fixture
def call(cache_dir: Path) -> Call:
    """call(method, path, body=None, raw=None, b64=False) -> (status, JSON body, headers),
    through lens.handler.lambda_handler with a REST v1 event."""
    from lens.handler import lambda_handler

    def _call(
        method: str, path: str, body: Any = None, raw: str | None = None, b64: bool = False
    ) -> tuple[int, Any, dict[str, str]]:
        response = lambda_handler(rest_event(method, path, body, raw, b64), FakeContext())
        headers = {k.lower(): v[0] for k, v in (response.get("multiValueHeaders") or {}).items()}
        headers.update({k.lower(): v for k, v in (response.get("headers") or {}).items()})
        return response["statusCode"], json.loads(response["body"]), headers

    return _call
