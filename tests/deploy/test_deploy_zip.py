"""A full deploy on the zip path, every resource checked through boto3; then a no-op."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scarab.deploy.routes import ROUTES, resource_paths
from scarab.naming import TAG_MANAGED_ENV

from tests.deploy.conftest import (
    ANALYZE,
    ANALYZE_ROLE,
    EXPECTED_CACHE_POLICY,
    EXPECTED_LOGS_POLICY,
    EXPECTED_SSM_POLICY,
    EXPECTED_TRUST,
    MODELS,
    MODELS_ROLE,
    client,
    expected_logs_policy,
    expected_permission,
    inline_policies,
    permission,
)
from tests.deploy.test_uploads_jobs_deploy import JOBS_POLICY, UPLOADS_POLICY

pytestmark = pytest.mark.emulator


def test_full_deploy_creates_every_resource(run_deploy, aws, project: Path) -> None:
    result, rec = run_deploy()
    assert not result.up_to_date
    assert rec.mutating, "a first deploy must create things"
    apigw = client("apigateway", aws)
    lam = client("lambda", aws)
    iam = client("iam", aws)
    logs = client("logs", aws)

    # Functions: names, config, environment, tags; no single function any more.
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="scarab-test")
    fn = lam.get_function(FunctionName=ANALYZE)
    cfg = fn["Configuration"]
    assert cfg["MemorySize"] == 512 and cfg["Timeout"] == 30
    assert cfg["Handler"] == "lens.entry.analyze.lambda_handler"
    assert cfg["Role"].endswith(f":role/{ANALYZE_ROLE}")
    env = cfg["Environment"]["Variables"]
    assert env["ALLOWED_ORIGINS"] == "http://localhost:3000"
    assert json.loads(env["SCARAB_MODELS"]) == {
        "fast": "gemini-2.5-flash-lite",
        "deep": "gemini-2.5-pro",
    }
    assert env["GOOGLE_API_KEY_PARAM"] == "/scarab/scarab/test/gemini-api-key"
    assert env["LOG_LEVEL"] == "DEBUG" and env["FEATURE_X"] == "on"
    assert cfg["CodeSha256"] == result.code_sha256
    assert fn["Tags"]["scarab:stage"] == "test"
    assert "FEATURE_X" in fn["Tags"][TAG_MANAGED_ENV].split()
    models = lam.get_function(FunctionName=MODELS)
    mcfg = models["Configuration"]
    assert mcfg["Handler"] == "lens.entry.models.lambda_handler"
    assert mcfg["Role"].endswith(f":role/{MODELS_ROLE}")
    assert mcfg["CodeSha256"] == result.functions["models"]["code_sha256"] != cfg["CodeSha256"]
    menv = mcfg["Environment"]["Variables"]
    assert menv["FEATURE_X"] == "on" and menv["ALLOWED_ORIGINS"] == "http://localhost:3000"
    assert not {"GOOGLE_API_KEY_PARAM", "SCARAB_MODELS"} & set(menv)
    assert menv["MODEL_REGISTRY_TABLE"] == "scarab-test-models"

    # Role: Lambda's trust, no managed policy, inline policies each scoped exactly.
    for role_name in (ANALYZE_ROLE, MODELS_ROLE):
        role = iam.get_role(RoleName=role_name)["Role"]
        assert role["AssumeRolePolicyDocument"] == EXPECTED_TRUST
        assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    assert inline_policies(iam, ANALYZE_ROLE) == {
        "scarab-write-logs": EXPECTED_LOGS_POLICY,
        "scarab-read-secret": EXPECTED_SSM_POLICY,
        "scarab-use-cache": EXPECTED_CACHE_POLICY,
        "scarab-use-uploads": UPLOADS_POLICY,
        "scarab-run-jobs": JOBS_POLICY,
    }
    # The models function reads no Gemini key: its role writes its own logs and reads the
    # model registry (tests/deploy/test_registry_deploy.py checks that policy exactly).
    models_policies = inline_policies(iam, MODELS_ROLE)
    assert set(models_policies) == {
        "scarab-write-logs", "scarab-read-registry", "scarab-use-cache", "scarab-use-uploads",
    }  # fmt: skip
    assert models_policies["scarab-use-cache"] == EXPECTED_CACHE_POLICY
    assert models_policies["scarab-write-logs"] == expected_logs_policy(MODELS)
    roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])
    assert [r for r in roles if r.startswith("scarab-test")] == [ANALYZE_ROLE, MODELS_ROLE]

    # A log group per function, with retention.
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/scarab-test")["logGroups"]
    assert sorted((g["logGroupName"], g.get("retentionInDays")) for g in groups) == [
        (f"/aws/lambda/{ANALYZE}", 14),
        (f"/aws/lambda/{MODELS}", 14),
    ]

    # REST API: one, regional, with every route, preflight and gateway response.
    apis = [a for a in apigw.get_rest_apis()["items"] if a["name"] == "scarab-test"]
    assert len(apis) == 1 and apis[0]["id"] == result.rest_api_id
    assert apis[0]["endpointConfiguration"]["types"] == ["REGIONAL"]
    api_id = result.rest_api_id
    resources = {
        r["path"]: r for r in apigw.get_resources(restApiId=api_id, embed=["methods"])["items"]
    }
    assert set(resources) == {"/", *resource_paths()}
    arns = {"analyze": cfg["FunctionArn"], "models": mcfg["FunctionArn"]}
    for route in ROUTES:
        method = apigw.get_method(
            restApiId=api_id, resourceId=resources[route.path]["id"], httpMethod=route.method
        )
        assert method["apiKeyRequired"] is route.api_key_required, route
        assert method["authorizationType"] == "NONE"
        integ = method["methodIntegration"]
        assert integ["type"] == "AWS_PROXY" and integ["httpMethod"] == "POST"
        # The function's `live` alias, never $LATEST.
        assert integ["uri"].endswith(f"/functions/{arns[route.function]}:live/invocations"), route
    for path in resource_paths():
        opt = apigw.get_method(
            restApiId=api_id, resourceId=resources[path]["id"], httpMethod="OPTIONS"
        )
        assert opt["apiKeyRequired"] is False
        assert opt["methodIntegration"]["type"] == "MOCK"
        headers = opt["methodIntegration"]["integrationResponses"]["200"]["responseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == (
            "'http://localhost:3000'"
        )
        assert "X-Api-Key" in headers["method.response.header.Access-Control-Allow-Headers"]
    analyze = apigw.get_method(
        restApiId=api_id, resourceId=resources["/analyze"]["id"], httpMethod="OPTIONS"
    )
    allow = analyze["methodIntegration"]["integrationResponses"]["200"]["responseParameters"]
    assert allow["method.response.header.Access-Control-Allow-Methods"] == "'OPTIONS,POST'"
    for rtype in ("DEFAULT_4XX", "DEFAULT_5XX"):
        gw = apigw.get_gateway_response(restApiId=api_id, responseType=rtype)
        params = gw["responseParameters"]
        assert params["gatewayresponse.header.Access-Control-Allow-Origin"] == (
            "'http://localhost:3000'"
        )
    stage = apigw.get_stage(restApiId=api_id, stageName="test")
    assert stage["deploymentId"]
    # Raw uploads reach the function as bytes; JSON stays text.
    assert apigw.get_rest_api(restApiId=api_id)["binaryMediaTypes"] == [
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "application/octet-stream",
    ]

    # Permission: exactly one statement, scoped to this API's stage.
    assert permission(lam, ANALYZE) == expected_permission(api_id, "test")
    assert permission(lam, MODELS) == expected_permission(api_id, "test", "models")

    # Usage plan bound to the stage with the configured limits, and one key in it.
    plans = [p for p in apigw.get_usage_plans()["items"] if p["name"] == "scarab-test-plan"]
    assert len(plans) == 1 and plans[0]["id"] == result.usage_plan_id
    plan = plans[0]
    assert plan["apiStages"] == [{"apiId": api_id, "stage": "test"}]
    assert float(plan["throttle"]["rateLimit"]) == 5.0
    assert int(plan["throttle"]["burstLimit"]) == 10
    assert int(plan["quota"]["limit"]) == 500 and plan["quota"]["period"] == "DAY"
    keys = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    assert [k["name"] for k in keys] == ["scarab-test-key-1"]
    assert keys[0]["id"] == result.api_key_id

    # The state record: ids, no secrets.
    state = json.loads((project / ".scarab/local/state/test.json").read_text())
    assert state["rest_api_id"] == api_id and state["usage_plan_id"] == plan["id"]
    assert {k: f["name"] for k, f in state["functions"].items()} == {
        "analyze": ANALYZE,
        "models": MODELS,
    }
    key_value = apigw.get_api_key(apiKey=result.api_key_id, includeValue=True)["value"]
    assert key_value not in json.dumps(state)
    assert not (project / ".scarab/state/test.json").exists()


def test_second_deploy_makes_no_mutating_call(run_deploy) -> None:
    first, _ = run_deploy()
    second, rec = run_deploy()
    assert rec.calls, "the second deploy must still read AWS"
    assert rec.mutating == []
    assert second.up_to_date and second.plan == []
    assert second.rest_api_id == first.rest_api_id
    assert second.api_key_id == first.api_key_id


def test_several_origins_echo_the_allowed_origin_and_stay_no_op(run_deploy, aws, project) -> None:
    text = (
        (project / "scarab.toml")
        .read_text()
        .replace(
            'allowed_origins = ["http://localhost:3000"]',
            'allowed_origins = ["http://localhost:3000", "https://lens.example"]',
        )
    )
    (project / "scarab.toml").write_text(text)
    first, _ = run_deploy()
    apigw = client("apigateway", aws)
    gw = apigw.get_gateway_response(restApiId=first.rest_api_id, responseType="DEFAULT_4XX")
    origin = gw["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
    assert origin == "method.request.header.Origin"
    res = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=first.rest_api_id)["items"]}
    opt = apigw.get_method(
        restApiId=first.rest_api_id, resourceId=res["/analyze"], httpMethod="OPTIONS"
    )
    template = opt["methodIntegration"]["integrationResponses"]["200"]["responseTemplates"]
    assert '"https://lens.example"' in template["application/json"]
    _, rec = run_deploy()
    assert rec.mutating == []
