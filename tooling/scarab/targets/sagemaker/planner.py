"""The SageMaker target's planners: desired + observed -> frozen steps (pure).

`plan_deploy` makes the endpoint match the desired values and retires what the change
left behind (the previous EndpointConfig, Model and model.tar.gz, once the endpoint is
InService on the new ones); `plan_destroy` deletes everything the target made. Both
run through the one executor (scarab.deploy.executor).
"""

from __future__ import annotations

import json
from typing import Any

from scarab.artifacts.image import SERVER_DOCKERFILE
from scarab.deploy.instructions import (
    ApiCall,
    FileBytes,
    PushImage,
    Step,
    UploadArtifact,
    WaitForEndpoint,
)
from scarab.deploy.planner import create_artifact_bucket
from scarab.naming import Names
from scarab.targets.sagemaker.desired import ARCHITECTURE, DesiredEndpoint
from scarab.targets.sagemaker.reader import ObservedEndpoint

ENDPOINT = "sagemaker.endpoint"


def _tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def plan_image(d: DesiredEndpoint, obs: ObservedEndpoint) -> list[Step]:
    steps = []
    if obs.repository_uri is None:
        create = ApiCall(
            "ecr",
            "CreateRepository",
            {
                "repositoryName": d.repository,
                "imageScanningConfiguration": {"scanOnPush": True},
                "imageTagMutability": "MUTABLE",
                "tags": _tag_list(d.tags),
            },
        )
        policy = ApiCall(
            "ecr",
            "PutLifecyclePolicy",
            {"repositoryName": d.repository, "lifecyclePolicyText": json.dumps(d.lifecycle_policy)},
        )
        steps.append(Step(f"ecr.repository {d.repository}", "create", "missing", (create, policy)))
    if not obs.image_pushed:
        push = PushImage(
            str(d.project_dir), ARCHITECTURE, d.repository_uri, d.image_tag, SERVER_DOCKERFILE
        )
        why = "the server image is not in ECR yet (build and push)"
        steps.append(Step(f"ecr.image {d.repository}:{d.image_tag}", "create", why, (push,)))
    return steps


def plan_model_data(d: DesiredEndpoint, obs: ObservedEndpoint) -> list[Step]:
    steps = []
    if not obs.bucket_exists:
        why = "missing (model.tar.gz of the SageMaker endpoint goes there)"
        steps.append(create_artifact_bucket(d.bucket, d.region, d.account_id, why))
    if not obs.object_exists:
        body = FileBytes(str(d.bundle.path), d.bundle.sha256, d.bundle.size, kind="model")
        upload = UploadArtifact(d.bucket, d.key, body, expected_owner=d.account_id)
        tag = ApiCall(
            "s3",
            "PutObjectTagging",
            {
                "Bucket": d.bucket,
                "Key": d.key,
                "Tagging": {"TagSet": _tag_list(d.tags)},
                "ExpectedBucketOwner": d.account_id,
            },
        )
        why = f"model.tar.gz of {', '.join(d.bundle.models)} is not uploaded yet"
        steps.append(Step(f"s3.object {d.key}", "create", why, (upload, tag)))
    return steps


def plan_role(d: DesiredEndpoint, obs: ObservedEndpoint) -> list[Step]:
    res = f"iam.role {d.role}"
    steps = []
    if obs.role_arn is None:
        create = ApiCall(
            "iam",
            "CreateRole",
            {
                "RoleName": d.role,
                "AssumeRolePolicyDocument": json.dumps(d.trust),
                "Description": f"SageMaker endpoint {d.endpoint} (scarab)",
                "Tags": _tag_list(d.tags),
            },
        )
        steps.append(Step(res, "create", "missing", (create,)))
    elif obs.trust != d.trust:
        update = ApiCall(
            "iam",
            "UpdateAssumeRolePolicy",
            {"RoleName": d.role, "PolicyDocument": json.dumps(d.trust)},
        )
        steps.append(Step(f"{res} trust", "update", "trusts other than SageMaker", (update,)))
    policy = d.names.sagemaker_policy
    if obs.policies.get(policy) != d.policy:
        put = ApiCall(
            "iam",
            "PutRolePolicy",
            {"RoleName": d.role, "PolicyName": policy, "PolicyDocument": json.dumps(d.policy)},
        )
        why = "missing" if policy not in obs.policies else "differs from the endpoint's needs"
        steps.append(Step(f"{res} policy {policy}", "update", why, (put,)))
    return steps


def plan_logs(d: DesiredEndpoint, obs: ObservedEndpoint) -> list[Step]:
    res = f"logs.group {d.log_group}"
    steps = []
    if not obs.log_group_exists:
        create = ApiCall("logs", "CreateLogGroup", {"logGroupName": d.log_group, "tags": d.tags})
        steps.append(Step(res, "create", "missing", (create,)))
    if obs.log_group_retention != d.log_retention_days:
        put = ApiCall(
            "logs",
            "PutRetentionPolicy",
            {"logGroupName": d.log_group, "retentionInDays": d.log_retention_days},
        )
        why = (
            f"retention {obs.log_group_retention or 'never expires'} -> {d.log_retention_days} days"
        )
        steps.append(Step(f"{res} retention", "update", why, (put,)))
    return steps


