"""Cache keys: equal for the same question, different when anything that decides the
answer differs, and never carrying the input itself."""

from __future__ import annotations

from typing import Any

import pytest
from lens.cache.keys import analyze_key, digest, prediction_key, upload_key

BASE: dict[str, Any] = {
    "speed": "fast",
    "imageType": "tomb",
    "model": "gemini-3.5-flash",
    "thinking": "low",
    "prompt": "Analyze the photo.",
    "version": "1.0.0",
}


def _analyze(image: bytes = b"prepared-jpeg-bytes", **changes: Any) -> str:
    parts = {**BASE, **changes}
    return analyze_key(
        digest(image),
        speed=parts["speed"],
        image_type=parts["imageType"],
        model=parts["model"],
        thinking=parts["thinking"],
        prompt=parts["prompt"],
        version=parts["version"],
    )


def test_the_same_analyze_question_has_one_key() -> None:
    assert _analyze() == _analyze()
    assert _analyze().startswith("analyze:")


@pytest.mark.parametrize(
    "changes",
    [
        {"image": b"other-prepared-bytes"},
        {"speed": "super-fast"},
        {"imageType": "temple"},
        {"model": "gemini-3.1-pro-preview"},
        {"thinking": "high"},
        {"prompt": "Analyze the photo, please."},
        {"version": "1.0.1"},
    ],
)
def test_each_part_of_an_analyze_question_changes_the_key(changes: dict[str, Any]) -> None:
    image = changes.pop("image", b"prepared-jpeg-bytes")
    assert _analyze(image, **changes) != _analyze()


def test_a_key_holds_digests_not_the_input() -> None:
    secret_input = "patient-4711-mean-radius"
    key = prediction_key(
        "predict", model="m", version="1", sha256="0" * 64, inputs={"features": {secret_input: 1}}
    )
    assert secret_input not in key
    assert b"prepared-jpeg-bytes".hex() not in _analyze() and "prepared" not in _analyze()


def test_prediction_keys_follow_model_version_and_input() -> None:
    def key(**changes: Any) -> str:
        parts: dict[str, Any] = {
            "route": "predict",
            "model": "tabular",
            "version": "1.0.0",
            "sha256": "a" * 64,
            "inputs": {"features": {"x": 1.5, "y": 2.0}},
            **changes,
        }
        route = parts.pop("route")
        return prediction_key(route, **parts)

    assert key() == key(inputs={"features": {"y": 2.0, "x": 1.5}})  # key order is not input
    assert key().startswith("predict:")
    for changes in (
        {"route": "forecast"},
        {"model": "digits"},
        {"version": "1.0.1"},
        {"sha256": "b" * 64},
        {"inputs": {"features": {"x": 1.5, "y": 2.5}}},
    ):
        assert key(**changes) != key(), changes


def test_an_upload_key_follows_the_bytes_and_every_preparation_setting() -> None:
    settings = {"max_side": 1024, "jpeg_quality": 85}
    assert upload_key(b"raw", settings) == upload_key(b"raw", dict(settings))
    assert upload_key(b"raw", settings) != upload_key(b"raw2", settings)
    assert upload_key(b"raw", settings) != upload_key(b"raw", {**settings, "max_side": 2048})
    assert upload_key(b"raw", settings) != _analyze(b"raw")
