"""Read what --target fargate has in AWS into values (read-only calls only).

The planner compares these with the desired resources; destroy deletes what they name.
Resources are found by their names (scarab.naming), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scarab.aws import Aws, call, error_code
from scarab.deploy.reader import ObservedRole, _missing, read_role
from scarab.errors import ConfigError, ScarabError
from scarab.naming import FunctionNames, Names
from scarab.targets.fargate.models import Network


@dataclass
class ObservedGroup:
    id: str
    vpc_id: str
    # (protocol, port, CIDR) of each inbound rule that is one port from a CIDR block;
    # anything else (a port range, another group) in `other_ingress`.
    ingress: set[tuple[str, int, str]] = field(default_factory=set)
    other_ingress: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ObservedService:
    arn: str
    task_definition: str
    desired_count: int
    running_count: int
    pending_count: int
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: str
    status: str


@dataclass
class FargateObserved:
    repository_uri: str | None = None
    has_image: bool = False
    cluster_active: bool = False
    log_group_exists: bool = False
    log_group_retention: int | None = None
    execution_role: ObservedRole | None = None
    task_role: ObservedRole | None = None
    secret_arn: str | None = None
    secret_deleted: bool = False  # scheduled for deletion (restorable)
    security_group: ObservedGroup | None = None
    service: ObservedService | None = None
    # The task definition the service runs (or, with no service, the family's latest
    # active revision): its ARN and what it says.
    task_definition_arn: str | None = None
    task_definition: dict[str, Any] | None = None
    # Every active revision of the family (destroy deregisters them).
    task_definition_arns: list[str] = field(default_factory=list)
    registry_table_exists: bool = True


def read_network(aws: Aws, subnets: list[str]) -> Network:
    """The subnets the tasks run in and their VPC: the configured ones (which must exist
    and share one VPC), or the default VPC's default subnets (public, one per zone)."""
    ec2 = aws.client("ec2")
    if subnets:
        try:
            found = call(ec2.describe_subnets, SubnetIds=subnets)["Subnets"]
        except Exception as exc:
            if "InvalidSubnet" in error_code(exc):
                raise ConfigError(
                    f"scarab.toml: [fargate] subnets: {_message(exc)} Check the ids in this"
                    f" account and region ({aws.region})."
                ) from None
            raise
        vpcs = sorted({s["VpcId"] for s in found})
        if len(vpcs) != 1:
            raise ConfigError(
                f"scarab.toml: [fargate] subnets are in {len(vpcs)} VPCs ({', '.join(vpcs)});"
                " a service's subnets must all be in one VPC."
            )
        return Network(vpcs[0], tuple(subnets))
    vpcs = call(ec2.describe_vpcs, Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise ConfigError(
            f"There is no default VPC in {aws.region} to run the service in: set [fargate]"
            " subnets in scarab.toml to public subnets of a VPC (ones that give a public IP)."
        )
    vpc = str(vpcs[0]["VpcId"])
    filters = [
        {"Name": "vpc-id", "Values": [vpc]},
        {"Name": "default-for-az", "Values": ["true"]},
    ]
    found = [s for page in ec2.get_paginator("describe_subnets").paginate(Filters=filters)
             for s in page["Subnets"]]  # fmt: skip
    if not found:
        raise ConfigError(
            f"The default VPC {vpc} has no default subnets: set [fargate] subnets in scarab.toml."
        )
    return Network(vpc, tuple(sorted(str(s["SubnetId"]) for s in found)))


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Message", exc))


def named_role(aws: Aws, role: str) -> ObservedRole | None:
    return read_role(aws, FunctionNames(key="", function="", role=role))


def read_repository(aws: Aws, names: Names, tag: str | None) -> tuple[str | None, bool]:
    ecr = aws.client("ecr")
    repo = names.server_repository
    try:
        got = call(ecr.describe_repositories, repositoryNames=[repo])
    except Exception as exc:
        if _missing(exc):
            return None, False
        raise
    uri = str(got["repositories"][0]["repositoryUri"])
    if tag is None:
        return uri, False
    try:
        call(ecr.describe_images, repositoryName=repo, imageIds=[{"imageTag": tag}])
    except Exception as exc:
        if _missing(exc) or error_code(exc) == "ImageNotFoundException":
            return uri, False
        raise
    return uri, True


def read_cluster(aws: Aws, names: Names) -> bool:
    got = call(aws.client("ecs").describe_clusters, clusters=[names.cluster])
    return any(c.get("status") == "ACTIVE" for c in got.get("clusters", []))


def read_service(aws: Aws, names: Names) -> ObservedService | None:
    """The service, unless it is missing or deleted (INACTIVE, DRAINING)."""
    ecs = aws.client("ecs")
    try:
        got = call(ecs.describe_services, cluster=names.cluster, services=[names.service])
    except Exception as exc:
        if error_code(exc) == "ClusterNotFoundException":
            return None
        raise
    for s in got.get("services", []):
        if s.get("status") != "ACTIVE":
            continue
        net = (s.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        return ObservedService(
            arn=str(s["serviceArn"]),
            task_definition=str(s.get("taskDefinition", "")),
            desired_count=int(s.get("desiredCount", 0)),
            running_count=int(s.get("runningCount", 0)),
            pending_count=int(s.get("pendingCount", 0)),
            subnets=tuple(sorted(net.get("subnets", []))),
            security_groups=tuple(sorted(net.get("securityGroups", []))),
            assign_public_ip=str(net.get("assignPublicIp", "DISABLED")),
            status=str(s["status"]),
        )
    return None


def read_task_definition(aws: Aws, which: str) -> dict[str, Any] | None:
    """A task definition (an ARN, or a family for its latest revision) if active."""
    try:
        got = call(aws.client("ecs").describe_task_definition, taskDefinition=which)
    except Exception as exc:
        if error_code(exc) in {"ClientException", "InvalidParameterException"} or _missing(exc):
            return None
        raise
    td = dict(got["taskDefinition"])
    return td if td.get("status") == "ACTIVE" else None


def active_revisions(aws: Aws, names: Names) -> list[str]:
    ecs = aws.client("ecs")
    out: list[str] = []
    pages = ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=names.task_family, status="ACTIVE"
    )
    for page in pages:
        # familyPrefix matches by prefix: keep this family's own revisions only.
        out += [a for a in page["taskDefinitionArns"] if _family(a) == names.task_family]
    return out


def _family(arn: str) -> str:
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def read_security_group(aws: Aws, names: Names, vpc_id: str | None) -> ObservedGroup | None:
    """The stage's group: the one in `vpc_id` if there is one, else one in any VPC
    (group names are unique per VPC; the deploy refuses a group left in another)."""
    filters = [{"Name": "group-name", "Values": [names.service_security_group]}]
    got = call(aws.client("ec2").describe_security_groups, Filters=filters)["SecurityGroups"]
    if not got:
        return None
    g = next((x for x in got if x.get("VpcId") == vpc_id), got[0])
    group = ObservedGroup(id=str(g["GroupId"]), vpc_id=str(g.get("VpcId", "")))
    for perm in g.get("IpPermissions", []):
        single = perm.get("FromPort") is not None and perm.get("FromPort") == perm.get("ToPort")
        ranges = [r["CidrIp"] for r in perm.get("IpRanges", [])]
        ranges += [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])]
        if not single or perm.get("UserIdGroupPairs") or perm.get("PrefixListIds"):
            group.other_ingress.append(perm)
            continue
        group.ingress |= {(str(perm["IpProtocol"]), int(perm["FromPort"]), c) for c in ranges}
    return group


