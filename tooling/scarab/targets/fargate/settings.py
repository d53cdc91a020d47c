"""[fargate] in scarab.toml: the size, count, port and network of the ECS Fargate service.

Imported by scarab.config (the ScarabConfig field), so it imports nothing of scarab's at
module level.
"""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# Fargate's task sizes: CPU units -> the memory (MiB) each may have. From the ECS API
# reference (TaskDefinition.memory): 256 takes 512-2048; 512 takes 1-4 GB; 1024 takes
# 2-8 GB; 2048 4-16 GB and 4096 8-30 GB, both in 1 GB steps; 8192 16-60 GB in 4 GB
# steps and 16384 32-120 GB in 8 GB steps (Linux platform 1.4.0 or later).
CPU_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: (1024, 2048, 3072, 4096),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
# A security group takes 60 inbound rules per address family by default.
_MAX_CIDRS = 60
_MAX_SUBNETS = 16  # ECS's awsvpcConfiguration takes at most 16 subnets


def _check_cpu(value: int) -> int:
    if value not in CPU_MEMORY:
        raise ValueError(
            f"Fargate has no task size of {value} CPU units; use one of"
            f" {', '.join(map(str, CPU_MEMORY))} (1024 = 1 vCPU)"
        )
    return value


def _check_cidrs(value: list[str]) -> list[str]:
    out = []
    for item in value:
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as exc:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f" (did you mean {ipaddress.ip_network(item, strict=False)}?)"
            raise ValueError(
                f"{item!r} is not a CIDR block such as '203.0.113.0/24' or '2001:db8::/32'"
                f" ({exc}){hint}"
            ) from None
        out.append(str(network))
    if len(set(out)) != len(out):
        raise ValueError("a CIDR block is listed twice")
    if len(out) > _MAX_CIDRS:
        raise ValueError(f"a security group takes at most {_MAX_CIDRS} CIDR blocks, not {len(out)}")
    return out


def _check_subnets(value: list[str]) -> list[str]:
    from scarab.config import _SUBNET_ID_RE  # the one spelling of a subnet id

    for item in value:
        if not _SUBNET_ID_RE.match(item):
            raise ValueError(
                f"{item!r} is not a subnet id; one looks like 'subnet-0123456789abcdef0'"
            )
    if len(set(value)) != len(value):
        raise ValueError("a subnet id is listed twice")
    if len(value) > _MAX_SUBNETS:
        raise ValueError(f"ECS takes at most {_MAX_SUBNETS} subnets, not {len(value)}")
    return value


class FargateConfig(BaseModel):
    """[fargate]: the server on an ECS Fargate service with a public IP and no load
    balancer (scarab deploy --target fargate)."""

    # strict: TOML's true is not 1 and 1024.0 is not 1024 (a typo, not a size).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    cpu: Annotated[int, AfterValidator(_check_cpu)] = 256
    memory: int = Field(512, description="MiB; one Fargate allows with `cpu`")
    desired_count: int = Field(1, ge=0, le=1000)
    port: int = Field(8080, ge=1, le=65535)
    # Who may reach `port`: nobody unless listed.
    allowed_cidrs: Annotated[list[str], AfterValidator(_check_cidrs)] = Field(default_factory=list)
    # Empty: the default VPC's default subnets (public, one per availability zone).
    subnets: Annotated[list[str], AfterValidator(_check_subnets)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _memory_fits_cpu(self) -> FargateConfig:
        allowed = CPU_MEMORY[self.cpu]
        if self.memory not in allowed:
            raise ValueError(
                f"[fargate] memory = {self.memory} does not go with cpu = {self.cpu}: Fargate"
                f" allows {_spoken(allowed)} MiB with it"
            )
        return self


def _spoken(values: tuple[int, ...]) -> str:
    if len(values) <= 4:
        return ", ".join(map(str, values))
    step = values[1] - values[0]
    return f"{values[0]} to {values[-1]} in steps of {step}"
