"""Drift of the uploads bucket and of the jobs' resources is repaired by the next deploy:
on the moto server (someone changes the bucket's CORS, its public access block, its
lifecycle or ownership, the queue's retention, the retries, the mapping), and as plans of
values for what moto cannot show (the function's DeadLetterConfig, which moto does not
keep; a mapping on a version, which moto reports for the alias)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from scarab.deploy.instructions import ApiCall
from scarab.deploy.planner import plan
from scarab.deploy.planner_jobs import plan_jobs_invoke, plan_jobs_store
from scarab.deploy.planner_uploads import plan_uploads

from tests.deploy.conftest import ANALYZE, client
from tests.deploy.test_planner import converged, converged_jobs, converged_uploads, desired
from tests.deploy.test_uploads_jobs_deploy import BUCKET, QUEUE, mappings, queue_url

TABLE = "scarab-test-jobs"


def changes(result: Any) -> list[tuple[str, str]]:
    return [(s.action, s.resource) for s in result.plan]


def scarab_calls(recorder: Any) -> list[str]:
    """The mutating calls, without taking and releasing the stage lock (SSM)."""
    return [c for c in recorder.mutating if not c.startswith("ssm.")]


# On the moto server ---------------------------------------------------------------------


@pytest.mark.emulator
def test_bucket_settings_changed_by_hand_are_put_back(run_deploy: Any, aws: Any) -> None:
    run_deploy()
    s3 = client("s3", aws)
    s3.put_bucket_cors(
        Bucket=BUCKET,
        CORSConfiguration={
            "CORSRules": [{"AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["*"]}]
        },
    )
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration=dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
            False,
        ),
    )
    s3.delete_bucket_lifecycle(Bucket=BUCKET)
    s3.delete_bucket_ownership_controls(Bucket=BUCKET)
    result, recorder = run_deploy()
    res = f"s3.bucket {BUCKET}"
    assert changes(result) == [
        ("update", f"{res} public access block"),
        ("update", f"{res} ownership"),
        ("update", f"{res} lifecycle"),
        ("update", f"{res} cors"),
    ]
    assert scarab_calls(recorder) == [
        "s3.PutPublicAccessBlock",
        "s3.PutBucketOwnershipControls",
        "s3.PutBucketLifecycleConfiguration",
        "s3.PutBucketCors",
    ]
    assert s3.get_bucket_cors(Bucket=BUCKET)["CORSRules"][0]["AllowedMethods"] == ["POST"]
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"][0]["Expiration"] == {
        "Days": 1
    }
    again, recorder = run_deploy()
    assert again.plan == [] and recorder.mutating == []


@pytest.mark.emulator
def test_new_allowed_origins_reach_the_bucket_cors(run_deploy: Any, aws: Any) -> None:
    run_deploy()
    origins = ["https://a.example", "https://b.example"]
    result, _ = run_deploy({"function.allowed_origins": origins})
    assert ("update", f"s3.bucket {BUCKET} cors") in changes(result)
    [rule] = client("s3", aws).get_bucket_cors(Bucket=BUCKET)["CORSRules"]
    assert sorted(rule["AllowedOrigins"]) == origins and rule["AllowedMethods"] == ["POST"]


@pytest.mark.emulator
def test_queue_retention_and_table_ttl_changed_by_hand_are_put_back(
    run_deploy: Any, aws: Any
) -> None:
    run_deploy()
    sqs, ddb = client("sqs", aws), client("dynamodb", aws)
    sqs.set_queue_attributes(QueueUrl=queue_url(aws), Attributes={"MessageRetentionPeriod": "60"})
    ddb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": False, "AttributeName": "expiration"}
    )
    result, recorder = run_deploy()
    assert changes(result) == [
        ("update", f"dynamodb.table {TABLE} ttl"),
        ("update", f"sqs.queue {QUEUE} attributes"),
    ]
    assert scarab_calls(recorder) == ["dynamodb.UpdateTimeToLive", "sqs.SetQueueAttributes"]
    got = sqs.get_queue_attributes(QueueUrl=queue_url(aws), AttributeNames=["All"])
    assert got["Attributes"]["MessageRetentionPeriod"] == str(14 * 86400)
    ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"


@pytest.mark.emulator
def test_retries_changed_by_hand_or_in_the_config_are_applied(run_deploy: Any, aws: Any) -> None:
    run_deploy()
    lam = client("lambda", aws)
    live = {"FunctionName": ANALYZE, "Qualifier": "live"}
    # moto keeps the first configuration it was given: a change by hand is delete + put.
    lam.delete_function_event_invoke_config(**live)
    lam.put_function_event_invoke_config(**live, MaximumRetryAttempts=0)
    result, recorder = run_deploy()
    assert changes(result) == [("update", f"lambda.event_invoke_config {ANALYZE}:live")]
    assert scarab_calls(recorder) == [
        "lambda.DeleteFunctionEventInvokeConfig",
        "lambda.PutFunctionEventInvokeConfig",
    ]
    got = lam.get_function_event_invoke_config(**live)
    assert (got["MaximumRetryAttempts"], got["MaximumEventAgeInSeconds"]) == (2, 3600)
    result, _ = run_deploy({"jobs.retries": 1})
    assert ("update", f"lambda.event_invoke_config {ANALYZE}:live") in changes(result)
    assert lam.get_function_event_invoke_config(**live)["MaximumRetryAttempts"] == 1
    # Gone altogether: put again.
    lam.delete_function_event_invoke_config(**live)
    result, _ = run_deploy({"jobs.retries": 1})
    assert changes(result) == [("create", f"lambda.event_invoke_config {ANALYZE}:live")]
    assert lam.get_function_event_invoke_config(**live)["MaximumRetryAttempts"] == 1


@pytest.mark.emulator
def test_a_disabled_or_deleted_mapping_is_repaired(run_deploy: Any, aws: Any) -> None:
    run_deploy()
    lam = client("lambda", aws)
    [mapping] = mappings(aws)
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False, BatchSize=1)
    result, recorder = run_deploy()
    res = f"lambda.event_source_mapping {QUEUE} -> {ANALYZE}:live"
    assert changes(result) == [("update", res)]
    assert scarab_calls(recorder) == ["lambda.UpdateEventSourceMapping"]
    [fixed] = mappings(aws)
    assert (fixed["UUID"], fixed["State"], fixed["BatchSize"]) == (mapping["UUID"], "Enabled", 10)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    result, _ = run_deploy()
    assert changes(result) == [("create", res)]
    assert len(mappings(aws)) == 1


# Plans of values (what AWS answers) ---------------------------------------------------


def test_a_converged_stage_needs_nothing(tmp_path: Path) -> None:
    d = desired(tmp_path)
    assert plan(d, converged(d)) == []


def test_a_function_without_its_dead_letter_queue_gets_it(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    analyze = obs.units["analyze"].function
    assert analyze is not None
    queue = "arn:aws:sqs:us-east-1:123456789012:scarab-dev-jobs-dlq"
    assert analyze.config.pop("DeadLetterConfig") == {"TargetArn": queue}
    steps = plan(d, obs)
    config = next(
        s for s in steps if s.resource == "lambda.function scarab-dev-analyze configuration"
    )
    assert f"dead-letter queue none -> {queue}" in config.reason
    [update] = [c for c in config.calls if c.operation == "UpdateFunctionConfiguration"]
    assert update.params["DeadLetterConfig"] == {"TargetArn": queue}
    # On an emulator that keeps none (moto), the target is unknown: no drift.
    unreported = dataclasses.replace(analyze, dead_letter_unreported=True)
    obs.units["analyze"].function = unreported
    assert [s for s in plan(d, obs) if "analyze configuration" in s.resource] == []


def test_a_new_function_is_created_with_its_dead_letter_queue(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    del obs.units["analyze"]
    steps = plan(d, obs)
    [create] = [
        c
        for s in steps
        for c in s.calls
        if c.operation == "CreateFunction" and c.params["FunctionName"] == "scarab-dev-analyze"
    ]
    arn = "arn:aws:sqs:us-east-1:123456789012:scarab-dev-jobs-dlq"
    assert create.params["DeadLetterConfig"] == {"TargetArn": arn}


def test_a_first_deploy_plans_the_store_before_the_function_and_the_alias_settings_after(
    tmp_path: Path,
) -> None:
    from scarab.deploy.reader import Observed

    steps = plan(desired(tmp_path), Observed())
    resources = [s.resource for s in steps]
    queue = resources.index("sqs.queue scarab-dev-jobs-dlq")
    function = resources.index("lambda.function scarab-dev-analyze")
    alias = resources.index("lambda.alias scarab-dev-analyze:live")
    invoke = resources.index("lambda.event_invoke_config scarab-dev-analyze:live")
    mapping = resources.index(
        "lambda.event_source_mapping scarab-dev-jobs-dlq -> scarab-dev-analyze:live"
    )
    assert queue < function < alias < invoke < mapping
    # The role's policy (SendMessage on the queue) before the function that names it.
    policy = resources.index("iam.role scarab-dev-analyze-role inline scarab-run-jobs")
    assert policy < function


def test_a_mapping_on_a_version_or_a_second_one_is_fixed(tmp_path: Path) -> None:
    d = desired(tmp_path)
    jobs = converged_jobs(d)
    assert jobs is not None
    fn = d.function("analyze")
    jobs.mappings = [
        {**jobs.mappings[0], "FunctionArn": f"{fn.arn}:3"},
        {**jobs.mappings[0], "UUID": "m2", "FunctionArn": f"{fn.arn}:3"},
        # Another function's mapping of the queue is not ours to touch.
        {**jobs.mappings[0], "UUID": "m3", "FunctionArn": "arn:aws:lambda:us-east-1:1:function:x"},
    ]
    steps = plan_jobs_invoke(d, jobs)
    assert [(s.action, s.resource) for s in steps] == [
        ("update", "lambda.event_source_mapping scarab-dev-jobs-dlq -> scarab-dev-analyze:live"),
        ("delete", "lambda.event_source_mapping m2"),
    ]
    assert steps[0].calls[0].params == {
        "UUID": "m1",
        "FunctionName": fn.alias_arn,
        "Enabled": True,
        "BatchSize": 10,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }


def test_retries_drift_is_delete_then_put(tmp_path: Path) -> None:
    d = desired(tmp_path, **{"jobs.retries": 0})
    jobs = converged_jobs(desired(tmp_path))  # retries 2 live
    assert jobs is not None
    [step] = plan_jobs_invoke(d, jobs)
    target = {"FunctionName": "scarab-dev-analyze", "Qualifier": "live"}
    assert step.calls == [
        ApiCall("lambda", "DeleteFunctionEventInvokeConfig", target, missing_ok=True),
        ApiCall(
            "lambda",
            "PutFunctionEventInvokeConfig",
            {**target, "MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 3600},
        ),
    ]


def test_the_queue_hides_a_message_six_times_the_function_timeout(tmp_path: Path) -> None:
    d = desired(tmp_path, **{"functions.analyze.timeout": 900})
    assert d.jobs is not None and d.jobs.queue_attributes["VisibilityTimeout"] == "5400"
    jobs = converged_jobs(desired(tmp_path))
    [step] = plan_jobs_store(d, jobs)
    assert step.resource == "sqs.queue scarab-dev-jobs-dlq attributes"
    assert "VisibilityTimeout 180 -> 5400" in step.reason


def test_a_legacy_lifecycle_rule_or_extra_cors_rule_is_drift(tmp_path: Path) -> None:
    d = desired(tmp_path)
    uploads = converged_uploads(d)
    assert uploads is not None and plan_uploads(d, uploads) == []
    # The same rule as a legacy Prefix (no Filter) is the same rule.
    legacy = {k: v for k, v in uploads.lifecycle[0].items() if k != "Filter"}
    uploads.lifecycle = [{**legacy, "Prefix": "uploads/"}]
    assert plan_uploads(d, uploads) == []
    uploads.lifecycle = [{**legacy, "Prefix": ""}]  # every object: not scarab's rule
    uploads.cors = [*uploads.cors, {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]
    assert [s.resource for s in plan_uploads(d, uploads)] == [
        f"s3.bucket {d.uploads.bucket if d.uploads else ''} lifecycle",
        f"s3.bucket {d.uploads.bucket if d.uploads else ''} cors",
    ]
