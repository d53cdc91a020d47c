"""Review 12 (adversarial): an alarm already in ALARM before a canary starts (from the
traffic the live version served) rolled back a healthy canary at the bake's first look,
blaming it: `scarab deploy --canary` published the version, gave it its share, then
exited 1 with "The canary was rolled back: alarm ... is in ALARM" although the new
version had served nothing. The deploy now refuses the canary before any change, naming
the alarm, and says what to do."""

from __future__ import annotations

import pytest
from scarab.cli import app
from typer.testing import CliRunner

from tests.deploy.conftest import ANALYZE, client
from tests.deploy.release_support import alias

pytestmark = pytest.mark.emulator

ALARM = "scarab-test-analyze-errors"


def _versions(aws) -> list[str]:
    got = client("lambda", aws).list_versions_by_function(FunctionName=ANALYZE)["Versions"]
    return [v["Version"] for v in got if v["Version"] != "$LATEST"]


def test_an_alarm_in_alarm_before_the_canary_refuses_it(aws, project, monkeypatch) -> None:
    monkeypatch.chdir(project)
    runner = CliRunner()
    assert runner.invoke(app, ["deploy"]).exit_code == 0  # version 1, the alarms
    cw = client("cloudwatch", aws)
    cw.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="old errors of v1")
    (project / "lambda" / "lens" / "canary_marker.py").write_text("CHANGED = True\n")
    result = runner.invoke(app, ["deploy", "--canary", "10", "--bake", "1"])
    assert result.exit_code == 1, result.output
    assert f"Alarm {ALARM} is in ALARM already (old errors of v1)" in result.output
    assert "Nothing was changed" in result.output and "without --canary" in result.output
    assert "rolled back" not in result.output
    assert alias(aws) == ("1", {}) and _versions(aws) == ["1"]
    # Once the alarm is OK again, the same canary runs and is promoted.
    cw.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="quiet again")
    result = runner.invoke(app, ["deploy", "--canary", "10", "--bake", "1"])
    assert result.exit_code == 0, result.output
    assert "Promoted the canary" in result.output and alias(aws) == ("2", {})


def test_a_first_deploy_with_a_canary_is_not_refused_for_alarms(aws, project, monkeypatch):
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["deploy", "--canary", "10", "--bake", "1"])
    assert result.exit_code == 0, result.output
    assert "no canary to bake" in result.output and alias(aws) == ("1", {})
