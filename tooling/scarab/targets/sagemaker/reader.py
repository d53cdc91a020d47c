"""Read what the SageMaker target has in AWS right now (read-only calls only).

The endpoint's Models and EndpointConfigs are found by name (`<app>-<stage>-m-<digest>`,
`-c-<digest>`: exactly that shape, so another stage's never matches) and, before any is
deleted, by their scarab tags.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from scarab.aws import Aws, call, error_code
from scarab.deploy.reader import read_artifact_bucket
from scarab.naming import Names
from scarab.targets.sagemaker.desired import DIGEST

_MISSING = {
    "NoSuchEntity",
    "NoSuchEntityException",
    "ResourceNotFoundException",
    "RepositoryNotFoundException",
    "ImageNotFoundException",
    "404",
    "NoSuchKey",
    "NotFound",
}


def _missing(exc: Exception) -> bool:
    code = error_code(exc)
    # SageMaker says a missing endpoint, config or model is a ValidationException.
    return code in _MISSING or (code == "ValidationException" and "Could not find" in str(exc))


@dataclass
class ObservedEndpoint:
    """The target's resources as found (None / False / empty: missing)."""

    repository_uri: str | None = None
    image_pushed: bool = False
    bucket_exists: bool = False
    object_exists: bool = False
    objects: list[str] = field(default_factory=list)  # model.tar.gz keys under the prefix
    role_arn: str | None = None
    trust: dict[str, Any] | None = None
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # inline, by name
    log_group_exists: bool = False
    log_group_retention: int | None = None
    models: list[str] = field(default_factory=list)  # ours by name, sorted
    configs: list[str] = field(default_factory=list)
    foreign: set[str] = field(default_factory=set)  # of those, tagged for someone else
    endpoint: dict[str, Any] | None = None  # DescribeEndpoint

    @property
    def endpoint_config(self) -> str | None:
        return None if self.endpoint is None else self.endpoint.get("EndpointConfigName")


def _ours(names: Names, kind: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(names.base)}-{kind}-[0-9a-f]{{{DIGEST}}}$")


def _read_repository(aws: Aws, names: Names, tag: str, obs: ObservedEndpoint) -> None:
    ecr = aws.client("ecr")
    repo = names.server_repository
    try:
        got = call(ecr.describe_repositories, repositoryNames=[repo])
    except Exception as exc:
        if _missing(exc):
            return
        raise
    obs.repository_uri = str(got["repositories"][0]["repositoryUri"])
    try:
        call(ecr.describe_images, repositoryName=repo, imageIds=[{"imageTag": tag}])
        obs.image_pushed = True
    except Exception as exc:
        if not _missing(exc):
            raise


def _read_objects(aws: Aws, names: Names, bucket: str, key: str, owner: str) -> list[str]:
    s3 = aws.client("s3")
    keys: list[str] = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=names.sagemaker_artifact_prefix, ExpectedBucketOwner=owner
    )
    for page in pages:
        keys += [str(o["Key"]) for o in page.get("Contents", [])]
    return sorted(keys)


def _read_role(aws: Aws, names: Names, obs: ObservedEndpoint) -> None:
    iam = aws.client("iam")
    try:
        role = call(iam.get_role, RoleName=names.sagemaker_role)["Role"]
    except Exception as exc:
        if _missing(exc):
            return
        raise
    obs.role_arn = str(role["Arn"])
    trust = role.get("AssumeRolePolicyDocument")
    obs.trust = json.loads(urllib.parse.unquote(trust)) if isinstance(trust, str) else trust
    for policy in call(iam.list_role_policies, RoleName=names.sagemaker_role)["PolicyNames"]:
        doc = call(iam.get_role_policy, RoleName=names.sagemaker_role, PolicyName=policy)
        raw = doc["PolicyDocument"]
        obs.policies[policy] = (
            json.loads(urllib.parse.unquote(raw)) if isinstance(raw, str) else raw
        )


def _read_log_group(aws: Aws, names: Names, obs: ObservedEndpoint) -> None:
    group = names.sagemaker_log_group
    got = call(aws.client("logs").describe_log_groups, logGroupNamePrefix=group)
    for g in got.get("logGroups", []):
        if g["logGroupName"] == group:
            obs.log_group_exists = True
            obs.log_group_retention = g.get("retentionInDays")


def _names_of(aws: Aws, operation: str, key: str, pattern: re.Pattern[str]) -> list[str]:
    sm = aws.client("sagemaker")
    found: list[str] = []
    kwargs: dict[str, Any] = {"MaxResults": 100}
    while True:
        page = call(getattr(sm, operation), **kwargs)
        plural = "Models" if key == "ModelName" else "EndpointConfigs"
        found += [str(i[key]) for i in page.get(plural, []) if pattern.match(str(i[key]))]
        if not page.get("NextToken"):
            return sorted(found)
        kwargs["NextToken"] = page["NextToken"]


def tags_of(aws: Aws, arn: str) -> dict[str, str]:
    got = call(aws.client("sagemaker").list_tags, ResourceArn=arn)
    return {str(t["Key"]): str(t["Value"]) for t in got.get("Tags", [])}


def sagemaker_arn(aws: Aws, kind: str, name: str) -> str:
    return f"arn:{aws.partition}:sagemaker:{aws.region}:{aws.account_id}:{kind}/{name}"


def describe_endpoint(aws: Aws, name: str) -> dict[str, Any] | None:
    try:
        return dict(call(aws.client("sagemaker").describe_endpoint, EndpointName=name))
    except Exception as exc:
        if _missing(exc):
            return None
        raise


def read_endpoint(
    aws: Aws,
    names: Names,
    *,
    image_tag: str | None,
    key: str | None,
    keep: frozenset[str] = frozenset(),
) -> ObservedEndpoint:
    """Everything the planner compares. `keep`: the Model and EndpointConfig names the
    deploy wants (their tags are not read: they are made with scarab's, or adopted)."""
    obs = ObservedEndpoint()
    if image_tag is not None:
        _read_repository(aws, names, image_tag, obs)
    else:  # destroy: whether the repository is there at all
        _read_repository(aws, names, "-", obs)
    bucket = names.artifact_bucket(aws.account_id, aws.region)
    obs.bucket_exists = read_artifact_bucket(aws, bucket, aws.account_id)
    if obs.bucket_exists:
        obs.objects = _read_objects(aws, names, bucket, key or "", aws.account_id)
        obs.object_exists = key in obs.objects
    _read_role(aws, names, obs)
    _read_log_group(aws, names, obs)
    obs.models = _names_of(aws, "list_models", "ModelName", _ours(names, "m"))
    obs.configs = _names_of(aws, "list_endpoint_configs", "EndpointConfigName", _ours(names, "c"))
    obs.endpoint = describe_endpoint(aws, names.endpoint)
    in_use = {obs.endpoint_config} if obs.endpoint_config else set()
    for kind, found in (("model", obs.models), ("endpoint-config", obs.configs)):
        for name in found:
            if name in keep or name in in_use:
                continue
            tags = tags_of(aws, sagemaker_arn(aws, kind, name))
            if not names.tagged_by(tags):
                obs.foreign.add(name)
    return obs
