"""Tabular models: classifiers and regressors over named numeric features.

The request model is built from the registry entry's features (names in input order, see
lens.predict.registry.feature_order) and their bounds in input_schema, so the registry is
the one place features are declared; the same builder produces the packaged `tabular`
model's input_schema at training time. A body is {"features": {name: number}} or
{"features": [numbers in feature order]}; either way a problem names the feature.

Classifiers: `probability` is the positive class's probability and `label` the positive
label when it reaches the threshold (binary; the positive label is the entry's, else the
second label, scikit-learn's classes_[1]; the threshold the entry's, else 0.5); with more
classes `label` is the likeliest, `probability` its probability and `probabilities` all
of them. Regressors: `value`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from lens.errors import ApiError
from lens.predict.loader import LoadedModel
from lens.predict.registry import ModelEntry, feature_bounds

# The model computes in float32: a larger JSON number (1e39 is finite to Python) would
# become infinity on the way in.
FLOAT32_MAX = float(np.finfo(np.float32).max)
DEFAULT_THRESHOLD = 0.5

# Strict: a number, not a numeric string; finite and within float32; the packaged
# model's features are all >= 0.
FeatureValue = Annotated[float, Field(strict=True, ge=0.0, le=FLOAT32_MAX, allow_inf_nan=False)]

Bounds = tuple[tuple[str, float | None, float | None], ...]


@lru_cache(maxsize=8)
def request_model(features: tuple[str, ...]) -> type[BaseModel]:
    """pydantic model of {"features": {<every name>: number, 0 to FLOAT32_MAX}}, unknown
    names refused (the packaged `tabular` model's request)."""
    fields: dict[str, Any] = {name: (FeatureValue, ...) for name in features}
    features_model = create_model(
        "TabularFeatures", __config__=ConfigDict(extra="forbid"), **fields
    )
    return create_model(
        "TabularRequest",
        __config__=ConfigDict(extra="forbid"),
        features=(features_model, ...),
    )


@lru_cache(maxsize=64)
def _bounded_model(bounds: Bounds) -> type[BaseModel]:
    """Like request_model, with each feature's bounds from its schema (float32 at most)."""
    fields: dict[str, Any] = {}
    for i, (name, low, high) in enumerate(bounds):
        value = Annotated[
            float,
            Field(
                strict=True,
                ge=-FLOAT32_MAX if low is None else max(low, -FLOAT32_MAX),
                le=FLOAT32_MAX if high is None else min(high, FLOAT32_MAX),
                allow_inf_nan=False,
                # The feature's own name as the key: pydantic reserves some names as
                # attributes (`_id`, `model_config`), never as an alias.
                alias=name,
            ),
        ]
        fields[f"feature_{i}"] = (value, ...)
    features_model = create_model(
        "TabularFeatures", __config__=ConfigDict(extra="forbid"), **fields
    )
    return create_model(
        "TabularRequest", __config__=ConfigDict(extra="forbid"), features=(features_model, ...)
    )


def entry_request_model(entry: ModelEntry) -> type[BaseModel]:
    """The request model of a tabular registry entry."""
    declared = feature_bounds(entry.input_schema)
    bounds = tuple((name, *declared.get(name, (None, None))) for name in entry.features)
    return _bounded_model(bounds)


def input_schema(features: Sequence[str]) -> dict[str, Any]:
    """JSON schema of the request body (what the registry records and GET /models shows)."""
    return request_model(tuple(features)).model_json_schema()


def parse_request(entry: ModelEntry, body: dict[str, Any]) -> BaseModel:
    """Validate a body: {"features": {...}} or {"features": [...]}; ApiError 422
    invalid_field naming the feature otherwise."""
    values = body.get("features")
    if isinstance(values, list):
        names = entry.features
        if len(values) != len(names):
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise ApiError(
                422,
                "invalid_field",
                f"Field 'features' must be an object or a list of {len(names)} numbers in "
                f"the model's feature order ({shown}); the list has {len(values)}.",
            )
        body = {**body, "features": dict(zip(names, values, strict=True))}
    try:
        return entry_request_model(entry).model_validate(body)
    except ValidationError as exc:
        from lens.predict.routes import validation_message

        raise ApiError(422, "invalid_field", validation_message(exc)) from None


def _row(entry: ModelEntry, values: dict[str, float]) -> Any:
    return np.array([[values[name] for name in entry.features]], dtype=np.float32)


def _too_far(entry: ModelEntry, what: str) -> ApiError:
    # Values each within float32 can still overflow inside the model (scaling a 3e38 by
    # 1/0.003): there is no answer to give, only a request to fix.
    return ApiError(
        422,
        "invalid_field",
        f"The features are too far outside what model '{entry.name}' was trained on "
        f"for it to compute a {what}; send measurements in the units of its training data.",
    )


def predict(model: LoadedModel, request: BaseModel) -> dict[str, Any]:
    """Label and probability (classifiers) or value (regressors), the threshold, the
    version and the features used."""
    entry = model.entry
    values: dict[str, float] = request.model_dump(by_alias=True)["features"]
    used = {name: values[name] for name in entry.features}
    if entry.kind == "tabular-regressor":
        output = np.asarray(model.run(_row(entry, values)), dtype=np.float64).reshape(-1)
        if output.size == 0 or not np.isfinite(output).all():
            raise _too_far(entry, "value")
        value: float | list[float] = (
            float(output[0]) if output.size == 1 else [float(v) for v in output]
        )
        return {
            "value": value,
            "threshold": None,
            "model_version": entry.version,
            "features_used": used,
        }
    probabilities = np.asarray(model.probabilities(_row(entry, values)), dtype=np.float64)[0]
    if probabilities.shape != (len(entry.labels),):
        raise ApiError(
            500,
            "model_misconfigured",
            f"Model '{entry.name}' gave {probabilities.size} probabilities for "
            f"{len(entry.labels)} labels.",
        )
    if not np.isfinite(probabilities).all():
        raise _too_far(entry, "probability")
    if len(entry.labels) > 2:
        best = int(np.argmax(probabilities))
        return {
            "label": entry.labels[best],
            "probability": round(float(probabilities[best]), 6),
            "probabilities": {
                label: round(float(p), 6)
                for label, p in zip(entry.labels, probabilities, strict=True)
            },
            "threshold": None,
            "model_version": entry.version,
            "features_used": used,
        }
    positive_label = entry.positive_label or entry.labels[1]
    threshold = DEFAULT_THRESHOLD if entry.threshold is None else entry.threshold
    probability = float(probabilities[entry.labels.index(positive_label)])
    negative = next(label for label in entry.labels if label != positive_label)
    return {
        "label": positive_label if probability >= threshold else negative,
        "probability": round(probability, 6),
        "threshold": threshold,
        "model_version": entry.version,
        "features_used": used,
    }
