"""Train the offline models from datasets scikit-learn ships, export ONNX, write the registry.

    .venv/bin/python training/train_models.py            # into lambda/lens/predict/artifacts
    .venv/bin/python training/train_models.py --out DIR  # somewhere else (tests do this)

Deterministic: fixed split and model seeds, a pinned ONNX opset, and no timestamps in
the output, so two runs on one machine write the same bytes. On another CPU, OpenBLAS picks
other kernels whose rounding differs in the last bits: the bytes differ, the behaviour does not
(same labels, probabilities within 1e-4, same metrics; tests/predict/test_training.py).
Each registry entry records test accuracy, the artifact's sha256 and the versions used.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "lambda") not in sys.path:  # the request schemas come from the function's code
    sys.path.insert(0, str(REPO / "lambda"))
if str(REPO) not in sys.path:  # run as a script: training.* next to it
    sys.path.insert(0, str(REPO))

from training.registry_file import merge_entries  # noqa: E402

DEFAULT_OUT = REPO / "lambda" / "lens" / "predict" / "artifacts"
TEST_SIZE = 0.25
SPLIT_SEED = 42
MODEL_SEED = 0
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
DIGITS_VERSION = "1.0.0"
TABULAR_VERSION = "1.0.0"
# Positive class = malignant. 0.5 = flagged when malignant is the likelier class; the
# registry records precision and recall for malignant at this threshold.
TABULAR_THRESHOLD = 0.5
ACCURACY_BAR = {"digits": 0.95, "tabular": 0.95}


def split(x: Any, y: Any) -> tuple[Any, Any, Any, Any]:
    """The fixed, stratified train/test split every number here is measured on."""
    return train_test_split(x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)


def digits_split() -> tuple[Any, Any, Any, Any]:
    data = load_digits()
    return split(data.data.astype(np.float32), data.target)


def tabular_split() -> tuple[Any, Any, Any, Any]:
    data = load_breast_cancer()
    return split(data.data.astype(np.float32), data.target)


def tabular_feature_names() -> list[str]:
    """'mean radius' -> 'mean_radius', in dataset column order."""
    return [name.replace(" ", "_") for name in load_breast_cancer().feature_names]


def _export(model: Any, n_features: int, name: str) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # SVC's deprecated probA_/probB_
        onx = convert_sklearn(
            model,
            name=name,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            target_opset=TARGET_OPSET,
            options={id(model): {"zipmap": False}},  # a plain (n, classes) probability tensor
        )
    # skl2onnx collects opsets in a set: order them so the bytes do not depend on hashing.
    imports = sorted(onx.opset_import, key=lambda o: (o.domain, o.version))
    del onx.opset_import[:]
    onx.opset_import.extend(imports)
    return bytes(onx.SerializeToString())


def _lens_digits_schema() -> dict[str, Any]:
    from lens.predict.digits import INPUT_SCHEMA

    return INPUT_SCHEMA


def _lens_tabular_schema(features: list[str]) -> dict[str, Any]:
    from lens.predict.tabular import input_schema

    return input_schema(features)


def library_versions() -> dict[str, str]:
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
    }


def train_digits() -> tuple[bytes, dict[str, Any]]:
    x_train, x_test, y_train, y_test = digits_split()
    with warnings.catch_warnings():
        # SVC(probability=True) is deprecated in 1.9 but is what skl2onnx converts directly.
        warnings.simplefilter("ignore", FutureWarning)
        model = SVC(gamma=0.001, C=10.0, probability=True, random_state=MODEL_SEED)
        model.fit(x_train, y_train)
    # The function answers with the most probable class, so measure exactly that (SVC's
    # own predict() votes on the decision function and can differ near ties).
    served = model.classes_[model.predict_proba(x_test).argmax(axis=1)]
    accuracy = float(accuracy_score(y_test, served))
    entry = {
        "name": "digits",
        "version": DIGITS_VERSION,
        "kind": "image-classifier",
        "description": (
            "Handwritten digit 0-9 from a picture of one digit (any size; dark on light, "
            "light on dark, or drawn on a transparent canvas)."
        ),
        "input_schema": _lens_digits_schema(),
        "artifact": {"path": "digits.onnx"},
        "labels": [str(label) for label in model.classes_],
        "metrics": {
            "accuracy": round(accuracy, 4),
            "test_samples": len(y_test),
            "train_samples": len(y_train),
        },
        "training": {
            "dataset": "sklearn.datasets.load_digits",
            "estimator": "SVC(gamma=0.001, C=10, probability=True)",
            "preprocessing": "8x8 of 4x4-block ink counts, 0..16 (lens.predict.digits)",
            "test_size": TEST_SIZE,
            "split_seed": SPLIT_SEED,
            "model_seed": MODEL_SEED,
            "target_opset": TARGET_OPSET,
            "trained_with": library_versions(),
        },
    }
    return _export(model, 64, "digits"), entry


def train_tabular() -> tuple[bytes, dict[str, Any]]:
    x_train, x_test, y_train, y_test = tabular_split()
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=1.0, max_iter=5000, random_state=MODEL_SEED)),
        ]
    )
    model.fit(x_train, y_train)
    labels = [str(name) for name in load_breast_cancer().target_names[model.classes_]]
    positive = labels.index("malignant")
    p_malignant = model.predict_proba(x_test)[:, positive]
    flagged = p_malignant >= TABULAR_THRESHOLD
    truth = y_test == model.classes_[positive]
    features = tabular_feature_names()
    entry = {
        "name": "tabular",
        "version": TABULAR_VERSION,
        "kind": "tabular-classifier",
        "description": (
            "Breast tumour malignant or benign from 30 cell-nucleus measurements "
            "(scikit-learn's Wisconsin diagnostic dataset). `probability` is P(malignant); "
            f"the label is malignant when it is at least the threshold ({TABULAR_THRESHOLD})."
        ),
        "input_schema": _lens_tabular_schema(features),
        "artifact": {"path": "tabular.onnx"},
        "labels": labels,
        "features": features,
        "positive_label": "malignant",
        "threshold": TABULAR_THRESHOLD,
        "metrics": {
            "accuracy": round(float(np.mean(flagged == truth)), 4),
            "precision_malignant": round(float(precision_score(truth, flagged)), 4),
            "recall_malignant": round(float(recall_score(truth, flagged)), 4),
            "roc_auc": round(float(roc_auc_score(truth, p_malignant)), 4),
            "test_samples": len(y_test),
            "train_samples": len(y_train),
        },
        "training": {
            "dataset": "sklearn.datasets.load_breast_cancer",
            "estimator": "StandardScaler + LogisticRegression(C=1.0)",
            "test_size": TEST_SIZE,
            "split_seed": SPLIT_SEED,
            "model_seed": MODEL_SEED,
            "target_opset": TARGET_OPSET,
            "trained_with": library_versions(),
        },
    }
    return _export(model, len(features), "tabular"), entry


def train(out_dir: Path) -> dict[str, Any]:
    """Train both models into `out_dir` (ONNX files + their registry.json entries); returns
    the registry."""
    out_dir.mkdir(parents=True, exist_ok=True)
    models = []
    for trainer in (train_digits, train_tabular):
        artifact, entry = trainer()
        name = entry["name"]
        if entry["metrics"]["accuracy"] < ACCURACY_BAR[name]:
            raise SystemExit(f"{name}: accuracy {entry['metrics']['accuracy']} is below the bar")
        (out_dir / entry["artifact"]["path"]).write_bytes(artifact)
        models.append({**entry, "sha256": hashlib.sha256(artifact).hexdigest()})
    # Other trainers' entries (training/train_forecasters.py) stay as they are.
    return merge_entries(out_dir, models)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    registry = train(args.out)
    for entry in registry["models"]:
        print(
            f"{entry['name']} {entry['version']}: accuracy {entry['metrics']['accuracy']}, "
            f"sha256 {entry['sha256'][:12]}…"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
