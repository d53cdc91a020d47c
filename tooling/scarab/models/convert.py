"""A model file the user names -> checked ONNX bytes and what the registry records.

FILE is an ONNX model, or a scikit-learn estimator or pipeline saved with joblib or
pickle. An estimator is converted with skl2onnx (one float input [None, n_features];
classifiers with ZipMap off, so the function reads a plain (n, classes) probability
tensor) and the conversion is checked: the ONNX model and the estimator predict a
seeded random sample shaped like the training data, and the largest difference must
stay within MAX_DIFFERENCE. Only the ONNX bytes leave this machine.

Unpickling runs code from the file: only the file the user names is loaded, never one
fetched from S3. scikit-learn, skl2onnx, onnx and onnxruntime are imported here only, so
the rest of the CLI works without them.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scarab.models import Refused

# What the function's onnxruntime runs; the same opsets as training/train_models.py.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# The conversion check: this many rows, this seed; probabilities may differ by at most
# MAX_DIFFERENCE, regression values by MAX_DIFFERENCE relative to max(1, |value|)
# (the ONNX model computes in float32, the estimator in float64).
SAMPLE_ROWS = 200
SAMPLE_SEED = 20260102
MAX_DIFFERENCE = 1e-4
INPUT_NAME = "input"
# A fixed graph name: the same estimator always converts to the same bytes (so the
# same sha256, and a re-push of the same file is a no-op).
GRAPH_NAME = "scarab-pushed-model"
TABULAR_CLASSIFIER, TABULAR_REGRESSOR = "tabular-classifier", "tabular-regressor"


@dataclass(frozen=True)
class Prepared:
    """A model ready to push: its ONNX bytes and the registry's facts about it."""

    onnx: bytes
    kind: str
    input_schema: dict[str, Any]
    labels: list[str]
    origin: str  # "ONNX file", or "scikit-learn Pipeline(StandardScaler, LogisticRegression)"
    # The conversion check (estimators only): the largest difference seen, and on what.
    max_difference: float | None = None
    check: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.onnx).hexdigest()


def prepare(
    path: Path,
    *,
    kind: str | None = None,
    schema: dict[str, Any] | None = None,
    labels: list[str] | None = None,
) -> Prepared:
    """Read `path` (ONNX, joblib or pickle) into a Prepared model; Refused (exit 2) with
    the reason when it is not a model, cannot be converted, or does not match the
    options given."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Refused(f"Cannot read {path}: {exc.strerror or exc}.") from None
    _require("onnx", "onnxruntime", "numpy")
    model = _onnx_model(data)
    if model is not None:
        return _from_onnx(path, data, model, kind=kind, schema=schema, labels=labels)
    _require("joblib", "sklearn", "skl2onnx")
    estimator = _unpickle(path)
    return _from_estimator(path, estimator, kind=kind, schema=schema, labels=labels)


def _require(*modules: str) -> None:
    """The converters are not scarab's own dependencies: say what to install."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        packages = {"sklearn": "scikit-learn"}
        names = " ".join(packages.get(m, m) for m in missing)
        raise Refused(f"Pushing this model needs {names}: pip install {names}")


# -- ONNX files -----------------------------------------------------------------------


def _onnx_model(data: bytes) -> Any:
    """The parsed ModelProto when `data` is an ONNX model, else None."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # protobuf's DecodeError and friends: not ONNX
        return None
    if model.ir_version <= 0 or not model.graph.node or not model.graph.input:
        return None  # protobuf parses many byte strings; a model has a graph
    return model


def _graph_labels(model: Any) -> list[str]:
    """Class labels a classifier's ONNX graph declares (ai.onnx.ml classifiers, ZipMap)."""
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings" and attribute.strings:
                return [s.decode("utf-8") for s in attribute.strings]
            if attribute.name in ("classlabels_int64s", "classlabels_ints") and attribute.ints:
                return [str(i) for i in attribute.ints]
    return []


def _session(data: bytes, what: str) -> Any:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise Refused(f"{what} is not an ONNX model onnxruntime can load: {first}") from None


def _classifier_output(outputs: list[str]) -> str:
    # The output the function reads (lens.predict.loader._bind).
    return "probabilities" if "probabilities" in outputs else outputs[-1]


def _regressor_output(outputs: list[str]) -> str:
    return "variable" if "variable" in outputs else outputs[0]


