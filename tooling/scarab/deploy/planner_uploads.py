"""The uploads bucket part of the plan: `<app>-<stage>-uploads-<account>-<region>`,
private, encrypted, owner-enforced, with CORS for the stage's origins (POST only) and a
lifecycle rule that deletes leftovers under uploads/ after a day. Pure, like
deploy/planner.py (which puts it in order).

Every setting is compared on its own and a drifted one is put back with one call; the
bucket goes only with `scarab destroy` (emptied first).
"""

from __future__ import annotations

from typing import Any

from scarab.deploy.instructions import ApiCall, Step
from scarab.deploy.models import Desired, UploadsSpec
from scarab.deploy.planner_registry import ENCRYPTION, PUBLIC_ACCESS_BLOCK
from scarab.deploy.reader import ObservedUploads

OWNERSHIP = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def normalized_cors(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CORS rules as compared for drift: lists sorted, methods upper-case, no ID."""
    return [
        {
            "AllowedHeaders": sorted(str(h).lower() for h in r.get("AllowedHeaders") or []),
            "AllowedMethods": sorted(str(m).upper() for m in r.get("AllowedMethods") or []),
            "AllowedOrigins": sorted(str(o) for o in r.get("AllowedOrigins") or []),
            "ExposeHeaders": sorted(str(h).lower() for h in r.get("ExposeHeaders") or []),
            "MaxAgeSeconds": int(r.get("MaxAgeSeconds") or 0),
        }
        for r in rules
    ]


def normalized_lifecycle(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lifecycle rules as compared for drift: the prefix (a Filter's or a legacy rule's),
    status, expiry and multipart abort of each."""
    out = []
    for r in rules:
        flt = r.get("Filter") or {}
        prefix = flt.get("Prefix", r.get("Prefix"))
        out.append(
            {
                "Prefix": prefix,
                "Other": sorted(k for k in flt if k != "Prefix"),
                "Status": r.get("Status"),
                "Expiration": r.get("Expiration"),
                "Abort": r.get("AbortIncompleteMultipartUpload"),
                "Transitions": bool(r.get("Transitions") or r.get("NoncurrentVersionExpiration")),
            }
        )
    return out


def _calls(u: UploadsSpec, region: str, owner: str) -> dict[str, ApiCall]:
    create_params: dict[str, Any] = {"Bucket": u.bucket}
    if region != "us-east-1":
        create_params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    own = {"Bucket": u.bucket, "ExpectedBucketOwner": owner}
    tags = [{"Key": k, "Value": v} for k, v in u.tags.items()]
    return {
        # CreateBucket takes no expected owner: a bucket it creates is ours.
        "create": ApiCall("s3", "CreateBucket", create_params),
        "public access block": ApiCall(
            "s3", "PutPublicAccessBlock",
            {**own, "PublicAccessBlockConfiguration": PUBLIC_ACCESS_BLOCK},
        ),
        "ownership": ApiCall(
            "s3", "PutBucketOwnershipControls", {**own, "OwnershipControls": OWNERSHIP}
        ),
        "encryption": ApiCall(
            "s3", "PutBucketEncryption", {**own, "ServerSideEncryptionConfiguration": ENCRYPTION}
        ),
        "lifecycle": ApiCall(
            "s3", "PutBucketLifecycleConfiguration", {**own, "LifecycleConfiguration": u.lifecycle}
        ),
        "cors": (
            ApiCall("s3", "PutBucketCors", {**own, "CORSConfiguration": u.cors})
            if u.cors["CORSRules"]
            else ApiCall("s3", "DeleteBucketCors", own)
        ),
        "tags": ApiCall("s3", "PutBucketTagging", {**own, "Tagging": {"TagSet": tags}}),
    }  # fmt: skip


def plan_uploads(d: Desired, obs: ObservedUploads | None) -> list[Step]:
    """Create the bucket with every setting, or put back each setting that drifted."""
    u = d.uploads
    if u is None:
        return []
    live = obs or ObservedUploads()
    calls = _calls(u, d.region, d.account_id)
    res = f"s3.bucket {u.bucket}"
    if not live.bucket_exists:
        why = "missing (where presigned uploads go)"
        if not u.cors["CORSRules"]:  # a new bucket has no CORS to delete
            calls.pop("cors")
        return [Step(res, "create", why, tuple(calls.values()))]
    checks = (
        ("public access block", live.public_access_blocked, "public access is not blocked"),
        ("ownership", live.owner_enforced, "object ownership is not BucketOwnerEnforced"),
        ("encryption", live.encrypted, "default encryption is off"),
        (
            "lifecycle",
            normalized_lifecycle(live.lifecycle) == normalized_lifecycle(u.lifecycle["Rules"]),
            "the lifecycle rule is not scarab's (leftover uploads must expire after a day)",
        ),
        (
            "cors",
            normalized_cors(live.cors) == normalized_cors(u.cors["CORSRules"]),
            "CORS is not POST from the stage's allowed origins",
        ),
        ("tags", all(live.tags.get(k) == v for k, v in u.tags.items()), "tags differ"),
    )
    return [
        Step(f"{res} {setting}", "update", why, (calls[setting],))
        for setting, ok, why in checks
        if not ok
    ]
