"""The packaged registry.json is written by several trainers: each replaces only its own entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def merge_entries(out_dir: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Write `entries` into out_dir/registry.json: an entry of the same name is replaced in
    place, a new one is appended, every other model is kept as it was."""
    path = out_dir / "registry.json"
    models: list[dict[str, Any]] = (
        json.loads(path.read_text(encoding="utf-8"))["models"] if path.is_file() else []
    )
    fresh = {entry["name"]: entry for entry in entries}
    merged = [fresh.pop(model["name"], model) for model in models]
    merged.extend(entry for entry in entries if entry["name"] in fresh)
    registry = {"models": merged}
    path.write_text(json.dumps(registry, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return registry
