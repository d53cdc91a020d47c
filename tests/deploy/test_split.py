"""A stage deployed before the split (one function `<app>-<stage>` with every route) is
moved to its analyze and models functions by the next deploy; destroy then removes what
is left of the old layout (its log group)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.deploy.destroy import destroy
from scarab.functions import ALL_ROUTES
from scarab.status import status

from tests.deploy.conftest import ANALYZE, MODELS, Recorder, client, counted_session

pytestmark = pytest.mark.emulator

OLD = "scarab-test"


def integrations(aws: object, api_id: str) -> dict[str, str]:
    """`METHOD /path` -> the function (and qualifier: `live`) each proxy method invokes."""
    apigw = client("apigateway", aws)
    out = {}
    for res in apigw.get_resources(restApiId=api_id, embed=["methods"])["items"]:
        for verb in res.get("resourceMethods") or {}:
            integ = apigw.get_integration(restApiId=api_id, resourceId=res["id"], httpMethod=verb)
            if integ["type"] == "AWS_PROXY":
                out[f"{verb} {res['path']}"] = integ["uri"].split(":function:")[1].split("/")[0]
    return out


def test_a_single_function_stage_is_moved_to_its_functions(aws, project: Path, run_deploy) -> None:
    config = load_config(project)
    old = deploy(
        config, project_dir=project, endpoint_url=aws.url, functions=(ALL_ROUTES,),
        session=counted_session(Recorder()),
    )  # fmt: skip
    lam, iam, logs = client("lambda", aws), client("iam", aws), client("logs", aws)
    assert old.function_name == OLD
    assert lam.get_function_configuration(FunctionName=OLD)["Handler"] == (
        "lens.handler.lambda_handler"
    )
    assert set(integrations(aws, str(old.rest_api_id)).values()) == {f"{OLD}:live"}
    # Not migrated yet: status shows the old function.
    before = status(config, project_dir=project, endpoint_url=aws.url)
    assert before["functions"]["all"]["function_name"] == OLD
    assert before["functions"]["analyze"]["deployed"] is False

    result, recorder = run_deploy()
    assert result.rest_api_id == old.rest_api_id  # the same API, re-routed
    # The alarms come last (they watch what the steps before made): set them aside.
    watch = ("cloudwatch.", "sns.")
    resources = [s.resource for s in result.plan if not s.resource.startswith(watch)]
    assert resources[-2:] == [f"lambda.function {OLD}", f"iam.role {OLD}-role"]
    deletes = [s for s in result.plan if s.action == "delete" and not s.resource.startswith(watch)]
    assert [s.resource for s in deletes] == resources[-2:]
    assert all(s.reason.startswith("deletes it: replaced by") for s in deletes)
    assert integrations(aws, str(result.rest_api_id)) == {
        "POST /analyze": f"{ANALYZE}:live",
        "GET /health": f"{ANALYZE}:live",
        "GET /openapi.json": f"{ANALYZE}:live",
        "POST /uploads": f"{ANALYZE}:live",
        "POST /jobs": f"{ANALYZE}:live",
        "GET /jobs/{id}": f"{ANALYZE}:live",
        "GET /models": f"{MODELS}:live",
        "POST /predict/{model_id}": f"{MODELS}:live",
        "GET /forecast/{model_id}": f"{MODELS}:live",
        "GET /stats": f"{MODELS}:live",
    }
    # A retargeted method is one PutIntegration; none is deleted and made again.
    assert "apigateway.DeleteMethod" not in recorder.mutating
    names = sorted(f["FunctionName"] for f in lam.list_functions()["Functions"])
    assert names == [ANALYZE, MODELS]
    roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])
    assert roles == [f"{ANALYZE}-role", f"{MODELS}-role"]
    groups = sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"])
    assert groups == [f"/aws/lambda/{OLD}", f"/aws/lambda/{ANALYZE}", f"/aws/lambda/{MODELS}"]
    after = status(config, project_dir=project, endpoint_url=aws.url)
    assert sorted(after["functions"]) == ["analyze", "models"]

    again, recorder = run_deploy()
    assert again.up_to_date and recorder.mutating == []

    removed = destroy(config, project_dir=project, endpoint_url=aws.url).removed
    assert f"logs.group /aws/lambda/{OLD}" in removed
    assert logs.describe_log_groups()["logGroups"] == []
    assert iam.list_roles()["Roles"] == []


def test_an_old_function_of_another_stage_is_left_alone(aws, project: Path, run_deploy) -> None:
    """A function named like the old layout but tagged for another stage is not ours (the
    old name `<app>-<s>-analyze` of stage `<s>-analyze` is stage `<s>`'s analyze
    function): the deploy neither refuses nor touches it, and destroy leaves it too."""
    lam = client("lambda", aws)
    config = load_config(project)
    deploy(config, project_dir=project, endpoint_url=aws.url, functions=(ALL_ROUTES,))
    arn = lam.get_function_configuration(FunctionName=OLD)["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"scarab:stage": "someone-else"})
    result, _ = run_deploy()
    # Only the old layout's alarms go (scarab made them; the "all" function has none now).
    deletes = [s.resource for s in result.plan if s.action == "delete"]
    assert deletes == [
        "cloudwatch.alarms "
        + ", ".join(f"scarab-test-all-{m}" for m in ("duration-p99", "errors", "throttles"))
    ], result.plan
    assert lam.get_function_configuration(FunctionName=OLD)["FunctionArn"] == arn
    client("iam", aws).get_role(RoleName=f"{OLD}-role")  # its role stays with it
    removed = destroy(config, project_dir=project, endpoint_url=aws.url).removed
    assert f"lambda.function {OLD}" not in removed and f"iam.role {OLD}-role" not in removed
    assert lam.get_function_configuration(FunctionName=OLD)["FunctionArn"] == arn