def read_secret(aws: Aws, names: Names) -> tuple[str | None, bool]:
    """The keys secret's ARN and whether it is scheduled for deletion."""
    try:
        got = call(aws.client("secretsmanager").describe_secret, SecretId=names.server_keys_secret)
    except Exception as exc:
        if _missing(exc):
            return None, False
        raise
    return str(got["ARN"]), got.get("DeletedDate") is not None


def read_log_group(aws: Aws, names: Names) -> tuple[bool, int | None]:
    group = names.service_log_group
    pages = (
        aws.client("logs").get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group)
    )
    for page in pages:
        for g in page.get("logGroups", []):
            if g["logGroupName"] == group:
                return True, g.get("retentionInDays")
    return False, None


def read_registry_table(aws: Aws, names: Names) -> bool:
    try:
        call(aws.client("dynamodb").describe_table, TableName=names.registry_table)
    except Exception as exc:
        if _missing(exc):
            return False
        raise
    return True


def read_all(
    aws: Aws, names: Names, *, image_tag: str | None, vpc_id: str | None
) -> FargateObserved:
    """Everything deploy and destroy need to know (`vpc_id` None: the group in any VPC)."""
    obs = FargateObserved()
    obs.repository_uri, obs.has_image = read_repository(aws, names, image_tag)
    obs.cluster_active = read_cluster(aws, names)
    obs.log_group_exists, obs.log_group_retention = read_log_group(aws, names)
    obs.execution_role = named_role(aws, names.task_execution_role)
    obs.task_role = named_role(aws, names.task_role)
    obs.secret_arn, obs.secret_deleted = read_secret(aws, names)
    obs.security_group = read_security_group(aws, names, vpc_id)
    if obs.cluster_active:
        obs.service = read_service(aws, names)
    which = obs.service.task_definition if obs.service else names.task_family
    obs.task_definition = read_task_definition(aws, which)
    if obs.task_definition is not None:
        obs.task_definition_arn = str(obs.task_definition["taskDefinitionArn"])
    obs.task_definition_arns = active_revisions(aws, names)
    return obs


def check_group_vpc(obs: FargateObserved, network: Network, names: Names) -> None:
    """The stage's group is in another VPC than the subnets: the subnets moved VPC, which
    replaces the service (its group is per VPC); refused with advice."""
    group = obs.security_group
    if group is not None and group.vpc_id != network.vpc_id:
        raise ScarabError(
            f"The security group {names.service_security_group} ({group.id}) is in"
            f" {group.vpc_id}, but the service's subnets are in {network.vpc_id}. Moving"
            " the service to another VPC replaces it: run 'scarab destroy --target fargate'"
            " first, then deploy."
        )
