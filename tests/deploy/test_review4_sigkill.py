"""Review 4: a deploy killed (SIGKILL) mid-run, then re-run, converges to the config.

The child process deploys with a botocore hook on its own session that SIGKILLs the
process right after the N-th mutating call succeeds: the worst moment, AWS changed and
nothing after the call (state record, tags) happened.

Found: the function's environment is updated in one step and the `scarab:managed-env`
tag (which names the variables scarab set) in a later one, and the state record is
written only after a step ends. Killed in between, a variable the config just added is
on the function but recorded nowhere as scarab's; when the config drops it again, the
re-run keeps it for ever ("not scarab's") and reports the stage up to date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO, client

CHILD = """
import os, signal, sys
from pathlib import Path
import boto3
from scarab.aws import is_mutating
from scarab.config import load_config
from scarab.deploy import deploy

url, project, kill_at = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
seen = 0

def after_call(model, **_):
    # kill_at: the N-th mutating call, or the first call of that operation name.
    global seen
    if is_mutating(model.name):
        seen += 1
        if str(seen) == kill_at or model.name == kill_at:
            print(model.service_model.service_name + "." + model.name, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

session = boto3.Session(region_name="us-east-1")
session.events.register("after-call", after_call)
deploy(load_config(project), project_dir=project, endpoint_url=url, session=session)
print("not killed", flush=True)
"""


def deploy_killed_after(aws_url: str, project: Path, kill_at: int | str) -> str:
    """Run a deploy in a child process, SIGKILLed after mutating call `kill_at` (a number,
    or the name of the operation)."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, aws_url, str(project), str(kill_at)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == -9, done.stdout + done.stderr
    return done.stdout.strip()


@pytest.mark.emulator
def test_a_variable_added_by_a_killed_run_goes_when_the_config_drops_it(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()
    toml = project / "scarab.toml"
    original = toml.read_text()
    toml.write_text(original.replace('FEATURE_X = "on"', 'FEATURE_X = "on", NEWV = "temp"'))
    # Killed right after the configuration update, before its step ends.
    killed = deploy_killed_after(aws.url, project, "UpdateFunctionConfiguration")
    assert killed == "lambda.UpdateFunctionConfiguration"
    lam = client("lambda", aws)
    env = lam.get_function_configuration(FunctionName="scarab-test-analyze")["Environment"][
        "Variables"
    ]
    assert env["NEWV"] == "temp"
    toml.write_text(original)  # the change is backed out
    result, _ = run_deploy()
    env = lam.get_function_configuration(FunctionName="scarab-test-analyze")["Environment"][
        "Variables"
    ]
    assert "NEWV" not in env, result.plan
    assert env["FEATURE_X"] == "on" and env["LOG_LEVEL"] == "DEBUG"
