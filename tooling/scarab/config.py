"""scarab.toml: the project's deploy configuration, validated with pydantic.

Precedence: CLI flags (passed as `overrides`) > scarab.toml > environment
(AWS_REGION / AWS_DEFAULT_REGION for the region) > defaults.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scarab.errors import ConfigError

CONFIG_NAME = "scarab.toml"
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables scarab derives from other settings; setting them in [function.environment]
# would be ambiguous, so it is refused.
DERIVED_ENV = (
    "ALLOWED_ORIGINS",
    "SCARAB_MODELS",
    "SCARAB_THINKING",
    "GOOGLE_API_KEY_PARAM",
    "GOOGLE_API_KEY_BACKEND",
)
# Names that look like secrets: [function.environment] is stored in plaintext on the
# function (and in every `get-function-configuration`), so these belong in `scarab secrets`.
_SECRET_ENV_RE = re.compile(
    r"^(GOOGLE_API_KEY|GEMINI_API_KEY|.*API_KEY.*|.*_SECRET|.*_PASSWORD|.*_TOKEN"
    r"|(.*_)?DATABASE_URL|(.*_)?DB_URL)$",
    re.IGNORECASE,
)
# Where values may be secrets: config errors name the key there but never echo the value.
_SENSITIVE_LOCS = (("function", "environment"),)


def environment_name_problem(name: str) -> str | None:
    """Why `name` may not be set in [function.environment], or None if it may."""
    if not _ENV_RE.match(name):
        return f"{name!r} is not a valid environment variable name"
    if name in DERIVED_ENV or name.startswith("AWS_"):
        return (
            f"{name} is reserved (set by scarab or Lambda); use allowed_origins,"
            " models, thinking or [secrets] instead"
        )
    if _SECRET_ENV_RE.match(name):
        return (
            f"{name} looks like a secret, and [function.environment] is stored in plaintext"
            " on the function; store the Gemini key with 'scarab secrets set gemini-api-key"
            " --from-env VAR' (the function reads it through GOOGLE_API_KEY_PARAM) and remove"
            f" {name} from scarab.toml"
        )
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FunctionConfig(_Strict):
    memory: int = Field(512, ge=128, le=10240, description="MB")
    timeout: int = Field(30, ge=1, le=900, description="seconds")
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    runtime: Literal["python3.11", "python3.12", "python3.13"] = "python3.12"
    package: Literal["zip", "image"] = "zip"
    log_retention_days: Literal[
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653
    ] = 14
    environment: dict[str, str] = Field(default_factory=dict)
    allowed_origins: list[str] = Field(default_factory=lambda: ["http://localhost:3000"])
    models: dict[str, str] = Field(default_factory=dict)
    thinking: dict[str, Any] = Field(default_factory=dict)

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            problem = environment_name_problem(name)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.match(r"^https?://[^/\s,]+$", origin):
                raise ValueError(
                    f"{origin!r} is not an origin; use scheme://host[:port] with no path, or '*'"
                )
        return value


class ApiConfig(_Strict):
    throttle_rate: float = Field(10.0, gt=0, description="steady requests per second")
    throttle_burst: int = Field(20, ge=1)
    quota_limit: int = Field(1000, ge=1)
    quota_period: Literal["DAY", "WEEK", "MONTH"] = "DAY"


class SecretsConfig(_Strict):
    backend: Literal["ssm", "secretsmanager"] = "ssm"
    # {app} and {stage} are filled in; an SSM name must start with '/'.
    gemini_api_key: str = "/scarab/{app}/{stage}/gemini-api-key"


class ImagesConfig(_Strict):
    keep_last: int = Field(10, ge=1, le=1000, description="ECR images kept by the lifecycle rule")


class LockConfig(_Strict):
    # A stage lock older than this is stale (its command crashed) and is taken over.
    timeout_minutes: int = Field(15, ge=1, le=24 * 60)


class ScarabConfig(_Strict):
    app: str = "scarab"
    region: str | None = None
    stage: str = "dev"
    function: FunctionConfig = Field(default_factory=FunctionConfig)  # type: ignore[arg-type]
    api: ApiConfig = Field(default_factory=ApiConfig)  # type: ignore[arg-type]
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)  # type: ignore[arg-type]
    lock: LockConfig = Field(default_factory=LockConfig)  # type: ignore[arg-type]

    @field_validator("app", "stage")
    @classmethod
    def _names(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(
                f"{value!r} must be lowercase letters, digits and '-', starting with a letter"
            )
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", value):
            raise ValueError(f"{value!r} is not an AWS region name such as us-east-1")
        return value

    @property
    def resolved_region(self) -> str:
        return (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )

    @property
    def secret_name(self) -> str:
        return self.secrets.gemini_api_key.format(app=self.app, stage=self.stage)


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (default: cwd) holding scarab.toml.

    Falls back to `start` itself, so a project with no scarab.toml uses the defaults.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    return here


def _field_names(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    current: type[BaseModel] = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        ann = field.annotation if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            current = ann
        else:
            return []
    return sorted(current.model_fields)


def _explain(exc: ValidationError, source: str) -> ConfigError:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_field_names(ScarabConfig, loc))
            lines.append(f"{source}: unknown key '{key}'; allowed keys here: {allowed}.")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            if any(loc[: len(s)] == s for s in _SENSITIVE_LOCS):
                lines.append(f"{source}: '{key}': {msg} (value not shown).")
            else:
                lines.append(f"{source}: '{key}': {msg} (got {err.get('input')!r}).")
    return ConfigError("\n".join(lines))


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"'{dotted}' cannot be set: '{part}' is not a table.")
        node = child
    node[parts[-1]] = value


def load_config(
    project_dir: Path | None = None, overrides: dict[str, Any] | None = None
) -> ScarabConfig:
    """Read and validate `<project_dir>/scarab.toml` (missing file: defaults).

    `overrides` maps dotted keys ("stage", "function.package") to values from flags;
    None values are ignored so callers can pass every flag as-is.
    """
    project_dir = project_dir or find_project_dir()
    path = project_dir / CONFIG_NAME
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}.") from None
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
    try:
        return ScarabConfig.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, CONFIG_NAME) from None
