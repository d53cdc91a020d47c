"""The prediction log in AWS: on when [log] enabled finds its database URL stored in the
stage's secrets backend, through the moto server. Off, a function's zip carries none of
the log's packages and its environment and role nothing of the log; `scarab secrets set
prediction-db-url --stdin` then a deploy turns it on (variables, a role statement that
reads exactly that parameter, the packages); `[log] enabled = false` takes it all out."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from scarab.artifacts import zip_path
from scarab.cli import app
from typer.testing import CliRunner

from tests.deploy.conftest import ANALYZE, MODELS, client
from tests.log.test_readme_log import commands
from tests.support.moto_server import MotoServer

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

PARAM = "/scarab/scarab/test/prediction-db-url"
PASSWORD = "Pw-never-shown-9f2"
URL = f"postgresql://scarab:{PASSWORD}@db.internal.example:5432/predictions"
LOG_POLICY = "scarab-read-prediction-db"
LOG_ENV = {
    "SCARAB_LOG_ENABLED": "true",
    "SCARAB_STAGE": "test",
    "PREDICTION_DB_URL_PARAM": PARAM,
    "PREDICTION_DB_URL_BACKEND": "ssm",
}
LOG_TOPS = {"sqlalchemy", "alembic", "pg8000", "pymysql"}


def _env(aws: MotoServer, function: str) -> dict[str, str]:
    cfg = client("lambda", aws).get_function_configuration(FunctionName=function)
    return dict((cfg.get("Environment") or {}).get("Variables") or {})


def _inline(aws: MotoServer, function: str) -> dict[str, Any]:
    iam = client("iam", aws)
    role = f"{function}-role"
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    return {n: iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names}


def _tops(project: Path, result: Any, key: str) -> set[str]:
    sha = result.functions[key]["code_sha256"]
    with zipfile.ZipFile(zip_path(project, base64.b64decode(sha).hex())) as zf:
        return {n.split("/")[0] for n in zf.namelist()}


def _assert_off(aws: MotoServer, project: Path, result: Any) -> None:
    for key, function in (("analyze", ANALYZE), ("models", MODELS)):
        env = _env(aws, function)
        assert not set(LOG_ENV) & set(env), env
        assert LOG_POLICY not in _inline(aws, function)
        tops = _tops(project, result, key)
        assert "pydantic" in tops and not LOG_TOPS & tops, key


def test_the_log_follows_its_secret_and_log_enabled(
    run_deploy: Any, aws: MotoServer, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    off, _ = run_deploy(flavor="lambda")
    _assert_off(aws, project, off)
    notices = [w for w in off.warnings if "prediction log is off" in w]
    assert len(notices) == 1, off.warnings  # said once, with how to turn it on
    assert "scarab secrets set prediction-db-url --stdin" in notices[0]
    assert PARAM in notices[0] and "scarab deploy" in notices[0]

    monkeypatch.chdir(project)
    (argv,) = commands("scarab secrets set prediction-db-url")  # README's own line
    stored = CliRunner().invoke(app, [*argv[1:], "--endpoint-url", aws.url], input=URL + "\n")
    assert stored.exit_code == 0, stored.output
    assert PASSWORD not in stored.output and "scarab deploy" in stored.output
    param = client("ssm", aws).get_parameter(Name=PARAM, WithDecryption=True)["Parameter"]
    assert param["Type"] == "SecureString" and param["Value"] == URL

    # The plan shows the change as ordinary updates of what exists.
    planned, _ = run_deploy(flavor="lambda", dry_run=True)
    shown = [s.describe() for s in planned.plan]
    assert any(f"lambda.function {ANALYZE}" in s and "update" in s for s in shown), shown
    assert any(f"inline {LOG_POLICY}" in s and "create" in s for s in shown), shown
    assert PASSWORD not in json.dumps([s.as_dict() for s in planned.plan], default=str)

    on, _ = run_deploy(flavor="lambda")
    assert not on.up_to_date
    assert not [w for w in on.warnings if "prediction log" in w], on.warnings
    for key, function in (("analyze", ANALYZE), ("models", MODELS)):
        env = _env(aws, function)
        assert {k: env.get(k) for k in LOG_ENV} == LOG_ENV
        assert "SCARAB_LOG_STORE_INPUTS" not in env  # [log] store_inputs is off
        assert _inline(aws, function)[LOG_POLICY] == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadPredictionDbUrl",
                    "Effect": "Allow",
                    "Action": "ssm:GetParameter",
                    "Resource": f"arn:aws:ssm:us-east-1:123456789012:parameter{PARAM}",
                }
            ],
        }
        assert _tops(project, on, key) >= LOG_TOPS, key
        assert PASSWORD not in json.dumps(env)
    assert on.state_path is not None and PASSWORD not in on.state_path.read_text()
    again, _ = run_deploy(flavor="lambda")
    assert again.up_to_date

    (project / "scarab.toml").write_text(
        (project / "scarab.toml").read_text() + "\n[log]\nenabled = false\n"
    )
    disabled, _ = run_deploy(flavor="lambda")
    _assert_off(aws, project, disabled)
    assert not [w for w in disabled.warnings if "prediction log" in w]
