"""The `.scarab/` directory of a project: the one place its layout is spelled.

    .scarab/build/zip/<sha256hex>.zip   every function zip built (artifacts)
    .scarab/build/sagemaker/<hex>.tar.gz every model.tar.gz packed for --target sagemaker
    .scarab/cache/                      pip downloads and wheels (SCARAB_CACHE_DIR overrides)
    .scarab/state/<stage>.json          the state record of a stage on real AWS
    .scarab/local/state/<stage>.json    ... on an emulator (kept apart from real ids)
    .scarab/local/emulator.json         the running embedded emulator's address
    .scarab/local/serve.json            the running `scarab serve` (scarab.serve.record)
    .scarab/local/functions/<hex>/      zips extracted for `scarab serve`'s workers
    .scarab/local/logs/                 `scarab serve`'s function logs
    .scarab/local/predictions.db        `scarab serve`'s prediction log (SQLite)

Paths are relative to the project directory.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(".scarab")
LOCAL = ROOT / "local"
ZIP_DIR = ROOT / "build" / "zip"
SAGEMAKER_DIR = ROOT / "build" / "sagemaker"
CACHE_DIR = ROOT / "cache"
EMULATOR_RECORD = LOCAL / "emulator.json"
SERVE_RECORD = LOCAL / "serve.json"
FUNCTIONS_DIR = LOCAL / "functions"
LOG_DIR = LOCAL / "logs"
PREDICTIONS_DB = LOCAL / "predictions.db"


def state_dir(*, local: bool) -> Path:
    """Where the stages' state records live: apart for emulators, so local ids never
    overwrite real ones."""
    return (LOCAL if local else ROOT) / "state"
