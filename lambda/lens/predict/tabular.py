"""The `tabular` model: a binary classifier over named numeric features.

The request model is built from the registry entry's feature list, so the registry is
the one place features are declared; the same builder produces the entry's
input_schema at training time. `probability` is the positive class's probability and
`label` is the positive label when it reaches the registry's threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from lens.errors import ApiError
from lens.predict.loader import LoadedModel

# The model computes in float32: a larger JSON number (1e39 is finite to Python) would
# become infinity on the way in.
FLOAT32_MAX = float(np.finfo(np.float32).max)

# Strict: a number, not a numeric string; finite and within float32; the features here
# are all >= 0.
FeatureValue = Annotated[float, Field(strict=True, ge=0.0, le=FLOAT32_MAX, allow_inf_nan=False)]


@lru_cache(maxsize=8)
def request_model(features: tuple[str, ...]) -> type[BaseModel]:
    """pydantic model of {"features": {<every name>: number, 0 to FLOAT32_MAX}}, unknown
    names refused."""
    fields: dict[str, Any] = {name: (FeatureValue, ...) for name in features}
    features_model = create_model(
        "TabularFeatures", __config__=ConfigDict(extra="forbid"), **fields
    )
    return create_model(
        "TabularRequest",
        __config__=ConfigDict(extra="forbid"),
        features=(features_model, ...),
    )


def input_schema(features: Sequence[str]) -> dict[str, Any]:
    """JSON schema of the request body (what the registry records and GET /models shows)."""
    return request_model(tuple(features)).model_json_schema()


def predict(model: LoadedModel, request: BaseModel) -> dict[str, Any]:
    """Label, positive-class probability, threshold, version and the features used."""
    entry = model.entry
    if entry.threshold is None or entry.positive_label is None:
        raise ApiError(500, "model_misconfigured", f"Model '{entry.name}' has no threshold.")
    values: dict[str, float] = request.model_dump()["features"]
    row = np.array([[values[name] for name in entry.features]], dtype=np.float32)
    probabilities = model.probabilities(row)[0]
    if not np.isfinite(probabilities).all():
        # Values each within float32 can still overflow inside the model (scaling a
        # 3e38 by 1/0.003): there is no probability to give, only a request to fix.
        raise ApiError(
            422,
            "invalid_field",
            f"The features are too far outside what model '{entry.name}' was trained on "
            "for it to compute a probability; send measurements in the units of its "
            "training data.",
        )
    positive = entry.labels.index(entry.positive_label)
    probability = float(probabilities[positive])
    negative = next(label for label in entry.labels if label != entry.positive_label)
    return {
        "label": entry.positive_label if probability >= entry.threshold else negative,
        "probability": round(probability, 6),
        "threshold": entry.threshold,
        "model_version": entry.version,
        "features_used": {name: values[name] for name in entry.features},
    }
