"""Through the real google-genai SDK against the Gemini-compatible test server."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from tests.function.events import (
    EVENT_BUILDERS,
    FakeContext,
    b64,
    gps_exif,
    http_event,
    jpeg,
    response_headers,
    response_json,
    rest_event,
    url_event,
)
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer, Reply

pytestmark = pytest.mark.emulator
Invoke = Callable[..., dict[str, Any]]


def _analyze(
    invoke: Invoke, body: Any = None, context: FakeContext | None = None
) -> dict[str, Any]:
    payload = body if body is not None else {"image": b64(jpeg())}
    return invoke(http_event(body=payload), context)


def _code(response: dict[str, Any]) -> tuple[int, str]:
    return response["statusCode"], response_json(response)["error"]["code"]


@pytest.mark.parametrize("kind", sorted(EVENT_BUILDERS))
def test_success_in_every_event_shape(kind: str, gemini: GeminiServer, invoke: Invoke) -> None:
    context = FakeContext()
    response = invoke(
        EVENT_BUILDERS[kind](body={"image": b64(jpeg()), "speed": "fast", "imageType": "tomb"}),
        context,
    )
    assert response["statusCode"] == 200, response["body"]
    body = response_json(response)
    assert body["analysis"] == SAMPLE_ANALYSIS
    assert body["model"] == "gemini-3.5-flash"
    assert body["usage"] == {
        "input_tokens": 1290,
        "output_tokens": 210,
        "thinking_tokens": 64,
        "total_tokens": 1564,
    }
    assert body["image"]["width"] == 64 and body["image"]["height"] == 48
    assert set(body["timings_ms"]) == {"prepare", "model", "total"}
    assert body["timings_ms"]["total"] >= body["timings_ms"]["model"]
    assert body["request_id"] == context.aws_request_id
    assert response_headers(response)["x-request-id"] == context.aws_request_id


def test_what_reaches_gemini(gemini: GeminiServer, invoke: Invoke) -> None:
    photo = jpeg((4000, 3000), exif=gps_exif(), comment=b"home address")
    response = invoke(
        rest_event(body={"image": f"data:image/jpeg;base64,{b64(photo)}", "imageType": "temple"})
    )
    assert response["statusCode"] == 200, response["body"]
    [request] = gemini.requests
    assert request.model == "gemini-3.5-flash" and request.api_version == "v1beta"
    assert request.api_key == "test-gemini-key-0123456789"
    config = request.generation_config
    assert config["temperature"] == 0
    assert config["response_mime_type"] == "application/json"
    schema = config["response_schema"]
    assert set(schema["properties"]) == set(SAMPLE_ANALYSIS)
    assert schema["properties"]["date"]["description"]
    assert config["thinking_config"] == {"thinking_level": "LOW"}
    assert any("at a temple" in text for text in request.texts)
    [(mime, sent)] = request.images
    assert mime == "image/jpeg"
    img = Image.open(io.BytesIO(sent))
    assert img.size == (1000, 750)  # 1/4 DCT scale fits max_side 1024: no resampling
    assert len(img.getexif()) == 0 and "exif" not in img.info and "comment" not in img.info
    assert b"PhoneModel" not in sent and b"home address" not in sent
    assert len(sent) < len(photo) // 4
    body = response_json(response)
    assert body["image"] == {
        "width": 1000,
        "height": 750,
        "bytes_in": len(photo),
        "bytes_sent": len(sent),
    }


@pytest.mark.parametrize(
    ("speed", "model", "thinking"),
    [
        ("regular", "gemini-3.1-pro-preview", {"thinking_level": "HIGH"}),
        ("super-fast", "gemini-3.5-flash-lite", {"thinking_level": "MINIMAL"}),
    ],
)
def test_speed_tiers_pick_model_and_thinking(
    speed: str, model: str, thinking: dict[str, str], gemini: GeminiServer, invoke: Invoke
) -> None:
    response = _analyze(invoke, {"image": b64(jpeg()), "speed": speed})
    assert response["statusCode"] == 200
    assert response_json(response)["model"] == model
    assert gemini.requests[0].model == model
    assert gemini.requests[0].generation_config["thinking_config"] == thinking


def test_env_overrides_models_and_thinking_budget(
    gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCARAB_MODELS", json.dumps({"fast": "gemini-2.0-flash"}))
    monkeypatch.setenv("SCARAB_THINKING", json.dumps({"fast": 0}))
    assert _analyze(invoke)["statusCode"] == 200
    assert gemini.requests[0].model == "gemini-2.0-flash"
    assert gemini.requests[0].generation_config["thinking_config"] == {"thinking_budget": 0}


def test_raw_image_upload_like_curl(gemini: GeminiServer, invoke: Invoke) -> None:
    photo = jpeg((120, 80), exif=gps_exif())
    response = invoke(
        url_event(body=photo, headers={"Content-Type": "image/jpeg"}, query={"speed": "super-fast"})
    )
    assert response["statusCode"] == 200, response["body"]
    assert gemini.requests[0].model == "gemini-3.5-flash-lite"
    assert b"PhoneModel" not in gemini.requests[0].images[0][1]


# --- faults -------------------------------------------------------------------------


def test_429_then_success(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.reply_error(429)
    response = _analyze(invoke)
    assert response["statusCode"] == 200
    assert len(gemini.requests) == 2


def test_transient_500_and_503_are_retried(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.reply_error(500)
    gemini.reply_error(503)
    assert _analyze(invoke)["statusCode"] == 200
    assert len(gemini.requests) == 3


def test_persistent_503_is_503_with_retry_after(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.default = Reply("error", status=503, retry_after="0")
    response = _analyze(invoke)
    assert _code(response) == (503, "upstream_unavailable")
    assert response_headers(response)["retry-after"] == "1"
    assert len(gemini.requests) == 4  # SCARAB_MAX_ATTEMPTS default


def test_persistent_429_is_503_quota(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.default = Reply("error", status=429)
    response = _analyze(invoke)
    assert _code(response) == (503, "upstream_quota_exceeded")
    assert "retry-after" not in response_headers(response)


def test_retry_after_beyond_the_deadline_is_answered_at_once(
    gemini: GeminiServer, invoke: Invoke
) -> None:
    gemini.reply_error(429, retry_after="30")
    started = time.monotonic()
    response = _analyze(invoke, context=FakeContext(remaining_ms=5000))
    assert time.monotonic() - started < 2
    assert _code(response) == (503, "upstream_quota_exceeded")
    assert response_headers(response)["retry-after"] == "30"
    assert len(gemini.requests) == 1


def test_persistent_500_is_502(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.default = Reply("error", status=500)
    assert _code(_analyze(invoke)) == (502, "upstream_error")


def test_upstream_400_is_not_retried_and_is_502(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.reply_error(400)
    assert _code(_analyze(invoke)) == (502, "upstream_rejected")
    assert len(gemini.requests) == 1


def test_slow_model_beyond_the_deadline_is_504(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.reply_delay(5.0)
    started = time.monotonic()
    response = _analyze(invoke, context=FakeContext(remaining_ms=1500))
    elapsed = time.monotonic() - started
    assert _code(response) == (504, "deadline_exceeded")
    assert elapsed < 1.5  # answered before the (fake) Lambda deadline


def test_truncated_json_is_retried_once_then_502(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.reply_truncated()
    gemini.reply_truncated()
    assert _code(_analyze(invoke)) == (502, "invalid_model_output")
    assert len(gemini.requests) == 2


def test_truncated_json_then_good_answer(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.reply_truncated()
    response = _analyze(invoke)
    assert response["statusCode"] == 200
    assert response_json(response)["usage"]["total_tokens"] == 2 * 1564  # both were billed


def test_output_failing_the_schema_is_502(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.default = Reply("json", {"picture_location": "Karnak"})
    assert _code(_analyze(invoke)) == (502, "invalid_model_output")
    assert len(gemini.requests) == 2


def test_safety_block_without_text_is_422(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.reply_blocked()
    response = _analyze(invoke)
    assert _code(response) == (422, "content_blocked")
    assert "SAFETY" in response_json(response)["error"]["message"]
    assert len(gemini.requests) == 1


def test_no_candidates_is_422_blocked(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.reply_no_candidates()
    assert _code(_analyze(invoke)) == (422, "content_blocked")


def test_bad_key_is_502_and_never_echoed(gemini: GeminiServer, invoke: Invoke) -> None:
    gemini.reply_raw(
        403, {"error": {"code": 403, "message": "API key not valid", "status": "PERMISSION_DENIED"}}
    )
    response = _analyze(invoke)
    assert _code(response) == (502, "upstream_auth_failed")
    assert "test-gemini-key" not in json.dumps(response)


def test_unreachable_gemini_is_502(
    gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.ports import free_port

    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{free_port()}")
    response = _analyze(invoke)
    assert _code(response) == (502, "upstream_unreachable")


def test_no_fault_response_leaks_internals(gemini: GeminiServer, invoke: Invoke) -> None:
    for script in (
        lambda: gemini.reply_error(500),
        lambda: gemini.reply_blocked(),
        lambda: gemini.reply_raw(200, {"candidates": "not a list"}),
    ):
        gemini.reset()
        gemini.default = Reply("error", status=500)
        script()
        response = _analyze(invoke)
        assert 400 <= response["statusCode"] < 600
        text = json.dumps(response)
        for leak in ("Traceback", 'File "', "google.genai", "APIError", "test-gemini-key"):
            assert leak not in text


def test_one_client_per_process(gemini: GeminiServer, invoke: Invoke) -> None:
    from lens import gemini as lens_gemini

    assert _analyze(invoke)["statusCode"] == 200
    first = lens_gemini._client
    assert _analyze(invoke)["statusCode"] == 200
    assert lens_gemini._client is first and first is not None


def test_bytes_sent_decode_back_to_the_image(gemini: GeminiServer, invoke: Invoke) -> None:
    photo = jpeg((100, 100))
    assert (
        _analyze(invoke, {"image": base64.urlsafe_b64encode(photo).decode()})["statusCode"] == 200
    )
    sent = gemini.requests[0].images[0][1]
    assert Image.open(io.BytesIO(sent)).size == (100, 100)


@pytest.mark.parametrize(
    "payload",
    [
        {"candidates": "not a list"},
        {"candidates": [{"content": {"parts": [{"text": 5}]}, "finishReason": "STOP"}]},
        {"candidates": [{"finishReason": "OTHER", "content": {"parts": [{"text": "{}"}]}}]},
        [],
    ],
)
def test_unreadable_upstream_answers_are_502(
    payload: Any, gemini: GeminiServer, invoke: Invoke
) -> None:
    gemini.default = Reply("raw", payload, status=200)
    assert _code(_analyze(invoke)) == (502, "invalid_model_output")
    assert len(gemini.requests) == 2  # one retry for unusable output
