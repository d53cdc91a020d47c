"""The desired resources of --target fargate, as values (the planner compares them with
what the reader found).

Everything here is derived from scarab.toml, the account, the region and the image tag:
no AWS calls. The registry's names and read policy are the Lambda models function's
(deploy/models.py), so both targets read the same table and bucket the same way.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from typing import Any

from scarab.config import ScarabConfig
from scarab.deploy.models import registry_policy, registry_spec
from scarab.naming import Names

ECS_TASKS_TRUST: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
CONTAINER = "server"
# The server's variable naming the keys secret (lens.server reads it; COMMON15 contract).
KEYS_SECRET_ENV = "SCARAB_API_KEYS_SECRET"  # noqa: S105 (a name, not a value)
EXECUTION_MODE_ENV = "EXECUTION_MODE"
STANDALONE = "standalone"
LOG_STREAM_PREFIX = "server"
_PLATFORM = {"x86_64": "X86_64", "arm64": "ARM64"}


@dataclass(frozen=True)
class Network:
    """Where the tasks run: the subnets (all in `vpc_id`)."""

    vpc_id: str
    subnets: tuple[str, ...]


@dataclass(frozen=True)
class FargateDesired:
    names: Names
    account_id: str
    region: str
    partition: str
    architecture: str
    image_tag: str
    cpu: int
    memory: int
    desired_count: int
    port: int
    allowed_cidrs: tuple[str, ...]
    log_retention_days: int
    network: Network
    keep_images: int  # [images] keep_last: the repository's lifecycle rule

    @property
    def tags(self) -> dict[str, str]:
        return self.names.tags

    @property
    def repository_uri(self) -> str:
        suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"
        host = f"{self.account_id}.dkr.ecr.{self.region}.{suffix}"
        return f"{host}/{self.names.server_repository}"

    @property
    def image_uri(self) -> str:
        return f"{self.repository_uri}:{self.image_tag}"

    def role_arn(self, role: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{role}"

    @property
    def log_group_arn(self) -> str:
        group = self.names.service_log_group
        return f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:{group}"

    @property
    def repository_arn(self) -> str:
        repo = self.names.server_repository
        return f"arn:{self.partition}:ecr:{self.region}:{self.account_id}:repository/{repo}"

    @property
    def secret_arn_pattern(self) -> str:
        """The keys secret's ARN: Secrets Manager appends '-' and 6 random characters."""
        name = self.names.server_keys_secret
        where = f"{self.partition}:secretsmanager:{self.region}:{self.account_id}"
        return f"arn:{where}:secret:{name}-??????"

    @property
    def environment(self) -> dict[str, str]:
        registry = registry_spec(
            self.names, account_id=self.account_id, region=self.region,
            partition=self.partition, seeds=(),
        )  # fmt: skip
        return {
            **registry.environment,
            EXECUTION_MODE_ENV: STANDALONE,
            KEYS_SECRET_ENV: self.names.server_keys_secret,
        }

    @property
    def execution_policy(self) -> dict[str, Any]:
        """Pull the server image from its repository and write to its own log group."""
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    # GetAuthorizationToken names no repository: AWS takes only "*".
                    "Sid": "EcrLogin",
                    "Effect": "Allow",
                    "Action": "ecr:GetAuthorizationToken",
                    "Resource": "*",
                },
                {
                    "Sid": "PullServerImage",
                    "Effect": "Allow",
                    "Action": [
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                    ],
                    "Resource": self.repository_arn,
                },
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{self.log_group_arn}:*",
                },
            ],
        }

    @property
    def task_policy(self) -> dict[str, Any]:
        """Read the registry table, its artifacts and the keys secret; nothing else."""
        registry = registry_spec(
            self.names, account_id=self.account_id, region=self.region,
            partition=self.partition, seeds=(),
        )  # fmt: skip
        statements = list(registry_policy(registry)["Statement"])
        statements.append(
            {
                "Sid": "ReadApiKeys",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": self.secret_arn_pattern,
            }
        )
        return {"Version": "2012-10-17", "Statement": statements}

    @property
    def health_command(self) -> list[str]:
        """GET /health from inside the container: the server image is python:3.12-slim,
        which has python but no curl."""
        probe = (
            "import urllib.request;"
            f"urllib.request.urlopen('http://127.0.0.1:{self.port}/health', timeout=4)"
        )
        return ["CMD-SHELL", f'python -c "{probe}" || exit 1']

    @property
    def container(self) -> dict[str, Any]:
        return {
            "name": CONTAINER,
            "image": self.image_uri,
            "essential": True,
            # The server's own command line (COMMON15), so any port works whatever the
            # image's ENTRYPOINT says.
            "entryPoint": ["python", "-m", "lens.server"],
            "command": ["--host", "0.0.0.0", "--port", str(self.port)],  # noqa: S104
            "portMappings": [{"containerPort": self.port, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in sorted(self.environment.items())],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.names.service_log_group,
                    "awslogs-region": self.region,
                    "awslogs-stream-prefix": LOG_STREAM_PREFIX,
                },
            },
            "healthCheck": {
                "command": self.health_command,
                "interval": 30,
                "timeout": 5,
                "retries": 3,
                # Loading the models takes a while on a cold task.
                "startPeriod": 60,
            },
        }

    @property
    def task_definition(self) -> dict[str, Any]:
        """RegisterTaskDefinition's parameters (the tags aside)."""
        return {
            "family": self.names.task_family,
            "taskRoleArn": self.role_arn(self.names.task_role),
            "executionRoleArn": self.role_arn(self.names.task_execution_role),
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": str(self.cpu),
            "memory": str(self.memory),
            "runtimePlatform": {
                "cpuArchitecture": _PLATFORM[self.architecture],
                "operatingSystemFamily": "LINUX",
            },
            "containerDefinitions": [self.container],
        }

    def ingress(self) -> set[tuple[str, int, str]]:
        """The security group's inbound rules: (protocol, port, CIDR), the port only."""
        return {("tcp", self.port, cidr) for cidr in self.allowed_cidrs}


def desired_state(
    config: ScarabConfig,
    *,
    account_id: str,
    region: str,
    partition: str,
    image_tag: str,
    network: Network,
) -> FargateDesired:
    f = config.fargate
    return FargateDesired(
        names=Names(config.app, config.stage),
        account_id=account_id,
        region=region,
        partition=partition,
        architecture=config.function.architecture,
        image_tag=image_tag,
        keep_images=config.images.keep_last,
        cpu=f.cpu,
        memory=f.memory,
        desired_count=f.desired_count,
        port=f.port,
        allowed_cidrs=tuple(f.allowed_cidrs),
        log_retention_days=config.function.log_retention_days,
        network=network,
    )


def first_key(names: Names) -> dict[str, Any]:
    """The first key of a new key ring (lens.server.keys's ServerKey fields), named like
    the API Gateway keys: <app>-<stage>-key-1."""
    return new_key(names.key(1))


def new_key(name: str) -> dict[str, Any]:
    return {
        "id": f"k-{secrets.token_hex(4)}",
        "name": name,
        "value": secrets.token_urlsafe(32),
        "enabled": True,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
