"""The uploads bucket and the jobs' table, dead-letter queue and asynchronous settings
as deploy makes them on the moto server: each setting, the role policies scoped to
exactly these resources, the functions' variables, the API routes; a dry run and a
second deploy make no mutating call; destroy leaves nothing of them.

moto keeps no DeadLetterConfig on a function (it answers none): the deploy's
CreateFunction call is checked for it instead, and the planner treats the target as
unknown there (tests/deploy/test_uploads_jobs_drift.py checks the plan for AWS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scarab.config import load_config
from scarab.deploy.destroy import destroy

from tests.deploy.conftest import (
    ANALYZE,
    ANALYZE_ROLE,
    MODELS,
    MODELS_ROLE,
    client,
    inline_policies,
)

pytestmark = pytest.mark.emulator

ACCOUNT = "123456789012"
BUCKET = f"scarab-test-uploads-{ACCOUNT}-us-east-1"
TABLE = "scarab-test-jobs"
QUEUE = "scarab-test-jobs-dlq"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE}"
ANALYZE_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{ANALYZE}"
TAGS = {"scarab:app": "scarab", "scarab:stage": "test"}

UPLOADS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "UseUploads",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
            "Resource": f"arn:aws:s3:::{BUCKET}/uploads/*",
        }
    ],
}
JOBS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "UseJobsTable",
            "Effect": "Allow",
            "Action": [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            ],
            "Resource": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE}",
        },
        {
            "Sid": "UseJobsDeadLetterQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:SendMessage",
            ],
            "Resource": QUEUE_ARN,
        },
        {
            "Sid": "InvokeItselfForJobs",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": [ANALYZE_ARN, f"{ANALYZE_ARN}:*"],
        },
    ],
}


def queue_url(aws: Any) -> str:
    return str(client("sqs", aws).get_queue_url(QueueName=QUEUE)["QueueUrl"])


def mappings(aws: Any) -> list[dict[str, Any]]:
    lam = client("lambda", aws)
    return list(lam.list_event_source_mappings(EventSourceArn=QUEUE_ARN)["EventSourceMappings"])


def test_deploy_creates_the_uploads_bucket_with_every_setting(run_deploy: Any, aws: Any) -> None:
    run_deploy()
    s3 = client("s3", aws)
    enc = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    owner = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]
    assert owner == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert rule["Filter"] == {"Prefix": "uploads/"} and rule["Status"] == "Enabled"
    assert rule["Expiration"] == {"Days": 1}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    # POST only, from the stage's allowed origins ([function] allowed_origins).
    assert s3.get_bucket_cors(Bucket=BUCKET)["CORSRules"] == [
        {
            "AllowedHeaders": ["*"],
            "AllowedMethods": ["POST"],
            "AllowedOrigins": ["http://localhost:3000"],
            "MaxAgeSeconds": 3600,
        }
    ]
    tags = s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == TAGS


def test_deploy_creates_the_jobs_table_queue_and_mapping(run_deploy: Any, aws: Any) -> None:
    result, recorder = run_deploy()
    ddb, sqs, lam = client("dynamodb", aws), client("sqs", aws), client("lambda", aws)
    table = ddb.describe_table(TableName=TABLE)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}
    got = ddb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in got} == TAGS
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url(aws), AttributeNames=["All"])["Attributes"]
    assert attrs["MessageRetentionPeriod"] == str(14 * 86400)
    assert attrs["VisibilityTimeout"] == "180"  # six times the function's 30 s
    assert sqs.list_queue_tags(QueueUrl=queue_url(aws))["Tags"] == TAGS
    # The function's dead-letter queue: moto answers none, so the call is checked.
    [create] = [
        p
        for model, p in recorder.requests
        if model.name == "CreateFunction" and p["FunctionName"] == ANALYZE
    ]
    assert create["DeadLetterConfig"] == {"TargetArn": QUEUE_ARN}
    models = [p for model, p in recorder.requests if model.name == "CreateFunction"]
    assert [p.get("DeadLetterConfig") for p in models if p["FunctionName"] == MODELS] == [None]
    config = lam.get_function_event_invoke_config(FunctionName=ANALYZE, Qualifier="live")
    assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (2, 3600)
    [mapping] = mappings(aws)
    assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (
        10,
        ["ReportBatchItemFailures"],
    )
    [create_mapping] = [p for m, p in recorder.requests if m.name == "CreateEventSourceMapping"]
    assert create_mapping["FunctionName"] == f"{ANALYZE_ARN}:live"
    assert result.functions["analyze"]["arn"] == ANALYZE_ARN


def test_roles_are_scoped_to_exactly_these_resources(run_deploy: Any, aws: Any) -> None:
    run_deploy()
    iam = client("iam", aws)
    analyze, models = inline_policies(iam, ANALYZE_ROLE), inline_policies(iam, MODELS_ROLE)
    assert analyze["scarab-use-uploads"] == models["scarab-use-uploads"] == UPLOADS_POLICY
    assert analyze["scarab-run-jobs"] == JOBS_POLICY
    assert "scarab-run-jobs" not in models


def test_the_functions_are_told_where_uploads_and_jobs_are(run_deploy: Any, aws: Any) -> None:
    run_deploy({"uploads.max_mb": 20, "jobs.ttl_hours": 2})
    lam = client("lambda", aws)
    env = lam.get_function_configuration(FunctionName=ANALYZE)["Environment"]["Variables"]
    assert env["SCARAB_UPLOADS_BUCKET"] == BUCKET
    assert env["SCARAB_UPLOADS_MAX_BYTES"] == str(20 * 1048576)
    assert env["SCARAB_JOBS_TABLE"] == TABLE
    assert env["SCARAB_JOBS_TTL_S"] == "7200"
    models = lam.get_function_configuration(FunctionName=MODELS)["Environment"]["Variables"]
    assert (models["SCARAB_UPLOADS_BUCKET"], models["SCARAB_UPLOADS_MAX_BYTES"]) == (
        BUCKET,
        str(20 * 1048576),
    )
    assert "SCARAB_JOBS_TABLE" not in models
    # Scarab's by name: kept out of the managed-env tag (AWS caps a value at 256).
    for function in (ANALYZE, MODELS):
        arn = lam.get_function_configuration(FunctionName=function)["FunctionArn"]
        tag = lam.list_tags(Resource=arn)["Tags"]["scarab:managed-env"]
        assert "SCARAB_UPLOADS" not in tag and "SCARAB_JOBS" not in tag
        assert len(tag) <= 256


def test_the_api_routes_uploads_and_jobs_to_analyze_with_a_key(run_deploy: Any, aws: Any) -> None:
    result, _ = run_deploy()
    apigw = client("apigateway", aws)
    api = str(result.rest_api_id)
    ids = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api)["items"]}
    for path, verb in (("/uploads", "POST"), ("/jobs", "POST"), ("/jobs/{id}", "GET")):
        method = apigw.get_method(restApiId=api, resourceId=ids[path], httpMethod=verb)
        assert method["apiKeyRequired"] is True
        uri = method["methodIntegration"]["uri"]
        assert uri.endswith(f"functions/{ANALYZE_ARN}:live/invocations"), uri
        options = apigw.get_method(restApiId=api, resourceId=ids[path], httpMethod="OPTIONS")
        assert options["apiKeyRequired"] is False


def test_a_dry_run_and_a_second_deploy_make_no_mutating_call(run_deploy: Any, aws: Any) -> None:
    planned, recorder = run_deploy(dry_run=True)
    assert recorder.mutating == []
    kinds = {s.resource for s in planned.plan}
    assert f"s3.bucket {BUCKET}" in kinds and f"sqs.queue {QUEUE}" in kinds
    assert f"dynamodb.table {TABLE}" in kinds
    assert client("s3", aws).list_buckets()["Buckets"] == []
    run_deploy()
    again, recorder = run_deploy()
    assert again.up_to_date and again.plan == [], [s.describe() for s in again.plan]
    assert recorder.mutating == []
    dry, recorder = run_deploy(dry_run=True)
    assert dry.plan == [] and recorder.mutating == []


def test_destroy_removes_bucket_table_queue_and_mapping(
    run_deploy: Any, aws: Any, project: Path
) -> None:
    run_deploy()
    s3 = client("s3", aws)
    s3.put_object(Bucket=BUCKET, Key="uploads/" + "a" * 32, Body=b"\xff\xd8 photo")
    s3.put_object(Bucket=BUCKET, Key="uploads/" + "b" * 32, Body=b"second")
    removed = destroy(load_config(project), project_dir=project, endpoint_url=aws.url).removed
    for resource in (
        f"lambda.event_source_mapping {QUEUE} -> {ANALYZE}:live",
        f"lambda.event_invoke_config {ANALYZE}:live",
        f"sqs.queue {QUEUE}",
        f"dynamodb.table {TABLE}",
        f"s3.bucket {BUCKET}",
    ):
        assert resource in removed, removed
    # The mapping before the function it invokes.
    assert removed.index(f"lambda.event_source_mapping {QUEUE} -> {ANALYZE}:live") < removed.index(
        f"lambda.function {ANALYZE}"
    )
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert TABLE not in client("dynamodb", aws).list_tables()["TableNames"]
    assert client("sqs", aws).list_queues().get("QueueUrls", []) == []
    assert mappings(aws) == []
    roles = [r["RoleName"] for r in client("iam", aws).list_roles()["Roles"]]
    assert roles == []
    again = destroy(load_config(project), project_dir=project, endpoint_url=aws.url)
    assert again.steps == []
    assert json.dumps(again.removed) == "[]"


def test_status_lists_the_uploads_bucket_and_the_jobs(
    run_deploy: Any, aws: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scarab.cli import app
    from typer.testing import CliRunner

    run_deploy()
    monkeypatch.chdir(project)

    def status() -> dict[str, Any]:
        result = CliRunner().invoke(app, ["status", "--json", "--endpoint-url", aws.url])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.output))

    data = status()
    assert data["uploads"] == {"bucket": BUCKET, "exists": True, "max_mb": 50}
    assert data["jobs"] == {
        "table": TABLE,
        "table_exists": True,
        "queue": QUEUE,
        "queue_exists": True,
        "retries": 2,
        "ttl_hours": 24,
    }
    assert data["drift"] == []
    [mapping] = mappings(aws)
    client("lambda", aws).delete_event_source_mapping(UUID=mapping["UUID"])
    assert status()["drift"] == [{"field": "jobs.mapping", "live": "missing", "config": "present"}]