def _from_onnx(
    path: Path,
    data: bytes,
    model: Any,
    *,
    kind: str | None,
    schema: dict[str, Any] | None,
    labels: list[str] | None,
) -> Prepared:
    session = _session(data, str(path))
    outputs = [o.name for o in session.get_outputs()]
    if kind is None:
        if "probabilities" in outputs:
            kind = TABULAR_CLASSIFIER
        elif "variable" in outputs:
            kind = TABULAR_REGRESSOR
        else:
            raise Refused(
                f"Cannot tell what kind of model {path} is (outputs: {', '.join(outputs)});"
                " pass --kind."
            )
    found = labels if labels is not None else _graph_labels(model)
    if kind not in (TABULAR_CLASSIFIER, TABULAR_REGRESSOR):
        if schema is None:
            raise Refused(f"A {kind} needs its request's JSON Schema: pass --schema FILE.json.")
        return Prepared(data, kind, schema, found, "ONNX file")
    inputs = session.get_inputs()
    shape = list(inputs[0].shape) if inputs else []
    if len(inputs) != 1 or len(shape) != 2 or inputs[0].type not in _FLOAT_INPUTS:
        raise Refused(
            f"A {kind} takes one float input of shape [rows, features]; {path} takes"
            f" {', '.join(f'{i.name} {i.type} {i.shape}' for i in inputs)}."
        )
    width = shape[1] if isinstance(shape[1], int) else None
    features = _features(kind, schema, None, width, str(path))
    count = len(features)
    if kind == TABULAR_REGRESSOR and labels:
        raise Refused("A tabular-regressor has no labels; leave out --labels.")
    if kind == TABULAR_CLASSIFIER:
        found = _check_onnx_classifier(session, count, found, outputs, path)
    else:
        _check_onnx_runs(session, count, path)
    return Prepared(data, kind, _schema(features, schema), found, "ONNX file")


def _check_onnx_runs(session: Any, count: int, path: Path) -> None:
    """Run zeros through the regressor: it must take `count` features and give a number
    per row (a model that cannot run on its schema would fail every request)."""
    import numpy as np

    double = session.get_inputs()[0].type == "tensor(double)"
    batch = np.zeros((2, count), dtype=np.float64 if double else np.float32)
    try:
        (result, *_) = session.run(None, {session.get_inputs()[0].name: batch})
    except Exception as exc:  # onnxruntime's own errors
        raise Refused(f"{path} does not run on {count} features: {str(exc)[:300]}") from None
    values = np.asarray(result)
    if values.size == 0 or values.shape[0] != 2:
        raise Refused(f"{path} gives no value per row on {count} features.")


_FLOAT_INPUTS = ("tensor(float)", "tensor(double)")


def _check_onnx_classifier(
    session: Any, count: int, labels: list[str], outputs: list[str], path: Path
) -> list[str]:
    """Run zeros through the classifier: its probabilities must have one column per label."""
    import numpy as np

    double = session.get_inputs()[0].type == "tensor(double)"
    batch = np.zeros((2, count), dtype=np.float64 if double else np.float32)
    name = _classifier_output(outputs)
    try:
        (result,) = session.run([name], {session.get_inputs()[0].name: batch})
    except Exception as exc:  # onnxruntime's own errors
        raise Refused(f"{path} does not run on {count} features: {str(exc)[:300]}") from None
    width = len(result[0]) if isinstance(result, list) else int(np.asarray(result).shape[-1])
    if not labels:
        raise Refused(f"{path} declares no class labels; pass --labels with {width} labels.")
    if len(labels) != width:
        raise Refused(
            f"{path} gives {width} class probabilities but there are {len(labels)} labels"
            f" ({', '.join(labels)})."
        )
    return labels


# -- scikit-learn estimators ------------------------------------------------------------


def _unpickle(path: Path) -> Any:
    """joblib.load (which also reads plain pickles): runs code from the file."""
    import joblib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version-mismatch warnings: the check decides
            return joblib.load(path)
    except (ImportError, AttributeError) as exc:
        raise Refused(
            f"{path} needs code that cannot be imported here ({exc}); run scarab where the"
            " estimator's own classes import, or push an ONNX file."
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError):
        raise Refused(
            f"{path} is not a model: neither ONNX nor a scikit-learn estimator saved with"
            " joblib or pickle."
        ) from None
    except Exception as exc:  # unpickling can raise anything the file's code raises
        raise Refused(f"{path} could not be loaded ({type(exc).__name__}: {exc}).") from None


