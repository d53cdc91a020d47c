"""Review 9: `scarab models` options the function would not honour, through the real CLI
against the moto server (the fixtures of test_models_cli)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from scarab.aws import Aws
from scarab.config import load_config
from scarab.models import Refused, registry
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


def test_a_push_racing_another_with_another_rule_is_refused(
    stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    # Two pushes of the same bytes as churn 1, one with --threshold 0.7, one with 0.8:
    # the other push's item lands between this push's read and its conditional put (a
    # botocore hook on this push's session writes it, through a client of its own).
    prepared = prepare(save(tmp_path, "churn.joblib", classifier(data)))
    session = boto3.Session(region_name="us-east-1")
    reg = registry.open_registry(
        load_config(stage.project),
        project_dir=stage.project,
        aws=Aws("us-east-1", endpoint_url=stage.url, session=session),
    )
    other = registry.version_item(
        reg, prepared, name="churn", version="1", description="", metrics={}, threshold=0.7
    )
    raced: list[bool] = []

    def first_put_races(model: Any, **_: Any) -> None:
        if model.name == "PutItem" and not raced:
            raced.append(True)
            boto3.client("dynamodb", endpoint_url=stage.url).put_item(
                TableName=reg.table, Item=other
            )

    session.events.register("before-call.dynamodb.PutItem", first_put_races)
    with pytest.raises(Refused, match=re.escape("with threshold 0.7 (this push: --threshold 0.8)")):
        registry.push(reg, prepared, name="churn", version="1", threshold=0.8)
    assert raced
    item = stage.item("churn", "1")
    assert item is not None and item["threshold"] == {"N": "0.7"}  # the winner's, unchanged
