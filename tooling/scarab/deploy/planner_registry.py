"""The model registry part of the plan: the table, the artifacts bucket, and the packaged
models seeded into them. Pure, like deploy/planner.py (which puts these steps in order).

Seeding is idempotent and never takes a model from its owner: a version item is put only
when missing (conditionally, so a concurrent push wins), and `live` is set only for a
model that has no aliases item yet, or whose live version is an older packaged one and
the newer packaged version was never live (a person promoting or rolling back away from it
decided). A version someone pushed is never replaced by a packaged one.
"""

from __future__ import annotations

import re
from typing import Any

from scarab.deploy.instructions import ApiCall, FileBytes, Step, UploadArtifact, WaitForTable
from scarab.deploy.models import ALIASES_VERSION, Desired, RegistrySpec, SeedModel
from scarab.deploy.reader import ObservedRegistry

PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
ENCRYPTION = {
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}],
}
TABLE_KEY = {
    "AttributeDefinitions": [
        {"AttributeName": "name", "AttributeType": "S"},
        {"AttributeName": "version", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "name", "KeyType": "HASH"},
        {"AttributeName": "version", "KeyType": "RANGE"},
    ],
}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def version_key(version: str) -> tuple[Any, ...] | None:
    """`1.2.10` -> (1, 2, 10); None when a version is not dotted numbers (never compared)."""
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        return None
    return tuple(int(p) for p in version.split("."))


def _bucket_calls(r: RegistrySpec, region: str, owner: str) -> dict[str, ApiCall]:
    create_params: dict[str, Any] = {"Bucket": r.bucket}
    if region != "us-east-1":
        create_params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    own = {"Bucket": r.bucket, "ExpectedBucketOwner": owner}
    return {
        "create": ApiCall("s3", "CreateBucket", create_params),
        "block": ApiCall(
            "s3",
            "PutPublicAccessBlock",
            {**own, "PublicAccessBlockConfiguration": PUBLIC_ACCESS_BLOCK},
        ),
        "versioning": ApiCall(
            "s3", "PutBucketVersioning", {**own, "VersioningConfiguration": {"Status": "Enabled"}}
        ),
        "encryption": ApiCall(
            "s3",
            "PutBucketEncryption",
            {**own, "ServerSideEncryptionConfiguration": ENCRYPTION},
        ),
        "tags": ApiCall(
            "s3", "PutBucketTagging", {**own, "Tagging": {"TagSet": _tag_list(r.tags)}}
        ),
    }


def plan_registry_store(d: Desired, obs: ObservedRegistry | None) -> list[Step]:
    """The table and the bucket, with the bucket's settings repaired when they drift."""
    r = d.registry
    if r is None:
        return []
    live = obs or ObservedRegistry()
    steps: list[Step] = []
    if not live.table_exists:
        create = ApiCall(
            "dynamodb",
            "CreateTable",
            {
                "TableName": r.table,
                **TABLE_KEY,
                "BillingMode": "PAY_PER_REQUEST",
                "Tags": _tag_list(r.tags),
            },
        )
        steps.append(
            Step(f"dynamodb.table {r.table}", "create", "missing", (create, WaitForTable(r.table)))
        )
    calls = _bucket_calls(r, d.region, d.account_id)
    res = f"s3.bucket {r.bucket}"
    if not live.bucket_exists:
        # CreateBucket takes no expected owner: a bucket it creates is ours.
        ordered = tuple(calls[k] for k in ("create", "block", "versioning", "encryption", "tags"))
        steps.append(Step(res, "create", "missing (the model artifacts' bucket)", ordered))
        return steps
    for setting, ok, why in (
        ("block", live.public_access_blocked, "public access is not blocked"),
        ("versioning", live.versioning, "versioning is not enabled"),
        ("encryption", live.encrypted, "default encryption is off"),
    ):
        if not ok:
            steps.append(Step(f"{res} {setting}", "update", why, (calls[setting],)))
    return steps


def _aliases_put(seed: SeedModel, table: str) -> ApiCall:
    return ApiCall(
        "dynamodb",
        "PutItem",
        {
            "TableName": table,
            "Item": {
                "name": {"S": seed.name},
                "version": {"S": ALIASES_VERSION},
                "live": {"S": seed.version},
                "history": {"L": []},
                "revision": {"N": "1"},
            },
            "ConditionExpression": "attribute_not_exists(#v)",
            "ExpressionAttributeNames": {"#v": "version"},
        },
    )


def plan_seeds(d: Desired, obs: ObservedRegistry | None) -> list[Step]:
    """The packaged models' files, version items and (when nobody owns the model yet, or
    its live version is an older packaged one) their `live` alias."""
    r = d.registry
    if r is None:
        return []
    live = obs or ObservedRegistry()
    steps: list[Step] = []
    for seed in r.seeds:
        res = f"registry.model {seed.name} {seed.version}"
        ins: list[Any] = [
            UploadArtifact(
                r.bucket,
                key,
                FileBytes(path, sha, size, "model" if key.startswith("models/") else "data"),
                expected_owner=d.account_id,
            )
            for path, sha, size, key in seed.files
            if key not in live.objects
        ]
        if (seed.name, seed.version) not in live.versions:
            ins.append(
                ApiCall(
                    "dynamodb",
                    "PutItem",
                    {
                        "TableName": r.table,
                        "Item": dict(seed.item),
                        # A version is immutable: never overwrite one that appeared meanwhile.
                        "ConditionExpression": "attribute_not_exists(#v)",
                        "ExpressionAttributeNames": {"#v": "version"},
                    },
                )
            )
        if ins:
            why = "the packaged model is not in the registry yet"
            steps.append(Step(res, "create", why, tuple(ins)))
        aliases = live.aliases.get(seed.name)
        if aliases is None:
            put = _aliases_put(seed, r.table)
            why = "no live version yet: the packaged one goes live"
            steps.append(Step(f"registry.aliases {seed.name}", "create", why, (put,)))
            continue
        current, source = live.live.get(seed.name, ("", ""))
        newer = version_key(seed.version), version_key(current)
        # A version that was live before was taken out by someone (a promote of another
        # version, a rollback): a deploy never puts it back.
        was_live = seed.version in (aliases.get("history") or [])
        if (
            source == "packaged" and not was_live and None not in newer and newer[0] > newer[1]  # type: ignore[operator]
        ):
            revision = int(aliases.get("revision") or 0)
            update = ApiCall(
                "dynamodb",
                "UpdateItem",
                {
                    "TableName": r.table,
                    "Key": {"name": {"S": seed.name}, "version": {"S": ALIASES_VERSION}},
                    "UpdateExpression": (
                        "SET live = :new, history = list_append(if_not_exists(history, :none),"
                        " :old), revision = :next"
                    ),
                    # Only if nobody promoted, pushed or rolled back since it was read.
                    "ConditionExpression": "revision = :rev",
                    "ExpressionAttributeValues": {
                        ":new": {"S": seed.version},
                        ":old": {"L": [{"S": current}]},
                        ":none": {"L": []},
                        ":rev": {"N": str(revision)},
                        ":next": {"N": str(revision + 1)},
                    },
                },
            )
            why = f"live is the older packaged {current}: the packaged {seed.version} goes live"
            steps.append(Step(f"registry.aliases {seed.name}", "update", why, (update,)))
    return steps
