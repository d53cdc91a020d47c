"""The SageMaker target's state record: `<stage>.sagemaker.json` beside the stage's own
(.scarab/state/, or .scarab/local/state/ on an emulator). Names and ARNs, no secrets."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from scarab.deploy.state import state_path


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
