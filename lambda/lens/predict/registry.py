"""Registry entries, and the packaged registry (artifacts/registry.json).

An entry names the model, its version and kind, the JSON schema of its request body,
where its artifact lives (a path relative to artifacts/ or an s3:// URI) with the
artifact's sha256, and what training measured. training/train_models.py writes the
packaged registry; with MODEL_REGISTRY_TABLE set the entries come from DynamoDB
instead (lens.predict.sources), parsed into the same ModelEntry.

Tabular models declare their features (names, in the order the ONNX input takes them)
in `input_schema`, so the registry holds them once: see `feature_order`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The one place that decides where the registry and artifacts are read from: the package's
# artifacts/, or SCARAB_MODEL_DIR when set (a directory laid out the same way: registry.json
# and the files it names by relative path; lens.server on SageMaker gets /opt/ml/model,
# where model.tar.gz is extracted). Read once, at import: a process's model directory
# does not change while it runs, and every default below is bound to it.
MODEL_DIR_ENV = "SCARAB_MODEL_DIR"
PACKAGED_DIR = Path(__file__).resolve().parent / "artifacts"


def model_dir(env: Mapping[str, str] | None = None) -> Path:
    """SCARAB_MODEL_DIR (made absolute) when set and not blank, else the packaged artifacts/."""
    raw = (os.environ if env is None else env).get(MODEL_DIR_ENV, "").strip()
    return Path(raw).expanduser().resolve() if raw else PACKAGED_DIR


ARTIFACTS_DIR = model_dir()
REGISTRY_FILE = ARTIFACTS_DIR / "registry.json"

Kind = Literal["image-classifier", "tabular-classifier", "tabular-regressor", "forecaster"]
TABULAR_KINDS: frozenset[str] = frozenset({"tabular-classifier", "tabular-regressor"})
CLASSIFIER_KINDS: frozenset[str] = frozenset({"image-classifier", "tabular-classifier"})
# The top-level input_schema key listing a tabular model's features in input order.
FEATURE_ORDER_KEY = "x-feature-order"
# `host = "sagemaker:<endpoint>"`: the model answers from that SageMaker endpoint (the
# models function forwards /predict/{name} to InvokeEndpoint). Endpoint names as
# SageMaker's CreateEndpoint accepts them: letters, digits and inner hyphens, 1-63.
SAGEMAKER_HOST = "sagemaker:"
ENDPOINT_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
HOST_PATTERN = rf"^{SAGEMAKER_HOST}{ENDPOINT_NAME_PATTERN}$"


def _local_ref(schema: dict[str, Any], node: Any) -> Any:
    """Follow one local "$ref": "#/$defs/X" (or "#/definitions/X"); anything else as is."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        parts = node["$ref"].removeprefix("#/").split("/")
        target: Any = schema
        for part in parts:
            target = target.get(part) if isinstance(target, dict) else None
        return target
    return node


def feature_order(input_schema: dict[str, Any]) -> list[str]:
    """A tabular model's feature names, in the order its ONNX input takes them.

    From `x-feature-order` (a list of names at the schema's top level) when present,
    else the keys of the `features` property's `properties`, in document order (a local
    `$ref` into `$defs` is followed). [] when the schema declares neither.
    """
    declared = input_schema.get(FEATURE_ORDER_KEY)
    if isinstance(declared, list) and all(isinstance(n, str) for n in declared):
        return list(declared)
    properties = input_schema.get("properties")
    features = _local_ref(input_schema, properties.get("features")) if properties else None
    names = features.get("properties") if isinstance(features, dict) else None
    return list(names) if isinstance(names, dict) else []


