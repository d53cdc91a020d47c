"""Least privilege on the moto server: the role, the permission and the binary media types
after a deploy, the migration of a stage deployed the old way, and the artifact bucket's
expected owner on every S3 call."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import boto3
import pytest
from scarab.artifacts.zip import LAMBDA_ZIP_LIMIT
from scarab.aws import Aws
from scarab.config import load_config
from scarab.deploy.executor import Executor
from scarab.deploy.models import desired_state
from scarab.deploy.planner import plan, seed_vars
from scarab.deploy.reader import read_all
from scarab.deploy.state import StageState

from tests.deploy.conftest import (
    ANALYZE,
    ANALYZE_ROLE,
    EXPECTED_CACHE_POLICY,
    EXPECTED_LOGS_POLICY,
    EXPECTED_SSM_POLICY,
    client,
    expected_permission,
    inline_policies,
    permission,
)
from tests.deploy.test_uploads_jobs_deploy import JOBS_POLICY, UPLOADS_POLICY

pytestmark = pytest.mark.emulator

ROLE = ANALYZE_ROLE
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
BINARY = ["image/jpeg", "image/png", "image/webp", "image/gif", "application/octet-stream"]


def deploy_the_old_way(aws: Any, api_id: str) -> None:
    """Turn a fresh stage into what earlier scarab versions left: the managed policy with
    logs on every group, no logs inline policy, a permission for every stage of the API,
    and no binary media types (plus a foreign one someone added by hand)."""
    iam, lam, apigw = client("iam", aws), client("lambda", aws), client("apigateway", aws)
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=BASIC)
    iam.delete_role_policy(RoleName=ROLE, PolicyName="scarab-write-logs")
    lam.remove_permission(
        FunctionName=ANALYZE, Qualifier="live", StatementId="scarab-apigateway-invoke-live"
    )
    lam.add_permission(
        FunctionName=ANALYZE,
        Qualifier="live",
        StatementId="scarab-apigateway-invoke-live",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/*",
    )
    ops = [
        {"op": "remove", "path": f"/binaryMediaTypes/{t.replace('/', '~1')}", "value": t}
        for t in BINARY
    ]
    ops.append({"op": "add", "path": "/binaryMediaTypes/text~1csv", "value": "text/csv"})
    apigw.update_rest_api(restApiId=api_id, patchOperations=ops)


@pytest.mark.managed_policies  # attaches an AWS managed policy
def test_a_stage_deployed_the_old_way_is_migrated(run_deploy, aws) -> None:
    first, _ = run_deploy()
    api_id = str(first.rest_api_id)
    deploy_the_old_way(aws, api_id)
    iam, lam, apigw = client("iam", aws), client("lambda", aws), client("apigateway", aws)
    attached = iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [BASIC]
    deployments_before = len(apigw.get_deployments(restApiId=api_id)["items"])

    second, rec = run_deploy()
    assert sorted(rec.mutating) == sorted(
        [
            "ssm.PutParameter",  # the stage lock (deploy/lock.py), taken and released
            "ssm.DeleteParameter",
            "iam.PutRolePolicy",
            "iam.DetachRolePolicy",
            "apigateway.UpdateRestApi",
            "lambda.RemovePermission",
            "lambda.AddPermission",
            "apigateway.CreateDeployment",
            "apigateway.TagResource",  # the stage, after each deployment
        ]
    )
    reasons = {s.resource: s.reason for s in second.plan}
    assert "+image/jpeg" in reasons["apigateway.rest_api scarab-test binaryMediaTypes"]
    assert "-text/csv" in reasons["apigateway.rest_api scarab-test binaryMediaTypes"]

    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []
    assert inline_policies(iam, ROLE) == {
        "scarab-write-logs": EXPECTED_LOGS_POLICY,
        "scarab-read-secret": EXPECTED_SSM_POLICY,
        "scarab-use-cache": EXPECTED_CACHE_POLICY,
        "scarab-use-uploads": UPLOADS_POLICY,
        "scarab-run-jobs": JOBS_POLICY,
    }
    assert permission(lam, ANALYZE) == expected_permission(api_id, "test")
    assert apigw.get_rest_api(restApiId=api_id)["binaryMediaTypes"] == BINARY
    # The new media types take effect on AWS only in a new deployment of the stage.
    assert len(apigw.get_deployments(restApiId=api_id)["items"]) == deployments_before + 1

    third, rec = run_deploy()
    assert third.up_to_date and rec.mutating == []


def test_binary_media_types_are_patched_by_path(run_deploy, aws, project: Path) -> None:
    first, _ = run_deploy()
    api_id = str(first.rest_api_id)
    apigw = client("apigateway", aws)
    apigw.update_rest_api(
        restApiId=api_id,
        patchOperations=[
            {"op": "remove", "path": "/binaryMediaTypes/image~1jpeg", "value": "image/jpeg"}
        ],
    )
    sent: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.extend(params["patchOperations"])

    config = load_config(project)
    session = boto3.Session(region_name="us-east-1")
    session.events.register("provide-client-params.apigateway.UpdateRestApi", capture)
    from scarab.deploy import deploy

    result = deploy(config, project_dir=project, endpoint_url=aws.url, session=session)
    assert not result.up_to_date
    # AWS reads the media type from the path ("/" spelled "~1").
    assert sent == [{"op": "add", "path": "/binaryMediaTypes/image~1jpeg", "value": "image/jpeg"}]
    assert sorted(apigw.get_rest_api(restApiId=api_id)["binaryMediaTypes"]) == sorted(BINARY)


def test_every_artifact_bucket_call_names_the_expected_owner(run_deploy, aws, project) -> None:
    run_deploy()
    seen: list[tuple[str, str | None]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.service_model.service_name == "s3":
            headers = {k.lower(): v for k, v in (params.get("headers") or {}).items()}
            seen.append((model.name, headers.get("x-amz-expected-bucket-owner")))

    session = boto3.Session(region_name="us-east-1")
    session.events.register("before-call", record)
    config = load_config(project)
    aws_ = Aws("us-east-1", endpoint_url=aws.url, session=session)
    codes = _deployed_codes(project, config, aws_)
    codes["analyze"] = dataclasses.replace(codes["analyze"], zip_size=LAMBDA_ZIP_LIMIT + 1)
    desired = desired_state(
        config, account_id=aws_.account_id, region="us-east-1", partition="aws", codes=codes
    )
    own = tuple(f.names for f in desired.functions)
    bucket = "scarab-artifacts-123456789012-us-east-1"
    for _ in range(2):  # first upload: the bucket is created; second: it exists
        registry = desired.registry
        assert registry is not None
        obs = read_all(
            aws_, desired.names, StageState(), own, artifact_bucket=(bucket, "123456789012"),
            registry=(registry.table, registry.bucket, registry.seeds, "~aliases"),
        )  # fmt: skip
        live = obs.unit("analyze").function
        assert live is not None
        live.config["CodeSha256"] = "stale"  # so the plan uploads the code
        steps = plan(desired, obs)
        assert [s.resource for s in steps][-1] == f"lambda.function {ANALYZE} code"
        Executor(aws_, seed_vars(obs)).execute(steps)
    ops = [op for op, _ in seen]
    assert ops.count("CreateBucket") == 1 and ops.count("PutObject") == 2
    assert "HeadBucket" in ops and "PutPublicAccessBlock" in ops
    # CreateBucket takes no owner (a bucket it creates is ours); every other call names it.
    assert [(op, owner) for op, owner in seen if op != "CreateBucket"] == [
        (op, "123456789012") for op in ops if op != "CreateBucket"
    ]
    keys = [o["Key"] for o in client("s3", aws).list_objects_v2(Bucket=bucket)["Contents"]]
    sha = desired.function("analyze").code.zip_sha256_b64
    assert keys == [f"{ANALYZE}/{_hex(sha)}.zip"]


def _deployed_codes(project: Path, config: Any, aws_: Aws) -> Any:
    from scarab.deploy import _codes
    from scarab.functions import FUNCTIONS

    return _codes(config, project, "zip", "local", aws_, None, FUNCTIONS)


def _hex(b64: str | None) -> str:
    import base64

    return base64.b64decode(str(b64)).hex()
