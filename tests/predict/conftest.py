"""Fixtures for the offline-model tests: a fresh model store and a resolver with the routes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from lens.errors import ApiError
from lens.predict import loader
from lens.predict.routes import router

Call = Callable[..., tuple[int, Any]]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty model store using a private cache dir and no S3 overrides."""
    path = tmp_path / "model-cache"
    monkeypatch.setenv(loader.CACHE_DIR_ENV, str(path))
    monkeypatch.delenv(loader.ARTIFACTS_ENV, raising=False)
    loader.reset()
    yield path
    loader.reset()


def rest_event(method: str, path: str, body: Any = None, raw: str | None = None) -> dict[str, Any]:
    """A REST API (v1) proxy event, as API Gateway sends it."""
    text = raw if raw is not None else (None if body is None else json.dumps(body))
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json", "origin": "http://localhost:8000"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "requestId": "req-test-1",
            "stage": "prod",
            "httpMethod": method,
            "path": f"/prod{path}",
            "resourcePath": "/{proxy+}",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


def _resolver() -> APIGatewayRestResolver:
    # Mirrors what lens.handler does for these routes: ApiError -> its JSON body.
    app = APIGatewayRestResolver(enable_validation=True)
    app.include_router(router)

    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response[str]:
        return Response(
            status_code=error.status,
            content_type="application/json",
            body=json.dumps(error.body("req-test-1")),
            headers=error.headers,
        )

    return app


@pytest.fixture
def call(cache_dir: Path) -> Call:
    """call(method, path, body=None, raw=None) -> (status, parsed JSON body)."""
    app = _resolver()

    def _call(method: str, path: str, body: Any = None, raw: str | None = None) -> tuple[int, Any]:
        response = app.resolve(rest_event(method, path, body, raw), {})
        return response["statusCode"], json.loads(response["body"])

    return _call