def plan_endpoint(d: DesiredEndpoint, obs: ObservedEndpoint) -> list[Step]:
    steps = []
    if d.model_name not in obs.models:
        create = ApiCall(
            "sagemaker",
            "CreateModel",
            {
                "ModelName": d.model_name,
                "PrimaryContainer": d.primary_container,
                "ExecutionRoleArn": d.role_arn,
                "Tags": _tag_list(d.tags),
            },
            retry_while_role_not_ready=True,
        )
        why = f"image {d.image_tag}, model.tar.gz of {', '.join(d.bundle.models)}"
        steps.append(Step(f"sagemaker.model {d.model_name}", "create", why, (create,)))
    if d.config_name not in obs.configs:
        create = ApiCall(
            "sagemaker",
            "CreateEndpointConfig",
            {
                "EndpointConfigName": d.config_name,
                "ProductionVariants": d.production_variants,
                "Tags": _tag_list(d.tags),
            },
        )
        why = f"serverless {d.memory_mb} MB, at most {d.max_concurrency} concurrent"
        steps.append(Step(f"sagemaker.endpoint-config {d.config_name}", "create", why, (create,)))
    wait = WaitForEndpoint(d.endpoint, d.config_name)
    res = f"{ENDPOINT} {d.endpoint}"
    if obs.endpoint is None:
        create = ApiCall(
            "sagemaker",
            "CreateEndpoint",
            {
                "EndpointName": d.endpoint,
                "EndpointConfigName": d.config_name,
                "Tags": _tag_list(d.tags),
            },
        )
        steps.append(Step(res, "create", "missing", (create, wait)))
    elif obs.endpoint_config != d.config_name:
        update = ApiCall(
            "sagemaker",
            "UpdateEndpoint",
            {"EndpointName": d.endpoint, "EndpointConfigName": d.config_name},
        )
        why = f"{obs.endpoint_config} -> {d.config_name}"
        steps.append(Step(res, "update", why, (update, wait)))
    elif obs.endpoint.get("EndpointStatus") != "InService":
        why = f"{obs.endpoint.get('EndpointStatus')} (an earlier run did not see it finish)"
        steps.append(Step(res, "update", f"wait: {why}", (wait,)))
    return steps


def _delete_config(name: str, why: str) -> Step:
    call = ApiCall("sagemaker", "DeleteEndpointConfig", {"EndpointConfigName": name})
    return Step(f"sagemaker.endpoint-config {name}", "delete", why, (call,))


def _delete_model(name: str, why: str) -> Step:
    call = ApiCall("sagemaker", "DeleteModel", {"ModelName": name})
    return Step(f"sagemaker.model {name}", "delete", why, (call,))


def _delete_object(bucket: str, key: str, owner: str, why: str) -> Step:
    call = ApiCall(
        "s3",
        "DeleteObject",
        {"Bucket": bucket, "Key": key, "ExpectedBucketOwner": owner},
    )
    return Step(f"s3.object {key}", "delete", why, (call,))


def plan_retire(d: DesiredEndpoint, obs: ObservedEndpoint) -> list[Step]:
    """What the endpoint no longer uses once it serves the desired config: the earlier
    configs, models and model.tar.gz objects (never one tagged for someone else)."""
    why = "no longer used by the endpoint"
    steps = [
        _delete_config(c, why) for c in obs.configs if c != d.config_name and c not in obs.foreign
    ]
    steps += [
        _delete_model(m, why) for m in obs.models if m != d.model_name and m not in obs.foreign
    ]
    steps += [_delete_object(d.bucket, k, d.account_id, why) for k in obs.objects if k != d.key]
    return steps


def plan_deploy(d: DesiredEndpoint, obs: ObservedEndpoint) -> list[Step]:
    return [
        *plan_image(d, obs),
        *plan_model_data(d, obs),
        *plan_role(d, obs),
        *plan_logs(d, obs),
        *plan_endpoint(d, obs),
        *plan_retire(d, obs),
    ]


def plan_destroy(
    names: Names, obs: ObservedEndpoint, *, bucket: str, owner: str, include_images: bool
) -> list[Step]:
    """Delete the endpoint, its configs and models, model.tar.gz objects, role and log
    group (and with `include_images` the server image repository). The artifact bucket
    stays: other stages' code and models use it too."""
    steps = []
    gone = "destroy"
    if obs.endpoint is not None:
        call = ApiCall("sagemaker", "DeleteEndpoint", {"EndpointName": names.endpoint})
        steps.append(Step(f"{ENDPOINT} {names.endpoint}", "delete", gone, (call,)))
    steps += [_delete_config(c, gone) for c in obs.configs if c not in obs.foreign]
    steps += [_delete_model(m, gone) for m in obs.models if m not in obs.foreign]
    steps += [_delete_object(bucket, k, owner, gone) for k in obs.objects]
    if obs.role_arn is not None:
        role = names.sagemaker_role
        calls: list[Any] = [
            ApiCall("iam", "DeleteRolePolicy", {"RoleName": role, "PolicyName": p})
            for p in sorted(obs.policies)
        ]
        calls.append(ApiCall("iam", "DeleteRole", {"RoleName": role}))
        steps.append(Step(f"iam.role {role}", "delete", gone, tuple(calls)))
    if obs.log_group_exists:
        group = names.sagemaker_log_group
        call = ApiCall("logs", "DeleteLogGroup", {"logGroupName": group})
        steps.append(Step(f"logs.group {group}", "delete", gone, (call,)))
    if include_images and obs.repository_uri is not None:
        repo = names.server_repository
        call = ApiCall("ecr", "DeleteRepository", {"repositoryName": repo, "force": True})
        steps.append(Step(f"ecr.repository {repo}", "delete", "--include-images", (call,)))
    return steps
