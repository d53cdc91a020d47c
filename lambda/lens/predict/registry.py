"""The model registry: every offline model declared once, in artifacts/registry.json.

An entry names the model, its version and kind, the JSON schema of its request body,
where its artifact lives (a path relative to artifacts/ or an s3:// URI) with the
artifact's sha256, and what training measured. training/train_models.py writes it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
REGISTRY_FILE = ARTIFACTS_DIR / "registry.json"

Kind = Literal["image-classifier", "tabular-classifier", "forecaster"]


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
        description="Class labels, in model output order (classifiers; empty for forecasters).",
    )
    features: list[str] = Field(
        default_factory=list,
        description="Tabular models and forecasters: input feature names, in order.",
    )
    positive_label: str | None = None
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    data: DataFile | None = None

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
    """The packaged registry, read once per container."""
    return read_registry()
