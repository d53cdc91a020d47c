"""[sagemaker] in scarab.toml: the SageMaker Serverless endpoint of --target sagemaker."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# SageMaker Serverless takes 1024-6144 MB in steps of 1 GB, and 1-200 concurrent
# invocations per endpoint.
MEMORY_SIZES = tuple(range(1024, 6144 + 1, 1024))
MAX_CONCURRENCY = 200
_MODEL_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")  # the registry's model names


def _check_memory(value: int) -> int:
    if value not in MEMORY_SIZES:
        raise ValueError(
            "SageMaker Serverless takes 1024 to 6144 MB in steps of 1024:"
            f" use one of {', '.join(map(str, MEMORY_SIZES))}"
        )
    return value


def _check_models(value: list[str]) -> list[str]:
    bad = [name for name in value if not _MODEL_NAME.match(name)]
    if bad:
        raise ValueError(
            f"{bad[0]!r} is not a registry model name (lowercase letters, digits, '-' and"
            " '_', starting with a letter)"
        )
    if len(set(value)) != len(value):
        raise ValueError("name each model once")
    return value


class SageMakerConfig(BaseModel):
    """[sagemaker]: memory and concurrency of the serverless endpoint, and its models.

    `models` names the registry models the endpoint serves; empty (the default) serves
    every model with a live version in the stage's registry table, or, when the stage
    has none (no table, or nothing pushed or seeded yet), the packaged models.
    """

    # strict: TOML's true is not 1 and 1024.0 is not 1024 (a typo, not a size).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    memory_mb: Annotated[int, AfterValidator(_check_memory)] = 2048
    max_concurrency: int = Field(5, ge=1, le=MAX_CONCURRENCY)
    models: Annotated[list[str], AfterValidator(_check_models)] = Field(default_factory=list)
