"""The shared cache table as deploy makes it (moto server): created with DynamoDB's TTL
on, each function told its name and its role scoped to GetItem/PutItem on exactly it,
repaired when its TTL is turned off, deleted when [cache] stops wanting it and by
destroy; and the plan as values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scarab.config import load_config
from scarab.deploy.destroy import destroy
from scarab.deploy.instructions import ApiCall, WaitForTable
from scarab.deploy.models import CacheSpec
from scarab.deploy.planner_cache import TABLE_KEY, plan_cache
from scarab.deploy.reader import ObservedCache

from tests.deploy.conftest import (
    ANALYZE,
    ANALYZE_ROLE,
    EXPECTED_CACHE_POLICY,
    MODELS,
    MODELS_ROLE,
    client,
    inline_policies,
)
from tests.deploy.test_planner import desired

pytestmark = pytest.mark.emulator

TABLE = "scarab-test-cache"


def _ttl(aws: Any) -> dict[str, Any]:
    got = client("dynamodb", aws).describe_time_to_live(TableName=TABLE)
    return dict(got["TimeToLiveDescription"])


def test_deploy_creates_the_table_with_ttl_and_scopes_each_role_to_it(
    run_deploy: Any, aws: Any
) -> None:
    run_deploy()
    ddb, lam, iam = (client(n, aws) for n in ("dynamodb", "lambda", "iam"))
    table = ddb.describe_table(TableName=TABLE)["Table"]
    assert (
        table["KeySchema"]
        == TABLE_KEY["KeySchema"]
        == [{"AttributeName": "key", "KeyType": "HASH"}]
    )
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert _ttl(aws) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    tags = ddb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"scarab:app": "scarab", "scarab:stage": "test"}
    for function, role in ((ANALYZE, ANALYZE_ROLE), (MODELS, MODELS_ROLE)):
        env = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        assert (env["SCARAB_CACHE_TABLE"], env["SCARAB_CACHE_TTL_S"]) == (TABLE, "300")
        assert inline_policies(iam, role)["scarab-use-cache"] == EXPECTED_CACHE_POLICY
    again, recorder = run_deploy()
    assert again.up_to_date and again.plan == [] and recorder.mutating == []


def test_a_ttl_turned_off_by_hand_is_turned_back_on(run_deploy: Any, aws: Any) -> None:
    run_deploy()
    spec = {"Enabled": False, "AttributeName": "expires_at"}
    client("dynamodb", aws).update_time_to_live(TableName=TABLE, TimeToLiveSpecification=spec)
    result, recorder = run_deploy()
    assert [(s.action, s.resource) for s in result.plan] == [
        ("update", f"dynamodb.table {TABLE} ttl")
    ]
    # One call (besides taking and releasing the stage lock).
    assert [c for c in recorder.mutating if not c.startswith("ssm.")] == [
        "dynamodb.UpdateTimeToLive"
    ]
    assert _ttl(aws)["TimeToLiveStatus"] == "ENABLED"


def test_a_cache_no_longer_shared_loses_its_table_policy_and_variable(
    run_deploy: Any, aws: Any
) -> None:
    run_deploy()
    result, _ = run_deploy({"cache.shared": False})
    assert ("delete", f"dynamodb.table {TABLE}") in [(s.action, s.resource) for s in result.plan]
    assert TABLE not in client("dynamodb", aws).list_tables()["TableNames"]
    lam, iam = client("lambda", aws), client("iam", aws)
    for function, role in ((ANALYZE, ANALYZE_ROLE), (MODELS, MODELS_ROLE)):
        env = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        assert "SCARAB_CACHE_TABLE" not in env and env["SCARAB_CACHE_TTL_S"] == "300"
        assert "scarab-use-cache" not in inline_policies(iam, role)


def test_destroy_deletes_the_table(run_deploy: Any, aws: Any, project: Path) -> None:
    run_deploy()
    removed = destroy(load_config(project), project_dir=project, endpoint_url=aws.url).removed
    assert f"dynamodb.table {TABLE}" in removed
    assert TABLE not in client("dynamodb", aws).list_tables()["TableNames"]


# The plan as values -------------------------------------------------------------------


def test_a_missing_table_is_created_then_waited_for_then_given_its_ttl(tmp_path: Path) -> None:
    d = desired(tmp_path)
    assert d.cache == CacheSpec(
        table="scarab-dev-cache",
        table_arn="arn:aws:dynamodb:us-east-1:123456789012:table/scarab-dev-cache",
        tags={"scarab:app": "scarab", "scarab:stage": "dev"},
    )
    (step,) = plan_cache(d, ObservedCache())
    assert (step.action, step.resource) == ("create", "dynamodb.table scarab-dev-cache")
    assert step.instructions == (
        ApiCall(
            "dynamodb",
            "CreateTable",
            {
                "TableName": "scarab-dev-cache",
                **TABLE_KEY,
                "BillingMode": "PAY_PER_REQUEST",
                "Tags": [
                    {"Key": "scarab:app", "Value": "scarab"},
                    {"Key": "scarab:stage", "Value": "dev"},
                ],
            },
        ),
        WaitForTable("scarab-dev-cache"),
        ApiCall(
            "dynamodb",
            "UpdateTimeToLive",
            {
                "TableName": "scarab-dev-cache",
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires_at"},
            },
        ),
    )


OURS = {"scarab:app": "scarab", "scarab:stage": "dev"}


def test_a_table_as_wanted_needs_nothing(tmp_path: Path) -> None:
    live = ObservedCache(True, True, "expires_at", OURS)
    assert plan_cache(desired(tmp_path), live) == []


def test_a_table_not_wanted_goes_only_when_it_is_this_stages(tmp_path: Path) -> None:
    (tmp_path / "scarab.toml").write_text("[cache]\nttl_seconds = 0\n")
    d = desired(tmp_path)
    assert d.cache is None
    (step,) = plan_cache(d, ObservedCache(True, True, "expires_at", OURS))
    assert step.action == "delete"
    assert step.calls == [
        ApiCall("dynamodb", "DeleteTable", {"TableName": "scarab-dev-cache"}, missing_ok=True)
    ]
    other = {"scarab:app": "scarab", "scarab:stage": "prod"}
    assert plan_cache(d, ObservedCache(True, True, "expires_at", other)) == []
    assert plan_cache(d, ObservedCache()) == []


def test_a_cache_not_shared_asks_for_no_table(tmp_path: Path) -> None:
    (tmp_path / "scarab.toml").write_text("[cache]\nshared = false\n")
    d = desired(tmp_path)
    assert d.cache is None and plan_cache(d, None) == []
