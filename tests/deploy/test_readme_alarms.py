"""README's "Alarms and budget" section, run: its scarab.toml block deployed to the moto
server, then its `scarab alarms` example run with the real CLI and compared line by line
(one alarm set to ALARM with the example's reason, as CloudWatch would)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scarab.cli import app
from typer.testing import CliRunner

from tests.deploy.conftest import REPO, client
from tests.deploy.test_alarms_deploy import Deploy
from tests.support.moto_server import MotoServer

FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


def section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Alarms and budget")
    return text[start : text.index("\n## ", start + 1)]


def blocks(kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(section()) if lang == kind]


def test_readme_alarms_example(
    aws: MotoServer, project: Path, run_deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    [toml] = blocks("toml")
    [console] = blocks("console")
    path = project / "scarab.toml"
    # The README's stage is dev (the default); the fixture's timeout is the default's.
    path.write_text(path.read_text().replace('stage = "test"', 'stage = "dev"') + toml)
    run_deploy()
    lines = console.splitlines()
    assert lines[0] == "$ scarab alarms"
    reason = next(x.strip() for x in lines[1:] if not x.startswith("scarab-"))
    state = next(x.split()[0] for x in lines[1:] if " ALARM " in x)
    client("cloudwatch", aws).set_alarm_state(
        AlarmName=state, StateValue="ALARM", StateReason=reason
    )
    monkeypatch.chdir(project)
    got = CliRunner().invoke(app, ["alarms", "--endpoint-url", aws.url])
    assert got.exit_code == 0, got.output
    assert got.output.splitlines() == lines[1:]
    budget = client("budgets", aws).describe_budget(
        AccountId="123456789012", BudgetName="scarab-dev-monthly"
    )["Budget"]
    assert float(budget["BudgetLimit"]["Amount"]) == 20.0
