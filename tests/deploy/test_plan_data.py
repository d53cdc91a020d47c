"""The plan as data: `scarab plan --json` (= `deploy --dry-run`), `destroy --dry-run`,
redaction, and the executor as the deploy core's only mutating module."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from scarab.aws import is_mutating
from scarab.cli import app
from typer.testing import CliRunner

from tests.deploy.conftest import REPO, client

# The alarms [alarms]' defaults put on the test stage (deploy/alarms.py names them).
STAGE_ALARMS = sorted(
    [
        f"scarab-test-{k}-{m}"
        for k in ("analyze", "models")
        for m in ("errors", "throttles", "duration-p99")
    ]
    + ["scarab-test-api-5xx", "scarab-test-api-latency-p99"]
)
PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]+$")


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def check_shape(doc: dict[str, Any], stage: str = "test") -> None:
    assert set(doc) == {"stage", "region", "steps"}
    assert (doc["stage"], doc["region"]) == (stage, "us-east-1")
    for step in doc["steps"]:
        assert set(step) == {"action", "resource", "reason", "calls"}
        assert step["action"] in ("create", "update", "delete") and step["reason"]
        assert step["calls"], step
        for c in step["calls"]:
            assert set(c) == {"service", "operation", "params"}
            assert PASCAL.match(c["operation"]), c["operation"]
        if step["action"] == "delete":
            assert "delete" in step["reason"], step


def calls_of(doc: dict[str, Any], operation: str) -> list[dict[str, Any]]:
    return [c["params"] for s in doc["steps"] for c in s["calls"] if c["operation"] == operation]


@pytest.mark.emulator
def test_plan_json_renders_the_exact_calls_and_changes_nothing(
    aws, project: Path, monkeypatch
) -> None:
    monkeypatch.chdir(project)
    code, output = cli("plan", "--json", "--endpoint-url", aws.url)
    assert code == 0, output
    doc = json.loads(output)
    check_shape(doc)
    assert doc["steps"][0]["resource"] == "iam.role scarab-test-analyze-role"
    assert doc["steps"][0]["calls"][0]["operation"] == "CreateRole"
    creates = calls_of(doc, "CreateFunction")
    assert [c["FunctionName"] for c in creates] == ["scarab-test-analyze", "scarab-test-models"]
    for create in creates:
        assert re.fullmatch(r"<zip \d+\.\d MB sha256 [0-9a-f]{12}>", create["Code"]["ZipFile"])
        assert create["MemorySize"] == 512
    # Ids the plan creates are refs to the instruction that keeps them.
    put = calls_of(doc, "PutMethod")[0]
    assert put["restApiId"] == "${rest_api_id}"
    assert put["resourceId"].startswith("${resource:/")
    perms = calls_of(doc, "AddPermission")
    assert [p["FunctionName"] for p in perms] == ["scarab-test-analyze", "scarab-test-models"]
    for perm in perms:
        assert perm["SourceArn"] == (
            "arn:aws:execute-api:us-east-1:123456789012:${rest_api_id}/test/*/*"
        )
    assert calls_of(doc, "CreateUsagePlanKey")[0]["keyId"] == "${api_key_id}"
    # Nothing was made, not even the lock; deploy --dry-run is the same thing.
    assert client("lambda", aws).list_functions()["Functions"] == []
    assert client("iam", aws).list_roles()["Roles"] == []
    assert client("ssm", aws).describe_parameters()["Parameters"] == []
    code, dry = cli("deploy", "--dry-run", "--json", "--endpoint-url", aws.url)
    assert code == 0 and json.loads(dry) == doc


@pytest.mark.emulator
def test_plan_of_a_deployed_stage_redacts_and_says_what_it_deletes(
    run_deploy, aws, project: Path, monkeypatch
) -> None:
    first, _ = run_deploy()
    monkeypatch.chdir(project)
    code, output = cli("plan", "--json", "--endpoint-url", aws.url)
    assert code == 0, output
    assert json.loads(output) == {"stage": "test", "region": "us-east-1", "steps": []}
    # Store the Gemini key, take the API key out of the usage plan, add a stray resource,
    # change the memory: the plan repairs all of it and shows neither secret.
    secret = "AIza-plan-must-not-show-this"
    env = {"PLAN_GEMINI": secret}
    code, output = cli(
        "secrets", "set", "gemini-api-key", "--from-env", "PLAN_GEMINI", "--endpoint-url", aws.url,
        env=env,
    )  # fmt: skip
    assert code == 0, output
    apigw = client("apigateway", aws)
    key_value = apigw.get_api_key(apiKey=first.api_key_id, includeValue=True)["value"]
    apigw.delete_usage_plan_key(usagePlanId=first.usage_plan_id, keyId=first.api_key_id)
    root = next(
        r["id"]
        for r in apigw.get_resources(restApiId=first.rest_api_id)["items"]
        if r["path"] == "/"
    )
    apigw.create_resource(restApiId=first.rest_api_id, parentId=root, pathPart="stray")
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text().replace("memory = 512", "memory = 640"))
    code, output = cli("plan", "--json", "--endpoint-url", aws.url)
    assert code == 0, output
    assert secret not in output and key_value not in output
    doc = json.loads(output)
    check_shape(doc)
    by_resource = {s["resource"]: s for s in doc["steps"]}
    stray = by_resource["apigateway.rest_api scarab-test resource /stray"]
    assert stray["action"] == "delete" and "deletes it" in stray["reason"]
    assert stray["calls"][0]["operation"] == "DeleteResource"
    assert stray["calls"][0]["params"]["resourceId"] == "${resource:/stray}"
    attach = by_resource["apigateway.api_key scarab-test-key-1"]["calls"]
    assert attach == [
        {
            "service": "apigateway",
            "operation": "CreateUsagePlanKey",
            "params": {
                "usagePlanId": "${usage_plan_id}",
                "keyId": first.api_key_id,
                "keyType": "API_KEY",
            },
        }
    ]
    updates = calls_of(doc, "UpdateFunctionConfiguration")
    assert [u["MemorySize"] for u in updates] == [640, 640]
    # The human form lists the same steps and calls.
    code, text = cli("plan", "--endpoint-url", aws.url)
    assert code == 0 and "lambda.UpdateFunctionConfiguration" in text
    assert secret not in text and key_value not in text


@pytest.mark.emulator
def test_destroy_dry_run_lists_the_deletion_plan_and_deletes_nothing(
    run_deploy, aws, project: Path, monkeypatch
) -> None:
    first, _ = run_deploy()
    monkeypatch.chdir(project)
    code, output = cli("destroy", "--dry-run", "--json", "--endpoint-url", aws.url)
    assert code == 0, output
    doc = json.loads(output)
    check_shape(doc)
    assert [s["resource"] for s in doc["steps"]] == [
        "apigateway.api_key scarab-test-key-1",
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
    assert all(s["action"] == "delete" for s in doc["steps"])
    steps = {s["resource"]: s for s in doc["steps"]}
    role_calls = [c["operation"] for c in steps["iam.role scarab-test-analyze-role"]["calls"]]
    # the analyze role: its logs, the Gemini key, the cache, the uploads and the jobs
    assert role_calls == [*["DeleteRolePolicy"] * 5, "DeleteRole"]
    role_calls = [c["operation"] for c in steps["iam.role scarab-test-models-role"]["calls"]]
    # the models role: its logs, the model registry, the cache and the uploads
    assert role_calls == [*["DeleteRolePolicy"] * 4, "DeleteRole"]
    assert calls_of(doc, "DeleteRestApi") == [{"restApiId": first.rest_api_id}]
    # Nothing is gone; the secret and ECR are never in the plan.
    functions = client("lambda", aws).list_functions()["Functions"]
    assert sorted(f["FunctionName"] for f in functions) == [
        "scarab-test-analyze",
        "scarab-test-models",
    ]
    assert len(client("apigateway", aws).get_rest_apis()["items"]) == 1
    assert not any(s["resource"].startswith(("ssm", "ecr")) for s in doc["steps"])
    # The only bucket is the uploads one (the artifact bucket stays).
    buckets = [s["resource"] for s in doc["steps"] if s["resource"].startswith("s3")]
    assert buckets == ["s3.bucket scarab-test-uploads-123456789012-us-east-1"]
    code, text = cli("destroy", "--dry-run", "--endpoint-url", aws.url)
    assert code == 0 and "delete lambda.function scarab-test-models" in text, text


def _mutating_method_names() -> set[str]:
    """Every mutating boto3 client method of the services scarab uses."""
    session = botocore.session.get_session()
    names = {"upload_file", "upload_fileobj", "copy"}  # s3's transfer helpers
    for service in (
        "iam", "lambda", "apigateway", "logs", "ecr", "s3", "ssm", "sts", "ec2", "secretsmanager",
        "sqs", "dynamodb",
    ):  # fmt: skip
        model = session.get_service_model(service)
        names |= {xform_name(op) for op in model.operation_names if is_mutating(op)}
    return names


# The stage lock takes and releases its own SSM record around a plan's execution; it is
# not part of any plan.
ALLOWED = {"executor.py", "lock.py"}


def test_only_the_executor_calls_mutating_aws_operations() -> None:
    mutating = _mutating_method_names()
    assert {"create_function", "put_parameter", "delete_rest_api"} <= mutating
    offenders = []
    for path in sorted((REPO / "tooling" / "scarab" / "deploy").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            attr = isinstance(node, ast.Attribute) and node.attr in mutating
            if attr and path.name not in ALLOWED:
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert offenders == []


def test_the_display_redacts_secret_parameters_and_describes_blobs() -> None:
    from scarab.deploy.display import render
    from scarab.deploy.instructions import ApiCall, FileBytes, Ref, Step

    steps = [
        Step(
            "ssm.parameter /scarab/x",
            "update",
            "test",
            (
                ApiCall("ssm", "PutParameter", {"Name": "/scarab/x", "Value": "sk-secret"}),
                ApiCall("apigateway", "CreateApiKey", {"name": "k", "value": "key-value-1"}),
                ApiCall(
                    "lambda",
                    "UpdateFunctionCode",
                    {"FunctionName": Ref("fn"), "ZipFile": FileBytes("/z", "ab" * 32, 3 * 2**20)},
                ),
            ),
        )
    ]
    text = json.dumps(render(steps))
    assert "sk-secret" not in text and "key-value-1" not in text
    calls = render(steps)[0]["calls"]
    assert calls[0]["params"] == {"Name": "/scarab/x", "Value": "<redacted>"}
    assert calls[1]["params"] == {"name": "k", "value": "<redacted>"}
    assert calls[2]["params"] == {
        "FunctionName": "${fn}",
        "ZipFile": "<zip 3.0 MB sha256 abababababab>",
    }
