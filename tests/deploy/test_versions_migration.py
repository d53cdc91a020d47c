"""A stage deployed before versions (integrations, the invoke permission and the Function
URL on the function itself, no alias) moves to the `live` alias: the alias and its
permission first, then the integrations and the deployment, and only then the old
permission goes, so no request finds the function unreachable. The stage is put in that
earlier shape with boto3 against the moto server, from a current deploy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scarab.deploy.state import state_path

from tests.deploy.conftest import ANALYZE, CONFIG, MODELS, client

pytestmark = pytest.mark.emulator

URL = '\n[functions.models.url]\nauth = "NONE"\n'


def integrations(aws: Any, api_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    apigw = client("apigateway", aws)
    return {
        (res["path"], verb): apigw.get_integration(
            restApiId=api_id, resourceId=res["id"], httpMethod=verb
        )
        for res in apigw.get_resources(restApiId=api_id)["items"]
        for verb in res.get("resourceMethods") or {}
        if verb != "OPTIONS"
    }


def as_before_versions(aws: Any, project: Path, api_id: str) -> str:
    """Put the stage back the way earlier scarab versions left it; the old URL."""
    apigw, lam = client("apigateway", aws), client("lambda", aws)
    for (path, verb), integ in integrations(aws, api_id).items():
        [res] = [r for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == path]
        apigw.put_integration(
            restApiId=api_id, resourceId=res["id"], httpMethod=verb, type="AWS_PROXY",
            integrationHttpMethod="POST", uri=integ["uri"].replace(":live/", "/"),
        )  # fmt: skip
    apigw.create_deployment(restApiId=api_id, stageName="test", description="scarab:before")
    source = f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/test/*/*"
    for fn in (ANALYZE, MODELS):
        lam.remove_permission(
            FunctionName=fn, Qualifier="live", StatementId="scarab-apigateway-invoke-live"
        )
        lam.add_permission(
            FunctionName=fn, StatementId="scarab-apigateway-invoke",
            Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
            SourceArn=source,
        )  # fmt: skip
    lam.delete_function_url_config(FunctionName=MODELS, Qualifier="live")
    lam.remove_permission(FunctionName=MODELS, Qualifier="live", StatementId="scarab-function-url")
    for fn in (ANALYZE, MODELS):
        lam.delete_alias(FunctionName=fn, Name="live")
        lam.delete_function(FunctionName=fn, Qualifier="1")
    old = lam.create_function_url_config(FunctionName=MODELS, AuthType="NONE")["FunctionUrl"]
    lam.add_permission(
        FunctionName=MODELS, StatementId="scarab-function-url", Action="lambda:InvokeFunctionUrl",
        Principal="*", FunctionUrlAuthType="NONE",
    )  # fmt: skip
    # The record as earlier scarab versions wrote it: the URL, nothing about where.
    path = state_path(project, "test", aws.url)
    record = json.loads(path.read_text())
    record["functions"]["models"].pop("url_on")
    record["functions"]["models"]["url"] = old
    path.write_text(json.dumps(record))
    return str(old)


def test_a_stage_from_before_versions_moves_to_the_alias_in_a_safe_order(
    run_deploy, aws, project: Path
) -> None:
    (project / "scarab.toml").write_text(CONFIG + URL)
    first, _ = run_deploy()
    api_id = str(first.rest_api_id)
    old_url = as_before_versions(aws, project, api_id)
    assert all(
        not i["uri"].endswith(":live/invocations") for i in integrations(aws, api_id).values()
    )

    result, _ = run_deploy()
    order = [s.resource for s in result.plan]
    i = order.index
    put = i("apigateway.rest_api scarab-test POST /analyze")
    for fn in (ANALYZE, MODELS):
        assert i(f"lambda.version {fn}") < i(f"lambda.alias {fn}:live") < put
        assert i(f"lambda.permission {fn}:live scarab-apigateway-invoke-live") < put
        assert (
            put < i("apigateway.stage test") < i(f"lambda.permission {fn} scarab-apigateway-invoke")
        )
    # The old URL and its grant go before the alias's URL is made (an emulator keeps one).
    assert i(f"lambda.url {MODELS}") < i(f"lambda.url {MODELS}:live")
    assert all(i["uri"].endswith(":live/invocations") for i in integrations(aws, api_id).values())
    lam = client("lambda", aws)
    statements = json.loads(lam.get_policy(FunctionName=ANALYZE)["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["scarab-apigateway-invoke-live"]
    # The URL changed, and the deploy says so, naming the address that stops answering.
    new_url = result.functions["models"]["url"]
    assert new_url and new_url != old_url
    [moved] = [w for w in result.warnings if "moves to its 'live' alias" in w]
    assert old_url in moved and MODELS in moved
    # Converged: a re-run changes nothing.
    again, recorder = run_deploy()
    assert again.up_to_date and recorder.mutating == [], [s.describe() for s in again.plan]
    assert again.functions["models"]["url"] == new_url
