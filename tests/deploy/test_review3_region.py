"""Review 3 (adversarial): where a stage lives. Each test fails on today's main.

- A lost state record plus another region: the deploy rewrites the global IAM role's
  inline policies for the new region, so the live stage's function can no longer write
  its logs or read its Gemini key.
- A profile's region (`region = ...` in ~/.aws/config) is ignored: scarab targets
  us-east-1 where the AWS CLI and boto3 target the profile's region.
- An emulator endpoint that is not spelled as a loopback name writes the real-AWS state
  record `.scarab/state/<stage>.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.deploy.state import state_path

from tests.deploy.conftest import client
from tests.support.serve_process import scarab_cli

pytestmark = pytest.mark.emulator


def _role_resources(aws) -> dict[str, str]:
    iam = client("iam", aws)
    out = {}
    for name in iam.list_role_policies(RoleName="scarab-test-analyze-role")["PolicyNames"]:
        doc = iam.get_role_policy(RoleName="scarab-test-analyze-role", PolicyName=name)[
            "PolicyDocument"
        ]
        if isinstance(doc, str):
            doc = json.loads(doc)
        out[name] = str(doc["Statement"][0]["Resource"])
    return out


def test_a_deploy_elsewhere_without_the_record_leaves_the_live_stage_its_role(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()  # the stage lives in us-east-1
    before = _role_resources(aws)
    # S3 ARNs carry no region: the uploads bucket's is in its name (…-us-east-1/uploads/*).
    assert all(":us-east-1:" in r or "-us-east-1/" in r for r in before.values()), before
    # Another machine (no record), or the record lost, and AWS_REGION=us-west-2.
    state_path(project.resolve(), "test", aws.url).unlink()
    try:
        deploy(load_config(project, {"region": "us-west-2"}), project_dir=project)
    except Exception as exc:  # refusing is a fine answer: the stage lives in us-east-1
        assert "us-east-1" in str(exc), exc
    # Whatever happened in us-west-2, the function in us-east-1 must still be able to write
    # its logs and read its key: the shared (global) role must not be re-scoped away from it.
    fn = client("lambda", aws).get_function_configuration(FunctionName="scarab-test-analyze")
    assert fn["Role"].endswith(":role/scarab-test-analyze-role")
    assert _role_resources(aws) == before, "the role was rewritten for us-west-2"


def test_the_profiles_region_is_honoured(aws, project: Path, tmp_path: Path, monkeypatch) -> None:
    deploy(load_config(project, {"region": "eu-west-1"}), project_dir=project)
    cfg = tmp_path / "aws-config"
    cfg.write_text("[profile eu]\nregion = eu-west-1\n")
    creds = tmp_path / "aws-credentials"
    creds.write_text("[eu]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    # `aws --profile eu ...` works in eu-west-1; so must `scarab status --profile eu`.
    result = scarab_cli(project, "status", "--profile", "eu", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["region"] == "eu-west-1"


def test_an_emulator_endpoint_never_writes_the_real_aws_record(aws, project: Path) -> None:
    # 127.1 is 127.0.0.1 (inet_aton); a LocalStack container reached as http://localstack:4566
    # takes the same path. Either way it is not AWS.
    other_spelling = aws.url.replace("127.0.0.1", "127.1")
    result = scarab_cli(project, "deploy", "--endpoint-url", other_spelling, "--flavor", "local")
    assert result.returncode == 0, result.stderr
    assert not state_path(project.resolve(), "test", None).exists(), (
        "the emulator's ids overwrote the record of the real AWS stage"
    )
    assert "amazonaws.com" not in result.stdout, result.stdout
