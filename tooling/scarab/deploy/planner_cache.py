"""The shared response cache part of the plan: the table `<app>-<stage>-cache` with
DynamoDB's TTL on `expires_at`. Pure, like deploy/planner.py (which puts it in order).

The table holds nothing but copies of answers, so it is created when `[cache]` asks for
it and deleted when `[cache]` no longer does (ttl_seconds = 0 or shared = false), if it
carries this stage's tags. Each function's role gets GetItem and PutItem on exactly this
table (deploy/models.cache_policy).
"""

from __future__ import annotations

from typing import Any, Protocol

from scarab.deploy.instructions import ApiCall, Step, WaitForTable
from scarab.deploy.models import CACHE_TTL_ATTRIBUTE, Desired
from scarab.deploy.reader import ObservedCache

# The partition key: the route and the digest of the question (contract with lens.cache).
TABLE_KEY = {
    "AttributeDefinitions": [{"AttributeName": "key", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "key", "KeyType": "HASH"}],
}


class TtlTable(Protocol):
    """A table with DynamoDB's TTL on one attribute (the cache's, the jobs')."""

    @property
    def table(self) -> str: ...

    @property
    def ttl_attribute(self) -> str: ...


def ttl_specification(spec: TtlTable) -> dict[str, Any]:
    return {"Enabled": True, "AttributeName": spec.ttl_attribute}


def ttl_call(spec: TtlTable) -> ApiCall:
    return ApiCall(
        "dynamodb",
        "UpdateTimeToLive",
        {"TableName": spec.table, "TimeToLiveSpecification": ttl_specification(spec)},
    )


def plan_cache(d: Desired, obs: ObservedCache | None) -> list[Step]:
    """Create the table (then enable its TTL), repair a TTL that is off, or delete the
    table when [cache] does not want it."""
    live = obs or ObservedCache()
    cache = d.cache
    if cache is None:
        if live.table_exists and d.names.tagged_by(live.tags):
            table = d.names.cache_table
            delete = ApiCall("dynamodb", "DeleteTable", {"TableName": table}, missing_ok=True)
            why = (
                "[cache] is off or not shared: the shared cache's table goes (it holds only copies)"
            )
            return [Step(f"dynamodb.table {table}", "delete", why, (delete,))]
        return []
    res = f"dynamodb.table {cache.table}"
    if not live.table_exists:
        create = ApiCall(
            "dynamodb",
            "CreateTable",
            {
                "TableName": cache.table,
                **TABLE_KEY,
                "BillingMode": "PAY_PER_REQUEST",
                "Tags": [{"Key": k, "Value": v} for k, v in cache.tags.items()],
            },
        )
        why = "missing (the shared response cache)"
        return [Step(res, "create", why, (create, WaitForTable(cache.table), ttl_call(cache)))]
    if live.ttl_attribute != cache.ttl_attribute or not live.ttl_enabled:
        why = (
            f"TTL is off (items would never expire); it goes on {cache.ttl_attribute}"
            if not live.ttl_enabled
            else f"TTL is on {live.ttl_attribute}, not {CACHE_TTL_ATTRIBUTE}"
        )
        return [Step(f"{res} ttl", "update", why, (ttl_call(cache),))]
    return []
