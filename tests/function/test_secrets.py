"""The Gemini key from SSM SecureString or Secrets Manager, against the moto server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from lens import secrets
from lens.errors import ApiError

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
    """The Gemini test server, with the key removed from the environment."""
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    return gemini


def test_key_from_ssm_securestring_reaches_gemini(
    keyless_gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("ssm").put_parameter(Name=PARAM, Value="ssm-key-123", Type="SecureString")
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", PARAM)
    assert secrets.key_source() == secrets.KeySource("ssm", PARAM)
    response = invoke(http_event(body={"image": b64(jpeg())}))
    assert response["statusCode"] == 200, response["body"]
    assert keyless_gemini.requests[0].api_key == "ssm-key-123"


@pytest.mark.parametrize(
    ("secret_string", "expected"),
    [("sm-key-456", "sm-key-456"), (json.dumps({"GOOGLE_API_KEY": "sm-json-789"}), "sm-json-789")],
)
def test_key_from_secrets_manager_arn(
    secret_string: str,
    expected: str,
    keyless_gemini: GeminiServer,
    invoke: Invoke,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arn = boto3.client("secretsmanager").create_secret(
        Name="scarab/lens/dev/gemini", SecretString=secret_string
    )["ARN"]
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", arn)
    assert secrets.key_source() == secrets.KeySource("secretsmanager", arn)
    response = invoke(http_event(body={"image": b64(jpeg())}))
    assert response["statusCode"] == 200, response["body"]
    assert keyless_gemini.requests[0].api_key == expected


@pytest.mark.parametrize("backend", ["ssm", "secretsmanager"])
def test_the_backend_the_deploy_wrote_is_the_store_read(
    backend: str, keyless_gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `scarab deploy` writes: the name as configured (not an ARN) and the store.
    name = "scarab/lens/dev/gemini" if backend == "secretsmanager" else PARAM
    if backend == "ssm":
        boto3.client("ssm").put_parameter(Name=name, Value="key-from-ssm", Type="SecureString")
    else:
        boto3.client("secretsmanager").create_secret(Name=name, SecretString="key-from-sm")
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", name)
    monkeypatch.setenv("GOOGLE_API_KEY_BACKEND", backend)
    assert secrets.key_source() == secrets.KeySource(backend, name)  # type: ignore[arg-type]
    response = invoke(http_event(body={"image": b64(jpeg())}))
    assert response["statusCode"] == 200, response["body"]
    expected = "key-from-sm" if backend == "secretsmanager" else "key-from-ssm"
    assert keyless_gemini.requests[0].api_key == expected


def test_an_unknown_backend_is_503_naming_the_variable(
    keyless_gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", PARAM)
    monkeypatch.setenv("GOOGLE_API_KEY_BACKEND", "vault")
    assert secrets.key_source() is None
    response = invoke(http_event(body={"image": b64(jpeg())}))
    assert response["statusCode"] == 503
    error = response_json(response)["error"]
    assert error["code"] == "gemini_not_configured"
    assert "GOOGLE_API_KEY_BACKEND" in error["message"] and "secretsmanager" in error["message"]
    health = invoke(http_event("GET", "/health"))
    assert health["statusCode"] == 200
    assert response_json(health)["gemini"] == {
        "configured": False,
        "key_source": None,
        "reason": "invalid_backend",
    }
    assert keyless_gemini.requests == []


def test_key_is_cached_between_requests(
    keyless_gemini: GeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=PARAM, Value="first", Type="SecureString")
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", PARAM)
    assert secrets.get_api_key() == "first"
    ssm.put_parameter(Name=PARAM, Value="second", Type="SecureString", Overwrite=True)
    assert secrets.get_api_key() == "first"  # cached for KEY_MAX_AGE
    secrets.reset_key_cache()
    assert secrets.get_api_key() == "second"


def test_missing_parameter_is_503_without_the_name(
    keyless_gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", "/scarab/lens/dev/does-not-exist")
    response = invoke(http_event(body={"image": b64(jpeg())}))
    assert response["statusCode"] == 503
    error = response_json(response)["error"]
    assert error["code"] == "gemini_not_configured"
    assert "does-not-exist" not in error["message"]
    assert keyless_gemini.requests == []


def test_env_key_wins_over_the_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "env-key")
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", PARAM)
    assert secrets.get_api_key() == "env-key"


def test_no_source_at_all_is_503() -> None:
    assert secrets.key_source() is None
    with pytest.raises(ApiError) as info:
        secrets.get_api_key()
    assert info.value.status == 503 and info.value.code == "gemini_not_configured"


# --- /health says whether the key can be read, not whether a name is set -----------


def _health_and_analyze(invoke: Invoke) -> tuple[dict[str, Any], dict[str, Any]]:
    analyze = invoke(http_event(body={"image": b64(jpeg())}))
    health = invoke(http_event("GET", "/health"))
    assert health["statusCode"] == 200
    return response_json(health)["gemini"], analyze


def test_health_is_not_configured_when_the_parameter_is_missing(
    keyless_gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It said {"configured": true, "key_source": "ssm"} while /analyze answered 503.
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", PARAM)
    gemini, analyze = _health_and_analyze(invoke)
    assert analyze["statusCode"] == 503
    assert response_json(analyze)["error"]["code"] == "gemini_not_configured"
    assert keyless_gemini.requests == []
    assert gemini == {"configured": False, "key_source": "ssm", "reason": "unreadable"}
    assert PARAM not in json.dumps(gemini)


def test_health_is_not_configured_when_the_stored_key_is_blank(
    keyless_gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", PARAM)
    boto3.client("ssm").put_parameter(Name=PARAM, Value="   ", Type="SecureString")
    gemini, analyze = _health_and_analyze(invoke)
    assert analyze["statusCode"] == 503
    assert response_json(analyze)["error"]["code"] == "gemini_not_configured"
    assert gemini == {"configured": False, "key_source": "ssm", "reason": "empty"}


def test_health_is_configured_when_the_stored_key_reads(
    keyless_gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", PARAM)
    boto3.client("ssm").put_parameter(Name=PARAM, Value="ssm-key-123", Type="SecureString")
    health = response_json(invoke(http_event("GET", "/health")))
    assert health["gemini"] == {"configured": True, "key_source": "ssm", "reason": None}
    assert "ssm-key-123" not in json.dumps(health)


def test_health_remembers_a_failed_read_and_analyze_does_not(
    keyless_gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /health is unauthenticated: a failed read is not retried on every hit. The clock is
    # ours (lens.secrets._now), so nothing here depends on how long the test takes.
    clock = [1000.0]
    monkeypatch.setattr(secrets, "_now", lambda: clock[0])
    monkeypatch.setenv("GOOGLE_API_KEY_PARAM", PARAM)

    def health() -> dict[str, Any]:
        gemini: dict[str, Any] = response_json(invoke(http_event("GET", "/health")))["gemini"]
        return gemini

    assert health()["configured"] is False
    boto3.client("ssm").put_parameter(Name=PARAM, Value="late-key", Type="SecureString")
    clock[0] += secrets.FAILED_READ_MAX_AGE - 1
    assert health() == {"configured": False, "key_source": "ssm", "reason": "unreadable"}
    clock[0] += 2
    assert health()["configured"] is True

    # /analyze reads again at once (a key stored with `scarab secrets set` works now),
    # and its successful read clears what /health remembered.
    secrets.reset_key_cache()
    boto3.client("ssm").delete_parameter(Name=PARAM)
    assert health()["configured"] is False
    boto3.client("ssm").put_parameter(Name=PARAM, Value="late-key", Type="SecureString")
    assert invoke(http_event(body={"image": b64(jpeg())}))["statusCode"] == 200
    assert health() == {"configured": True, "key_source": "ssm", "reason": None}
    assert keyless_gemini.requests[-1].api_key == "late-key"
