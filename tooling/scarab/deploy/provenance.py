"""Where a deploy's code came from (recorded in each version's description): the
project's git commit, with "-dirty" when it has uncommitted changes, and scarab's
version. Read-only git calls; a project that is not a git checkout (or a machine with
no git) records no commit."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from scarab import __version__
from scarab.deploy.planner_versions import Provenance

# Generous: git answers in milliseconds, but a cold disk on a loaded machine is slow.
_GIT_TIMEOUT_S = 30


def _git(project_dir: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    # The caller's GIT_DIR or GIT_WORK_TREE would point git at another repository.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        done = subprocess.run(
            [git, "-C", str(project_dir), *args],
            capture_output=True, text=True, timeout=_GIT_TIMEOUT_S, env=env, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_commit(project_dir: Path) -> str | None:
    """HEAD's commit of the checkout `project_dir` is in, "-dirty" appended when a
    tracked file is changed or an untracked one is not ignored; None: not a checkout."""
    head = _git(project_dir, "rev-parse", "--verify", "HEAD")
    if not head or not head.strip():
        return None
    status = _git(project_dir, "status", "--porcelain")
    dirty = status is None or bool(status.strip())
    return head.strip() + ("-dirty" if dirty else "")


def project_provenance(project_dir: Path) -> Provenance:
    return Provenance(commit=git_commit(project_dir), scarab=__version__)
