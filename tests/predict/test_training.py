"""Retraining reproduces the shipped artifacts (bytes when library versions match)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from lens.predict.registry import ARTIFACTS_DIR

from training.train_models import digits_split, library_versions, tabular_split, train


def _probabilities(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["probabilities"], {"input": x.astype(np.float32)})[0])


@pytest.mark.slow
def test_retraining_reproduces_the_shipped_models(tmp_path: Path) -> None:
    fresh = train(tmp_path)
    shipped = json.loads((ARTIFACTS_DIR / "registry.json").read_text())
    for new, old in zip(fresh["models"], shipped["models"], strict=True):
        assert new["name"] == old["name"]
        assert new["metrics"] == old["metrics"]
        assert new["input_schema"] == old["input_schema"]
        if old["training"]["trained_with"] == library_versions():
            assert new["sha256"] == old["sha256"], f"{new['name']} export is not byte-identical"
    for name, split in (("digits", digits_split), ("tabular", tabular_split)):
        _, x_test, _, _ = split()
        a = _probabilities(tmp_path / f"{name}.onnx", x_test)
        b = _probabilities(ARTIFACTS_DIR / f"{name}.onnx", x_test)
        assert (a.argmax(axis=1) == b.argmax(axis=1)).all(), name
        assert np.allclose(a, b, atol=1e-5), name
