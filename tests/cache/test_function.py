"""The response cache end to end through lens.handler.lambda_handler: the settings from
the environment, X-Cache, the no-cache bypass, errors never cached, the TTL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lens import cache
from lens.settings import CACHE_TTL_ENV
from sklearn.datasets import load_breast_cancer

from tests.cache.conftest import Clock
from tests.function.events import b64, jpeg, response_headers, response_json, rest_event
from tests.predict.conftest import Call
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer

pytestmark = pytest.mark.emulator
Invoke = Callable[..., dict[str, Any]]


def _analyze(
    invoke: Invoke, image: bytes, headers: dict[str, str] | None = None, **fields: Any
) -> tuple[int, Any, dict[str, str]]:
    body = {"image": b64(image), "speed": "fast", "imageType": "tomb", **fields}
    response = invoke(
        rest_event(body=body, headers={"Content-Type": "application/json", **(headers or {})})
    )
    return response["statusCode"], response_json(response), response_headers(response)


@pytest.fixture
def cached(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Clock:
    """The cache on (in-process only) with a 300 s TTL and the test's clock."""
    monkeypatch.setenv(CACHE_TTL_ENV, "300")
    return clock


def test_a_repeated_analysis_is_a_hit_with_no_gemini_call(
    cached: Clock, gemini: GeminiServer, invoke: Invoke
) -> None:
    status, first, headers = _analyze(invoke, jpeg())
    assert status == 200, first
    assert headers["x-cache"] == "miss"
    assert len(gemini.requests) == 1
    status, second, headers = _analyze(invoke, jpeg())
    assert status == 200, second
    assert headers["x-cache"] == "hit"
    assert len(gemini.requests) == 1
    assert second["analysis"] == first["analysis"] == SAMPLE_ANALYSIS
    assert second["model"] == first["model"] and second["usage"] == first["usage"]
    assert second["image"] == first["image"]
    assert second["request_id"] != first["request_id"]  # the answer is this request's
    # The same upload: this container knows what it prepares to, so nothing is decoded.
    assert second["timings_ms"]["prepare"] == 0.0 and first["timings_ms"]["prepare"] > 0


def test_speed_and_image_type_are_part_of_the_question(
    cached: Clock, gemini: GeminiServer, invoke: Invoke
) -> None:
    assert _analyze(invoke, jpeg())[2]["x-cache"] == "miss"
    assert _analyze(invoke, jpeg(), imageType="temple")[2]["x-cache"] == "miss"
    assert _analyze(invoke, jpeg(), speed="super-fast")[2]["x-cache"] == "miss"
    assert _analyze(invoke, jpeg(color=(10, 10, 200)))[2]["x-cache"] == "miss"
    assert len(gemini.requests) == 4
    assert _analyze(invoke, jpeg(), imageType="temple")[2]["x-cache"] == "hit"
    assert len(gemini.requests) == 4


def test_the_key_is_the_prepared_image_not_the_upload(
    cached: Clock, gemini: GeminiServer, invoke: Invoke
) -> None:
    # The same pixels with a comment: metadata is stripped, so Gemini would see the same bytes.
    assert _analyze(invoke, jpeg())[2]["x-cache"] == "miss"
    assert _analyze(invoke, jpeg(comment=b"taken on my phone"))[2]["x-cache"] == "hit"
    assert len(gemini.requests) == 1


def test_no_cache_bypasses_the_cache_and_refreshes_it(
    cached: Clock, gemini: GeminiServer, invoke: Invoke
) -> None:
    _analyze(invoke, jpeg())
    changed = {**SAMPLE_ANALYSIS, "interesting_detail": "A fresher answer."}
    gemini.reply_json(changed)
    status, body, headers = _analyze(invoke, jpeg(), {"Cache-Control": "No-Cache"})
    assert status == 200 and headers["x-cache"] == "bypass"
    assert len(gemini.requests) == 2
    assert body["analysis"]["interesting_detail"] == "A fresher answer."
    status, body, headers = _analyze(invoke, jpeg())
    assert headers["x-cache"] == "hit" and len(gemini.requests) == 2
    assert body["analysis"]["interesting_detail"] == "A fresher answer."


def test_no_store_neither_reads_nor_writes(
    cached: Clock, gemini: GeminiServer, invoke: Invoke
) -> None:
    status, _, headers = _analyze(invoke, jpeg(), {"Cache-Control": "max-age=0, no-store"})
    assert status == 200 and headers["x-cache"] == "bypass"
    assert _analyze(invoke, jpeg())[2]["x-cache"] == "miss"
    assert len(gemini.requests) == 2


