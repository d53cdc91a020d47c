"""Review 7 (issue 12): `scarab models` accepts what the function cannot serve, or
misreports what it did.

Each test is a finding: it fails on today's code and says what breaks and why it
matters. The real CLI runs against the moto server (tests.deploy.test_models_cli's
fixtures); the function reads what the CLI wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import joblib
import numpy as np
import onnx
import pytest
from lens.predict import forecast
from lens.predict.registry import ARTIFACTS_DIR, registry
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression

from tests.deploy.test_models_cli import (
    BUCKET,
    TABLE,
    Stage,
    cache_dir,
    data,
    fresh_view,
    function,
    stage,
    undeployed,
)
from tests.predict.test_registry_table import call

pytestmark = pytest.mark.emulator

# Fixtures reused from test_models_cli (the registry in moto, the function reading it).
__all__ = ["cache_dir", "data", "function", "stage", "undeployed"]


def _push_two_and_split(stage: Stage, tmp_path: Path, xy: tuple[np.ndarray, ...]) -> None:
    x, y, _ = xy
    for version, c in (("1", 1.0), ("2", 0.01)):
        path = tmp_path / f"m{version}.joblib"
        joblib.dump(LogisticRegression(C=c).fit(x, y), path)
        stage.ok("models", "push", str(path), "--name", "churn", "--version", version)
    stage.ok("models", "promote", "churn", "1")
    stage.ok("models", "split", "churn", "2", "--weight", "30")


def test_list_survives_a_malformed_aliases_item(
    stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    """BREAKS: `scarab models list` dies with an uncaught ValueError (a traceback, exit 1)
    when one aliases item has a candidate_weight that is not a number (a hand edit in the
    console, another tool): list_versions calls aliases_from_item on every aliases item
    and nothing catches its float() error. The one command that shows what is in the
    registry must still show it (and say which item is malformed), never a traceback.
    """
    _push_two_and_split(stage, tmp_path, data)
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"name": {"S": "churn"}, "version": {"S": "~aliases"}},
        UpdateExpression="SET candidate_weight = :w",
        ExpressionAttributeValues={":w": {"S": "thirty"}},
    )
    result = stage.run("models", "list", "--json")
    assert not isinstance(result.exception, ValueError), result.exception
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["models"]
    assert [(r["name"], r["version"]) for r in rows] == [("churn", "1"), ("churn", "2")]


def _forecaster_schema(tmp_path: Path) -> Path:
    path = tmp_path / "forecast-schema.json"
    path.write_text(json.dumps(forecast.input_schema()))
    return path


def _packaged_onnx(name: str) -> Path:
    entry = registry().get(name)
    assert entry is not None
    return ARTIFACTS_DIR / entry.artifact.path


def test_a_pushed_forecaster_is_servable(stage: Stage, function: None, tmp_path: Path) -> None:
    """BREAKS: a forecaster pushed with `scarab models push bikes.onnx --kind forecaster
    --schema ... --promote` can never answer: the version item the CLI writes has no
    `features` attribute (version_item never records it; only deploy's seeds copy it from
    registry.json), and forecast.run refuses any entry whose features are not
    FEATURE_NAMES with 503 model_unavailable. Here the pushed bytes are the packaged
    bikes-1h model itself, which the seeded registry serves fine: retraining a forecaster
    and pushing it (the point of issue 12) takes the live forecaster down.
    """
    stage.ok(
        "models", "push", str(_packaged_onnx("bikes-1h")), "--name", "bikes-1h",
        "--version", "2", "--kind", "forecaster", "--schema",
        str(_forecaster_schema(tmp_path)), "--promote",
    )  # fmt: skip
    fresh_view()
    entry = registry().get("bikes-1h")
    assert entry is not None and entry.data is not None
    body = forecast.parse_observations((ARTIFACTS_DIR / entry.data.path).read_text())
    status, answer = call("POST", "/predict/bikes-1h", body.model_dump())
    assert status == 200, answer
    assert answer["model_version"] == "2"


def test_push_data_refuses_observations_the_function_cannot_use(
    stage: Stage, function: None, tmp_path: Path
) -> None:
    """BREAKS: `scarab models push-data` accepts any UTF-8 text with a comma in its first
    line and points the LIVE forecaster's data_uri at it: _check_csv never parses the
    file as the function does (forecast.parse_observations: the columns at, count,
    weather, temp, atemp, humidity, windspeed, 24 consecutive hours). Uploading a CSV
    with a missing column or too few hours reports success, and from then on GET
    /forecast/<name> is 503 for every caller, until someone notices. It must be refused
    (exit 2) before anything changes, naming the problem as the function would.
    """
    stage.ok(
        "models", "push", str(_packaged_onnx("bikes-1h")), "--name", "bikes-1h",
        "--version", "1.0.0", "--kind", "forecaster", "--schema",
        str(_forecaster_schema(tmp_path)), "--promote",
    )  # fmt: skip
    before = stage.item("bikes-1h", "1.0.0")
    csv = tmp_path / "recent.csv"
    csv.write_text("at,count,temp\n2012-12-31T22:00:00,120,0.3\n2012-12-31T23:00:00,90,0.28\n")
    result = stage.run("models", "push-data", "bikes-1h", str(csv))
    assert stage.item("bikes-1h", "1.0.0") == before, "the live forecaster now reads it"
    assert result.exit_code == 2, result.output


def _dynamic_width_regressor(weights: int) -> bytes:
    """An ONNX regressor y = x @ w whose input declares its width symbolically, [N, F],
    while w has `weights` rows (what a hand-exported model often looks like)."""
    w = numpy_helper.from_array(np.ones((weights, 1), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["variable"])],
        "regressor",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", "F"])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, ["N", 1])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def test_an_onnx_regressor_that_does_not_run_on_the_schema_is_refused(
    stage: Stage, function: None, tmp_path: Path
) -> None:
    """BREAKS: an ONNX regressor is never run at push time (_from_onnx test-runs only
    classifiers). One whose input width is symbolic ([N, F]) but whose graph needs 4
    features, pushed with a --schema of 3 features, is accepted and promoted; then every
    POST /predict answers 500 internal_error (onnxruntime's InvalidArgument escapes
    tabular.predict). The push must refuse it, as it refuses a classifier that does not
    run on its features.
    """
    path = tmp_path / "spend.onnx"
    path.write_bytes(_dynamic_width_regressor(4))
    schema = tmp_path / "schema.json"
    from lens.predict.registry import tabular_schema

    schema.write_text(json.dumps(tabular_schema(["a", "b", "c"])))
    result = stage.run(
        "models", "push", str(path), "--name", "spend", "--version", "1",
        "--kind", "tabular-regressor", "--schema", str(schema), "--promote",
    )  # fmt: skip
    if result.exit_code == 0:  # accepted: show what callers get
        fresh_view()
        status, answer = call("POST", "/predict/spend", {"features": [1.0, 2.0, 3.0]})
        assert status < 500, answer
    assert result.exit_code == 2, result.output
    assert not boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents")