def _describe(estimator: Any) -> str:
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        inner = ", ".join(_describe(step) for _, step in estimator.steps if _real(step))
        return f"Pipeline({inner})"
    return type(estimator).__name__


def _real(step: Any) -> bool:
    return step is not None and not (isinstance(step, str) and step in ("drop", "passthrough"))


def _leaves(estimator: Any, path: str) -> list[tuple[str, Any]]:
    """The estimators skl2onnx converts one by one, with where they sit in the pipeline
    ("scale", "prep/num/impute")."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    def at(name: str) -> str:
        return f"{path}/{name}" if path else name

    if isinstance(estimator, Pipeline):
        return [
            leaf
            for name, step in estimator.steps
            if _real(step)
            for leaf in _leaves(step, at(name))
        ]
    if isinstance(estimator, ColumnTransformer):
        parts = getattr(estimator, "transformers_", estimator.transformers)
        return [leaf for name, tr, _ in parts if _real(tr) for leaf in _leaves(tr, at(name))]
    if isinstance(estimator, FeatureUnion):
        return [
            leaf
            for name, tr in estimator.transformer_list
            if _real(tr)
            for leaf in _leaves(tr, at(name))
        ]
    return [(path or type(estimator).__name__, estimator)]


def _unsupported(estimator: Any) -> list[str]:
    from skl2onnx._supported_operators import sklearn_operator_name_map

    return [
        f"step '{where}' ({type(step).__module__}.{type(step).__name__})"
        for where, step in _leaves(estimator, "")
        if type(step) not in sklearn_operator_name_map
    ]


def _final(estimator: Any) -> Any:
    from sklearn.pipeline import Pipeline

    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator


def _features(
    kind: str, schema: dict[str, Any] | None, names: list[str] | None, count: int | None, what: str
) -> list[str]:
    """The model's features in input order: the schema's, else the estimator's
    feature_names_in_, else f0..f<n-1>."""
    from lens.predict.registry import feature_order

    if schema is not None:
        declared = feature_order(schema)
        if not declared:
            raise Refused(
                f"The --schema of a {kind} must list its features (x-feature-order, or"
                " properties.features.properties)."
            )
        if count is not None and len(declared) != count:
            raise Refused(
                f"{_cap(what)} takes {count} features but the --schema lists {len(declared)}."
            )
        if names is not None and declared != names:
            raise Refused(
                f"The --schema lists the features as {', '.join(declared)}, but {what} was"
                f" trained on {', '.join(names)} (in this order)."
            )
        return declared
    if names is not None:
        return names
    if count is None:
        raise Refused(f"Cannot tell how many features {what} takes; pass --schema FILE.json.")
    return [f"f{i}" for i in range(count)]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _schema(features: list[str], given: dict[str, Any] | None) -> dict[str, Any]:
    from lens.predict.registry import tabular_schema

    return given if given is not None else tabular_schema(features)


def _from_estimator(
    path: Path,
    estimator: Any,
    *,
    kind: str | None,
    schema: dict[str, Any] | None,
    labels: list[str] | None,
) -> Prepared:
    from sklearn.base import BaseEstimator, is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(estimator, BaseEstimator):
        raise Refused(
            f"{path} holds a {type(estimator).__name__}, not a scikit-learn estimator or pipeline."
        )
    described = _describe(estimator)
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise Refused(f"The {described} in {path} is not fitted; fit it, then save it.") from None
    if is_classifier(estimator):
        inferred = TABULAR_CLASSIFIER
    elif is_regressor(estimator):
        inferred = TABULAR_REGRESSOR
    else:
        raise Refused(f"The {described} in {path} is neither a classifier nor a regressor.")
    if kind is not None and kind != inferred:
        raise Refused(f"The {described} in {path} is a {inferred}, not a {kind}.")
    unsupported = _unsupported(estimator)
    if unsupported:
        raise Refused(
            f"skl2onnx cannot convert {', '.join(unsupported)} of the {described} in {path};"
            " replace it with a scikit-learn step, or convert the model to ONNX yourself."
        )
    count = getattr(estimator, "n_features_in_", None)
    raw_names = getattr(estimator, "feature_names_in_", None)
    names = [str(n) for n in raw_names] if raw_names is not None else None
    features = _features(inferred, schema, names, count, f"the {described}")
    if inferred == TABULAR_CLASSIFIER:
        classes = [str(c) for c in getattr(estimator, "classes_", [])]
        if labels is not None and len(labels) != len(classes):
            raise Refused(
                f"The {described} has {len(classes)} classes ({', '.join(classes)}) but"
                f" --labels names {len(labels)}."
            )
        labels = labels if labels is not None else classes
        if not hasattr(estimator, "predict_proba"):
            raise Refused(
                f"The {described} gives no probabilities (no predict_proba; an SVC needs"
                " probability=True)."
            )
    elif labels:
        raise Refused("A tabular-regressor has no labels; leave out --labels.")
    onnx_bytes = _convert(estimator, len(features), inferred, described)
    difference, check = _check(estimator, onnx_bytes, len(features), inferred, described)
    return Prepared(
        onnx_bytes,
        inferred,
        _schema(features, schema),
        labels or [],
        f"scikit-learn {described}",
        difference,
        check,
    )


def _convert(estimator: Any, count: int, kind: str, described: str) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(_final(estimator)): {"zipmap": False}} if kind == TABULAR_CLASSIFIER else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_sklearn(
                estimator,
                initial_types=[(INPUT_NAME, FloatTensorType([None, count]))],
                name=GRAPH_NAME,  # skl2onnx names it by a random uuid otherwise
                options=options,
                target_opset=TARGET_OPSET,
            )
    except Exception as exc:  # skl2onnx raises RuntimeError, NotImplementedError, ...
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise Refused(
            f"skl2onnx cannot convert the {described} ({type(exc).__name__}: {first})."
        ) from None
    return bytes(model.SerializeToString())


def _sample(estimator: Any, count: int) -> Any:
    """Seeded random rows in the range the first step saw in training (a scaler's mean
    and scale, or min and max), else standard normal; float32, as the ONNX model reads."""
    import numpy as np

    first = _leaves(estimator, "")[0][1]
    rng = np.random.RandomState(SAMPLE_SEED)
    z = rng.standard_normal((SAMPLE_ROWS, count))
    mean, scale = getattr(first, "mean_", None), getattr(first, "scale_", None)
    low, high = getattr(first, "data_min_", None), getattr(first, "data_max_", None)
    if mean is not None and np.shape(mean) == (count,):
        rows = mean + (scale if scale is not None else 1.0) * z
    elif low is not None and high is not None and np.shape(low) == (count,):
        rows = low + (high - low) * rng.uniform(size=(SAMPLE_ROWS, count))
    else:
        rows = z
    return rows.astype(np.float32)


def _check(
    estimator: Any, onnx_bytes: bytes, count: int, kind: str, described: str
) -> tuple[float, str]:
    """The largest difference between the ONNX model's and the estimator's predictions on
    the sample; Refused above MAX_DIFFERENCE."""
    import numpy as np

    rows = _sample(estimator, count)
    session = _session(onnx_bytes, f"The conversion of the {described}")
    outputs = [o.name for o in session.get_outputs()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "X does not have valid feature names"
        if kind == TABULAR_CLASSIFIER:
            expected = np.asarray(estimator.predict_proba(rows.astype(np.float64)))
            (got,) = session.run([_classifier_output(outputs)], {INPUT_NAME: rows})
            difference = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - expected)))
            what = "probability"
        else:
            expected = np.asarray(estimator.predict(rows.astype(np.float64)), dtype=np.float64)
            (got,) = session.run([_regressor_output(outputs)], {INPUT_NAME: rows})
            got = np.asarray(got, dtype=np.float64).reshape(expected.shape)
            difference = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))
            what = "relative value"
    if not np.isfinite(difference) or difference > MAX_DIFFERENCE:
        raise Refused(
            f"The ONNX conversion of the {described} does not predict like it: the largest"
            f" {what} difference over {SAMPLE_ROWS} sample rows is {difference:.3g} (at most"
            f" {MAX_DIFFERENCE:g} is accepted). Nothing was pushed."
        )
    return difference, (
        f"largest {what} difference {difference:.2g} over {SAMPLE_ROWS} sample rows"
    )
