"""The packaged models, as the registry items a deploy seeds into the stage's table.

Read from the function source (`lambda/lens/predict/artifacts/registry.json`, written by
the trainers), never by importing lens: the CLI does not ship the function's dependencies.
Each model's ONNX file (and a forecaster's recent observations) goes to the artifacts
bucket at its content address, so the function reads a seeded model like a pushed one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from scarab.deploy.instructions import NOW
from scarab.deploy.models import SeedModel
from scarab.errors import ScarabError
from scarab.functions import TASK_ROOT

PACKAGED_ARTIFACTS = TASK_ROOT / "lens" / "predict" / "artifacts"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _file(path: Path, want: str | None, what: str) -> tuple[str, int]:
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if want is not None and sha != want:
        raise ScarabError(
            f"The packaged {what} {path} does not match the sha256 its registry entry"
            f" names ({want[:12]}...); retrain (training/) or restore the file."
        )
    return sha, len(data)


def packaged_seeds(project_dir: Path, bucket: str) -> tuple[SeedModel, ...]:
    """Every packaged model as a seed: its version item and the files to upload.

    Attributes follow the registry contract (lens.predict.sources reads them):
    name, version, kind, description, input_schema (JSON), labels, metrics (JSON),
    artifact_uri, sha256, created_at (the time of the put), source = "packaged", and
    when the entry has them features, positive_label, threshold and data_uri.
    """
    root = project_dir / PACKAGED_ARTIFACTS
    registry_file = root / "registry.json"
    if not registry_file.is_file():
        return ()
    entries = json.loads(registry_file.read_text(encoding="utf-8")).get("models", [])
    seeds: list[SeedModel] = []
    for entry in entries:
        name, version = str(entry["name"]), str(entry["version"])
        sha, size = _file(root / entry["artifact"]["path"], entry.get("sha256"), "model")
        key = f"models/{name}/{sha}.onnx"
        item: dict[str, Any] = {
            "name": _s(name),
            "version": _s(version),
            "kind": _s(str(entry["kind"])),
            "description": _s(str(entry.get("description", ""))),
            "input_schema": _s(json.dumps(entry.get("input_schema", {}), sort_keys=True)),
            "labels": {"L": [_s(str(label)) for label in entry.get("labels", [])]},
            "metrics": _s(json.dumps(entry.get("metrics", {}), sort_keys=True)),
            "artifact_uri": _s(f"s3://{bucket}/{key}"),
            "sha256": _s(sha),
            "created_at": {"S": NOW},
            "source": _s("packaged"),
        }
        if entry.get("features"):
            item["features"] = {"L": [_s(str(f)) for f in entry["features"]]}
        if entry.get("positive_label") is not None:
            item["positive_label"] = _s(str(entry["positive_label"]))
        if entry.get("threshold") is not None:
            item["threshold"] = {"N": str(entry["threshold"])}
        files = [(str(root / entry["artifact"]["path"]), sha, size, key)]
        data = entry.get("data")
        if data:
            data_sha, data_size = _file(root / data["path"], data.get("sha256"), "data")
            data_key = f"data/{name}/{data_sha}.csv"
            item["data_uri"] = _s(f"s3://{bucket}/{data_key}")
            files.append((str(root / data["path"]), data_sha, data_size, data_key))
        seeds.append(SeedModel(name=name, version=version, item=item, files=tuple(files)))
    return tuple(seeds)
