"""GET /models, POST /predict/{model_id} and GET /health through lens.handler.lambda_handler."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
import onnxruntime
import pytest
from lens.errors import ApiError
from lens.handler import lambda_handler
from lens.predict import digits, loaded_models, tabular
from lens.predict.loader import LoadedModel
from lens.predict.registry import registry
from onnx import TensorProto, helper
from sklearn.datasets import load_breast_cancer

from tests.function.events import EVENT_BUILDERS, FakeContext, response_json
from tests.predict.conftest import ORIGIN, Call
from tests.predict.drawing import b64, draw_digit


def _features(row: int = 0) -> dict[str, float]:
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    return {name: float(value) for name, value in zip(names, data.data[row], strict=True)}


def _error(status: int, body: Any, expected_status: int, code: str) -> str:
    assert status == expected_status, body
    assert body["error"]["code"] == code, body
    assert body["request_id"]
    message: str = body["error"]["message"]
    assert "Traceback" not in message
    return message


def test_models_lists_name_version_kind_and_input_schema(call: Call) -> None:
    status, body, headers = call("GET", "/models")
    assert status == 200
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {"digits", "tabular", "bikes-1h", "bikes-3h"}
    assert by_name["digits"]["kind"] == "image-classifier"
    assert by_name["digits"]["input_schema"]["required"] == ["image"]
    assert by_name["tabular"]["kind"] == "tabular-classifier"
    props = by_name["tabular"]["input_schema"]["properties"]
    assert "features" in props
    for model in body["models"]:
        assert model["version"] == registry().get(model["name"]).version  # type: ignore[union-attr]
    assert headers.get("access-control-allow-origin") in ("*", ORIGIN)


def test_predict_digits_returns_label_and_probabilities(call: Call) -> None:
    status, body, headers = call("POST", "/predict/digits", {"image": b64(draw_digit(3))})
    assert status == 200, body
    assert body["label"] == 3
    assert set(body["probabilities"]) == {str(d) for d in range(10)}
    assert body["model"] == {"name": "digits", "version": "1.0.0"}
    assert headers.get("access-control-allow-origin") in ("*", ORIGIN)


def test_predict_digits_accepts_a_data_url_and_a_base64_encoded_event_body(call: Call) -> None:
    url = "data:image/png;base64," + b64(draw_digit(7))
    status, body, _ = call("POST", "/predict/digits", {"image": url}, b64=True)
    assert status == 200, body
    assert body["label"] == 7


def test_predict_tabular_returns_the_documented_fields(call: Call) -> None:
    entry = registry().get("tabular")
    assert entry is not None
    features = _features(0)  # dataset row 0 is malignant
    status, body, _ = call("POST", "/predict/tabular", {"features": features})
    assert status == 200, body
    assert set(body) == {"label", "probability", "threshold", "model_version", "features_used"}
    assert body["label"] == "malignant"
    assert body["probability"] >= body["threshold"] == entry.threshold == 0.5
    assert body["model_version"] == entry.version
    assert list(body["features_used"]) == entry.features
    assert body["features_used"] == features


def test_predict_tabular_label_follows_the_threshold(call: Call) -> None:
    data = load_breast_cancer()
    benign_row = int(list(data.target).index(1))
    status, body, _ = call("POST", "/predict/tabular", {"features": _features(benign_row)})
    assert status == 200, body
    assert body["label"] == "benign"
    assert body["probability"] < body["threshold"]


def test_unknown_model_is_404_listing_the_known_ones(call: Call) -> None:
    status, body, _ = call("POST", "/predict/resnet", {"image": "x"})
    message = _error(status, body, 404, "unknown_model")
    assert "resnet" in message and "digits" in message and "tabular" in message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda f: f.pop("mean_radius"), "features.mean_radius"),
        (lambda f: f.update(mean_radius="12.5"), "features.mean_radius"),
        (lambda f: f.update(worst_area=-1.0), "features.worst_area"),
        (lambda f: f.update(shoe_size=42.0), "features.shoe_size"),
    ],
    ids=["missing", "string", "negative", "unknown"],
)
def test_tabular_input_is_validated_naming_the_field(call: Call, change: Any, field: str) -> None:
    features = _features(0)
    change(features)
    status, body, _ = call("POST", "/predict/tabular", {"features": features})
    message = _error(status, body, 422, "invalid_field")
    assert f"'{field}'" in message


def test_tabular_rejects_non_finite_numbers(call: Call) -> None:
    raw = json.dumps({"features": _features(0)}).replace("17.99", "NaN", 1)
    status, body, _ = call("POST", "/predict/tabular", raw=raw)
    # NaN is not JSON: refused before or by validation, either way naming no traceback.
    assert status in (400, 422), body
    assert body["error"]["code"] in ("malformed_json", "invalid_field")


@pytest.mark.parametrize(
    ("path", "raw", "status", "code"),
    [
        ("/predict/digits", "{not json", 400, "malformed_json"),
        ("/predict/digits", "[1, 2]", 400, "invalid_body"),
        ("/predict/digits", "{}", 400, "missing_image"),
        ("/predict/digits", '{"image": "@@not base64@@"}', 400, "invalid_image_encoding"),
        ("/predict/digits", '{"image": "aGVsbG8gd29ybGQ="}', 415, "unsupported_image"),
        ("/predict/digits", '{"image": "data:text/plain;base64,aGk="}', 415, "unsupported_image"),
        ("/predict/digits", '{"image": 12}', 422, "invalid_field"),
        ("/predict/tabular", '{"features": []}', 422, "invalid_field"),
        ("/predict/tabular", '{"rows": {}}', 422, "invalid_field"),
    ],
)
def test_bad_requests_get_clear_errors(
    call: Call, path: str, raw: str, status: int, code: str
) -> None:
    got, body, _ = call("POST", path, raw=raw)
    _error(got, body, status, code)


def test_blank_image_is_422_no_digit_found(call: Call) -> None:
    from PIL import Image

    blank = b64(Image.new("L", (64, 64), 255))
    status, body, _ = call("POST", "/predict/digits", {"image": blank})
    _error(status, body, 422, "no_digit_found")


def test_models_load_lazily_and_health_reports_them(call: Call) -> None:
    assert loaded_models() == []
    status, body, _ = call("GET", "/health")
    assert status == 200
    health_before = json.dumps(body)
    call("GET", "/models")
    assert loaded_models() == [], "listing models loads nothing"
    call("POST", "/predict/tabular", {"features": _features(0)})
    assert loaded_models() == ["tabular"]
    call("POST", "/predict/digits", {"image": b64(draw_digit(1))})
    assert loaded_models() == ["digits", "tabular"]
    status, body, _ = call("GET", "/health")
    assert status == 200
    text = json.dumps(body)
    assert "digits" in text and "tabular" in text and "digits" not in health_before


def test_logs_and_metrics_name_the_model_and_never_the_image(
    call: Call, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    image = b64(draw_digit(5))
    call("POST", "/predict/digits", {"image": image})
    call("POST", "/predict/nope", {"image": image})
    out = capsys.readouterr().out
    assert image[:40] not in out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    latency = [x for x in lines if "PredictLatency" in x]
    assert latency and latency[0]["model"] == "digits"
    errors = [x for x in lines if "PredictErrors" in x]
    assert errors and errors[0]["code"] == "unknown_model"
    records = [r for r in caplog.records if r.getMessage() == "prediction"]
    assert records and records[0].__dict__.get("model") == "digits"
    assert records[0].__dict__.get("label") == 5
    assert all(image[:40] not in str(r.__dict__) for r in caplog.records)


@pytest.mark.parametrize("kind", sorted(EVENT_BUILDERS))
@pytest.mark.parametrize("value", ["1e39", "1e300", "3e38"])
def test_features_that_overflow_the_model_are_refused_not_answered_with_nan(
    kind: str, value: str, cache_dir: Path
) -> None:
    # Python's json reads these as finite floats, so allow_inf_nan=False let them through
    # and the answer was 200 with "probability": null. Past float32 the field is named;
    # 3e38 fits float32 but overflows inside the model (NaN), which is refused too.
    entry = registry().get("tabular")
    assert entry is not None
    features = ", ".join(f'"{name}": {value}' for name in entry.features)
    body = '{"features": {' + features + "}}"
    build = cast(Callable[..., dict[str, Any]], EVENT_BUILDERS[kind])
    response: dict[str, Any] = lambda_handler(
        build(path="/predict/tabular", body=body), FakeContext()
    )
    answer = response_json(response)
    if response["statusCode"] == 200:
        probability = answer["probability"]
        assert isinstance(probability, float) and math.isfinite(probability), json.dumps(answer)
    else:
        assert response["statusCode"] == 422, answer
        assert answer["error"]["code"] == "invalid_field"
        if float(value) > tabular.FLOAT32_MAX:
            assert f"'features.{entry.features[0]}'" in answer["error"]["message"]


def _nan_model(name: str, inputs: int) -> LoadedModel:
    """A real ONNX session for registry entry `name` whose probabilities are all NaN."""
    entry = registry().get(name)
    assert entry is not None
    classes = len(entry.labels)
    nan = helper.make_tensor("nan", TensorProto.FLOAT, [1, classes], [math.nan] * classes)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x"], ["s"], keepdims=1),
            helper.make_node("Mul", ["s", "nan"], ["probabilities"]),
        ],
        "nan",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, inputs])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, classes])],
        [nan],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = onnxruntime.InferenceSession(
        onnx.shape_inference.infer_shapes(model).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    return LoadedModel(entry, session, "x", "probabilities", "test", 0.0)


def test_a_model_that_answers_nan_never_gives_a_null_probability() -> None:
    features = _features()
    model = _nan_model("tabular", len(features))
    request = tabular.request_model(tuple(model.entry.features)).model_validate(
        {"features": features}
    )
    assert np.isnan(model.probabilities(np.ones((1, len(features)), np.float32))).all()
    with pytest.raises(ApiError) as tabular_error:
        tabular.predict(model, request)
    assert (tabular_error.value.status, tabular_error.value.code) == (422, "invalid_field")
    # Digits' features are counts 0..16 whatever the image: NaN there is the model's fault.
    with pytest.raises(ApiError) as digits_error:
        digits.predict(_nan_model("digits", 64), digits.DigitsRequest(image=b64(draw_digit(3))))
    assert (digits_error.value.status, digits_error.value.code) == (500, "model_misconfigured")
