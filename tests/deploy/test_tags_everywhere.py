"""Every resource a deploy (and `scarab secrets set`) creates carries the stage's
`scarab:app` and `scarab:stage` tags: listed service by service from the moto server.

moto's budgets answers no ListTagsForResource, and an image deploy needs a container
build: for those two the tags are checked on the create call's parameters instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scarab.config import load_config
from scarab.deploy import deploy
from scarab.secrets import set_secret

from tests.deploy.conftest import Recorder, client, counted_session
from tests.deploy.test_alarms_deploy import ALARMS, Deploy, _with
from tests.support.moto_server import MotoServer

WANT = {"scarab:app": "scarab", "scarab:stage": "test"}


def _pairs(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def _ours(tags: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in WANT.items())


def inventory(aws: MotoServer) -> dict[str, dict[str, dict[str, str]]]:
    """Every resource in the account, by service: name -> its tags."""
    iam, lam, logs = client("iam", aws), client("lambda", aws), client("logs", aws)
    apigw, ddb, s3 = client("apigateway", aws), client("dynamodb", aws), client("s3", aws)
    ssm, sm = client("ssm", aws), client("secretsmanager", aws)
    cw, sns = client("cloudwatch", aws), client("sns", aws)
    out: dict[str, dict[str, dict[str, str]]] = {}
    out["iam.role"] = {
        r["RoleName"]: _pairs(iam.list_role_tags(RoleName=r["RoleName"])["Tags"])
        for r in iam.list_roles()["Roles"]
    }
    out["lambda.function"] = {
        f["FunctionName"]: lam.list_tags(Resource=f["FunctionArn"])["Tags"]
        for f in lam.list_functions()["Functions"]
    }
    out["logs.group"] = {
        g["logGroupName"]: logs.list_tags_log_group(logGroupName=g["logGroupName"])["tags"]
        for g in logs.describe_log_groups()["logGroups"]
    }
    apis = apigw.get_rest_apis()["items"]
    out["apigateway.rest_api"] = {a["name"]: a.get("tags") or {} for a in apis}
    out["apigateway.stage"] = {
        f"{a['name']}/{s['stageName']}": s.get("tags") or {}
        for a in apis
        for s in apigw.get_stages(restApiId=a["id"])["item"]
    }
    out["apigateway.usage_plan"] = {
        p["name"]: p.get("tags") or {} for p in apigw.get_usage_plans()["items"]
    }
    out["apigateway.api_key"] = {
        k["name"]: k.get("tags") or {} for k in apigw.get_api_keys()["items"]
    }
    out["dynamodb.table"] = {
        t: _pairs(
            ddb.list_tags_of_resource(
                ResourceArn=ddb.describe_table(TableName=t)["Table"]["TableArn"]
            )["Tags"]
        )
        for t in ddb.list_tables()["TableNames"]
    }
    out["s3.bucket"] = {
        b["Name"]: _pairs(s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"])
        for b in s3.list_buckets()["Buckets"]
    }
    out["ssm.parameter"] = {
        p["Name"]: _pairs(
            ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=p["Name"])["TagList"]
        )
        for p in ssm.describe_parameters()["Parameters"]
    }
    out["secretsmanager.secret"] = {
        s["Name"]: _pairs(s.get("Tags")) for s in sm.list_secrets()["SecretList"]
    }
    out["cloudwatch.alarm"] = {
        a["AlarmName"]: _pairs(cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"])
        for a in cw.describe_alarms()["MetricAlarms"]
    }
    out["sns.topic"] = {
        t["TopicArn"]: _pairs(sns.list_tags_for_resource(ResourceArn=t["TopicArn"])["Tags"])
        for t in sns.list_topics()["Topics"]
    }
    sqs = client("sqs", aws)
    out["sqs.queue"] = {
        url: sqs.list_queue_tags(QueueUrl=url).get("Tags") or {}
        for url in sqs.list_queues().get("QueueUrls", [])
    }
    return out


def test_every_resource_of_a_full_stage_is_tagged(
    aws: MotoServer, project: Path, run_deploy: Deploy, monkeypatch: Any
) -> None:
    _with(project, ALARMS)
    _, rec = run_deploy()
    config = load_config(project)
    set_secret(config, "test-gemini-key-0123456789", project_dir=project,
               endpoint_url=aws.url)  # fmt: skip
    other = load_config(project, {"secrets.backend": "secretsmanager"})
    set_secret(other, "test-gemini-key-0123456789", project_dir=project,
               endpoint_url=aws.url)  # fmt: skip
    found = inventory(aws)
    # Every kind a full stage has is there (the test would pass vacuously otherwise).
    counts = {kind: len(items) for kind, items in found.items()}
    assert counts == {
        "iam.role": 2, "lambda.function": 2, "logs.group": 2, "apigateway.rest_api": 1,
        "apigateway.stage": 1, "apigateway.usage_plan": 1, "apigateway.api_key": 1,
        "dynamodb.table": 3, "s3.bucket": 2, "ssm.parameter": 1, "secretsmanager.secret": 1,
        "cloudwatch.alarm": 8, "sns.topic": 1, "sqs.queue": 1,
    }  # fmt: skip
    untagged = {
        kind: sorted(name for name, tags in items.items() if not _ours(tags))
        for kind, items in found.items()
    }
    assert {k: v for k, v in untagged.items() if v} == {}

    # The budget: moto cannot list its tags, so the CreateBudget call carries them.
    [budget] = [p for model, p in rec.requests if model.name == "CreateBudget"]
    assert _ours(_pairs(budget["ResourceTags"]))


def test_the_image_repository_is_created_tagged(aws: MotoServer, project: Path) -> None:
    """An image deploy needs a container build; its plan's CreateRepository is checked."""
    config = load_config(project, {"function.package": "image"})
    result = deploy(config, project_dir=project, endpoint_url=aws.url, dry_run=True,
                    session=counted_session(Recorder()))  # fmt: skip
    [create] = [
        c for s in result.plan for c in s.instructions
        if getattr(c, "operation", None) == "CreateRepository"
    ]  # fmt: skip
    assert _ours(_pairs(create.params["tags"]))
