"""The state record of a stage's Fargate service: ids and ARNs, never a key value.

Kept beside the Lambda stage's record (deploy/state.py), keyed by target:
`.scarab/[local/]state/<stage>.fargate.json`. Deploy and destroy find every resource by
its name; the record says what the last deploy left, for people and for `status`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from scarab import layout
from scarab.aws import is_emulator

TARGET = "fargate"


@dataclass
class FargateRecord:
    app: str
    stage: str
    region: str
    account_id: str
    endpoint_url: str | None
    cluster: str
    service: str
    task_definition_arn: str | None
    security_group_id: str | None
    secret_arn: str | None
    image_uri: str
    updated_at: str = ""


def record_path(project_dir: Path, stage: str, endpoint_url: str | None) -> Path:
    directory = project_dir / layout.state_dir(local=is_emulator(endpoint_url))
    return directory / f"{stage}.{TARGET}.json"


def save_record(project_dir: Path, record: FargateRecord) -> Path:
    """Write the record atomically (a crash mid-write leaves the old one)."""
    record.updated_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    path = record_path(project_dir, record.stage, record.endpoint_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(record), fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def recorded_region(project_dir: Path, stage: str, endpoint_url: str | None) -> str | None:
    """The region the last deploy recorded (None: no readable record)."""
    try:
        data = json.loads(record_path(project_dir, stage, endpoint_url).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    region = data.get("region") if isinstance(data, dict) else None
    return region if isinstance(region, str) and region else None


def delete_record(project_dir: Path, stage: str, endpoint_url: str | None) -> None:
    record_path(project_dir, stage, endpoint_url).unlink(missing_ok=True)
