"""Review 12 (adversarial): a deploy that publishes a version of a function whose `live`
alias holds a split (`scarab split`) moves the alias with an empty RoutingConfig, which
ends the split. It did so silently: no warning, and the plan's step said only "2 -> the
new version". The split may be the point of an A/B test someone runs for days, so the
deploy must say that it ended it and how to hold it again."""

from __future__ import annotations

import pytest
from scarab.cli import app
from typer.testing import CliRunner

from tests.deploy.conftest import MODELS, client
from tests.deploy.release_support import alias

pytestmark = pytest.mark.emulator


def _split(aws) -> None:
    client("lambda", aws).update_alias(
        FunctionName=MODELS, Name="live", FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.1}},
    )  # fmt: skip


def test_a_deploy_that_ends_a_split_says_so(run_deploy, aws) -> None:
    run_deploy()
    run_deploy({"functions.models.memory": 1024})
    _split(aws)
    plan, _ = run_deploy({"functions.models.memory": 1088}, dry_run=True)
    [step] = [s for s in plan.plan if s.resource == f"lambda.alias {MODELS}:live"]
    assert "ends the split: version 1 at 10%" in step.reason
    result, _ = run_deploy({"functions.models.memory": 1088})
    assert alias(aws, MODELS) == ("3", {})
    [warning] = [w for w in result.warnings if "split" in w]
    assert "version 1 at 10%" in warning and "scarab split --function models" in warning


def test_a_deploy_that_leaves_the_split_warns_nothing(run_deploy, aws, project, monkeypatch):
    run_deploy()
    run_deploy({"functions.models.memory": 1024})
    _split(aws)
    monkeypatch.chdir(project)
    # A change of the analyze function only: the models split stays, nothing to say.
    (project / "scarab.toml").write_text(
        (project / "scarab.toml")
        .read_text()
        .replace(
            "[api]",
            "[functions.models]\nmemory = 1024\n\n[functions.analyze]\nmemory = 640\n\n[api]",
        )
    )
    result = CliRunner().invoke(app, ["deploy"])
    assert result.exit_code == 0, result.output
    assert alias(aws, MODELS) == ("2", {"1": 0.1})
    assert "split" not in result.output
