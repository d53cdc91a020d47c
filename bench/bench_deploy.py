"""Deploy benchmark: a first deploy and a no-op redeploy against the local emulator.

Reports wall time and the number of AWS calls (all, and mutating) of each.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from scarab.aws import Aws
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.emulator import start_embedded

REPO = Path(__file__).resolve().parents[1]


def _run(project: Path, url: str, label: str) -> None:
    config = load_config(project)
    aws = Aws(config.resolved_region, endpoint_url=url)
    start = time.perf_counter()
    result = deploy(config, project_dir=project, aws=aws)
    elapsed = time.perf_counter() - start
    print(
        f"{label:<18} {elapsed:6.2f} s  {result.aws_calls:3d} AWS calls"
        f"  {result.mutating_calls:3d} mutating  {len(result.plan):3d} plan steps"
        f"  up_to_date={result.up_to_date}",
        flush=True,
    )


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.pop("AWS_PROFILE", None)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copytree(
            REPO / "lambda", project / "lambda", ignore=shutil.ignore_patterns("__pycache__")
        )
        (project / "scarab.toml").write_text('app = "bench"\nstage = "dev"\n')
        emulator = start_embedded()
        try:
            _run(project, emulator.url, "first deploy")
            _run(project, emulator.url, "no-op redeploy")
            _run(project, emulator.url, "no-op redeploy")
        finally:
            emulator.stop()


if __name__ == "__main__":
    main()