def test_an_error_is_never_cached(
    cached: Clock, gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCARAB_MAX_ATTEMPTS", "1")
    gemini.reply_error(500)
    status, body, headers = _analyze(invoke, jpeg())
    assert status == 502 and body["error"]["code"] == "upstream_error"
    assert "x-cache" not in headers  # an error never comes from the cache
    gemini.reply_blocked()
    status, body, headers = _analyze(invoke, jpeg())
    assert status == 422 and body["error"]["code"] == "content_blocked"
    status, body, headers = _analyze(invoke, jpeg())
    assert status == 200 and headers["x-cache"] == "miss"
    assert len(gemini.requests) == 3


def test_an_answer_expires_after_the_ttl(
    cached: Clock, gemini: GeminiServer, invoke: Invoke
) -> None:
    _analyze(invoke, jpeg())
    cached.advance(299.9)
    assert _analyze(invoke, jpeg())[2]["x-cache"] == "hit"
    cached.advance(0.1)
    assert _analyze(invoke, jpeg())[2]["x-cache"] == "miss"
    assert len(gemini.requests) == 2


def test_the_ttl_comes_from_the_environment(
    clock: Clock, gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, "5")
    _analyze(invoke, jpeg())
    clock.advance(4.9)
    assert _analyze(invoke, jpeg())[2]["x-cache"] == "hit"
    clock.advance(0.1)
    assert _analyze(invoke, jpeg())[2]["x-cache"] == "miss"


def test_without_the_setting_nothing_is_cached(gemini: GeminiServer, invoke: Invoke) -> None:
    for _ in range(2):
        status, _, headers = _analyze(invoke, jpeg())
        assert status == 200 and "x-cache" not in headers
    assert len(gemini.requests) == 2


@pytest.mark.parametrize("ttl", ["0"])
def test_a_ttl_of_zero_turns_the_cache_off(
    ttl: str, gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, ttl)
    _analyze(invoke, jpeg())
    assert "x-cache" not in _analyze(invoke, jpeg())[2]
    assert len(gemini.requests) == 2


@pytest.mark.parametrize("bad", ["five", "-1", "86401"])
def test_a_bad_ttl_is_a_clear_configuration_error(
    bad: str, gemini: GeminiServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, bad)
    status, body, _ = _analyze(invoke, jpeg())
    assert status == 500
    assert body["error"]["code"] == "invalid_configuration"
    assert CACHE_TTL_ENV in body["error"]["message"]
    assert gemini.requests == []


# /predict and /forecast -------------------------------------------------------------


def _features(row: int) -> dict[str, float]:
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    return {name: float(value) for name, value in zip(names, data.data[row], strict=True)}


@pytest.fixture
def cached_models(call: Call, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Call:
    monkeypatch.setenv(CACHE_TTL_ENV, "300")
    return call


def test_a_repeated_prediction_is_a_hit_whatever_the_spelling(cached_models: Call) -> None:
    by_name = _features(0)
    status, first, headers = cached_models("POST", "/predict/tabular", {"features": by_name})
    assert status == 200 and headers["x-cache"] == "miss", first
    in_order = list(by_name.values())
    status, second, headers = cached_models("POST", "/predict/tabular", {"features": in_order})
    assert status == 200 and headers["x-cache"] == "hit", second
    assert second == first
    status, other, headers = cached_models("POST", "/predict/tabular", {"features": _features(1)})
    assert status == 200 and headers["x-cache"] == "miss"
    assert other["features_used"] != first["features_used"]


def test_a_prediction_error_is_not_cached(cached_models: Call) -> None:
    features = {**_features(0)}
    features.pop(next(iter(features)))
    for _ in range(2):
        status, body, headers = cached_models("POST", "/predict/tabular", {"features": features})
        assert status == 422 and "x-cache" not in headers, body


def test_a_stored_forecast_is_cached(cached_models: Call) -> None:
    status, first, headers = cached_models("GET", "/forecast/bikes-3h")
    assert status == 200 and headers["x-cache"] == "miss", first
    status, second, headers = cached_models("GET", "/forecast/bikes-3h")
    assert status == 200 and headers["x-cache"] == "hit"
    assert second == first


def test_routes_that_are_not_cached_say_nothing(cached_models: Call) -> None:
    for path in ("/models", "/health"):
        status, _, headers = cached_models("GET", path)
        assert status == 200 and "x-cache" not in headers, path
    assert cache.state() is None  # nothing left over outside a request
