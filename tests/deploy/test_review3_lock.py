"""Review 3 (adversarial): the stage lock. Each test fails on today's main.

- SIGTERM (a CI job cancelled, `timeout`, `docker stop`) mid-deploy leaves the lock record,
  blocking the stage for `[lock] timeout_minutes`; Ctrl-C releases it.
- `scarab deploy --force-unlock` on a stage with nothing to change ignores the flag,
  though the locked-stage advice names it as the way to clear a dead run's lock.
- Two runs taking over one stale lock at once can both end up "holding" it: the second
  deletes the record the first has just written (read-compare-delete is not atomic).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from scarab.aws import Aws
from scarab.config import load_config
from scarab.deploy.lock import stage_lock
from scarab.errors import ScarabError
from scarab.naming import Names

from tests.deploy.conftest import LOCK, client, seed_lock
from tests.support.serve_process import scarab_cli

pytestmark = pytest.mark.emulator


def lock_record(aws) -> str | None:
    try:
        return str(client("ssm", aws).get_parameter(Name=LOCK)["Parameter"]["Value"])
    except client("ssm", aws).exceptions.ParameterNotFound:
        return None


@pytest.mark.slow
def test_sigterm_mid_deploy_releases_the_lock(aws, project: Path) -> None:
    script = Path(sys.executable).with_name("scarab")
    proc = subprocess.Popen(
        [str(script), "deploy"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    timer = threading.Timer(240, proc.kill)  # bound the wait for a step line
    timer.start()
    try:
        for line in proc.stderr:
            seen.append(line)
            if "[4/" in line:  # executing: the lock is held
                proc.send_signal(signal.SIGTERM)
                break
        proc.communicate(timeout=120)
    finally:
        timer.cancel()
    assert any("[4/" in line for line in seen), "".join(seen)
    assert lock_record(aws) is None, "SIGTERM left the stage locked for the lock timeout"


def test_force_unlock_clears_a_dead_runs_lock_even_with_nothing_to_deploy(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()
    seed_lock(aws, minutes_ago=2)  # a run that died; nothing in scarab.toml changed since
    result = scarab_cli(project, "deploy", "--force-unlock")
    assert result.returncode == 0, result.stderr
    assert lock_record(aws) is None, "--force-unlock was ignored: " + result.stdout
    rotate = scarab_cli(project, "keys", "rotate")
    assert rotate.returncode == 0, rotate.stderr


def _aws(url: str) -> Aws:
    return Aws("us-east-1", endpoint_url=url, session=boto3.Session(region_name="us-east-1"))


def test_two_takeovers_of_one_stale_lock_do_not_both_hold_it(
    aws, project: Path, tmp_path: Path
) -> None:
    """Machine A and machine B (two checkouts: only the account's lock is shared) both find
    the same stale record. B's takeover is delayed between its read and its delete, and A
    takes the lock in that gap; B must then not be let in as well."""
    other = tmp_path / "machine-b"
    shutil.copytree(project, other)
    config = load_config(project)
    names = Names(config.app, config.stage)
    seed_lock(aws, minutes_ago=60)
    a_aws, b_aws = _aws(aws.url), _aws(aws.url)
    inside: list[str] = []
    a_stack = contextlib.ExitStack()
    fired = False

    def a_takes_over_first(**_: Any) -> None:
        nonlocal fired
        if fired:
            return
        fired = True
        # B has read the stale record and is about to delete it; A completes its takeover.
        a_stack.enter_context(
            stage_lock(a_aws, names, project, command="deploy", timeout_minutes=15)
        )
        inside.append("A")

    b_aws.session.events.register("before-call.ssm.DeleteParameter", a_takes_over_first)
    try:
        # B being refused (StageLocked) is the right answer.
        with (
            contextlib.suppress(ScarabError),
            stage_lock(b_aws, names, other, command="deploy", timeout_minutes=15),
        ):
            inside.append("B")
    finally:
        b_aws.session.events.unregister("before-call.ssm.DeleteParameter", a_takes_over_first)
        a_stack.close()
    assert fired, "the scenario did not happen: B never deleted a stale record"
    assert inside == ["A"], f"both runs hold the stage lock: {inside}"
