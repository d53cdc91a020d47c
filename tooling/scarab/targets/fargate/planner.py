"""Compare the desired Fargate resources with what AWS has; emit the steps that close the
gap (deploy) or remove everything (destroy). Pure: no AWS calls, values in, values out.

Instructions are deploy/instructions.py's and run on deploy/executor.py, like the Lambda
target's. Ids created during the run (the security group, a new task definition
revision) are referred to by `Ref`; ids that already exist are written out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scarab.artifacts.image import SERVER_DOCKERFILE
from scarab.deploy.instructions import ApiCall, Instruction, PushImage, Ref, Step
from scarab.deploy.models import ecr_lifecycle
from scarab.deploy.reader import ObservedRole
from scarab.naming import Names
from scarab.targets.fargate.models import ECS_TASKS_TRUST, FargateDesired
from scarab.targets.fargate.reader import FargateObserved

TASK_DEFINITION_ARN = "task_definition_arn"
SECURITY_GROUP_ID = "security_group_id"
SECRET_ARN = "keys_secret_arn"  # noqa: S105 (a name, not a value)
# What a deletion waits out: a cluster whose service is still draining, a group whose
# tasks' network interfaces are still being released.
CLUSTER_BUSY = frozenset({"ClusterContainsServicesException", "ClusterContainsTasksException"})
GROUP_IN_USE = frozenset({"DependencyViolation"})


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _ecs_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def plan_deploy(
    d: FargateDesired, obs: FargateObserved, *, project_dir: Path, key_ring: str
) -> list[Step]:
    """Every step from `obs` to `d`; `key_ring` is the secret's first value (a new key)
    used only when the secret does not exist yet."""
    return [
        *plan_repository(d, obs, project_dir),
        *plan_log_group(d, obs),
        *plan_role(d.names.task_execution_role, obs.execution_role, d.execution_policy,
                   d.names.task_execution_policy, d,
                   f"ECS pulls the {d.names.service} server image and writes its logs with this"
                   " role (scarab)"),
        *plan_role(d.names.task_role, obs.task_role, d.task_policy, d.names.task_policy, d,
                   f"The {d.names.service} server runs as this role: it reads the model"
                   " registry and its API keys (scarab)"),
        *plan_secret(d, obs, key_ring),
        *plan_security_group(d, obs),
        *plan_cluster(d, obs),
        *plan_service(d, obs),
    ]  # fmt: skip


def plan_repository(d: FargateDesired, obs: FargateObserved, project_dir: Path) -> list[Step]:
    repo = d.names.server_repository
    steps = []
    if obs.repository_uri is None:
        create = ApiCall(
            "ecr",
            "CreateRepository",
            {
                "repositoryName": repo,
                "imageScanningConfiguration": {"scanOnPush": True},
                "imageTagMutability": "MUTABLE",
                "tags": _tags(d.tags),
            },
        )
        # Every deploy of changed code pushes an image: keep only the last ones.
        policy = ApiCall(
            "ecr",
            "PutLifecyclePolicy",
            {
                "repositoryName": repo,
                "lifecyclePolicyText": json.dumps(ecr_lifecycle(d.keep_images)),
            },
        )
        steps.append(Step(f"ecr.repository {repo}", "create", "missing", (create, policy)))
    if not obs.has_image:
        push = PushImage(
            str(project_dir), d.architecture, d.repository_uri, d.image_tag, SERVER_DOCKERFILE
        )
        why = "this server image is not in ECR yet (build and push)"
        steps.append(Step(f"ecr.image {repo}:{d.image_tag}", "create", why, (push,)))
    return steps


def plan_log_group(d: FargateDesired, obs: FargateObserved) -> list[Step]:
    group = d.names.service_log_group
    res = f"logs.group {group}"
    steps = []
    if not obs.log_group_exists:
        create = ApiCall("logs", "CreateLogGroup", {"logGroupName": group, "tags": d.tags})
        steps.append(Step(res, "create", "missing", (create,)))
    days = d.log_retention_days
    if obs.log_group_retention != days:
        why = f"retention {obs.log_group_retention or 'never expires'} -> {days} days"
        put = ApiCall(
            "logs", "PutRetentionPolicy", {"logGroupName": group, "retentionInDays": days}
        )
        steps.append(Step(f"{res} retention", "update", why, (put,)))
    return steps


def _trusts_ecs_tasks(role: ObservedRole) -> bool:
    services = set()
    for st in role.trust.get("Statement", []):
        principal = st.get("Principal", {})
        got = principal.get("Service", []) if isinstance(principal, dict) else []
        services |= set(got if isinstance(got, list) else [got])
    return services == {"ecs-tasks.amazonaws.com"}


def plan_role(
    name: str,
    role: ObservedRole | None,
    policy: dict[str, Any],
    policy_name: str,
    d: FargateDesired,
    description: str,
) -> list[Step]:
    res = f"iam.role {name}"
    steps = []
    if role is None:
        create = ApiCall(
            "iam",
            "CreateRole",
            {
                "RoleName": name,
                "AssumeRolePolicyDocument": json.dumps(ECS_TASKS_TRUST),
                "Description": description,
                "Tags": _tags(d.tags),
            },
        )
        steps.append(Step(res, "create", "missing", (create,)))
    elif not _trusts_ecs_tasks(role):
        update = ApiCall(
            "iam",
            "UpdateAssumeRolePolicy",
            {"RoleName": name, "PolicyDocument": json.dumps(ECS_TASKS_TRUST)},
        )
        steps.append(Step(res, "update", "trust policy is not ECS tasks'", (update,)))
    have = None if role is None else role.inline.get(policy_name)
    if have != policy:
        put = ApiCall(
            "iam",
            "PutRolePolicy",
            {"RoleName": name, "PolicyName": policy_name, "PolicyDocument": json.dumps(policy)},
        )
        why = "missing" if have is None else "grants something other than scarab's policy"
        step = f"{res} inline {policy_name}"
        if have is None:
            steps.append(Step(step, "create", why, (put,)))
        else:
            steps.append(Step(step, "update", why, (put,)))
    return steps


def plan_secret(d: FargateDesired, obs: FargateObserved, key_ring: str) -> list[Step]:
    name = d.names.server_keys_secret
    res = f"secretsmanager.secret {name}"
    if obs.secret_arn is None:
        create = ApiCall(
            "secretsmanager",
            "CreateSecret",
            {
                "Name": name,
                "Description": f"API keys of the {d.names.service} server (scarab keys"
                " ... --target fargate)",
                "SecretString": key_ring,
                "Tags": _tags(d.tags),
            },
            output_var=SECRET_ARN,
            output_path="ARN",
        )
        return [Step(res, "create", "missing (with a first key)", (create,))]
    if obs.secret_deleted:
        restore = ApiCall("secretsmanager", "RestoreSecret", {"SecretId": name})
        return [Step(res, "update", "scheduled for deletion: restored", (restore,))]
    return []


def _permission(port: int, cidr: str) -> dict[str, Any]:
    ranges: dict[str, Any] = (
        {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ":" in cidr else {"IpRanges": [{"CidrIp": cidr}]}
    )
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **ranges}


def plan_security_group(d: FargateDesired, obs: FargateObserved) -> list[Step]:
    name = d.names.service_security_group
    res = f"ec2.security_group {name}"
    group = obs.security_group
    steps = []
    if group is None:
        create = ApiCall(
            "ec2",
            "CreateSecurityGroup",
            {
                "GroupName": name,
                "Description": f"{d.names.service} server: port {d.port} from allowed_cidrs only",
                "VpcId": d.network.vpc_id,
                "TagSpecifications": [{"ResourceType": "security-group", "Tags": _tags(d.tags)}],
            },
            output_var=SECURITY_GROUP_ID,
            output_path="GroupId",
        )
        steps.append(Step(res, "create", f"missing (in {d.network.vpc_id})", (create,)))
        have: set[tuple[str, int, str]] = set()
        other: list[dict[str, Any]] = []
        group_id: Any = Ref(SECURITY_GROUP_ID)
    else:
        have, other, group_id = group.ingress, group.other_ingress, group.id
    want = d.ingress()
    extra = sorted(have - want)
    if extra or other:
        perms = [_permission(port, cidr) for _, port, cidr in extra] + other
        revoke = ApiCall(
            "ec2", "RevokeSecurityGroupIngress", {"GroupId": group_id, "IpPermissions": perms}
        )
        shown = ", ".join(f"{cidr} on {port}" for _, port, cidr in extra) or "other rules"
        why = f"admits {shown}, which [fargate] port and allowed_cidrs do not"
        steps.append(Step(f"{res} ingress", "delete", why, (revoke,)))
    missing = sorted(want - have)
    if missing:
        perms = [_permission(port, cidr) for _, port, cidr in missing]
        authorize = ApiCall(
            "ec2", "AuthorizeSecurityGroupIngress", {"GroupId": group_id, "IpPermissions": perms}
        )
        why = f"port {d.port} from {', '.join(c for _, _, c in missing)}"
        steps.append(Step(f"{res} ingress", "create", why, (authorize,)))
    return steps


def plan_cluster(d: FargateDesired, obs: FargateObserved) -> list[Step]:
    if obs.cluster_active:
        return []
    create = ApiCall(
        "ecs", "CreateCluster", {"clusterName": d.names.cluster, "tags": _ecs_tags(d.tags)}
    )
    return [Step(f"ecs.cluster {d.names.cluster}", "create", "missing", (create,))]


def task_definition_drift(live: dict[str, Any] | None, want: dict[str, Any]) -> list[str]:
    """The fields of the live task definition that differ from `want` (all: none live)."""
    if live is None:
        return ["missing"]
    drift = [
        key
        for key in ("family", "taskRoleArn", "executionRoleArn", "networkMode", "cpu",
                    "memory", "runtimePlatform")
        if live.get(key) != want[key]
    ]  # fmt: skip
    if sorted(live.get("requiresCompatibilities", [])) != want["requiresCompatibilities"]:
        drift.append("requiresCompatibilities")
    containers = live.get("containerDefinitions", [])
    [wanted] = want["containerDefinitions"]
    if len(containers) != 1:
        return [*drift, "containerDefinitions"]
    drift += [f"container {key}" for key in wanted if _container_value(containers[0], key) !=
              _container_value(wanted, key)]  # fmt: skip
    return drift


def _container_value(container: dict[str, Any], key: str) -> Any:
    """A container field as compared: ECS adds defaults (hostPort, empty lists) and may
    reorder the environment."""
    value = container.get(key)
    if key == "environment":
        return sorted((e["name"], e["value"]) for e in value or [])
    if key == "portMappings":
        return sorted((p["containerPort"], p.get("protocol", "tcp")) for p in value or [])
    if key == "logConfiguration" and value:
        return {"logDriver": value.get("logDriver"), "options": value.get("options")}
    return value


def plan_service(d: FargateDesired, obs: FargateObserved) -> list[Step]:
    want = d.task_definition
    drift = task_definition_drift(obs.task_definition, want)
    steps = []
    task_definition: Any = obs.task_definition_arn
    if drift:
        register = ApiCall(
            "ecs",
            "RegisterTaskDefinition",
            {**want, "tags": _ecs_tags(d.tags)},
            output_var=TASK_DEFINITION_ARN,
            output_path="taskDefinition.taskDefinitionArn",
        )
        why = "missing" if drift == ["missing"] else f"{', '.join(drift)} changed: a new revision"
        steps.append(Step(f"ecs.task_definition {d.names.task_family}", "create", why, (register,)))
        task_definition = Ref(TASK_DEFINITION_ARN)
    group_id: Any = obs.security_group.id if obs.security_group else Ref(SECURITY_GROUP_ID)
    network = {
        "awsvpcConfiguration": {
            "subnets": list(d.network.subnets),
            "securityGroups": [group_id],
            "assignPublicIp": "ENABLED",
        }
    }
    res = f"ecs.service {d.names.service}"
    service = obs.service
    if service is None:
        create = ApiCall(
            "ecs",
            "CreateService",
            {
                "cluster": d.names.cluster,
                "serviceName": d.names.service,
                "taskDefinition": task_definition,
                "desiredCount": d.desired_count,
                "launchType": "FARGATE",
                "networkConfiguration": network,
                "propagateTags": "SERVICE",
                "tags": _ecs_tags(d.tags),
            },
        )
        steps.append(Step(res, "create", "missing (public IP, no load balancer)", (create,)))
        return steps
    changes = []
    if drift:
        changes.append("a new task definition revision")
    if service.desired_count != d.desired_count:
        changes.append(f"desired count {service.desired_count} -> {d.desired_count}")
    same_group = obs.security_group is not None and service.security_groups == (
        obs.security_group.id,
    )
    if service.subnets != tuple(sorted(d.network.subnets)) or not same_group:
        changes.append("network (subnets or security group)")
    if service.assign_public_ip != "ENABLED":
        changes.append("public IP")
    if not changes:
        return steps
    update = ApiCall(
        "ecs",
        "UpdateService",
        {
            "cluster": d.names.cluster,
            "service": d.names.service,
            "taskDefinition": task_definition,
            "desiredCount": d.desired_count,
            "networkConfiguration": network,
        },
    )
    steps.append(Step(res, "update", "; ".join(changes), (update,)))
    return steps


# destroy -------------------------------------------------------------------------------


def plan_destroy(names: Names, obs: FargateObserved, *, include_images: bool) -> list[Step]:
    """Delete what `obs` found, dependents first: the service, its task definitions, the
    cluster, the group, the roles, the log group and the keys secret (the repository and
    its images only with `include_images`)."""
    steps: list[Step] = []
    if obs.service is not None:
        delete = ApiCall(
            "ecs", "DeleteService",
            {"cluster": names.cluster, "service": names.service, "force": True},
        )  # fmt: skip
        why = "scaled to zero and deleted (force)"
        steps.append(Step(f"ecs.service {names.service}", "delete", why, (delete,)))
    for arn in obs.task_definition_arns:
        revision = arn.rsplit("/", 1)[-1]
        dereg = ApiCall("ecs", "DeregisterTaskDefinition", {"taskDefinition": arn})
        steps.append(Step(f"ecs.task_definition {revision}", "delete", "deregistered", (dereg,)))
    if obs.cluster_active:
        delete = ApiCall(
            "ecs", "DeleteCluster", {"cluster": names.cluster}, retry_codes=CLUSTER_BUSY
        )
        steps.append(Step(f"ecs.cluster {names.cluster}", "delete", "the stage's", (delete,)))
    if obs.security_group is not None:
        delete = ApiCall(
            "ec2", "DeleteSecurityGroup", {"GroupId": obs.security_group.id},
            retry_codes=GROUP_IN_USE,
        )  # fmt: skip
        res = f"ec2.security_group {names.service_security_group}"
        steps.append(Step(res, "delete", f"{obs.security_group.id}", (delete,)))
    for role in (obs.execution_role and (names.task_execution_role, obs.execution_role),
                 obs.task_role and (names.task_role, obs.task_role)):  # fmt: skip
        if not role:
            continue
        role_name, found = role
        calls: list[Instruction] = [
            ApiCall("iam", "DetachRolePolicy", {"RoleName": role_name, "PolicyArn": arn},
                    missing_ok=True)
            for arn in sorted(found.attached)
        ]  # fmt: skip
        calls += [
            ApiCall("iam", "DeleteRolePolicy", {"RoleName": role_name, "PolicyName": p},
                    missing_ok=True)
            for p in sorted(found.inline)
        ]  # fmt: skip
        calls.append(ApiCall("iam", "DeleteRole", {"RoleName": role_name}, missing_ok=True))
        steps.append(Step(f"iam.role {role_name}", "delete", "the stage's", tuple(calls)))
    if obs.log_group_exists:
        group = names.service_log_group
        delete = ApiCall("logs", "DeleteLogGroup", {"logGroupName": group}, missing_ok=True)
        steps.append(Step(f"logs.group {group}", "delete", "the stage's", (delete,)))
    if obs.secret_arn is not None:
        delete = ApiCall(
            "secretsmanager", "DeleteSecret",
            {"SecretId": names.server_keys_secret, "ForceDeleteWithoutRecovery": True},
            missing_ok=True,
        )  # fmt: skip
        why = "the server's API keys (at once: a later deploy makes a new ring)"
        res = f"secretsmanager.secret {names.server_keys_secret}"
        steps.append(Step(res, "delete", why, (delete,)))
    if include_images and obs.repository_uri is not None:
        repo = names.server_repository
        delete = ApiCall(
            "ecr", "DeleteRepository", {"repositoryName": repo, "force": True}, missing_ok=True
        )
        steps.append(Step(f"ecr.repository {repo}", "delete", "--include-images", (delete,)))
    return steps
