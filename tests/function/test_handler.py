"""lens.handler.lambda_handler with REST v1, HTTP API v2 and Function URL events (no Gemini)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.function.events import (
    EVENT_BUILDERS,
    b64,
    http_event,
    jpeg,
    response_headers,
    response_json,
    rest_event,
)

Invoke = Callable[..., dict[str, Any]]
KINDS = sorted(EVENT_BUILDERS)
ROOT = Path(__file__).resolve().parents[2]


def _error(response: dict[str, Any]) -> tuple[int, str]:
    body = response_json(response)
    assert set(body) == {"error", "request_id"} and body["request_id"]
    assert set(body["error"]) == {"code", "message"}
    return response["statusCode"], body["error"]["code"]


@pytest.mark.parametrize("kind", KINDS)
def test_health_lists_models_and_no_secrets(
    kind: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-very-secret-value")
    response = invoke(EVENT_BUILDERS[kind](method="GET", path="/health"))
    assert response["statusCode"] == 200
    body = response_json(response)
    assert body["status"] == "ok" and body["version"]
    assert body["models"]["fast"] == "gemini-3.5-flash"
    assert body["gemini"] == {"configured": True, "key_source": "env", "reason": None}
    assert isinstance(body["offline_models"], list)
    assert "AIza-very-secret-value" not in json.dumps(response)


@pytest.mark.parametrize("kind", KINDS)
def test_openapi_document_comes_from_the_models(kind: str, invoke: Invoke) -> None:
    response = invoke(EVENT_BUILDERS[kind](method="GET", path="/openapi.json"))
    assert response["statusCode"] == 200
    doc = response_json(response)
    assert doc["openapi"].startswith("3.")
    post = doc["paths"]["/analyze"]["post"]
    assert "requestBody" in post and {"400", "413", "415", "422", "502", "503", "504"} <= set(
        post["responses"]
    )
    schemas = doc["components"]["schemas"]
    assert set(schemas["AnalyzeRequest"]["properties"]) == {
        "image",
        "upload",
        "speed",
        "imageType",
    }
    assert schemas["Analysis"]["properties"]["date"]["description"]
    assert "/health" in doc["paths"] and "/openapi.json" not in doc["paths"]
    assert doc["components"]["securitySchemes"]["apiKey"]["name"] == "X-Api-Key"


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_method_is_405_with_allow(kind: str, invoke: Invoke) -> None:
    response = invoke(EVENT_BUILDERS[kind](method="DELETE", path="/analyze"))
    assert _error(response) == (405, "method_not_allowed")
    assert response_headers(response)["allow"] == "POST, OPTIONS"
    response = invoke(EVENT_BUILDERS[kind](method="POST", path="/health"))
    assert _error(response) == (405, "method_not_allowed")


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_path_is_404(kind: str, invoke: Invoke) -> None:
    assert _error(invoke(EVENT_BUILDERS[kind](method="GET", path="/nope"))) == (404, "not_found")


def test_http_api_stage_prefix_is_stripped(invoke: Invoke) -> None:
    event = http_event(method="GET", path="/prod/health")
    event["requestContext"]["stage"] = "prod"
    assert invoke(event)["statusCode"] == 200


# --- CORS ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_cors_echoes_an_allowed_origin(
    kind: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://lens.example, https://other.example")
    response = invoke(
        EVENT_BUILDERS[kind](
            method="GET", path="/health", headers={"Origin": "https://lens.example"}
        )
    )
    headers = response_headers(response)
    assert headers["access-control-allow-origin"] == "https://lens.example"
    assert headers["vary"] == "Origin"


@pytest.mark.parametrize("kind", KINDS)
def test_cors_ignores_a_disallowed_origin(
    kind: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://lens.example")
    for method, path in (("GET", "/health"), ("POST", "/analyze"), ("OPTIONS", "/analyze")):
        response = invoke(
            EVENT_BUILDERS[kind](
                method=method, path=path, headers={"Origin": "https://evil.example"}
            )
        )
        headers = response_headers(response)
        assert "access-control-allow-origin" not in headers, (method, path)
        assert headers["vary"] == "Origin"


@pytest.mark.parametrize("kind", KINDS)
def test_cors_preflight_on_every_route(
    kind: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "*")
    for path in ("/analyze", "/health", "/openapi.json"):
        response = invoke(
            EVENT_BUILDERS[kind](
                method="OPTIONS",
                path=path,
                headers={
                    "Origin": "https://anywhere.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,x-api-key",
                },
            )
        )
        assert response["statusCode"] == 204, path
        headers = response_headers(response)
        assert headers["access-control-allow-origin"] == "https://anywhere.example"
        allowed = headers["access-control-allow-headers"].lower().split(",")
        assert "content-type" in allowed and "x-api-key" in allowed
        assert "POST" in headers["access-control-allow-methods"]


def test_errors_carry_cors_headers_too(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://lens.example")
    response = invoke(http_event(body="{oops", headers={"Origin": "https://lens.example"}))
    assert response["statusCode"] == 400
    assert response_headers(response)["access-control-allow-origin"] == "https://lens.example"


# --- client faults ------------------------------------------------------------------


def _png_bomb() -> str:
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")
    return b64(buf.getvalue())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{not json", (400, "malformed_json")),
        ("", (400, "missing_image")),
        ({"speed": "fast"}, (400, "missing_image")),
        ([1, 2, 3], (400, "invalid_body")),
        ('"just a string"', (400, "invalid_body")),
        ({"image": "%%%not-base64%%%"}, (400, "invalid_image_encoding")),
        ({"image": b64(jpeg()), "speed": "warp"}, (422, "invalid_field")),
        ({"image": b64(jpeg()), "imageType": "pyramid"}, (422, "invalid_field")),
        ({"image": 12345}, (422, "invalid_field")),
        ({"image": b64(b"GIF? no, a text file")}, (415, "unsupported_image")),
        ({"image": b64(jpeg((400, 300))[:300])}, (415, "unreadable_image")),
    ],
)
def test_client_faults(kind: str, body: Any, expected: tuple[int, str], invoke: Invoke) -> None:
    response = invoke(EVENT_BUILDERS[kind](body=body))
    assert _error(response) == expected


def test_field_errors_name_the_allowed_values(invoke: Invoke) -> None:
    response = invoke(rest_event(body={"image": b64(jpeg()), "speed": "warp"}))
    assert "regular, fast or super-fast" in response_json(response)["error"]["message"]


def test_pixel_limit_is_413(invoke: Invoke) -> None:
    response = invoke(http_event(body={"image": _png_bomb()}))
    assert _error(response) == (413, "image_too_many_pixels")
    assert "the limit is 50.0 megapixels" in response_json(response)["error"]["message"]


def test_body_limit_is_413_and_says_the_limit(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCARAB_MAX_BODY_BYTES", "2048")
    response = invoke(http_event(body={"image": b64(jpeg((300, 300), quality=95))}))
    assert _error(response) == (413, "body_too_large")
    assert "the limit is 2 KB" in response_json(response)["error"]["message"]


def test_oversized_body_is_413_even_when_it_is_not_json(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCARAB_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://app.example")
    response = invoke(
        http_event(body="{not json" + "x" * 4000, headers={"Origin": "https://app.example"})
    )
    assert _error(response) == (413, "body_too_large")
    headers = response_headers(response)
    assert headers["access-control-allow-origin"] == "https://app.example"


def test_image_byte_limit_is_413(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCARAB_MAX_IMAGE_BYTES", "2048")
    response = invoke(
        rest_event(body=jpeg((300, 300), quality=95), headers={"Content-Type": "image/jpeg"})
    )
    assert _error(response) == (413, "image_too_large")


def test_non_http_event_is_refused(invoke: Invoke) -> None:
    response = invoke({"Records": [{"eventSource": "aws:s3"}]})
    assert _error(response) == (400, "invalid_event")


# --- server-side faults ---------------------------------------------------------------


def test_missing_key_is_503_gemini_not_configured(invoke: Invoke) -> None:
    assert "GOOGLE_API_KEY" not in os.environ
    response = invoke(http_event(body={"image": b64(jpeg())}))
    assert _error(response) == (503, "gemini_not_configured")


def test_import_needs_no_key_and_stays_light() -> None:
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    code = (
        "import sys, lens.handler;"
        "print(int('google.genai' in sys.modules), int('boto3' in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(ROOT / "lambda")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["0", "0"]


def test_invalid_settings_answer_500_with_the_setting_named(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCARAB_MODELS", "{broken")
    response = invoke(rest_event(method="GET", path="/health"))
    assert _error(response) == (500, "invalid_configuration")
    assert "SCARAB_MODELS" in response_json(response)["error"]["message"]


def test_unexpected_exception_is_500_without_details(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lens.routes

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom at /var/task/lens/secret_path.py with key AIza123")

    monkeypatch.setattr(lens.routes, "prepare_image", explode)
    response = invoke(http_event(body={"image": b64(jpeg())}))
    assert _error(response) == (500, "internal_error")
    text = json.dumps(response)
    for leak in ("boom", "secret_path", "AIza123", "Traceback", "RuntimeError"):
        assert leak not in text
