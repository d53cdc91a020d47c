"""The README's "Rollback, split and canary" commands, run in order with the real CLI on a
deployed stage, and `scarab deploy --canary/--bake` from the command line."""

from __future__ import annotations

import inspect
import json
import re
import shlex
from pathlib import Path

import pytest
from scarab.cli import app
from scarab.deploy import deploy
from typer.testing import CliRunner

from tests.deploy.conftest import ANALYZE, client
from tests.deploy.release_support import (
    alarm_once_canary_starts,
    alias,
    deployed,
    make_live,
    publish,
)

pytestmark = pytest.mark.emulator

README = Path(__file__).resolve().parents[2] / "README.md"
# deploy() publishes versions and starts canaries once h/versions is merged.
CANARY_DEPLOY = "canary_percent" in inspect.signature(deploy).parameters
needs_canary_deploy = pytest.mark.skipif(
    not CANARY_DEPLOY, reason="deploy(canary_percent=...) comes with the versions branch"
)


def readme_commands() -> list[list[str]]:
    """argv of each `scarab ...` line in the section's code blocks, comments dropped."""
    text = README.read_text()
    start = text.index("\n## Rollback, split and canary\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"^```\n(.*?)^```$", text[start:end], flags=re.MULTILINE | re.DOTALL)
    return [shlex.split(line, comments=True) for b in blocks for line in b.splitlines() if line]


def scarab(argv: list[str]):
    return CliRunner().invoke(app, argv)


def test_the_readme_commands_do_what_it_says(run_deploy, aws, project, monkeypatch) -> None:
    deployed(run_deploy, aws)
    publish(aws, 3)
    make_live(aws, "3")
    monkeypatch.chdir(project)
    lines = readme_commands()
    assert [a[:2] for a in lines] == [["scarab", "rollback"]] * 2 + [["scarab", "split"]] * 2 + [
        ["scarab", "rollback"], ["scarab", "deploy"],
    ]  # fmt: skip
    # After each line: the alias's (version, weights).
    expected = [("2", {}), ("3", {}), ("3", {"2": 0.1}), ("3", {}), ("2", {})]
    for argv, want in zip(lines[:5], expected, strict=True):
        result = scarab(argv[1:])
        assert result.exit_code == 0, (argv, result.output)
        assert alias(aws) == want, argv
    assert json.loads(result.output)["after"]["version"] == "2"  # the --json line
    if CANARY_DEPLOY:  # the canary line, with a bake of one second instead of 300
        argv = lines[5][1:]
        argv[argv.index("--bake") + 1] = "1"
        (project / "lambda" / "lens" / "canary_marker.py").write_text("CHANGED = True\n")
        result = scarab(argv)
        assert result.exit_code == 0, result.output
        assert "Promoted the canary" in result.output


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--canary", "150"], "--canary must be less than 100"),
        (["--canary", "0"], "--canary must be more than 0"),
        (["--canary", "nan"], "--canary must be a finite number"),
        (["--canary", "-5"], "--canary must be more than 0"),
        (["--canary", "10", "--bake", "-1"], "--bake must be 0 seconds or more"),
        (["--canary", "10", "--bake", "soon"], "--bake must be a number of seconds"),
        (["--bake", "10"], "--bake SECONDS needs --canary PERCENT"),
    ],
)
def test_deploy_refuses_bad_canary_flags_before_deploying(aws, project, monkeypatch, argv, says):
    monkeypatch.chdir(project)
    result = scarab(["deploy", *argv])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert client("lambda", aws).list_functions()["Functions"] == []  # nothing was deployed


@needs_canary_deploy
def test_deploy_canary_rolls_back_on_an_alarm(aws, project, monkeypatch) -> None:
    monkeypatch.chdir(project)
    assert scarab(["deploy"]).exit_code == 0  # the first version: all traffic
    before = alias(aws)
    # The deploy made the stage's alarms (on by default), this one among them.
    assert client("cloudwatch", aws).describe_alarms(AlarmNames=["scarab-test-analyze-errors"])[
        "MetricAlarms"
    ]
    (project / "lambda" / "lens" / "canary_marker.py").write_text("CHANGED = True\n")
    # The alarm fires once the canary serves (an alarm in ALARM before it refuses the
    # canary: test_review12_canary_alarm).
    with alarm_once_canary_starts(aws, "scarab-test-analyze-errors", "2 errors > 1"):
        result = scarab(["deploy", "--canary", "10", "--bake", "30", "--json"])
    assert result.exit_code == 1, result.output
    assert "alarm scarab-test-analyze-errors is in ALARM: 2 errors > 1" in result.output
    assert alias(aws) == (before[0], {})
    assert client("lambda", aws).get_function(FunctionName=ANALYZE)
