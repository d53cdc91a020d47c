"""The SageMaker target's state record: `<stage>.sagemaker.json` beside the stage's own
(.scarab/state/, or .scarab/local/state/ on an emulator). Names and ARNs, no secrets."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from scarab.aws import Aws
from scarab.deploy.state import state_path
from scarab.errors import ScarabError


def record_path(project_dir: Path, stage: str, endpoint_url: str | None) -> Path:
    return state_path(project_dir, stage, endpoint_url).with_name(f"{stage}.sagemaker.json")


def save_record(
    project_dir: Path, stage: str, endpoint_url: str | None, data: dict[str, Any]
) -> Path:
    """Write the record atomically (a crash leaves the old one, never half)."""
    path = record_path(project_dir, stage, endpoint_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def delete_record(project_dir: Path, stage: str, endpoint_url: str | None) -> None:
    record_path(project_dir, stage, endpoint_url).unlink(missing_ok=True)


def check_region(project_dir: Path, stage: str, aws: Aws) -> None:
    """Refuse to act on the endpoint from another region than the one its record says:
    the role is global, and a deploy elsewhere would re-scope its policy to this region."""
    try:
        data = json.loads(record_path(project_dir, stage, aws.endpoint_url).read_text())
    except (OSError, ValueError):
        return  # no record (or an unreadable one): the endpoint is found by its names
    region = data.get("region") if isinstance(data, dict) else None
    if not region or region == aws.region:
        return
    if aws.local and data.get("endpoint_url") != aws.endpoint_url:
        return  # a record of another emulator instance says nothing about this one
    raise ScarabError(
        f"The SageMaker endpoint of stage {stage} is deployed in {region}, but this run"
        f" targets {aws.region}. Pass --region {region} to work on it, or run"
        f" 'scarab destroy --target sagemaker --region {region}' first to move it."
    )
