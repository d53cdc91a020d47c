"""The server over the registry table and artifacts bucket, as the models function reads
them: a model trained here, uploaded to moto's S3 and registered in moto's DynamoDB the
way tests/predict/test_registry_table.py writes them, served by a real server process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from lens.predict import loader, sources
from lens.predict.registry import tabular_schema
from scarab.deploy.planner_registry import TABLE_KEY

from tests.server.support import ServerProcess, aws_env, request, start_server
from tests.support.moto_server import MotoServer

ACCOUNT = "123456789012"  # moto's
FEATURES = ["age", "income", "tenure", "visits"]


def _client(service: str, moto: MotoServer) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=moto.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _trained() -> tuple[Any, bytes]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(
        n_samples=200, n_features=len(FEATURES), n_informative=3, n_redundant=0, random_state=5
    )
    estimator = LogisticRegression().fit(x.astype(np.float32), y)
    onnx = convert_sklearn(
        estimator,
        initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
        options={id(estimator): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return estimator, bytes(onnx.SerializeToString())


@pytest.fixture(scope="module")
def estimator_and_server(
    moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, ServerProcess]]:
    suffix = uuid.uuid4().hex[:8]
    table, bucket = f"srv{suffix}-models", f"srv{suffix}-models-{ACCOUNT}-us-east-1"
    _client("dynamodb", moto_server).create_table(
        TableName=table, **TABLE_KEY, BillingMode="PAY_PER_REQUEST"
    )
    _client("s3", moto_server).create_bucket(Bucket=bucket)
    estimator, onnx = _trained()
    digest = loader.sha256_hex(onnx)
    key = f"models/churn/{digest}.onnx"
    _client("s3", moto_server).put_object(Bucket=bucket, Key=key, Body=onnx)
    ddb = _client("dynamodb", moto_server)
    ddb.put_item(
        TableName=table,
        Item={
            "name": {"S": "churn"},
            "version": {"S": "1"},
            "kind": {"S": "tabular-classifier"},
            "description": {"S": "churn 1, trained in a test"},
            "input_schema": {"S": json.dumps(tabular_schema(FEATURES))},
            "labels": {"L": [{"S": "stays"}, {"S": "leaves"}]},
            "metrics": {"S": "{}"},
            "artifact_uri": {"S": f"s3://{bucket}/{key}"},
            "sha256": {"S": digest},
            "created_at": {"S": "2026-12-02T17:00:00Z"},
            "source": {"S": "push"},
        },
    )
    ddb.put_item(
        TableName=table,
        Item={
            "name": {"S": "churn"},
            "version": {"S": sources.ALIASES_VERSION},
            "live": {"S": "1"},
            "history": {"L": []},
            "revision": {"N": "1"},
        },
    )
    server = start_server(
        {
            **aws_env(moto_server),
            "MODEL_REGISTRY_TABLE": table,
            "ARTIFACTS_BUCKET": bucket,
            "EXECUTION_MODE": "standalone",
            "SCARAB_MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("model-cache")),
        }
    )
    try:
        yield estimator, server
    finally:
        server.stop()


def test_the_server_serves_the_registry_tables_model_from_s3(
    estimator_and_server: tuple[Any, ServerProcess],
) -> None:
    estimator, server = estimator_and_server
    status, _, body = request(server.url, "GET", "/models")
    assert status == 200
    [model] = json.loads(body)["models"]
    assert (model["name"], model["version"], model["aliases"]) == ("churn", "1", ["live"])
    row = [0.5, -1.0, 2.0, 0.25]
    # The endpoint's only model: /invocations needs no name.
    payload = json.dumps({"features": dict(zip(FEATURES, row, strict=True))}).encode()
    status, _, body = request(server.url, "POST", "/invocations", body=payload)
    assert status == 200, body
    answer = json.loads(body)
    expected = estimator.predict_proba(np.array([row], dtype=np.float32))[0][1]
    assert answer["model_version"] == "1"
    assert answer["probability"] == pytest.approx(expected, abs=1e-3)
    # Loaded once, from the bucket (downloaded at startup), and kept.
    request(server.url, "POST", "/predict/churn", body=payload)
    log = server.output()
    assert log.count('"message":"artifact downloaded"') == 1
