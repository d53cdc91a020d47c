"""Drift repair, environment merge, lost state, dry-run, keys, secrets, destroy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scarab.cli import app
from scarab.config import load_config
from scarab.deploy.destroy import destroy
from scarab.deploy.state import state_path
from scarab.keys import list_keys, revoke_key, rotate_key
from scarab.secrets import set_secret
from scarab.status import status
from typer.testing import CliRunner

from tests.deploy.conftest import client
from tests.deploy.test_plan_data import STAGE_ALARMS

pytestmark = pytest.mark.emulator


def test_dry_run_changes_nothing(run_deploy, aws, project: Path) -> None:
    result, rec = run_deploy(dry_run=True)
    assert rec.mutating == []
    assert result.plan and all(s.reason for s in result.plan)
    assert client("lambda", aws).list_functions()["Functions"] == []
    assert client("apigateway", aws).get_rest_apis()["items"] == []
    assert not state_path(project, "test", aws.url).exists()


def test_drift_is_repaired(run_deploy, aws, project: Path) -> None:
    first, _ = run_deploy()
    lam, apigw = client("lambda", aws), client("apigateway", aws)
    lam.update_function_configuration(
        FunctionName="scarab-test-analyze", MemorySize=1024, Timeout=3
    )
    res = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=first.rest_api_id)["items"]}
    apigw.delete_method(restApiId=first.rest_api_id, resourceId=res["/analyze"], httpMethod="POST")
    apigw.put_method(
        restApiId=first.rest_api_id,
        resourceId=res["/analyze"],
        httpMethod="POST",
        authorizationType="NONE",
        apiKeyRequired=False,
    )
    apigw.delete_gateway_response(restApiId=first.rest_api_id, responseType="DEFAULT_4XX")
    apigw.update_usage_plan(
        usagePlanId=first.usage_plan_id,
        patchOperations=[{"op": "replace", "path": "/throttle/rateLimit", "value": "99"}],
    )
    drift = status(load_config(project), project_dir=project, endpoint_url=aws.url)["drift"]
    one = {"field": "function.memory", "live": 1024, "config": 512, "function": "analyze"}
    assert one in drift
    assert {"field": "api.throttle_rate", "live": 99.0, "config": 5.0} in drift

    repaired, _ = run_deploy()
    reasons = {s.resource: s.reason for s in repaired.plan}
    assert (
        "apiKeyRequired should be true" in reasons["apigateway.rest_api scarab-test POST /analyze"]
    )
    assert "apigateway.rest_api scarab-test gateway-response DEFAULT_4XX" in reasons
    assert "apigateway.stage test" in reasons
    cfg = lam.get_function_configuration(FunctionName="scarab-test-analyze")
    assert (cfg["MemorySize"], cfg["Timeout"]) == (512, 30)
    method = apigw.get_method(
        restApiId=first.rest_api_id, resourceId=res["/analyze"], httpMethod="POST"
    )
    assert method["apiKeyRequired"] is True
    assert method["methodIntegration"]["type"] == "AWS_PROXY"
    plan = apigw.get_usage_plan(usagePlanId=first.usage_plan_id)
    assert float(plan["throttle"]["rateLimit"]) == 5.0
    _, again = run_deploy()
    assert again.mutating == []


def test_environment_merge_keeps_a_variable_set_by_someone_else(run_deploy, aws, project) -> None:
    run_deploy()
    lam = client("lambda", aws)
    env = lam.get_function_configuration(FunctionName="scarab-test-analyze")["Environment"][
        "Variables"
    ]
    lam.update_function_configuration(
        FunctionName="scarab-test-analyze",
        Environment={"Variables": {**env, "SET_BY_OPS": "keep-me", "LOG_LEVEL": "ERROR"}},
    )
    # The config drops FEATURE_X (scarab set it) and keeps LOG_LEVEL=DEBUG.
    text = (project / "scarab.toml").read_text().replace(', FEATURE_X = "on"', "")
    (project / "scarab.toml").write_text(text)
    run_deploy()
    env = lam.get_function_configuration(FunctionName="scarab-test-analyze")["Environment"][
        "Variables"
    ]
    assert env["SET_BY_OPS"] == "keep-me"
    assert env["LOG_LEVEL"] == "DEBUG"
    assert "FEATURE_X" not in env
    _, rec = run_deploy()
    assert rec.mutating == []


def test_lost_state_record_finds_resources_instead_of_duplicating(
    run_deploy, aws, project: Path
) -> None:
    first, _ = run_deploy()
    state_path(project, "test", aws.url).unlink()
    second, rec = run_deploy()
    assert rec.mutating == [] and second.up_to_date
    assert second.rest_api_id == first.rest_api_id
    assert second.usage_plan_id == first.usage_plan_id
    apis = [a for a in client("apigateway", aws).get_rest_apis()["items"]]
    assert len(apis) == 1


def test_state_record_holds_no_secrets(run_deploy, aws, project: Path) -> None:
    first, _ = run_deploy()
    cfg = load_config(project)
    set_secret(cfg, "sk-very-secret-value", project_dir=project, endpoint_url=aws.url)
    key = client("apigateway", aws).get_api_key(apiKey=first.api_key_id, includeValue=True)
    text = state_path(project, "test", aws.url).read_text()
    assert key["value"] not in text and "sk-very-secret-value" not in text
    assert json.loads(text)["functions"]["analyze"]["name"] == "scarab-test-analyze"


def test_key_rotate_overlaps_then_revoke(run_deploy, aws, project: Path) -> None:
    first, _ = run_deploy()
    cfg = load_config(project)
    apigw = client("apigateway", aws)
    new = rotate_key(cfg, project_dir=project, endpoint_url=aws.url)
    assert new.name == "scarab-test-key-2" and new.value
    in_plan = {
        k["id"]: k for k in apigw.get_usage_plan_keys(usagePlanId=first.usage_plan_id)["items"]
    }
    assert set(in_plan) == {first.api_key_id, new.id}  # both work during the overlap
    listed = list_keys(cfg, project_dir=project, endpoint_url=aws.url)
    assert [(k.name, k.enabled, k.value) for k in listed] == [
        ("scarab-test-key-1", True, None),
        ("scarab-test-key-2", True, None),
    ]
    revoke_key(cfg, first.api_key_id, project_dir=project, endpoint_url=aws.url)
    in_plan = [k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=first.usage_plan_id)["items"]]
    assert in_plan == [new.id]
    assert first.api_key_id not in [k["id"] for k in apigw.get_api_keys()["items"]]
    # A redeploy keeps the rotated key and does not resurrect the revoked one.
    _, rec = run_deploy()
    assert rec.mutating == []


def test_keys_cli_lists_without_values(run_deploy, aws, project: Path, monkeypatch) -> None:
    first, _ = run_deploy()
    monkeypatch.chdir(project)
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "list", "--json", "--endpoint-url", aws.url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data == [
        {
            "id": first.api_key_id,
            "name": "scarab-test-key-1",
            "enabled": True,
            "created": data[0]["created"],
            "in_plan": True,
        }
    ]
    value = client("apigateway", aws).get_api_key(apiKey=first.api_key_id, includeValue=True)
    assert value["value"] not in result.output
    rotated = runner.invoke(app, ["keys", "rotate", "--json", "--endpoint-url", aws.url])
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output)["value"]
    bad = runner.invoke(app, ["keys", "revoke", "nope", "--endpoint-url", aws.url])
    assert bad.exit_code == 1 and "not a key of the stage" in bad.output


def test_secrets_set_stores_securestring_and_wires_the_function(
    run_deploy, aws, project: Path, monkeypatch
) -> None:
    run_deploy()
    lam = client("lambda", aws)
    env = lam.get_function_configuration(FunctionName="scarab-test-analyze")["Environment"][
        "Variables"
    ]
    del env["GOOGLE_API_KEY_PARAM"]
    lam.update_function_configuration(
        FunctionName="scarab-test-analyze", Environment={"Variables": env}
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("MY_GEMINI_KEY", "AIza-secret-from-env")
    result = CliRunner().invoke(
        app,
        [
            "secrets",
            "set",
            "gemini-api-key",
            "--from-env",
            "MY_GEMINI_KEY",
            "--endpoint-url",
            aws.url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "AIza-secret-from-env" not in result.output
    param = client("ssm", aws).get_parameter(
        Name="/scarab/scarab/test/gemini-api-key", WithDecryption=True
    )["Parameter"]
    assert param["Type"] == "SecureString" and param["Value"] == "AIza-secret-from-env"
    env = lam.get_function_configuration(FunctionName="scarab-test-analyze")["Environment"][
        "Variables"
    ]
    assert env["GOOGLE_API_KEY_PARAM"] == "/scarab/scarab/test/gemini-api-key"
    stdin = CliRunner().invoke(
        app,
        ["secrets", "set", "gemini-api-key", "--stdin", "--endpoint-url", aws.url],
        input="second-value\n",
    )
    assert stdin.exit_code == 0, stdin.output
    param = client("ssm", aws).get_parameter(
        Name="/scarab/scarab/test/gemini-api-key", WithDecryption=True
    )["Parameter"]
    assert param["Value"] == "second-value"
    both = CliRunner().invoke(app, ["secrets", "set", "gemini-api-key", "--endpoint-url", aws.url])
    assert both.exit_code == 2


def test_destroy_leaves_nothing(run_deploy, aws, project: Path) -> None:
    run_deploy()
    rotate_key(load_config(project), project_dir=project, endpoint_url=aws.url)
    removed = destroy(load_config(project), project_dir=project, endpoint_url=aws.url).removed
    # Keys before their plan, the API before the permission, the function before its role.
    assert removed == [
        "apigateway.api_key scarab-test-key-1",
        "apigateway.api_key scarab-test-key-2",
        "apigateway.usage_plan scarab-test-plan",
        "apigateway.rest_api scarab-test",
        "lambda.event_source_mapping scarab-test-jobs-dlq -> scarab-test-analyze:live",
        "lambda.event_invoke_config scarab-test-analyze:live",
        "lambda.permission scarab-test-analyze:live scarab-apigateway-invoke-live",
        "lambda.alias scarab-test-analyze:live",
        "lambda.function scarab-test-analyze",
        "logs.group /aws/lambda/scarab-test-analyze",
        "iam.role scarab-test-analyze-role",
        "lambda.permission scarab-test-models:live scarab-apigateway-invoke-live",
        "lambda.alias scarab-test-models:live",
        "lambda.function scarab-test-models",
        "logs.group /aws/lambda/scarab-test-models",
        "iam.role scarab-test-models-role",
        "sqs.queue scarab-test-jobs-dlq",
        "dynamodb.table scarab-test-jobs",
        "s3.bucket scarab-test-uploads-123456789012-us-east-1",
        "dynamodb.table scarab-test-cache",
        "cloudwatch.alarms " + ", ".join(STAGE_ALARMS),
        "sns.topic scarab-test-alarms",
    ]
    apigw = client("apigateway", aws)
    assert apigw.get_rest_apis()["items"] == []
    assert apigw.get_usage_plans()["items"] == []
    assert apigw.get_api_keys()["items"] == []
    assert client("lambda", aws).list_functions()["Functions"] == []
    roles = [r["RoleName"] for r in client("iam", aws).list_roles()["Roles"]]
    assert not [r for r in roles if r.startswith("scarab-test")]
    groups = client("logs", aws).describe_log_groups(logGroupNamePrefix="/aws/lambda/")
    assert groups["logGroups"] == []
    assert not state_path(project, "test", aws.url).exists()
    # Already gone: tolerated.
    again = destroy(load_config(project), project_dir=project, endpoint_url=aws.url)
    assert again.steps == [] and again.removed == []


def test_status_reports_the_contract_fields(run_deploy, aws, project: Path, monkeypatch) -> None:
    first, _ = run_deploy()
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["status", "--json", "--endpoint-url", aws.url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for field in (
        "function_name",
        "function_arn",
        "rest_api_id",
        "stage",
        "url",
        "usage_plan_id",
        "api_keys",
        "log_group",
    ):
        assert data[field], field
    assert data["rest_api_id"] == first.rest_api_id
    assert data["api_keys"] == [
        {"id": first.api_key_id, "name": "scarab-test-key-1", "enabled": True, "in_plan": True}
    ]
    assert data["function_state"] == "Active"
    assert data["code_sha256"] == first.code_sha256
    assert data["drift"] == []
    # Each function on its own, the top-level fields being the analyze function's.
    assert sorted(data["functions"]) == ["analyze", "models"]
    models = data["functions"]["models"]
    assert models["function_name"] == "scarab-test-models" and models["deployed"] is True
    assert models["log_group"] == "/aws/lambda/scarab-test-models"
    assert models["code_sha256"] == first.functions["models"]["code_sha256"]
    assert data["function_name"] == data["functions"]["analyze"]["function_name"]
