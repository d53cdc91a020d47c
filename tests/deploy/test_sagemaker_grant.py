"""The models role may invoke exactly the SageMaker endpoints the registry's versions are
hosted on (host = "sagemaker:<endpoint>"), as read from the registry table at deploy time;
a redeploy with nothing new changes nothing, and the grant goes when no version names an
endpoint any more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import MODELS_ROLE, client, inline_policies

pytestmark = pytest.mark.emulator

TABLE = "scarab-test-models"
POLICY = "scarab-invoke-endpoints"


def hosted_item(name: str, host: str) -> dict[str, dict[str, str]]:
    # Only what the deploy reads (name, version, host); the function's parser is not involved.
    return {"name": {"S": name}, "version": {"S": "1"}, "host": {"S": host}}


def test_the_models_role_invokes_exactly_the_hosting_endpoints(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()
    ddb, iam = client("dynamodb", aws), client("iam", aws)
    assert POLICY not in inline_policies(iam, MODELS_ROLE)
    ddb.put_item(TableName=TABLE, Item=hosted_item("big", "sagemaker:Big-Endpoint"))
    ddb.put_item(TableName=TABLE, Item=hosted_item("other", "sagemaker:other-ep"))

    result, _ = run_deploy()
    assert not result.up_to_date
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/"
    assert inline_policies(iam, MODELS_ROLE)[POLICY] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeHostingEndpoints",
                "Effect": "Allow",
                "Action": "sagemaker:InvokeEndpoint",
                "Resource": [f"{arn}Big-Endpoint", f"{arn}big-endpoint", f"{arn}other-ep"],
            }
        ],
    }
    assert POLICY not in inline_policies(iam, "scarab-test-analyze-role")
    again, _ = run_deploy()
    assert again.up_to_date, [s.resource for s in again.plan]

    for name in ("big", "other"):
        ddb.delete_item(TableName=TABLE, Key={"name": {"S": name}, "version": {"S": "1"}})
    run_deploy()
    assert POLICY not in inline_policies(iam, MODELS_ROLE)
