"""What the SageMaker target wants to exist, as values: the planner compares these with
what the reader found.

SageMaker Models and EndpointConfigs cannot be changed once created, so each is named
by a digest of its content (Names.sagemaker_model / sagemaker_endpoint_config): a change
of image, model.tar.gz, environment, memory or concurrency is a new name, hence a new
resource, and the endpoint is moved to it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scarab.config import ScarabConfig
from scarab.deploy.models import ecr_lifecycle
from scarab.naming import Names
from scarab.targets.sagemaker.bundle import Bundle

# SageMaker Serverless runs x86_64 containers only.
ARCHITECTURE = "x86_64"
VARIANT = "AllTraffic"
# Where SageMaker extracts model.tar.gz in the container (SCARAB_MODEL_DIR).
MODEL_DIR = "/opt/ml/model"
# SageMaker's names: at most 63 characters.
NAME_LIMIT = 63
DIGEST = 12


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:DIGEST]


@dataclass(frozen=True)
class DesiredEndpoint:
    names: Names
    account_id: str
    region: str
    partition: str
    project_dir: Path
    image_tag: str
    bundle: Bundle
    memory_mb: int
    max_concurrency: int
    log_retention_days: int
    keep_images: int

    @property
    def tags(self) -> dict[str, str]:
        return self.names.tags

    @property
    def tag_list(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())]

    @property
    def repository(self) -> str:
        return self.names.server_repository

    @property
    def repository_uri(self) -> str:
        suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"
        return f"{self.account_id}.dkr.ecr.{self.region}.{suffix}/{self.repository}"

    @property
    def image_uri(self) -> str:
        return f"{self.repository_uri}:{self.image_tag}"

    @property
    def repository_arn(self) -> str:
        return (
            f"arn:{self.partition}:ecr:{self.region}:{self.account_id}:repository/{self.repository}"
        )

    @property
    def lifecycle_policy(self) -> dict[str, Any]:
        return ecr_lifecycle(self.keep_images)

    @property
    def bucket(self) -> str:
        return self.names.artifact_bucket(self.account_id, self.region)

    @property
    def key(self) -> str:
        """model.tar.gz's content address under the endpoint's prefix: by what it holds,
        not by its gzip bytes, which differ between zlib builds (so between machines)."""
        return f"{self.names.sagemaker_artifact_prefix}model-{self.bundle.content[:20]}.tar.gz"

    @property
    def model_data_url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def role(self) -> str:
        return self.names.sagemaker_role

    @property
    def role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.role}"

    @property
    def trust(self) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }

    @property
    def log_group(self) -> str:
        return self.names.sagemaker_log_group

    @property
    def policy(self) -> dict[str, Any]:
        """The role's one inline policy: pull this repository's images, read this
        endpoint's model.tar.gz objects, write this endpoint's logs. Nothing else."""
        p, r, a = self.partition, self.region, self.account_id
        return {
            "Version": "2012-10-17",
            "Statement": [
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
                    # Not scoped by AWS: the token is for the registry, not a repository.
                    "Sid": "EcrToken",
                    "Effect": "Allow",
                    "Action": "ecr:GetAuthorizationToken",
                    "Resource": "*",
                },
                {
                    "Sid": "ReadModelData",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": (
                        f"arn:{p}:s3:::{self.bucket}/{self.names.sagemaker_artifact_prefix}*"
                    ),
                },
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                    ],
                    "Resource": f"arn:{p}:logs:{r}:{a}:log-group:{self.log_group}:*",
                },
            ],
        }

    @property
    def environment(self) -> dict[str, str]:
        """The container's environment (the server image's runtime contract)."""
        return {
            "EXECUTION_MODE": "standalone",
            "SCARAB_MODEL_DIR": MODEL_DIR,
            "SCARAB_ENDPOINT_MODELS": ",".join(self.bundle.models),
        }

    @property
    def primary_container(self) -> dict[str, Any]:
        return {
            "Image": self.image_uri,
            "ModelDataUrl": self.model_data_url,
            "Environment": self.environment,
        }

    @property
    def model_name(self) -> str:
        content = {"container": self.primary_container, "role": self.role_arn}
        return self.names.sagemaker_model(digest(content))

    @property
    def serverless(self) -> dict[str, int]:
        return {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}

    @property
    def production_variants(self) -> list[dict[str, Any]]:
        return [
            {
                "VariantName": VARIANT,
                "ModelName": self.model_name,
                "ServerlessConfig": self.serverless,
            }
        ]

    @property
    def config_name(self) -> str:
        return self.names.sagemaker_endpoint_config(digest(self.production_variants))

    @property
    def endpoint(self) -> str:
        return self.names.endpoint


def name_problem(names: Names) -> str | None:
    """Why the stage's SageMaker names would be too long (None: they fit)."""
    longest = names.sagemaker_model("0" * DIGEST)
    if len(longest) > NAME_LIMIT:
        room = NAME_LIMIT - (len(longest) - len(names.base))
        return (
            f"app and stage make SageMaker names of {len(longest)} characters"
            f" ({longest}); SageMaker takes {NAME_LIMIT}: shorten app-stage to {room} characters"
        )
    return None


def desired_endpoint(
    config: ScarabConfig,
    *,
    account_id: str,
    region: str,
    partition: str,
    project_dir: Path,
    image_tag: str,
    bundle: Bundle,
) -> DesiredEndpoint:
    sm = config.sagemaker
    return DesiredEndpoint(
        names=Names(config.app, config.stage),
        account_id=account_id,
        region=region,
        partition=partition,
        project_dir=project_dir,
        image_tag=image_tag,
        bundle=bundle,
        memory_mb=sm.memory_mb,
        max_concurrency=sm.max_concurrency,
        log_retention_days=config.function.log_retention_days,
        keep_images=config.images.keep_last,
    )
