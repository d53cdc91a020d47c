"""Review 5 (adversarial): a deploy SIGKILLed at its last step leaves the stage lock record.

The next run finds nothing to do, so it never takes the lock (an up-to-date deploy makes no
mutating call, the lock's included) and nothing said the record was there: commands on
other machines then found the stage locked until the timeout. `stale_lock_notice` is the
read-only check such a run makes, naming 'scarab unlock'.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from scarab.aws import Aws
from scarab.config import load_config
from scarab.deploy.lock import Holder, stale_lock_notice
from scarab.deploy.state import lock_path
from scarab.naming import Names

from tests.deploy.conftest import LOCK, REPO, client, seed_lock

pytestmark = pytest.mark.emulator

TIMEOUT = 15  # [lock] timeout_minutes

# A deploy in a child process, SIGKILLed as it is about to release the stage lock: every
# change is made, the state recorded, and the lock record left behind.
CHILD = """
import os, signal, sys
from pathlib import Path
import boto3
from scarab.config import load_config
from scarab.deploy import deploy

url, project = sys.argv[1], Path(sys.argv[2])

def kill(params, **_):
    if params.get("Name", "").endswith("/lock"):
        print("killed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

session = boto3.Session(region_name="us-east-1")
session.events.register("before-parameter-build.ssm.DeleteParameter", kill)
deploy(load_config(project), project_dir=project, endpoint_url=url, session=session)
print("not killed", flush=True)
"""


def _aws(url: str) -> Aws:
    return Aws("us-east-1", endpoint_url=url, session=boto3.Session(region_name="us-east-1"))


def _names(project: Path) -> Names:
    config = load_config(project)
    return Names(config.app, config.stage)


def _dead_pid() -> int:
    """The pid of a process of this machine that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    return proc.pid


def lock_record(aws) -> str | None:
    try:
        return str(client("ssm", aws).get_parameter(Name=LOCK)["Parameter"]["Value"])
    except client("ssm", aws).exceptions.ParameterNotFound:
        return None


def test_a_deploy_killed_at_its_last_step_is_reported_by_the_next_up_to_date_run(
    run_deploy, aws, project: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, aws.url, str(project)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == -9 and done.stdout.strip() == "killed", done.stdout + done.stderr
    left = lock_record(aws)
    assert left is not None
    # The next deploy has nothing to do: it makes no mutating call and leaves the record...
    result, recorder = run_deploy()
    assert result.up_to_date, result.plan
    assert recorder.mutating == []
    assert lock_record(aws) == left
    # ...and warns (stderr, DeployResult.warnings) that a dead run left it.
    assert any("'scarab unlock'" in w and LOCK in w for w in result.warnings), result.warnings
    # This is what it can say about it, read-only.
    ro = _aws(aws.url)
    notice = stale_lock_notice(ro, _names(project), project, TIMEOUT)
    assert notice is not None
    holder = Holder.parse(left)
    assert holder is not None
    assert f"The stage lock {LOCK} is left over from 'deploy'" in notice
    assert f"its process (pid {holder.pid}) is no longer running on this machine" in notice
    assert "'scarab unlock'" in notice
    assert f"{TIMEOUT} min old) commands on other machines find the stage locked" in notice
    assert ro.log.mutating == [] and ro.log.calls == ["ssm.GetParameter"]
    assert lock_record(aws) == left


def test_a_record_older_than_the_timeout_is_reported(aws, project: Path) -> None:
    record = seed_lock(aws, minutes_ago=60)
    ro = _aws(aws.url)
    notice = stale_lock_notice(ro, _names(project), project, TIMEOUT)
    assert notice == (
        f"The stage lock {LOCK} is left over from 'deploy' by ci@runner-1 (pid 4242) since"
        f" {json.loads(record)['started']} (60 min ago): it is 60 min old, older than"
        f" [lock] timeout_minutes ({TIMEOUT} min), so its run most likely crashed. Nothing"
        " needed changing, so this run left it in place. Remove it with 'scarab unlock';"
        " until then the next command that changes the stage takes it over."
    )
    assert ro.log.mutating == []
    assert lock_record(aws) == record


@pytest.mark.parametrize(
    ("what", "seed"),
    [
        ("no record", None),
        ("a fresh record from another machine", {"minutes_ago": 2}),
        ("a live process on this machine", {"minutes_ago": 2, "pid": os.getpid()}),
    ],
)
def test_a_lock_that_may_be_live_is_not_reported(
    aws, project: Path, what: str, seed: dict[str, int] | None
) -> None:
    if seed is not None:
        host = socket.gethostname() if "pid" in seed else "runner-1"
        seed_lock(aws, host=host, **seed)
    assert stale_lock_notice(_aws(aws.url), _names(project), project, TIMEOUT) is None, what


def test_a_dead_process_of_this_machine_is_reported_at_once(aws, project: Path) -> None:
    pid = _dead_pid()
    seed_lock(aws, minutes_ago=1, host=socket.gethostname(), pid=pid)
    notice = stale_lock_notice(_aws(aws.url), _names(project), project, TIMEOUT)
    assert notice is not None
    assert f"its process (pid {pid}) is no longer running on this machine" in notice
    assert "'scarab unlock'" in notice


def test_a_command_holding_the_local_lock_now_is_left_to_take_it_over(aws, project: Path) -> None:
    """A scarab command of this checkout holds the file lock: it is about to take the stale
    record over itself, so there is nothing to advise."""
    names = _names(project)
    seed_lock(aws, minutes_ago=60)
    ro = _aws(aws.url)
    path = lock_path(project, names.stage, ro.endpoint_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(Holder.me("deploy").dump())  # what stage_lock writes while it holds it
    assert stale_lock_notice(ro, names, project, TIMEOUT) is None
    # The same file left by a process that is gone (a SIGKILLed run) does not count.
    path.write_text(dataclasses.replace(Holder.me("deploy"), pid=_dead_pid()).dump())
    assert stale_lock_notice(ro, names, project, TIMEOUT) is not None
