"""`scarab export` with [log] enabled describes the prediction log as deploy makes it once
the stage's prediction-db-url secret is stored (moto server): each function's log
variables and its role's scarab-read-prediction-db policy. With [log] enabled = false
the template has none of it. `scarab build --log` packs the log's packages, so an
exported stack's zips can log."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from scarab.cli import app
from typer.testing import CliRunner

from tests.deploy.conftest import ANALYZE, MODELS, client, inline_policies
from tests.deploy.test_export import ACCOUNT, REGION, export, of_type, resolve
from tests.deploy.test_prediction_log_deploy import (
    LOG_ENV,
    LOG_POLICY,
    LOG_TOPS,
    PARAM,
    URL,
)

pytestmark = pytest.mark.emulator


def _policies(template: dict[str, Any], role: str, refs: dict[str, str]) -> dict[str, Any]:
    return {
        p["PolicyName"]: resolve(p["PolicyDocument"], refs)
        for p in of_type(template, "AWS::IAM::RolePolicy").values()
        if p["RoleName"] == {"Ref": role}
    }


def test_the_exported_log_is_what_deploy_makes_with_its_secret_stored(
    run_deploy: Any, aws: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client("ssm", aws).put_parameter(Name=PARAM, Value=URL, Type="SecureString")
    run_deploy()
    template = json.loads(export(project, monkeypatch, "--format", "cloudformation"))
    refs = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}
    iam, lam = client("iam", aws), client("lambda", aws)
    resources = template["Resources"]
    for key, function in (("Analyze", ANALYZE), ("Models", MODELS)):
        live = inline_policies(iam, f"{function}-role")
        assert LOG_POLICY in live
        assert _policies(template, f"{key}Role", refs) == live
        env = resources[f"{key}Function"]["Properties"]["Environment"]["Variables"]
        cfg = lam.get_function_configuration(FunctionName=function)
        assert {k: env.get(k) for k in LOG_ENV} == LOG_ENV
        assert resolve(env, refs) == cfg["Environment"]["Variables"]
    assert URL not in json.dumps(template)


def test_with_the_log_disabled_the_template_has_none_of_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text() + "\n[log]\nenabled = false\n")
    template = json.loads(export(project, monkeypatch, "--format", "sam"))
    for key in ("Analyze", "Models"):
        refs = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}
        assert LOG_POLICY not in _policies(template, f"{key}Role", refs)
        env = template["Resources"][f"{key}Function"]["Properties"]["Environment"]["Variables"]
        assert not set(LOG_ENV) & set(env)


@pytest.mark.slow
def test_build_log_packs_the_log_packages(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    built = {}
    for argv in (["--log"], []):
        result = CliRunner().invoke(app, ["build", "--flavor", "lambda", "--json", *argv])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["log"] is bool(argv)
        for name, fields in data["functions"].items():
            with zipfile.ZipFile(fields["path"]) as zf:
                built[name, bool(argv)] = {n.split("/")[0] for n in zf.namelist()}
    for name in ("analyze", "models"):
        assert built[name, True] >= LOG_TOPS, name
        assert not built[name, False] & LOG_TOPS, name
