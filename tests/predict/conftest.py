"""Fixtures for the offline-model tests: a fresh model store, and calls through the handler."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lens import app, settings
from lens.predict import loader

from tests.function import events
from tests.function.events import FakeContext

Call = Callable[..., tuple[int, Any, dict[str, str]]]
ORIGIN = "https://client.example"


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
    """A REST v1 proxy event from the browser origin; `raw` is a body sent as is."""
    headers = {"Origin": ORIGIN}
    if body is not None or raw is not None:
        headers["Content-Type"] = "application/json"
    return events.rest_event(
        method, path, body=raw if raw is not None else body, headers=headers, b64=b64
    )


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
