"""The stage's model registry as deploy makes it: the table, the versioned private
encrypted bucket, the models function's environment and role, and the packaged models
seeded idempotently without ever taking a model from whoever pushed it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import ANALYZE_ROLE, MODELS, MODELS_ROLE, client, inline_policies

pytestmark = pytest.mark.emulator

TABLE = "scarab-test-models"
BUCKET = "scarab-test-models-123456789012-us-east-1"
PACKAGED = Path(__file__).resolve().parents[2] / "lambda/lens/predict/artifacts/registry.json"


def packaged() -> list[dict[str, Any]]:
    return list(json.loads(PACKAGED.read_text())["models"])


def item(aws: Any, name: str, version: str) -> dict[str, Any] | None:
    key = {"name": {"S": name}, "version": {"S": version}}
    got = client("dynamodb", aws).get_item(TableName=TABLE, Key=key, ConsistentRead=True)
    return got.get("Item")


def test_deploy_creates_the_registry_and_seeds_the_packaged_models(
    run_deploy, aws, project: Path
) -> None:
    result, _ = run_deploy()
    ddb, s3, lam, iam = (client(n, aws) for n in ("dynamodb", "s3", "lambda", "iam"))
    table = ddb.describe_table(TableName=TABLE)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "name": "HASH",
        "version": "RANGE",
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    owner = {"ExpectedBucketOwner": "123456789012"}
    assert s3.get_bucket_versioning(Bucket=BUCKET, **owner)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=BUCKET, **owner)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = s3.get_bucket_encryption(Bucket=BUCKET, **owner)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]}
    assert tags == {"scarab:app": "scarab", "scarab:stage": "test"}

    # Only the models function is told where the registry is, and only its role reads it.
    env = lam.get_function_configuration(FunctionName=MODELS)["Environment"]["Variables"]
    assert (env["MODEL_REGISTRY_TABLE"], env["ARTIFACTS_BUCKET"]) == (TABLE, BUCKET)
    analyze_env = lam.get_function_configuration(FunctionName="scarab-test-analyze")
    assert "MODEL_REGISTRY_TABLE" not in analyze_env["Environment"]["Variables"]
    assert inline_policies(iam, MODELS_ROLE)["scarab-read-registry"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadRegistry",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"],
                "Resource": f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}",
            },
            {
                "Sid": "ReadArtifacts",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [f"arn:aws:s3:::{BUCKET}/models/*", f"arn:aws:s3:::{BUCKET}/data/*"],
            },
        ],
    }
    assert "scarab-read-registry" not in inline_policies(iam, ANALYZE_ROLE)

    # Every packaged model: its version item, its file at its content address, live.
    for entry in packaged():
        got = item(aws, entry["name"], entry["version"])
        assert got is not None, entry["name"]
        assert got["source"] == {"S": "packaged"} and got["kind"] == {"S": entry["kind"]}
        assert got["sha256"] == {"S": entry["sha256"]}
        key = f"models/{entry['name']}/{entry['sha256']}.onnx"
        assert got["artifact_uri"] == {"S": f"s3://{BUCKET}/{key}"}
        assert json.loads(got["input_schema"]["S"]) == entry["input_schema"]
        assert json.loads(got["metrics"]["S"]) == entry["metrics"]
        assert got["created_at"]["S"].endswith("Z")
        body = s3.get_object(Bucket=BUCKET, Key=key, **owner)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        aliases = item(aws, entry["name"], "~aliases")
        assert aliases is not None
        assert aliases["live"] == {"S": entry["version"]} and aliases["revision"] == {"N": "1"}

    again, recorder = run_deploy()
    assert again.up_to_date and recorder.mutating == [], again.plan
    assert result.rest_api_id == again.rest_api_id


def test_seeding_never_takes_a_model_from_whoever_pushed_it(run_deploy, aws) -> None:
    run_deploy()
    ddb = client("dynamodb", aws)
    name = packaged()[0]["name"]
    # Someone pushed and promoted 9.0.0.
    pushed = {**item(aws, name, packaged()[0]["version"]), "version": {"S": "9.0.0"}}  # type: ignore[dict-item]
    pushed["source"] = {"S": "push"}
    ddb.put_item(TableName=TABLE, Item=pushed)
    key = {"name": {"S": name}, "version": {"S": "~aliases"}}
    ddb.update_item(
        TableName=TABLE, Key=key,
        UpdateExpression="SET live = :v, revision = :r",
        ExpressionAttributeValues={":v": {"S": "9.0.0"}, ":r": {"N": "2"}},
    )  # fmt: skip
    result, recorder = run_deploy()
    assert result.up_to_date and recorder.mutating == [], result.plan
    assert item(aws, name, "~aliases")["live"] == {"S": "9.0.0"}  # type: ignore[index]
    # The version item of a packaged model deleted by hand comes back; live stays.
    ddb.delete_item(
        TableName=TABLE, Key={"name": {"S": name}, "version": {"S": packaged()[0]["version"]}}
    )
    result, _ = run_deploy()
    assert [s.resource for s in result.plan] == [
        f"registry.model {name} {packaged()[0]['version']}"
    ]
    assert item(aws, name, "~aliases")["live"] == {"S": "9.0.0"}  # type: ignore[index]


def test_a_newer_packaged_version_replaces_an_older_packaged_live(run_deploy, aws) -> None:
    run_deploy()
    ddb = client("dynamodb", aws)
    entry = packaged()[1]
    old = {**item(aws, entry["name"], entry["version"]), "version": {"S": "0.9.0"}}  # type: ignore[dict-item]
    ddb.put_item(TableName=TABLE, Item=old)
    key = {"name": {"S": entry["name"]}, "version": {"S": "~aliases"}}
    ddb.update_item(
        TableName=TABLE, Key=key,
        UpdateExpression="SET live = :v, revision = :r",
        ExpressionAttributeValues={":v": {"S": "0.9.0"}, ":r": {"N": "5"}},
    )  # fmt: skip
    result, _ = run_deploy()
    (step,) = result.plan
    assert step.resource == f"registry.aliases {entry['name']}" and step.action == "update"
    aliases = item(aws, entry["name"], "~aliases")
    assert aliases is not None
    assert aliases["live"] == {"S": entry["version"]}
    assert aliases["history"] == {"L": [{"S": "0.9.0"}]} and aliases["revision"] == {"N": "6"}


def test_a_bucket_setting_that_drifts_is_repaired(run_deploy, aws) -> None:
    run_deploy()
    s3 = client("s3", aws)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_public_access_block(Bucket=BUCKET)
    result, _ = run_deploy()
    assert sorted(s.resource for s in result.plan) == [
        f"s3.bucket {BUCKET} block",
        f"s3.bucket {BUCKET} versioning",
    ]
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    again, recorder = run_deploy()
    assert again.up_to_date and recorder.mutating == []


def test_destroy_keeps_the_registry_unless_asked(run_deploy, aws, project: Path) -> None:
    from scarab.config import load_config
    from scarab.deploy.destroy import destroy

    run_deploy()
    s3 = client("s3", aws)
    # A second version of an object: the bucket is versioned, every version must go.
    key = next(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"again")
    config = load_config(project)
    first = destroy(config, project_dir=project, endpoint_url=aws.url)
    assert [k.split(" (")[0] for k in first.kept] == [
        f"dynamodb.table {TABLE}",
        f"s3.bucket {BUCKET}",
    ]
    assert not any(r in (f"dynamodb.table {TABLE}", f"s3.bucket {BUCKET}") for r in first.removed)
    assert client("dynamodb", aws).describe_table(TableName=TABLE)["Table"]["TableName"] == TABLE
    planned = destroy(
        config, project_dir=project, endpoint_url=aws.url, include_models=True, dry_run=True
    )
    assert [s.resource for s in planned.steps] == [f"dynamodb.table {TABLE}", f"s3.bucket {BUCKET}"]
    gone = destroy(config, project_dir=project, endpoint_url=aws.url, include_models=True)
    assert gone.kept == [] and len(gone.removed) == 2
    assert TABLE not in client("dynamodb", aws).list_tables()["TableNames"]
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
