"""Fixtures for the function's tests: fresh caches and quick retry settings per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lens import app, cache, gemini, secrets, settings

from tests.function.events import FakeContext

# Quick backoff so fault tests take milliseconds; margins small so deadline tests are short.
FAST_ENV = {
    "SCARAB_RETRY_BASE_MS": "10",
    "SCARAB_RETRY_MAX_MS": "40",
    "SCARAB_DEADLINE_MARGIN_MS": "300",
    "POWERTOOLS_METRICS_NAMESPACE": "ScarabTest",
}
SCARAB_VARS = (
    "SCARAB_MODELS",
    "SCARAB_THINKING",
    "SCARAB_MAX_BODY_BYTES",
    "SCARAB_MAX_IMAGE_BYTES",
    "SCARAB_MAX_PIXELS",
    "SCARAB_MAX_SIDE",
    "SCARAB_JPEG_QUALITY",
    "SCARAB_IMAGE_MEMORY_PERCENT",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "SCARAB_MAX_ATTEMPTS",
    "ALLOWED_ORIGINS",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY_PARAM",
    "GOOGLE_API_KEY_BACKEND",
    settings.CACHE_TTL_ENV,
    settings.CACHE_TABLE_ENV,
)


def reset_lens() -> None:
    settings.reset_settings()
    app.reset_resolvers()
    secrets.reset_key_cache()
    gemini.reset_client()
    cache.reset_cache()


@pytest.fixture(autouse=True)
def lens_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from default settings (plus quick retries) and empty caches."""
    for name in SCARAB_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    reset_lens()
    yield
    reset_lens()


@pytest.fixture
def invoke() -> Callable[..., dict[str, Any]]:
    """Call lens.handler.lambda_handler with an event and a fake context."""
    from lens.handler import lambda_handler

    def call(event: Any, context: FakeContext | None = None) -> dict[str, Any]:
        result: dict[str, Any] = lambda_handler(event, context or FakeContext())
        return result

    return call
