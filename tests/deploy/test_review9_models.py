"""Review 9: `scarab models` options the function would not honour, through the real CLI
against the moto server (the fixtures of test_models_cli)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scarab.models.convert import prepare

from tests.deploy.test_models_cli import Stage, classifier, data, save, stage, undeployed

__all__ = ["data", "stage", "undeployed"]  # fixtures

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


def test_threshold_of_an_image_classifier_is_refused(
    stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    # The image route answers with the likeliest label and ignores a threshold: pushing
    # one would store a rule that is never applied.
    onnx = tmp_path / "pets.onnx"
    onnx.write_bytes(prepare(save(tmp_path, "m.joblib", classifier(data))).onnx)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"image": {"type": "string"}}}))
    push = ["models", "push", str(onnx), "--name", "pets", "--version", "1"]
    image = ["--kind", "image-classifier", "--schema", str(schema), "--labels", "cat,dog"]
    out = stage.refused(*push, *image, "--threshold", "0.9")
    assert "--threshold applies to a binary classifier; this model is an image-classifier" in out, (
        out
    )
    out = stage.refused(*push, *image, "--positive-label", "cat")
    assert (
        "--positive-label applies to a binary classifier; this model is an image-classifier" in out
    ), out
    assert stage.item("pets", "1") is None
    stage.ok(*push, *image)  # without the options it is pushed
