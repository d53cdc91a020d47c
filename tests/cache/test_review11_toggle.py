"""[cache] toggled between deploys (moto server): shared true -> false -> true, and
ttl_seconds 0 and back. The table, each function's variables and each role's policy
follow every step, nothing stale stays, and a deploy after each one has nothing to do."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.conftest import (
    ANALYZE,
    ANALYZE_ROLE,
    EXPECTED_CACHE_POLICY,
    MODELS,
    MODELS_ROLE,
    client,
    inline_policies,
)

pytestmark = pytest.mark.emulator
TABLE = "scarab-test-cache"


def _state(aws: Any) -> dict[str, Any]:
    ddb, lam, iam = (client(n, aws) for n in ("dynamodb", "lambda", "iam"))
    seen: dict[str, Any] = {"table": TABLE in ddb.list_tables()["TableNames"]}
    if seen["table"]:
        ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
        seen["ttl"] = (ttl["TimeToLiveStatus"], ttl.get("AttributeName"))
    for function, role in ((ANALYZE, ANALYZE_ROLE), (MODELS, MODELS_ROLE)):
        env = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        seen[function] = (
            env.get("SCARAB_CACHE_TTL_S"),
            env.get("SCARAB_CACHE_TABLE"),
            inline_policies(iam, role).get("scarab-use-cache"),
        )
    return seen


def _shared(ttl: str) -> dict[str, Any]:
    on = (ttl, TABLE, EXPECTED_CACHE_POLICY)
    return {"table": True, "ttl": ("ENABLED", "expires_at"), ANALYZE: on, MODELS: on}


def _unshared(ttl: str) -> dict[str, Any]:
    return {"table": False, ANALYZE: (ttl, None, None), MODELS: (ttl, None, None)}


@pytest.mark.parametrize(
    "steps",
    [
        [({}, _shared("300")), ({"cache.shared": False}, _unshared("300")), ({}, _shared("300"))],
        [({}, _shared("300")), ({"cache.ttl_seconds": 0}, _unshared("0")), ({}, _shared("300"))],
        [
            ({"cache.shared": False}, _unshared("300")),
            ({"cache.ttl_seconds": 60}, _shared("60")),
            ({"cache.ttl_seconds": 0, "cache.shared": False}, _unshared("0")),
        ],
    ],
    ids=["shared-off-on", "ttl-zero-and-back", "unshared-then-shared-then-off"],
)
def test_the_table_variables_and_policies_follow_each_deploy(
    steps: list[tuple[dict[str, Any], dict[str, Any]]], run_deploy: Any, aws: Any
) -> None:
    for overrides, expected in steps:
        run_deploy(overrides)
        assert _state(aws) == expected, overrides
        again, recorder = run_deploy(overrides)
        assert again.plan == [] and recorder.mutating == [], overrides
