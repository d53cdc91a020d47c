"""The README's list of IAM actions the deploying identity needs is complete: every AWS
operation a deploy (with a Function URL created, updated and removed), the `scarab
models` commands and `destroy --include-models` make against the moto server is
recorded (botocore's event hooks on the session, tests/deploy/conftest.py) and its IAM
action must be in the README's table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import joblib
import pytest
from scarab.aws import Aws
from scarab.config import load_config
from scarab.deploy.destroy import destroy
from scarab.models import registry
from scarab.models.convert import prepare
from scarab.secrets import set_secret

from tests.deploy.conftest import Recorder, counted_session
from tests.deploy.test_alarms_deploy import ALARMS
from tests.deploy.test_forecast_data import shifted
from tests.deploy.test_function_url_deploy import PUBLIC, configure
from tests.deploy.test_models_cli import classifier, data
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator
__all__ = ["data"]  # the fixture, shared with the models CLI tests

README = Path(__file__).resolve().parents[2] / "README.md"
_ACTION = re.compile(r"`([a-z0-9-]+:[A-Za-z*]+)`")

# Calls IAM never checks (GetCallerIdentity answers whoever asks).
NO_PERMISSION = {("sts", "GetCallerIdentity")}
# S3 operations whose IAM action has another name (AWS Service Authorization Reference,
# "Actions defined by Amazon S3").
S3_ACTIONS = {
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "HeadObject": "GetObject",
    "PutBucketEncryption": "PutEncryptionConfiguration",
    "GetBucketEncryption": "GetEncryptionConfiguration",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "GetBucketCors": "GetBucketCORS",
    "PutBucketCors": "PutBucketCORS",
    "DeleteBucketCors": "PutBucketCORS",  # S3 has no DeleteBucketCORS action
}
# A DynamoDB transaction needs the action of each item it holds.
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


# Creating a resource with tags also needs the service's tagging action.
TAG_ON_CREATE = {
    ("iam", "CreateRole"): ("Tags", "iam:TagRole"),
    ("lambda", "CreateFunction"): ("Tags", "lambda:TagResource"),
    ("logs", "CreateLogGroup"): ("tags", "logs:TagResource"),
    ("dynamodb", "CreateTable"): ("Tags", "dynamodb:TagResource"),
    ("ecr", "CreateRepository"): ("tags", "ecr:TagResource"),
    ("ssm", "PutParameter"): ("Tags", "ssm:AddTagsToResource"),  # the stage lock
    ("secretsmanager", "CreateSecret"): ("Tags", "secretsmanager:TagResource"),
    ("sns", "CreateTopic"): ("Tags", "sns:TagResource"),
    ("cloudwatch", "PutMetricAlarm"): ("Tags", "cloudwatch:TagResource"),
    ("budgets", "CreateBudget"): ("ResourceTags", "budgets:TagResource"),
    ("sqs", "CreateQueue"): ("tags", "sqs:TagQueue"),
}


def iam_actions(model: Any, params: dict[str, Any]) -> set[str]:
    """The IAM actions (service:Action) that authorize one API call."""
    service, op = model.service_model.service_name, model.name
    if (service, op) in NO_PERMISSION:
        return set()
    extra: set[str] = set()
    tags, tagging = TAG_ON_CREATE.get((service, op), ("", ""))
    if tags and params.get(tags):
        extra.add(tagging)
    if service == "lambda" and "Role" in params:  # the function is given its role
        extra.add("iam:PassRole")
    return extra | _actions(service, op, model, params)


def _actions(service: str, op: str, model: Any, params: dict[str, Any]) -> set[str]:
    if service == "apigateway":  # management calls are authorized by HTTP method
        return {f"apigateway:{model.http['method']}"}
    if service == "budgets":  # AWS Budgets authorizes reads and changes as two actions
        return {"budgets:ViewBudget" if op.startswith("Describe") else "budgets:ModifyBudget"}
    if service == "dynamodb" and op == "TransactWriteItems":
        return {f"dynamodb:{TRANSACT_ACTIONS[k]}" for i in params["TransactItems"] for k in i}
    if service == "s3":
        versioned = "VersionId" in params
        if op in ("GetObject", "HeadObject", "DeleteObject"):
            name = "DeleteObject" if op == "DeleteObject" else "GetObject"
            return {f"s3:{name}Version" if versioned else f"s3:{name}"}
        if op == "DeleteObjects":
            objects = params["Delete"]["Objects"]
            return {
                "s3:DeleteObjectVersion" if "VersionId" in o else "s3:DeleteObject" for o in objects
            }
        return {f"s3:{S3_ACTIONS.get(op, op)}"}
    return {f"{service}:{op}"}


def test_iam_actions_of_calls() -> None:
    import boto3

    def model(service: str, op: str) -> Any:
        client = boto3.client(service, region_name="us-east-1")
        return client.meta.service_model.operation_model(op)

    assert iam_actions(model("apigateway", "CreateRestApi"), {}) == {"apigateway:POST"}
    assert iam_actions(model("apigateway", "UpdateRestApi"), {}) == {"apigateway:PATCH"}
    assert iam_actions(model("s3", "PutPublicAccessBlock"), {}) == {"s3:PutBucketPublicAccessBlock"}
    assert iam_actions(model("s3", "DeleteObject"), {"VersionId": "v"}) == {
        "s3:DeleteObjectVersion"
    }
    objects = {"Delete": {"Objects": [{"Key": "a", "VersionId": "v"}, {"Key": "b"}]}}
    assert iam_actions(model("s3", "DeleteObjects"), objects) == {
        "s3:DeleteObjectVersion",
        "s3:DeleteObject",
    }
    items = {"TransactItems": [{"Put": {}}, {"ConditionCheck": {}}]}
    assert iam_actions(model("dynamodb", "TransactWriteItems"), items) == {
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
    }
    assert iam_actions(model("sts", "GetCallerIdentity"), {}) == set()
    created = {"Role": "arn", "Tags": {"scarab:app": "a"}}
    assert iam_actions(model("lambda", "CreateFunction"), created) == {
        "lambda:CreateFunction",
        "lambda:TagResource",
        "iam:PassRole",
    }
    assert iam_actions(model("lambda", "CreateFunctionUrlConfig"), {}) == {
        "lambda:CreateFunctionUrlConfig"
    }


def readme_actions(text: str) -> set[str]:
    """The actions of the README's permissions table (the one headed "IAM actions")."""
    lines = text.splitlines()
    (start,) = [i for i, line in enumerate(lines) if re.match(r"^\|.*\bIAM actions\b.*\|$", line)]
    rows = []
    for line in lines[start + 2 :]:  # after the header and its |---| line
        if not line.startswith("|"):
            break
        rows.append(line)
    return {a for row in rows for a in _ACTION.findall(row)}


