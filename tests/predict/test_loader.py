"""Artifact loading: packaged, from S3 (moto server) with the /tmp cache, sha256 checks."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import boto3
import pytest
from lens.predict import loader
from lens.predict.registry import ARTIFACTS_DIR, read_registry, registry

from tests.predict.conftest import Call
from tests.predict.drawing import b64, draw_digit
from tests.support.moto_server import MotoServer

BUCKET = "scarab-models-test"


def _upload(key: str, data: bytes) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return f"s3://{BUCKET}/{key}"


def test_registry_matches_the_packaged_artifacts() -> None:
    for entry in read_registry().models:
        data = (ARTIFACTS_DIR / entry.artifact.path).read_bytes()
        assert loader.sha256_hex(data) == entry.sha256, entry.name
        if entry.kind != "forecaster":  # forecasters: tests/predict/test_forecast*.py
            assert entry.metrics["accuracy"] >= 0.95, entry.name


def test_tabular_schema_in_registry_is_the_one_the_code_validates_with() -> None:
    from lens.predict.tabular import input_schema

    entry = registry().get("tabular")
    assert entry is not None
    assert entry.input_schema == input_schema(entry.features)
    assert len(entry.features) == 30 and "mean_radius" in entry.features


@pytest.mark.emulator
def test_s3_artifact_is_downloaded_once_checked_and_cached(
    aws: MotoServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, call: Call
) -> None:
    uri = _upload("models/digits.onnx", (ARTIFACTS_DIR / "digits.onnx").read_bytes())
    monkeypatch.setenv(loader.ARTIFACTS_ENV, json.dumps({"digits": uri}))
    loader.reset()
    status, body, _ = call("POST", "/predict/digits", {"image": b64(draw_digit(2))})
    assert status == 200, body
    assert body["label"] == 2
    entry = registry().get("digits")
    assert entry is not None
    assert loader.store().get(entry).source == uri
    cached = list(cache_dir.glob("digits-*.onnx"))
    assert [p.name for p in cached] == [f"digits-{entry.sha256}.onnx"]
    # A new container on the same /tmp (or a reset) reuses the file: S3 is not asked again.
    boto3.client("s3").delete_object(Bucket=BUCKET, Key="models/digits.onnx")
    loader.reset()
    status, body, _ = call("POST", "/predict/digits", {"image": b64(draw_digit(2))})
    assert status == 200, body


@pytest.mark.emulator
def test_s3_artifact_with_the_wrong_sha256_is_refused_and_not_cached(
    aws: MotoServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, call: Call
) -> None:
    # tabular's bytes under digits' name: a valid model, but not the registered one.
    uri = _upload("models/digits.onnx", (ARTIFACTS_DIR / "tabular.onnx").read_bytes())
    monkeypatch.setenv(loader.ARTIFACTS_ENV, json.dumps({"digits": uri}))
    loader.reset()
    status, body, _ = call("POST", "/predict/digits", {"image": b64(draw_digit(2))})
    assert status == 503
    assert body["error"]["code"] == "model_unavailable"
    assert "integrity check" in body["error"]["message"]
    assert BUCKET not in body["error"]["message"]
    assert not list(cache_dir.glob("*.onnx"))
    assert "digits" not in loader.store().loaded_names()


@pytest.mark.emulator
def test_missing_s3_object_is_503_and_a_later_fix_recovers(
    aws: MotoServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, call: Call
) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv(loader.ARTIFACTS_ENV, json.dumps({"tabular": f"s3://{BUCKET}/t.onnx"}))
    loader.reset()
    features = {name: 1.0 for name in registry().get("tabular").features}  # type: ignore[union-attr]
    status, body, _ = call("POST", "/predict/tabular", {"features": features})
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    _upload("t.onnx", (ARTIFACTS_DIR / "tabular.onnx").read_bytes())
    status, body, _ = call("POST", "/predict/tabular", {"features": features})
    assert status == 200, body


def test_malformed_override_env_is_a_clear_503(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, call: Call
) -> None:
    monkeypatch.setenv(loader.ARTIFACTS_ENV, '{"digits": "/etc/passwd"}')
    loader.reset()
    status, body, _ = call("POST", "/predict/digits", {"image": b64(draw_digit(2))})
    assert status == 503
    assert body["error"]["message"] == "Model artifacts are misconfigured on the server."
    status, _, _ = call("GET", "/models")
    assert status == 200


def test_concurrent_first_requests_load_the_model_once(cache_dir: Path) -> None:
    entry = registry().get("digits")
    assert entry is not None
    store = loader.store()
    results: list[loader.LoadedModel] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        results.append(store.get(entry))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6
    assert len({id(r) for r in results}) == 1


def test_parse_helpers_refuse_bad_input() -> None:
    assert loader.parse_overrides(None) == {}
    assert loader.parse_overrides('{"a": "s3://b/k"}') == {"a": "s3://b/k"}
    for bad in ("nope", "[]", '{"a": "https://x"}', '{"a": 1}'):
        with pytest.raises(ValueError):
            loader.parse_overrides(bad)
    assert loader.parse_s3_uri("s3://bucket/a/b.onnx") == ("bucket", "a/b.onnx")
    for bad in ("s3://bucket", "s3:///key", "http://bucket/key"):
        with pytest.raises(ValueError):
            loader.parse_s3_uri(bad)
