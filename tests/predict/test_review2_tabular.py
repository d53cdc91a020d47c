"""Review 2: /predict/tabular on finite JSON numbers past float32's range answers 200
with "probability": null (NaN inside the model) and a label that means nothing."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from lens.handler import lambda_handler
from lens.predict.registry import registry

from tests.function.events import EVENT_BUILDERS, FakeContext, response_json


@pytest.mark.parametrize("kind", sorted(EVENT_BUILDERS))
@pytest.mark.parametrize("value", ["1e39", "1e300", "3e38"])
def test_features_that_overflow_the_model_are_refused_not_answered_with_nan(
    kind: str, value: str, cache_dir: Path
) -> None:
    entry = registry().get("tabular")
    assert entry is not None
    # Python's json reads these as finite floats, so allow_inf_nan=False lets them through.
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