def feature_bounds(input_schema: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """{feature: (minimum, maximum)} as the schema bounds them (None: unbounded)."""
    properties = input_schema.get("properties")
    features = _local_ref(input_schema, properties.get("features")) if properties else None
    names = features.get("properties") if isinstance(features, dict) else None
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for name, spec in (names or {}).items():
        if isinstance(spec, dict):
            low, high = spec.get("minimum"), spec.get("maximum")
            bounds[name] = (
                float(low) if isinstance(low, int | float) else None,
                float(high) if isinstance(high, int | float) else None,
            )
    return bounds


def tabular_schema(features: list[str], title: str = "TabularRequest") -> dict[str, Any]:
    """The input_schema a pushed tabular model is registered with: the request body
    {"features": {name: number}} (or a list in this order), features in `x-feature-order`."""
    return {
        "title": title,
        "type": "object",
        "required": ["features"],
        "additionalProperties": False,
        FEATURE_ORDER_KEY: list(features),
        "properties": {
            "features": {
                "type": "object",
                "required": list(features),
                "additionalProperties": False,
                "properties": {name: {"type": "number"} for name in features},
            }
        },
    }


class Artifact(BaseModel):
    """Where the ONNX file is: `path` relative to artifacts/, or an `s3://bucket/key`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str


class DataFile(BaseModel):
    """A forecaster's stored observations (CSV): `path` relative to artifacts/ (the packaged
    counterpart of a registry item's `data_uri`) and the file's sha256."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ModelEntry(BaseModel):
    """One registered model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    version: str
    kind: Kind
    description: str
    input_schema: dict[str, Any]
    artifact: Artifact
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    labels: list[str] = Field(
        default_factory=list,
        description="Class labels, in model output order (classifiers; empty otherwise).",
    )
    features: list[str] = Field(
        default_factory=list,
        description=(
            "Tabular models and forecasters: input feature names, in order (tabular"
            " default: from input_schema)."
        ),
    )
    positive_label: str | None = None
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    # A packaged forecaster's recent observations (artifacts/<path>, sha256-checked).
    data: DataFile | None = None
    # Registry-table entries (lens.predict.sources): when and how the version was made,
    # and where a forecaster's recent observations are.
    created_at: str | None = None
    source: str | None = None
    data_uri: str | None = None
    # Where the model runs: None here (this function), or "sagemaker:<endpoint>".
    host: str | None = Field(default=None, pattern=HOST_PATTERN)

    @property
    def endpoint(self) -> str | None:
        """The SageMaker endpoint hosting this model (None: it runs in the function)."""
        return self.host.removeprefix(SAGEMAKER_HOST) if self.host else None

    @model_validator(mode="after")
    def _complete(self) -> ModelEntry:
        if self.kind in CLASSIFIER_KINDS and len(self.labels) < 2:
            raise ValueError(f"a {self.kind} needs at least two labels")
        if self.kind in TABULAR_KINDS and not self.features:
            names = feature_order(self.input_schema)
            if not names:
                raise ValueError(
                    f"a {self.kind}'s input_schema must list its features "
                    f"({FEATURE_ORDER_KEY}, or properties.features.properties)"
                )
            object.__setattr__(self, "features", names)  # frozen: set once, while validating
        if self.positive_label is not None and self.positive_label not in self.labels:
            raise ValueError(f"positive_label {self.positive_label!r} is not one of the labels")
        return self

    def summary(self) -> dict[str, Any]:
        """What GET /models shows for this model."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "description": self.description,
            "input_schema": self.input_schema,
        }


class Registry(BaseModel):
    """All registered models, in declaration order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: list[ModelEntry]

    def names(self) -> list[str]:
        return [entry.name for entry in self.models]

    def get(self, name: str) -> ModelEntry | None:
        return next((entry for entry in self.models if entry.name == name), None)


def read_registry(path: Path = REGISTRY_FILE) -> Registry:
    """Parse and validate a registry file (raises pydantic.ValidationError when malformed)."""
    return Registry.model_validate(json.loads(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The registry of ARTIFACTS_DIR (the package's, or SCARAB_MODEL_DIR's), read once
    per container."""
    return read_registry()
