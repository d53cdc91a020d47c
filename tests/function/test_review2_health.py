"""Review 2: /health must not claim the Gemini key is configured when /analyze cannot
read it (the SSM parameter is named but missing, or holds only whitespace)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from tests.function.events import b64, http_event, jpeg, response_json
from tests.support.gemini_server import GeminiServer
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator
Invoke = Callable[..., dict[str, Any]]
PARAM = "/scarab/lens/dev/gemini-api-key"


@pytest.fixture
def keyless_gemini(
    gemini: GeminiServer, aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> GeminiServer:
    """The Gemini test server, the key only where GOOGLE_API_KEY_PARAM says."""
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", PARAM)
    return gemini


def _health_and_analyze(invoke: Invoke) -> tuple[dict[str, Any], dict[str, Any]]:
    analyze = invoke(http_event(body={"image": b64(jpeg())}))
    health = invoke(http_event("GET", "/health"))
    assert health["statusCode"] == 200
    return response_json(health)["gemini"], analyze


def test_health_is_not_configured_when_the_parameter_is_missing(
    keyless_gemini: GeminiServer, invoke: Invoke
) -> None:
    gemini, analyze = _health_and_analyze(invoke)
    assert analyze["statusCode"] == 503
    assert response_json(analyze)["error"]["code"] == "gemini_not_configured"
    assert keyless_gemini.requests == []
    # Today: {"configured": true, "key_source": "ssm"} while /analyze answers 503.
    assert gemini["configured"] is False, gemini


def test_health_is_not_configured_when_the_stored_key_is_blank(
    keyless_gemini: GeminiServer, invoke: Invoke
) -> None:
    boto3.client("ssm").put_parameter(Name=PARAM, Value="   ", Type="SecureString")
    gemini, analyze = _health_and_analyze(invoke)
    assert analyze["statusCode"] == 503
    assert response_json(analyze)["error"]["code"] == "gemini_not_configured"
    assert gemini["configured"] is False, gemini
