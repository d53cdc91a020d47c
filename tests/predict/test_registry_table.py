"""The models function over the registry table and artifacts bucket (the moto server).

Models are trained here with scikit-learn, converted with skl2onnx, uploaded to moto's
S3 and registered in moto's DynamoDB as BRIEF12 describes; predictions come through
lens.entry.models.lambda_handler and are compared with the estimator in process.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from lens.entry.models import lambda_handler
from lens.predict import loader, sources
from lens.predict.registry import tabular_schema
from scarab.deploy.planner_registry import TABLE_KEY
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.function.events import FakeContext, response_json, rest_event
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator

TABLE = "scarab-test-models"
ACCOUNT = "123456789012"  # moto's account
BUCKET = f"scarab-test-models-{ACCOUNT}-us-east-1"
FEATURES = ["age", "income", "tenure", "visits"]
TTL_S = 30.0


class Clock:
    """A clock the registry cache reads; tests move it past the TTL instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Registry:
    """The registry table and artifacts bucket in moto, written as deploy and the CLI do."""

    clock: Clock

    def push(
        self,
        name: str,
        version: str,
        onnx_bytes: bytes,
        *,
        kind: str = "tabular-classifier",
        labels: list[str] | None = None,
        features: list[str] = FEATURES,
        sha256: str | None = None,
    ) -> str:
        digest = loader.sha256_hex(onnx_bytes)
        key = f"models/{name}/{digest}.onnx"
        boto3.client("s3").put_object(
            Bucket=BUCKET, Key=key, Body=onnx_bytes, ExpectedBucketOwner=ACCOUNT
        )
        item = {
            "name": {"S": name},
            "version": {"S": version},
            "kind": {"S": kind},
            "description": {"S": f"{name} {version}, trained in a test"},
            "input_schema": {"S": json.dumps(tabular_schema(features))},
            "labels": {"L": [{"S": label} for label in labels or []]},
            "metrics": {"S": json.dumps({"accuracy": 0.9})},
            "artifact_uri": {"S": f"s3://{BUCKET}/{key}"},
            "sha256": {"S": sha256 or digest},
            "created_at": {"S": "2026-01-02T03:04:05Z"},
            "source": {"S": "push"},
        }
        boto3.client("dynamodb").put_item(TableName=TABLE, Item=item)
        return digest

    def aliases(
        self, name: str, live: str | None, candidate: str | None = None, weight: int = 0
    ) -> None:
        item: dict[str, Any] = {
            "name": {"S": name},
            "version": {"S": sources.ALIASES_VERSION},
            "history": {"L": []},
            "revision": {"N": "1"},
        }
        if live is not None:
            item["live"] = {"S": live}
        if candidate is not None:
            item["candidate"] = {"S": candidate}
            item["candidate_weight"] = {"N": str(weight)}
        boto3.client("dynamodb").put_item(TableName=TABLE, Item=item)


