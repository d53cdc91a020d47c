"""The state record of a stage: ids and ARNs, never secrets.

Real AWS: `.scarab/state/<stage>.json`. Emulators (loopback endpoints, --local):
`.scarab/local/state/<stage>.json`, so local ids never overwrite real ones.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from scarab.aws import is_emulator


@dataclass
class StageState:
    app: str = ""
    stage: str = ""
    region: str = ""
    account_id: str = ""
    endpoint_url: str | None = None
    function_name: str | None = None
    function_arn: str | None = None
    role_arn: str | None = None
    rest_api_id: str | None = None
    usage_plan_id: str | None = None
    api_key_ids: list[str] = field(default_factory=list)
    log_group: str | None = None
    url: str | None = None
    code_sha256: str | None = None
    image_uri: str | None = None
    managed_env: list[str] = field(default_factory=list)
    updated_at: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def state_path(project_dir: Path, stage: str, endpoint_url: str | None) -> Path:
    base = project_dir / ".scarab"
    if is_emulator(endpoint_url):
        base = base / "local"
    return base / "state" / f"{stage}.json"


def load_state(project_dir: Path, stage: str, endpoint_url: str | None) -> StageState:
    path = state_path(project_dir, stage, endpoint_url)
    try:
        return StageState.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return StageState()


def save_state(project_dir: Path, state: StageState) -> Path:
    path = state_path(project_dir, state.stage, state.endpoint_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(state), fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def delete_state(project_dir: Path, stage: str, endpoint_url: str | None) -> None:
    state_path(project_dir, stage, endpoint_url).unlink(missing_ok=True)
