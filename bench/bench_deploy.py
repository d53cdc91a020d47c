"""Deploy benchmark: a first deploy and a no-op redeploy against the local emulator.

Reports wall time and the number of AWS calls (all, and mutating) of each.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from scarab.artifacts import build_zip
from scarab.aws import Aws
from scarab.config import load_config
from scarab.deploy import Flavor, deploy
from scarab.emulator import start_embedded

REPO = Path(__file__).resolve().parents[1]


def _run(project: Path, url: str, label: str, stage: str, flavor: Flavor) -> None:
    config = load_config(project, {"stage": stage})
    aws = Aws(config.resolved_region, endpoint_url=url)
    start = time.perf_counter()
    result = deploy(config, project_dir=project, aws=aws, flavor=flavor)
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
        # The lambda flavor's wheels come from PyPI once, then from the shared cache.
        os.environ.setdefault("SCARAB_CACHE_DIR", str(REPO / ".scarab" / "cache"))
        start = time.perf_counter()
        built = build_zip(project, flavor="lambda")
        print(
            f"lambda zip build   {time.perf_counter() - start:6.2f} s"
            f"  {built.size / 2**20:.1f} MB zipped, {built.unzipped_size / 2**20:.1f} MB"
            f" unzipped (reused={built.reused})",
            flush=True,
        )
        emulator = start_embedded()
        try:
            print("-- local flavor (what --local and scarab serve deploy)")
            _run(project, emulator.url, "first deploy", "dev", "local")
            _run(project, emulator.url, "no-op redeploy", "dev", "local")
            _run(project, emulator.url, "no-op redeploy", "dev", "local")
            print("-- lambda flavor (manylinux wheels; over 50 MB, so through S3)")
            _run(project, emulator.url, "first deploy", "full", "lambda")
            _run(project, emulator.url, "no-op redeploy", "full", "lambda")
        finally:
            emulator.stop()


if __name__ == "__main__":
    main()
