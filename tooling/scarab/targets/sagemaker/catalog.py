"""Which models the endpoint serves, and where their entries and files come from.

The stage's registry (the table `<app>-<stage>-models` and its bucket, what `scarab
models push` and the Lambda deploy's seeding write) is the source: every model with a
live version, its live version's entry and files. A stage whose registry has no live
model (no table yet: only --target sagemaker was deployed) serves the packaged models
(lambda/lens/predict/artifacts), as the Lambda function does without a table.
[sagemaker] models picks some of them by name.

Only read calls (Scan, GetObject) are made here.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from scarab.aws import Aws, call, error_code
from scarab.deploy.seeds import PACKAGED_ARTIFACTS
from scarab.errors import ConfigError, ScarabError
from scarab.models import use_function_code
from scarab.naming import Names
from scarab.targets.sagemaker.bundle import EndpointModel, ModelFile, artifact_name

_CONTENT_KEY = re.compile(r"/([0-9a-f]{64})\.[a-z]+$")  # models/<name>/<sha256>.onnx


def _scan(aws: Aws, table: str) -> list[dict[str, Any]]:
    """Every item of the registry table (deserialized); [] when there is no table."""
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    ddb = aws.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        try:
            page = call(ddb.scan, **kwargs)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return []
            raise
        items.extend({k: deserialize(v) for k, v in raw.items()} for raw in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _s3_file(aws: Aws, uri: str, owner: str, arcname: str, sha256: str) -> ModelFile:
    bucket, _, key = uri.removeprefix("s3://").partition("/")

    def read() -> bytes:
        got = call(aws.client("s3").get_object, Bucket=bucket, Key=key, ExpectedBucketOwner=owner)
        return bytes(got["Body"].read())

    return ModelFile(arcname, sha256, read, uri)


def _local_file(path: Path, arcname: str, sha256: str) -> ModelFile:
    return ModelFile(arcname, sha256, path.read_bytes, str(path))


def registry_models(aws: Aws, names: Names, project_dir: Path) -> list[EndpointModel]:
    """The live version of each model in the stage's registry table (none: [])."""
    items = _scan(aws, names.registry_table)
    if not items:
        return []
    use_function_code(project_dir)  # the item format is the function's (lens.predict)
    from lens.predict.sources import view_from_items

    view = view_from_items(items, f"dynamodb:{names.registry_table}", 0.0)
    out = []
    for name in view.names():
        model = view.get(name)
        live = model.live() if model else None
        if live is None:
            continue
        entry = live.model_dump(mode="json", exclude_none=True)
        entry.pop("data_uri", None)
        arcname = artifact_name(name, live.sha256, ".onnx")
        entry["artifact"] = {"path": arcname}
        files = [_s3_file(aws, live.artifact.path, aws.account_id, arcname, live.sha256)]
        if live.data_uri:
            found = _CONTENT_KEY.search(live.data_uri)
            sha = found.group(1) if found else _fetched_sha(aws, live.data_uri)
            data_name = artifact_name(name, sha, ".csv")
            entry["data"] = {"path": data_name, "sha256": sha}
            files.append(_s3_file(aws, live.data_uri, aws.account_id, data_name, sha))
        out.append(EndpointModel(name, live.version, entry, tuple(files)))
    return out


def _fetched_sha(aws: Aws, uri: str) -> str:
    return hashlib.sha256(_s3_file(aws, uri, aws.account_id, "", "").read()).hexdigest()


def packaged_models(project_dir: Path) -> list[EndpointModel]:
    """The models packaged with the function (artifacts/registry.json), each file checked
    against the sha256 its entry names."""
    root = project_dir / PACKAGED_ARTIFACTS
    try:
        entries = json.loads((root / "registry.json").read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError) as exc:
        raise ScarabError(
            f"Cannot read the packaged models ({root / 'registry.json'}): {exc}"
        ) from None
    out = []
    for raw in entries:
        entry = dict(raw)
        name, sha = str(entry["name"]), str(entry["sha256"])
        arcname = artifact_name(name, sha, ".onnx")
        files = [_local_file(root / entry["artifact"]["path"], arcname, sha)]
        entry["artifact"] = {"path": arcname}
        if entry.get("data"):
            data_sha = str(entry["data"]["sha256"])
            data_name = artifact_name(name, data_sha, ".csv")
            files.append(_local_file(root / entry["data"]["path"], data_name, data_sha))
            entry["data"] = {"path": data_name, "sha256": data_sha}
        out.append(EndpointModel(name, str(entry["version"]), entry, tuple(files)))
    return sorted(out, key=lambda m: m.name)


def endpoint_models(
    aws: Aws, names: Names, project_dir: Path, wanted: list[str]
) -> tuple[str, list[EndpointModel]]:
    """(where they come from, the models) the endpoint serves: `wanted` ([sagemaker]
    models) of the registry's live models, or of the packaged ones when it has none."""
    found = registry_models(aws, names, project_dir)
    origin = f"the registry table {names.registry_table}"
    if not found:
        found, origin = packaged_models(project_dir), "the packaged models"
    if not wanted:
        return origin, found
    by_name = {m.name: m for m in found}
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise ConfigError(
            f"scarab.toml: 'sagemaker.models' names {', '.join(missing)}, which"
            f" {origin} does not have a live version of; it has"
            f" {', '.join(sorted(by_name)) or 'none'}."
        )
    return origin, [by_name[n] for n in sorted(wanted)]
