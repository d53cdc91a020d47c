"""review15b: the invoke grant names only endpoints SageMaker could name. A registry item
whose host is not `sagemaker:<endpoint name>` (a wildcard, a path, nothing) is written by
hand or by an older tool; the function refuses it as a model, and the deploy must not
turn it into an IAM resource (`endpoint/*` would let the models role invoke every
endpoint in the account)."""

from __future__ import annotations

import pytest

from tests.deploy.conftest import MODELS_ROLE, client, inline_policies

pytestmark = pytest.mark.emulator

TABLE = "scarab-test-models"
POLICY = "scarab-invoke-endpoints"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/"


def test_only_valid_endpoint_names_are_granted(run_deploy, aws) -> None:
    run_deploy()
    ddb, iam = client("dynamodb", aws), client("iam", aws)
    hosts = {
        "wild": "sagemaker:*",
        "glob": "sagemaker:prod-*",
        "path": "sagemaker:a/b",
        "empty": "sagemaker:",
        "spaced": "sagemaker: ep ",
        "long": "sagemaker:" + "x" * 64,
        "good": "sagemaker:good-ep",
    }
    for name, host in hosts.items():
        ddb.put_item(
            TableName=TABLE,
            Item={"name": {"S": name}, "version": {"S": "1"}, "host": {"S": host}},
        )
    run_deploy()
    statement = inline_policies(iam, MODELS_ROLE)[POLICY]["Statement"][0]
    assert statement["Resource"] == [f"{ARN}good-ep"]

    # Only invalid hosts left: no grant at all.
    ddb.delete_item(TableName=TABLE, Key={"name": {"S": "good"}, "version": {"S": "1"}})
    run_deploy()
    assert POLICY not in inline_policies(iam, MODELS_ROLE)


def test_the_deploys_endpoint_rule_is_the_functions() -> None:
    from lens.predict.registry import ENDPOINT_NAME_PATTERN
    from scarab.deploy.models import ENDPOINT_NAME

    assert ENDPOINT_NAME.pattern == ENDPOINT_NAME_PATTERN