@pytest.fixture
def table(aws: MotoServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """An empty registry table and bucket; the function configured to read them."""
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        **TABLE_KEY,  # the key schema deploy gives the registry table
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv(sources.TABLE_ENV, TABLE)
    monkeypatch.setenv(loader.BUCKET_ENV, BUCKET)
    monkeypatch.setenv(sources.TTL_ENV, str(TTL_S))
    monkeypatch.setenv(sources.STALE_ENV, "300")
    clock = Clock()
    sources.reset(clock=clock, rng=random.Random(20260102))
    loader.reset()
    yield Registry(clock)
    sources.reset()
    loader.reset()


Answer = tuple[int, Any]


def call(method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Answer:
    event = rest_event(
        method, path, body=body, headers={"Content-Type": "application/json"}, query=query
    )
    response = lambda_handler(event, FakeContext())
    return response["statusCode"], response_json(response)


# -- models trained here ------------------------------------------------------------


def _to_onnx(estimator: Any, zipmap: bool = False) -> bytes:
    options = {id(estimator.steps[-1][1]): {"zipmap": False}} if not zipmap else None
    if isinstance(estimator.steps[-1][1], Ridge):
        options = None
    model = convert_sklearn(
        estimator,
        initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
        options=options,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = make_classification(
        n_samples=300, n_features=len(FEATURES), n_informative=3, n_redundant=0, random_state=3
    )
    _, target = make_regression(n_samples=300, n_features=len(FEATURES), random_state=3)
    return x.astype(np.float32), y, target


@pytest.fixture(scope="module")
def classifiers(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[Any]:
    """Two versions of one binary classifier (different regularization)."""
    x, y, _ = data
    return [make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(x, y) for c in (1.0, 0.01)]


def _features(row: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(FEATURES, row, strict=True)}


def _versions(count: int, name: str = "churn", query: dict[str, str] | None = None) -> list[str]:
    row = _features(np.array([0.5, -1.0, 2.0, 0.0], dtype=np.float32))
    answers = [call("POST", f"/predict/{name}", {"features": row}, query) for _ in range(count)]
    assert all(status == 200 for status, _ in answers), answers[:3]
    return [body["model_version"] for _, body in answers]


# -- tests --------------------------------------------------------------------------


def test_pushed_classifier_answers_like_the_estimator_by_name_or_list(
    table: Registry, classifiers: list[Any], data: tuple[np.ndarray, ...]
) -> None:
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    table.aliases("churn", live="1")
    x = data[0]
    expected = classifiers[0].predict_proba(x[:20])[:, 1]
    labels = classifiers[0].predict(x[:20])
    for i in range(20):
        by_name = call("POST", "/predict/churn", {"features": _features(x[i])})
        by_list = call("POST", "/predict/churn", {"features": [float(v) for v in x[i]]})
        assert by_name == by_list
        status, body = by_name
        assert status == 200, body
        assert set(body) == {"label", "probability", "threshold", "model_version", "features_used"}
        assert body["probability"] == pytest.approx(expected[i], abs=1e-5)
        assert body["label"] == str(labels[i])
        assert body["threshold"] == 0.5 and body["model_version"] == "1"
        assert list(body["features_used"]) == FEATURES


def test_pushed_regressor_and_zipmap_classifier_answer_like_their_estimators(
    table: Registry, data: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    x, _, target = data
    regressor = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x, target)
    table.push("spend", "2024.1", _to_onnx(regressor), kind="tabular-regressor")
    table.aliases("spend", live="2024.1")
    # Three classes, converted with ZipMap left on: the output is a list of {class: p}.
    y3 = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    multi = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y3)
    table.push("tier", "1", _to_onnx(multi, zipmap=True), labels=["0", "1", "2"])
    table.aliases("tier", live="1")
    for i in range(10):
        status, body = call("POST", "/predict/spend", {"features": _features(x[i])})
        assert status == 200, body
        assert body["value"] == pytest.approx(float(regressor.predict(x[i : i + 1])[0]), rel=1e-4)
        assert body["model_version"] == "2024.1" and "probability" not in body
        status, body = call("POST", "/predict/tier", {"features": _features(x[i])})
        assert status == 200, body
        proba = multi.predict_proba(x[i : i + 1])[0]
        assert body["label"] == str(multi.predict(x[i : i + 1])[0])
        assert body["probability"] == pytest.approx(float(proba.max()), abs=1e-5)
        assert list(body["probabilities"]) == ["0", "1", "2"]


VALIDATION_CASES = [  # (features, the field the message names)
    ({"age": 1.0, "income": 2.0, "tenure": 3.0}, "features.visits"),
    ({"age": 1.0, "income": "2", "tenure": 3.0, "visits": 4.0}, "features.income"),
    ({"age": 1, "income": 2, "tenure": 3, "visits": 4, "shoe": 5}, "features.shoe"),
    ([1.0, 2.0, "x", 4.0], "features.tenure"),
    ([1.0, 2.0, 1e39, 4.0], "features.tenure"),
    ([1.0, 2.0], "features"),
    ("1,2,3,4", "features"),
]


def test_tabular_validation_names_the_feature(table: Registry, classifiers: list[Any]) -> None:
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    table.aliases("churn", live="1")
    for features, field in VALIDATION_CASES:
        status, body = call("POST", "/predict/churn", {"features": features})
        assert status == 422, (features, body)
        assert body["error"]["code"] == "invalid_field"
        assert f"'{field}'" in body["error"]["message"], (features, body)


def test_promote_is_served_after_the_ttl_without_a_redeploy(
    table: Registry, classifiers: list[Any]
) -> None:
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    table.push("churn", "2", _to_onnx(classifiers[1]), labels=["0", "1"])
    table.aliases("churn", live="1")
    assert set(_versions(5)) == {"1"}
    table.aliases("churn", live="2")  # promote
    table.clock.advance(TTL_S - 1)
    assert set(_versions(5)) == {"1"}, "within the TTL the cached view answers"
    table.clock.advance(2)
    assert set(_versions(5)) == {"2"}
    status, body = call("GET", "/models")
    assert status == 200
    (model,) = body["models"]
    assert (model["name"], model["version"], model["aliases"]) == ("churn", "2", ["live"])


def test_a_30_percent_split_over_200_requests(table: Registry, classifiers: list[Any]) -> None:
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    table.push("churn", "2", _to_onnx(classifiers[1]), labels=["0", "1"])
    table.aliases("churn", live="1", candidate="2", weight=30)
    served = _versions(200)
    # Binomial(200, 0.3): mean 60, sd 6.5; 4.5 sd either side.
    assert 31 <= served.count("2") <= 89, served.count("2")
    assert served.count("1") + served.count("2") == 200
    status, body = call("GET", "/models")
    (model,) = body["models"]
    assert model["version"] == "1" and model["candidate"] == {"version": "2", "weight": 30.0}
    # A pin overrides the split; an unknown version is 404 naming model and version.
    assert set(_versions(20, query={"version": "2"})) == {"2"}
    assert set(_versions(20, query={"version": "1"})) == {"1"}
    status, body = call("POST", "/predict/churn", {"features": [0, 0, 0, 0]}, {"version": "9"})
    assert status == 404 and body["error"]["code"] == "model_not_found"
    assert "'churn'" in body["error"]["message"] and "'9'" in body["error"]["message"]


def test_sha256_mismatch_is_503_and_nothing_is_cached(
    table: Registry, classifiers: list[Any], cache_dir: Path
) -> None:
    other = loader.sha256_hex(b"other bytes")
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"], sha256=other)
    table.aliases("churn", live="1")
    status, body = call("POST", "/predict/churn", {"features": [0, 0, 0, 0]})
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    assert "integrity check" in body["error"]["message"]
    assert BUCKET not in body["error"]["message"]
    assert not list(cache_dir.glob("*.onnx"))


def test_unknown_model_and_a_model_with_nothing_live(
    table: Registry, classifiers: list[Any]
) -> None:
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    status, body = call("POST", "/predict/nope", {"features": [0, 0, 0, 0]})
    assert status == 404 and body["error"]["code"] == "unknown_model"
    assert "churn" in body["error"]["message"]
    status, body = call("POST", "/predict/churn", {"features": [0, 0, 0, 0]})
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    assert set(_versions(2, query={"version": "1"})) == {"1"}
    assert call("GET", "/models") == (200, {"models": []})


def test_a_malformed_item_is_skipped_and_the_rest_served(
    table: Registry, classifiers: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    table.aliases("churn", live="1")
    table.push("broken", "1", b"not onnx", kind="bogus-kind")
    table.aliases("broken", live="1")
    assert set(_versions(2)) == {"1"}
    assert any(r.getMessage() == "registry item skipped" for r in caplog.records)
    status, body = call("POST", "/predict/broken", {"features": [0, 0, 0, 0]})
    assert status == 503 and body["error"]["code"] == "model_unavailable"


def test_a_failed_refresh_serves_the_last_view_for_a_bounded_time(
    table: Registry, classifiers: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    table.aliases("churn", live="1")
    assert set(_versions(2)) == {"1"}
    boto3.client("dynamodb").delete_table(TableName=TABLE)
    table.clock.advance(TTL_S + 1)
    assert set(_versions(2)) == {"1"}, "the last good view is served"
    assert any(r.getMessage() == "registry refresh failed" for r in caplog.records)
    table.clock.advance(300)
    status, body = call("POST", "/predict/churn", {"features": [0, 0, 0, 0]})
    assert status == 503 and body["error"]["code"] == "registry_unavailable"
    assert TABLE not in body["error"]["message"] and "Traceback" not in json.dumps(body)
    assert call("GET", "/models")[0] == 503


def test_no_table_at_all_is_503_registry_unavailable(
    aws: MotoServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sources.TABLE_ENV, "no-such-table")
    sources.reset()
    try:
        status, body = call("GET", "/models")
    finally:
        sources.reset()
    assert status == 503 and body["error"]["code"] == "registry_unavailable"


def test_artifacts_download_once_and_the_cache_keeps_its_budget(
    table: Registry,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, y, _ = data
    models = [make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(x, y) for c in (1, 2, 3)]
    blobs = [_to_onnx(model) for model in models]
    digests = [table.push("churn", str(v), blob, labels=["0", "1"]) for v, blob in enumerate(blobs)]
    table.aliases("churn", live="0")
    # Room for two of the three artifacts.
    budget = sorted(len(b) for b in blobs)[-1] * 2 + 10
    monkeypatch.setenv(loader.CACHE_MB_ENV, str(budget / (1024 * 1024)))
    loader.reset()
    store = loader.store()
    entries = [sources.current().models["churn"].versions[str(v)] for v in range(3)]

    # Six concurrent first requests for one artifact: one download, one session.
    barrier = threading.Barrier(6)
    results: list[loader.LoadedModel] = []

    def first() -> None:
        barrier.wait()
        results.append(store.get(entries[0]))

    threads = [threading.Thread(target=first) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and len({id(r) for r in results}) == 1
    assert store.downloads == 1

    def cached() -> set[str]:
        return {p.name for p in cache_dir.glob("*.onnx")}

    store.get(entries[1])
    assert cached() == {f"churn-{digests[0]}.onnx", f"churn-{digests[1]}.onnx"}
    store.get(entries[0])  # used again: now 1 is the least recently used
    store.get(entries[2])
    assert cached() == {f"churn-{digests[0]}.onnx", f"churn-{digests[2]}.onnx"}
    assert store.downloads == 3
    store.get(entries[0])
    assert store.downloads == 3, "still loaded and cached: no download"
    store.get(entries[1])
    assert store.downloads == 4, "evicted: downloaded again"
    assert sum(p.stat().st_size for p in cache_dir.glob("*.onnx")) <= budget


def test_an_artifact_larger_than_the_budget_is_refused_clearly(
    table: Registry, classifiers: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    table.aliases("churn", live="1")
    monkeypatch.setenv(loader.CACHE_MB_ENV, str(100 / (1024 * 1024)))  # 100 bytes
    loader.reset()
    status, body = call("POST", "/predict/churn", {"features": [0, 0, 0, 0]})
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    assert "larger than this deployment's model cache" in body["error"]["message"]


def test_a_table_entry_with_a_packaged_artifacts_sha_reads_the_package(
    table: Registry, cache_dir: Path
) -> None:
    from lens.predict.registry import ARTIFACTS_DIR, registry

    packaged = registry().get("tabular")
    assert packaged is not None
    data = (ARTIFACTS_DIR / "tabular.onnx").read_bytes()
    digest = loader.sha256_hex(data)
    boto3.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "name": {"S": "tabular"},
            "version": {"S": packaged.version},
            "kind": {"S": packaged.kind},
            "description": {"S": packaged.description},
            "input_schema": {"S": json.dumps(packaged.input_schema)},
            "labels": {"L": [{"S": label} for label in packaged.labels]},
            "metrics": {"S": json.dumps(packaged.metrics)},
            "artifact_uri": {"S": f"s3://{BUCKET}/models/tabular/{digest}.onnx"},
            "sha256": {"S": digest},
            "created_at": {"S": "2026-01-02T03:04:05Z"},
            "source": {"S": "packaged"},
            "positive_label": {"S": "malignant"},
            "threshold": {"N": "0.5"},
        },
    )
    table.aliases("tabular", live=packaged.version)
    features = dict.fromkeys(packaged.features, 1.0)
    status, body = call("POST", "/predict/tabular", {"features": features})
    assert status == 200, body  # never uploaded to the bucket: read from the package
    assert body["model_version"] == packaged.version and body["label"] in packaged.labels
    assert loader.store().downloads == 0 and not list(cache_dir.glob("*.onnx"))
