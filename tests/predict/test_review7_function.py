"""Review 7 (issue 12): the models function breaks on inputs it should answer or refuse.

Each test is a finding: it fails on today's code and says what breaks and why it matters.
The registry is moto's table and bucket, written as the CLI and deploy write them
(tests.predict.test_registry_table's fixture); requests go through the handler.
"""

from __future__ import annotations

from typing import Any

import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.predict.conftest import Call
from tests.predict.test_forecast_routes import _stored_body
from tests.predict.test_registry_table import Registry, call, table

pytestmark = pytest.mark.emulator

# The registry table and bucket in moto, the function configured to read them.
registry_table = table


def _classifier_onnx(width: int) -> bytes:
    x, y = make_classification(
        n_samples=200, n_features=width, n_informative=3, n_redundant=0, random_state=5
    )
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    onnx_model = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, width]))],
        options={id(model.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return bytes(onnx_model.SerializeToString())


@pytest.mark.parametrize("odd", ["_id", "model_config"])
def test_a_feature_whose_name_pydantic_reserves_is_servable(
    registry_table: Registry, odd: str
) -> None:
    """BREAKS: a tabular model with a feature named `_id` (or `model_config`) can never be
    served. lens.predict.tabular._bounded_model builds the request model with pydantic's
    create_model(**{feature: ...}); pydantic silently drops names with a leading
    underscore (private attributes) and `model_config` (configuration) from the fields.
    So the body that names every feature is refused ("'features._id' is not a known
    field") and the list form too; nothing can reach the model. Columns like `_id` or
    `_score` are common in DataFrames, `scarab models push` accepts them (the schema is
    inferred from feature_names_in_), and the push reports success.
    """
    features = [odd, "income", "tenure", "visits"]
    registry_table.push("oddly", "1", _classifier_onnx(4), labels=["0", "1"], features=features)
    registry_table.aliases("oddly", live="1")
    by_name = call("POST", "/predict/oddly", {"features": dict.fromkeys(features, 0.5)})
    by_list = call("POST", "/predict/oddly", {"features": [0.5, 0.5, 0.5, 0.5]})
    for status, body in (by_name, by_list):
        assert status == 200, body
        assert list(body["features_used"]) == features


def test_a_last_at_at_the_end_of_the_calendar_is_400_not_500(call: Call) -> None:
    """BREAKS: POST /predict/bikes-1h with last_at "9999-12-31T23:00:00" (a valid ISO 8601
    hour, so ForecastRequest accepts it) answers 500 internal_error: forecast.predict
    computes last_at + 1h, which overflows datetime (OverflowError, uncaught). A client's
    bad input must be a 400 naming the field, never a 500 (house rule); a 500 also counts
    against the function's error alarms. The packaged registry (no AWS) is enough.
    """
    body = _stored_body("bikes-1h")
    body["last_at"] = "9999-12-31T23:00:00"
    status, answer, _ = call("POST", "/predict/bikes-1h", body)
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_history"
    assert "last_at" in answer["error"]["message"]


def _aliases_with(registry_table: Registry, **attrs: dict[str, Any]) -> None:
    import boto3
    from lens.predict import sources

    item: dict[str, Any] = {
        "name": {"S": "churn"},
        "version": {"S": sources.ALIASES_VERSION},
        "live": {"S": "1"},
        "history": {"L": []},
        "revision": {"N": "1"},
        **attrs,
    }
    boto3.client("dynamodb").put_item(TableName="scarab-test-models", Item=item)


def test_an_aliases_item_with_a_malformed_weight_keeps_serving_live(
    registry_table: Registry,
) -> None:
    """BREAKS: one malformed attribute of an aliases item (candidate_weight written as the
    string "30%" by a hand edit or another tool) drops the whole aliases item
    (aliases_from_item raises ValueError on float("30%"), view_from_items skips the item),
    so the model loses its live alias and every unpinned request gets 503
    model_unavailable, though live is intact. The candidate is what is malformed: live
    should keep answering (the split ignored, and logged).
    """
    registry_table.push("churn", "1", _classifier_onnx(4), labels=["0", "1"])
    registry_table.push("churn", "2", _classifier_onnx(4), labels=["0", "1"])
    _aliases_with(registry_table, candidate={"S": "2"}, candidate_weight={"S": "30%"})
    status, body = call("POST", "/predict/churn", {"features": [0.1, 0.2, 0.3, 0.4]})
    assert status == 200, body
    assert body["model_version"] == "1"