def test_the_readme_table_is_read() -> None:
    table = "\n".join([
        "text `iam:NotInTheTable`",
        "| For | IAM actions |",
        "|---|---|",
        "| the roles | `iam:GetRole`, `iam:CreateRole` |",
        "| the API | `apigateway:GET` |",
        "",
        "| x | `s3:After` |",
    ])  # fmt: skip
    assert readme_actions(table) == {"iam:GetRole", "iam:CreateRole", "apigateway:GET"}
    assert len(readme_actions(README.read_text())) > 40


def test_every_call_of_deploy_models_and_destroy_is_in_the_readme(
    run_deploy: Any, aws: MotoServer, project: Path, tmp_path: Path, data: Any
) -> None:
    recorders: list[Recorder] = []
    configure(project, ALARMS + PUBLIC)
    recorders.append(run_deploy()[1])  # everything created, a public Function URL
    # Another address and limit: unsubscribed, the budget replaced.
    changed = ALARMS.replace("ops@", "oncall@").replace("monthly_usd = 25", "monthly_usd = 30")
    configure(project, changed + '\n[functions.models.url]\nauth = "AWS_IAM"\n')
    recorders.append(run_deploy()[1])  # the URL updated, its public grant removed
    recorders.append(run_deploy()[1])  # up to date: reads only
    configure(project, "")
    recorders.append(run_deploy()[1])  # the URL deleted

    config = load_config(project)

    def session() -> Aws:
        recorders.append(Recorder())
        return Aws("us-east-1", endpoint_url=aws.url, session=counted_session(recorders[-1]))

    # scarab secrets set, with each backend (Secrets Manager: created, then overwritten).
    sm_config = load_config(project, {"secrets": {"backend": "secretsmanager"}})
    for cfg in (config, sm_config, sm_config):
        set_secret(cfg, "a-test-key-value", project_dir=project, aws=session())

    reg = registry.open_registry(config, project_dir=project, aws=session())
    for version, c in (("1", 1.0), ("2", 0.01)):
        path = tmp_path / f"churn-{version}.joblib"
        joblib.dump(classifier(data, c), path)
        registry.push(reg, prepare(path), name="churn", version=version, promote_it=version == "1")
    registry.list_versions(reg)
    registry.promote(reg, "churn", "2")
    registry.rollback(reg, "churn")
    registry.split(reg, "churn", "2", 30)
    registry.split(reg, "churn", "2", 0)
    registry.remove(reg, "churn", "2")
    recent = tmp_path / "recent.csv"
    recent.write_text(shifted(days=7, factor=3))
    registry.push_data(reg, "bikes-3h", recent)
    destroy(config, project_dir=project, aws=session(), include_models=True)

    needed: dict[str, set[str]] = {}
    for recorder in recorders:
        for model, params in recorder.requests:
            for action in iam_actions(model, params):
                needed.setdefault(action, set()).add(model.name)
    assert {"lambda:CreateFunctionUrlConfig", "lambda:UpdateFunctionUrlConfig"} <= set(needed)
    assert {"lambda:DeleteFunctionUrlConfig", "dynamodb:DeleteTable"} <= set(needed)
    assert {"s3:DeleteObjectVersion", "ec2:DescribeRegions", "iam:PassRole"} <= set(needed)
    assert {"secretsmanager:CreateSecret", "secretsmanager:PutSecretValue"} <= set(needed)
    assert {"sns:Subscribe", "sns:Unsubscribe", "sns:DeleteTopic", "budgets:ModifyBudget"} <= set(
        needed
    )
    assert {"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"} <= set(needed)
    listed = readme_actions(README.read_text())
    missing = {a: sorted(ops) for a, ops in sorted(needed.items()) if a not in listed}
    assert not missing, f"README.md's permissions table lacks (action: calls): {missing}"
    print(sorted(needed))  # what the run needed, for whoever updates the table
