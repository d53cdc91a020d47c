"""Pure core: settings parsing, event intake, image field decoding, prompt, response parsing."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest
from lens.errors import ApiError
from lens.gemini import _BadOutput, parse_response
from lens.intake import decode_image_field, event_kind, normalize_event
from lens.prompt import user_prompt
from lens.schema import Analysis
from lens.settings import DEFAULT_MODELS, load_settings

from tests.function.events import http_event, jpeg, rest_event, url_event
from tests.support.gemini_server import SAMPLE_ANALYSIS

# --- settings -----------------------------------------------------------------------


def test_default_settings() -> None:
    s = load_settings({})
    assert s.models == DEFAULT_MODELS
    assert s.models["fast"] == "gemini-3.5-flash"
    assert s.thinking == {"regular": "high", "fast": "low", "super-fast": "minimal"}
    assert s.max_side == 1024 and s.max_body_bytes == 6 * 1024 * 1024
    assert s.allowed_origins == ("*",)


def test_settings_overrides() -> None:
    s = load_settings(
        {
            "SCARAB_MODELS": json.dumps({"fast": "gemini-2.0-flash"}),
            "SCARAB_THINKING": json.dumps({"fast": 512, "regular": "Medium"}),
            "SCARAB_MAX_SIDE": "1024",
            "ALLOWED_ORIGINS": "https://a.example, https://b.example/",
        }
    )
    assert s.models["fast"] == "gemini-2.0-flash"
    assert s.models["regular"] == DEFAULT_MODELS["regular"]
    assert s.thinking["fast"] == 512 and s.thinking["regular"] == "medium"
    assert s.max_side == 1024
    assert s.allowed_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SCARAB_MODELS": "{not json"}, "SCARAB_MODELS is not valid JSON"),
        ({"SCARAB_MODELS": '{"warp": "m"}'}, "unknown speed tiers (warp)"),
        ({"SCARAB_THINKING": '{"fast": "galaxy-brain"}'}, "unknown thinking level"),
        ({"SCARAB_MAX_SIDE": "huge"}, "SCARAB_MAX_SIDE must be a whole number"),
        ({"SCARAB_MAX_SIDE": "10"}, "between 64 and 16384"),
    ],
)
def test_invalid_settings_are_clear_500s(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ApiError) as info:
        load_settings(env)
    assert info.value.status == 500 and info.value.code == "invalid_configuration"
    assert fragment in info.value.message


# --- event intake -------------------------------------------------------------------


def test_event_kinds() -> None:
    assert event_kind(rest_event()) == "rest"
    assert event_kind(http_event()) == "http"
    assert event_kind(url_event()) == "url"
    assert event_kind({"Records": []}) is None
    assert event_kind("nope") is None


def test_raw_image_body_becomes_json_with_query_fields() -> None:
    photo = jpeg()
    event = http_event(
        body=photo, headers={"Content-Type": "image/jpeg"}, query={"speed": "super-fast"}
    )
    out = normalize_event(event, "http")
    assert out is not None
    body = json.loads(out["body"])
    assert base64.b64decode(body["image"]) == photo and body["speed"] == "super-fast"
    assert out["headers"]["content-type"] == "application/json"
    assert out["isBase64Encoded"] is False
    assert event["isBase64Encoded"] is True  # the caller's event is not mutated


def test_binary_body_is_judged_by_content_not_by_claimed_type() -> None:
    # curl --data-binary sends application/x-www-form-urlencoded unless told otherwise.
    event = rest_event(body=jpeg(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    out = normalize_event(event, "rest")
    assert out is not None and "image" in json.loads(out["body"])


def test_base64_encoded_json_body_is_decoded() -> None:
    event = url_event(body={"image": "abc"}, b64=True)
    out = normalize_event(event, "url")
    assert out is not None and json.loads(out["body"]) == {"image": "abc"}


@pytest.mark.parametrize(
    "event",
    [
        {"resource": "/", "httpMethod": 5, "path": "/"},
        {"resource": "/", "httpMethod": "GET"},
        {"version": "2.0", "routeKey": "$default", "rawPath": "/", "requestContext": {}},
    ],
)
def test_unusable_events_are_refused(event: dict[str, Any]) -> None:
    assert normalize_event(event, event_kind(event) or "rest") is None


# --- image field --------------------------------------------------------------------


def test_decode_image_field_variants() -> None:
    data = bytes(range(256)) * 3
    std = base64.b64encode(data).decode()
    assert decode_image_field(std, 10**6) == data
    assert decode_image_field(f"data:image/png;base64,{std}", 10**6) == data
    wrapped = "\n".join(std[i : i + 76] for i in range(0, len(std), 76))
    assert decode_image_field(wrapped, 10**6) == data
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert decode_image_field(urlsafe, 10**6) == data


def test_base64_line_breaks_do_not_count_against_the_limit() -> None:
    # MIME base64 (76 characters and CRLF a line) is ~2.6% longer than its data says: an
    # image exactly at the limit was refused 413 before it was decoded.
    data = bytes(range(256)) * 40
    wrapped = base64.encodebytes(data).decode().replace("\n", "\r\n")
    assert len(wrapped) * 3 // 4 > len(data) + 3
    assert decode_image_field(wrapped, len(data)) == data
    with pytest.raises(ApiError) as info:
        decode_image_field(wrapped, len(data) - 10)
    assert (info.value.status, info.value.code) == (413, "image_too_large")


@pytest.mark.parametrize(
    ("value", "status", "code"),
    [
        ("not base64 at all!", 400, "invalid_image_encoding"),
        ("data:image/png,rawtext", 400, "invalid_image_encoding"),
        ("   ", 400, "missing_image"),
        ("A" * 4000, 413, "image_too_large"),
    ],
)
def test_decode_image_field_errors(value: str, status: int, code: str) -> None:
    with pytest.raises(ApiError) as info:
        decode_image_field(value, 1000)
    assert (info.value.status, info.value.code) == (status, code)


# --- prompt and response parsing ------------------------------------------------------


def test_prompt_carries_the_image_type_hint() -> None:
    assert "inside a tomb" in user_prompt("tomb")
    assert "at a temple" in user_prompt("temple")
    assert "did not say" in user_prompt("unknown")


def _response(text: str | None, finish: str | None = "STOP", candidates: bool = True) -> Any:
    candidate = SimpleNamespace(finish_reason=SimpleNamespace(value=finish))
    return SimpleNamespace(
        candidates=[candidate] if candidates else [],
        text=text,
        prompt_feedback=None,
    )


def test_parse_response_validates_the_text() -> None:
    analysis = parse_response(_response(json.dumps(SAMPLE_ANALYSIS)))
    assert analysis == Analysis.model_validate(SAMPLE_ANALYSIS)
    with pytest.raises(_BadOutput):
        parse_response(_response('{"picture_location": "x"}'))
    with pytest.raises(_BadOutput):
        parse_response(_response(json.dumps(SAMPLE_ANALYSIS)[:50], finish="MAX_TOKENS"))
    with pytest.raises(_BadOutput):
        parse_response(_response(None, candidates=False))
    with pytest.raises(ApiError) as info:
        parse_response(_response(None, finish="SAFETY"))
    assert info.value.status == 422 and info.value.code == "content_blocked"


def test_analysis_schema_describes_every_field() -> None:
    schema = Analysis.model_json_schema()
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
    character = schema["$defs"]["Character"]
    assert all(p.get("description") for p in character["properties"].values())
