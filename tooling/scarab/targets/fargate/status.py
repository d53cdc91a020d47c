"""`scarab status --target fargate`: the cluster, the service, its task definition, and
each running task's public address (read-only calls only).

A task's public IP is on its network interface: ecs DescribeTasks gives the interface
id (the ElasticNetworkInterface attachment), ec2 DescribeNetworkInterfaces its
Association.PublicIp. A task that is still starting, or runs in a subnet that gives no
public IP, has none: shown as such, never guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scarab.aws import Aws, aws_errors, call
from scarab.config import ScarabConfig
from scarab.naming import Names
from scarab.targets.fargate import reader
from scarab.targets.fargate.models import CONTAINER
from scarab.targets.fargate.pipeline import check_region, make_aws

NO_PUBLIC_IP = "no public IP yet (the task is starting, or its subnet assigns none)"


def _eni(task: dict[str, Any]) -> str | None:
    for attachment in task.get("attachments", []):
        if attachment.get("type") != "ElasticNetworkInterface":
            continue
        for detail in attachment.get("details", []):
            if detail.get("name") == "networkInterfaceId":
                return str(detail["value"])
    return None


def running_tasks(aws: Aws, names: Names) -> list[dict[str, Any]]:
    """The service's tasks that ECS keeps running, described."""
    ecs = aws.client("ecs")
    arns: list[str] = []
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster=names.cluster, serviceName=names.service, desiredStatus="RUNNING"
    )
    for page in pages:
        arns += page.get("taskArns", [])
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), 100):  # DescribeTasks takes up to 100
        got = call(ecs.describe_tasks, cluster=names.cluster, tasks=arns[start : start + 100])
        tasks += got.get("tasks", [])
    # A service's tasks are in its group (and a list by service name gives only those).
    group = f"service:{names.service}"
    return [t for t in tasks if t.get("group", group) == group]


def public_ips(aws: Aws, eni_ids: list[str]) -> dict[str, str]:
    if not eni_ids:
        return {}
    got = call(aws.client("ec2").describe_network_interfaces, NetworkInterfaceIds=eni_ids)
    out = {}
    for eni in got.get("NetworkInterfaces", []):
        ip = (eni.get("Association") or {}).get("PublicIp")
        if ip:
            out[str(eni["NetworkInterfaceId"])] = str(ip)
    return out


def deployed_port(aws: Aws, task_definition: str) -> int | None:
    """The server container's port in `task_definition` (None: unreadable)."""
    td = reader.read_task_definition(aws, task_definition)
    for container in (td or {}).get("containerDefinitions", []):
        if container.get("name") != CONTAINER:
            continue
        for mapping in container.get("portMappings", []):
            if isinstance(mapping.get("containerPort"), int):
                return int(mapping["containerPort"])
    return None


def status(
    config: ScarabConfig, *, project_dir: Path, endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> dict[str, Any]:  # fmt: skip
    aws = aws or make_aws(config, endpoint_url)
    names = Names(config.app, config.stage)
    port = config.fargate.port
    with aws_errors():
        check_region(aws, project_dir.resolve(), names.stage)
        cluster_active = reader.read_cluster(aws, names)
        service = reader.read_service(aws, names) if cluster_active else None
        data: dict[str, Any] = {
            "target": "fargate",
            "stage": names.stage,
            "region": aws.region,
            "cluster": {"name": names.cluster, "active": cluster_active},
            "service": None,
            "tasks": [],
            "port": port,
            "allowed_cidrs": list(config.fargate.allowed_cidrs),
        }
        if service is None:
            return data
        # What the service has, not what scarab.toml says now (it may be edited and not
        # deployed yet): the task definition's port, the group's CIDR blocks on it.
        port = deployed_port(aws, service.task_definition) or port
        data["port"] = port
        group = reader.read_security_group(aws, names, None)
        if group is not None:
            data["allowed_cidrs"] = sorted(c for _, p, c in group.ingress if p == port)
        configured = {
            "port": config.fargate.port,
            "allowed_cidrs": sorted(config.fargate.allowed_cidrs),
        }
        if configured != {"port": port, "allowed_cidrs": sorted(data["allowed_cidrs"])}:
            data["configured"] = configured
        revision = service.task_definition.rsplit(":", 1)[-1]
        data["service"] = {
            "name": names.service,
            "status": service.status,
            "task_definition": service.task_definition,
            "revision": int(revision) if revision.isdigit() else None,
            "desired_count": service.desired_count,
            "running_count": service.running_count,
            "pending_count": service.pending_count,
        }
        tasks = running_tasks(aws, names)
        enis = {t["taskArn"]: _eni(t) for t in tasks}
        ips = public_ips(aws, [e for e in enis.values() if e])
    for t in tasks:
        eni = enis[t["taskArn"]]
        ip = ips.get(eni) if eni else None
        data["tasks"].append(
            {
                "task_arn": t["taskArn"],
                "last_status": t.get("lastStatus"),
                "health": t.get("healthStatus"),
                "task_definition": t.get("taskDefinitionArn"),
                "network_interface": eni,
                "public_ip": ip,
                "url": f"http://{ip}:{port}" if ip else None,
            }
        )
    return data


def status_lines(data: dict[str, Any]) -> list[str]:
    """`scarab status --target fargate` as text."""
    cluster = data["cluster"]
    lines = [
        f"{'stage:':<16}{data['stage']} (fargate, {data['region']})",
        f"{'cluster:':<16}{cluster['name']}" + ("" if cluster["active"] else " (missing)"),
    ]
    service = data["service"]
    if service is None:
        lines.append(f"{'service:':<16}not deployed ('scarab deploy --target fargate')")
        return lines
    lines += [
        f"{'service:':<16}{service['name']} ({service['status']})",
        f"{'task def:':<16}{service['task_definition']} (revision {service['revision']})",
        f"{'tasks:':<16}{service['running_count']} running, {service['desired_count']} desired,"
        f" {service['pending_count']} pending",
    ]
    for t in data["tasks"]:
        task_id = t["task_arn"].rsplit("/", 1)[-1]
        where = t["url"] or NO_PUBLIC_IP
        lines.append(f"  task {task_id} {t['last_status']}: {where}")
    if not data["tasks"]:
        lines.append("  no running tasks")
    if not data["allowed_cidrs"]:
        lines.append(f"port {data['port']} is open to nobody ([fargate] allowed_cidrs is empty)")
    configured = data.get("configured")
    if configured:
        cidrs = ", ".join(configured["allowed_cidrs"]) or "nobody"
        lines.append(
            f"scarab.toml says port {configured['port']} from {cidrs}: not deployed yet"
            " ('scarab deploy --target fargate')"
        )
    return lines
