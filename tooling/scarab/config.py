"""scarab.toml: the project's deploy configuration, validated with pydantic.

Precedence: CLI flags (passed as `overrides`) > scarab.toml > environment
(AWS_REGION / AWS_DEFAULT_REGION for the region) > defaults. The region then falls back
to the AWS profile's (see scarab.aws.Aws); a real-AWS run with none of these is refused.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from scarab.errors import ConfigError
from scarab.functions import FUNCTIONS
from scarab.targets.fargate.settings import FargateConfig
from scarab.targets.sagemaker.settings import SageMakerConfig

CONFIG_NAME = "scarab.toml"
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The prediction log's variables ([log] and its secret; contract with lens.log).
LOG_DERIVED_ENV = (
    "SCARAB_LOG_ENABLED",
    "SCARAB_LOG_STORE_INPUTS",
    "SCARAB_STAGE",
    "PREDICTION_DB_URL_PARAM",
    "PREDICTION_DB_URL_BACKEND",
)
# Variables scarab derives from other settings; setting them in [function.environment]
# would be ambiguous, so it is refused.
DERIVED_ENV = (
    *LOG_DERIVED_ENV,
    "ALLOWED_ORIGINS",
    "MODEL_REGISTRY_TABLE",
    "SCARAB_CACHE_TTL_S",
    "SCARAB_CACHE_TABLE",
    "SCARAB_SNAPSTART",
    "ARTIFACTS_BUCKET",
    "SCARAB_MODELS",
    "SCARAB_THINKING",
    "GOOGLE_API_KEY_PARAM",
    "GOOGLE_API_KEY_BACKEND",
    # Presigned uploads and jobs ([uploads], [jobs]; contract with lens.settings).
    "SCARAB_UPLOADS_BUCKET",
    "SCARAB_UPLOADS_MAX_BYTES",
    "SCARAB_JOBS_TABLE",
    "SCARAB_JOBS_TTL_S",
)
# Names that look like secrets: [function.environment] is stored in plaintext on the
# function (and in every `get-function-configuration`), so these belong in `scarab secrets`.
# Matched on the name's '_'-separated words, trailing digits dropped (DB_PASSWORD2, TOKEN_1).
_SECRET_ENV_RE = re.compile(
    r"^(GOOGLE_API_KEY|GEMINI_API_KEY|.*API_?KEY.*|(.*_)?DATABASE_URL|(.*_)?DB_URL)$",
    re.IGNORECASE,
)
# A word anywhere in the name (CLIENT_SECRET_VALUE, PASSWORD_HASH) ...
_SECRET_WORDS = {"SECRET", "SECRETS", "PASSWORD", "PASSWD", "PRIVATE", "CREDENTIAL", "CREDENTIALS"}
# ... or the last word (GITHUB_TOKEN, SENTRY_DSN; MAX_TOKENS and TOKEN_LIMIT are fine) ...
_SECRET_LAST_WORDS = {"TOKEN", "PASS", "PWD", "DSN", "APIKEY"}
# ... or KEY after one of these (GEMINI_KEY, ACCESS_KEY; SORT_KEY and CACHE_KEY are fine).
_SECRET_KEY_QUALIFIERS = {
    "API", "GEMINI", "GOOGLE", "ACCESS", "SIGNING", "ENCRYPTION", "MASTER", "AUTH", "SESSION",
    "STRIPE", "OPENAI", "ANTHROPIC", "LICENSE",
}  # fmt: skip
# A value that carries credentials in a URL: scheme://user:password@host.
_URL_CREDENTIALS_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]*@")
# Where values may be secrets: config errors name the key there but never echo the value
# (nor the value of any table or array that contains one of these). None matches any key
# (the function's name in [functions.<name>.environment]).
_SENSITIVE_LOCS: tuple[tuple[str | int | None, ...], ...] = (
    ("function", "environment"),
    ("functions", None, "environment"),
    ("secrets", "gemini_api_key"),
)
# AWS's name limits, checked at config time so a deploy never fails half-way through.
_LAMBDA_NAME_MAX = 64  # function (and the REST API, named alike)
_IAM_ROLE_MAX = 64
_S3_BUCKET_MAX = 63
_ACCOUNT_ID_LEN = 12


def _looks_secret(name: str) -> bool:
    if _SECRET_ENV_RE.match(name):
        return True
    words = [w.rstrip("0123456789") for w in name.upper().split("_")]
    words = [w for w in words if w]
    if not words:
        return False
    if _SECRET_WORDS.intersection(words) or words[-1] in _SECRET_LAST_WORDS:
        return True
    return words[-1] == "KEY" and (len(words) == 1 or words[-2] in _SECRET_KEY_QUALIFIERS)


def environment_name_problem(name: str) -> str | None:
    """Why `name` may not be set in [function.environment], or None if it may."""
    if not _ENV_RE.match(name):
        return f"{name!r} is not a valid environment variable name"
    if name in DERIVED_ENV or name.startswith("AWS_"):
        return (
            f"{name} is reserved (set by scarab or Lambda); use allowed_origins,"
            " models, thinking or [secrets] instead"
        )
    if _looks_secret(name):
        return (
            f"{name} looks like a secret, and [function.environment] is stored in plaintext"
            " on the function; store the Gemini key with 'scarab secrets set gemini-api-key"
            " --from-env VAR' (the function reads it through GOOGLE_API_KEY_PARAM) and remove"
            f" {name} from scarab.toml"
        )
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_environment(value: dict[str, str]) -> dict[str, str]:
    """[function.environment] and [functions.<name>.environment]: names that may be set,
    values that carry no credentials. Messages never quote a value."""
    for name, item in value.items():
        problem = environment_name_problem(name)
        if problem:
            raise ValueError(problem)
        if _URL_CREDENTIALS_RE.search(item):
            raise ValueError(
                f"the value of {name} embeds credentials in a URL (scheme://user:password@"
                "host), and [function.environment] is stored in plaintext on the function;"
                f" remove the credentials from {name} (the function reads its Gemini key"
                " through 'scarab secrets set')"
            )
        if item.strip().startswith(_KEY_PREFIXES):
            raise ValueError(
                f"the value of {name} looks like an API key or token (value not shown),"
                " and [function.environment] is stored in plaintext on the function; store"
                " the Gemini key with 'scarab secrets set gemini-api-key --from-env VAR'"
                f" and remove {name} from scarab.toml"
            )
    return value


# The settings [functions.<name>] may override, each defined once for both tables.
_Memory = Annotated[int, Field(ge=128, le=10240, description="MB")]
_Timeout = Annotated[int, Field(ge=1, le=900, description="seconds")]
_Architecture = Literal["x86_64", "arm64"]
_Environment = Annotated[dict[str, str], AfterValidator(_check_environment)]


def _check_origins(value: list[str]) -> list[str]:
    """Origins as a browser sends them: scheme://host[:port] with no path, or '*'; in
    lower case, as browsers send the scheme and host (a mixed-case origin never matches)."""
    for origin in value:
        if origin != "*" and not re.match(r"^https?://[^/\s,]+$", origin):
            raise ValueError(
                f"{origin!r} is not an origin; use scheme://host[:port] with no path, or '*'"
            )
    return [origin.lower() for origin in value]


_Origins = Annotated[list[str], AfterValidator(_check_origins)]
# What a Function URL's CORS accepts (Lambda's limits: methods are HTTP verbs or '*',
# header names are tokens, at most 100 of each).
# What a Function URL's CORS may allow (Lambda caps a method at 6 characters; the
# preflight itself is answered by Lambda, so OPTIONS is never listed).
_HTTP_METHODS = ("GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "*")
_HEADER_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,1024}$")


def _check_methods(value: list[str]) -> list[str]:
    for method in value:
        if method not in _HTTP_METHODS:
            raise ValueError(f"{method!r} is not a method; use {', '.join(_HTTP_METHODS)}")
    return value


def _check_headers(value: list[str]) -> list[str]:
    for header in value:
        if not _HEADER_RE.match(header):
            raise ValueError(f"{header!r} is not an HTTP header name (or '*')")
    return value


# Lambda keeps up to 75 GB of code per region: a bound that still lets a rollback reach
# back a long way.
_KeepVersions = Annotated[int, Field(ge=1, le=100)]


class FunctionConfig(_Strict):
    """[function]: the settings of every function ([functions.<name>] overrides some)."""

    memory: _Memory = 512
    timeout: _Timeout = 30
    architecture: _Architecture = "x86_64"
    runtime: Literal["python3.11", "python3.12", "python3.13"] = "python3.12"
    package: Literal["zip", "image"] = "zip"
    log_retention_days: Literal[
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653
    ] = 14
    environment: _Environment = Field(default_factory=dict)
    # Published versions kept per function (older ones no alias uses are deleted).
    keep_versions: _KeepVersions = 10
    allowed_origins: _Origins = Field(default_factory=lambda: ["http://localhost:3000"])
    models: dict[str, str] = Field(default_factory=dict)
    thinking: dict[str, Any] = Field(default_factory=dict)
    # Lambda SnapStart on published versions (zip packages, python3.12 and newer).
    snapstart: bool = False


class UrlCors(_Strict):
    """[functions.<name>.url.cors]: what the Function URL answers a browser with."""

    allow_origins: Annotated[_Origins, Field(min_length=1, max_length=100)]
    allow_methods: Annotated[list[str], AfterValidator(_check_methods), Field(max_length=6)] = (
        Field(default_factory=lambda: ["*"])
    )
    allow_headers: Annotated[list[str], AfterValidator(_check_headers), Field(max_length=100)] = (
        Field(default_factory=list)
    )
    max_age: int = Field(0, ge=0, le=86400, description="seconds a preflight is cached")


class UrlConfig(_Strict):
    """[functions.<name>.url]: the function's Lambda Function URL."""

    auth: Literal["AWS_IAM", "NONE"]
    cors: UrlCors | None = None


# AWS's resource ids: the prefix, then 8 (older) or 17 hexadecimal digits.
_SUBNET_ID_RE = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_SECURITY_GROUP_ID_RE = re.compile(r"^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
# Lambda's limits on a function's VpcConfig.
_MAX_SUBNETS = 16
_MAX_SECURITY_GROUPS = 5


def _check_ids(
    value: list[str], pattern: re.Pattern[str], what: str, example: str, limit: int
) -> list[str]:
    if not value:
        raise ValueError(
            f"give at least one {what} id (e.g. {example!r}); to take the function out of"
            " its VPC, remove the whole [functions.<name>.vpc] table"
        )
    if len(value) > limit:
        raise ValueError(f"Lambda takes at most {limit} {what} ids, not {len(value)}")
    for item in value:
        if not pattern.match(item):
            raise ValueError(
                f"{item!r} is not a {what} id; one looks like {example!r} (the prefix, then"
                " 8 or 17 lowercase hexadecimal digits)"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"a {what} id is listed twice")
    return value


def _check_subnets(value: list[str]) -> list[str]:
    return _check_ids(value, _SUBNET_ID_RE, "subnet", "subnet-0123456789abcdef0", _MAX_SUBNETS)


def _check_security_groups(value: list[str]) -> list[str]:
    return _check_ids(
        value, _SECURITY_GROUP_ID_RE, "security group", "sg-0123456789abcdef0",
        _MAX_SECURITY_GROUPS,
    )  # fmt: skip


class VpcConfig(_Strict):
    """[functions.<name>.vpc]: run the function inside a VPC (e.g. to reach a prediction
    log database with no public address). Lambda attaches it through network interfaces
    in these subnets, so the function's role gets the ENI permissions (and only those)."""

    subnet_ids: Annotated[list[str], AfterValidator(_check_subnets)]
    security_group_ids: Annotated[list[str], AfterValidator(_check_security_groups)]


class FunctionOverride(_Strict):
    """[functions.<name>]: what one function sets differently from [function]. A key left
    out keeps [function]'s value; `environment` adds to (and wins over) [function]'s.
    `url` and `vpc` are the function's own (there is no [function.url] or [function.vpc])."""

    memory: _Memory | None = None
    timeout: _Timeout | None = None
    architecture: _Architecture | None = None
    environment: _Environment = Field(default_factory=dict)
    keep_versions: _KeepVersions | None = None
    snapstart: bool | None = None
    url: UrlConfig | None = None
    vpc: VpcConfig | None = None


def _known_function(name: str) -> str:
    known = [fn.name for fn in FUNCTIONS]
    if name not in known:
        raise ValueError(f"there is no function {name!r} (the functions are {', '.join(known)})")
    return name


# A [functions] key: the name of a function in the catalog (scarab.functions.FUNCTIONS).
_FunctionName = Annotated[str, AfterValidator(_known_function)]


class ApiConfig(_Strict):
    throttle_rate: float = Field(10.0, gt=0, description="steady requests per second")
    throttle_burst: int = Field(20, ge=1)
    quota_limit: int = Field(1000, ge=1)
    quota_period: Literal["DAY", "WEEK", "MONTH"] = "DAY"


class SecretsConfig(_Strict):
    backend: Literal["ssm", "secretsmanager"] = "ssm"
    # {app} and {stage} are filled in; an SSM name must start with '/'.
    gemini_api_key: str = "/scarab/{app}/{stage}/gemini-api-key"

    @model_validator(mode="after")
    def _secret_name(self) -> SecretsConfig:
        problem = secret_name_problem(self.gemini_api_key, self.backend)
        if problem:
            raise ValueError(problem)
        return self


# Characters each store allows in a name (placeholders filled in first).
_SSM_NAME_RE = re.compile(r"^/[A-Za-z0-9_.\-/]{1,1000}$")
_SM_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,500}$")
# Prefixes of well-known API keys and tokens: a key pasted where its *name* belongs.
_KEY_PREFIXES = ("AIza", "sk-", "ghp_", "github_pat_", "xox", "AKIA", "ASIA")


def secret_looking(name: str, value: str) -> bool:
    """True when an environment variable looks like it holds a secret: by its name, by
    credentials inside a URL, or by a well-known key prefix. Displays redact such values
    (a live function may carry variables scarab refused in the config, set by hand)."""
    return (
        _looks_secret(name)
        or bool(_URL_CREDENTIALS_RE.search(value))
        or value.strip().startswith(_KEY_PREFIXES)
    )


def secret_name_problem(template: str, backend: str) -> str | None:
    """Why `template` cannot name the Gemini key in `backend`, or None. Never quotes the
    value: a pasted key must not end up in the error."""
    fields = set()
    try:
        for _, field_name, spec, conv in string.Formatter().parse(template):
            if field_name is not None:
                fields.add(field_name)
                if spec or conv:
                    return "placeholders take no format spec or conversion: use {app} or {stage}"
    except ValueError:
        return "it has an unbalanced '{' or '}'; the only placeholders are {app} and {stage}"
    if fields - {"app", "stage"}:
        return "the only placeholders are {app} and {stage}"
    name = template.format(app="app", stage="stage")
    if name.startswith("arn:"):
        return (
            "give the parameter or secret's name (e.g. /scarab/{app}/{stage}/gemini-api-key),"
            " not its ARN"
        )
    if name.lstrip("/").startswith(_KEY_PREFIXES) or (len(name) >= 30 and "/" not in name):
        return (
            "this looks like an API key, not the name of the place to store it; put the"
            " key in with 'scarab secrets set gemini-api-key --from-env VAR' and keep the"
            " name (default /scarab/{app}/{stage}/gemini-api-key) here"
        )
    if backend == "ssm":
        if not _SSM_NAME_RE.match(name):
            return "an SSM parameter name starts with '/' and uses only letters, digits and _ . - /"
        if name.lstrip("/").lower().startswith(("aws", "ssm")):
            return "an SSM parameter name may not start with 'aws' or 'ssm'"
        if name.count("/") > 15:
            return "an SSM parameter name has at most 15 levels"
    elif not _SM_NAME_RE.match(name):
        return "a Secrets Manager name uses only letters, digits and / _ + = . @ -"
    return None


class ImagesConfig(_Strict):
    keep_last: int = Field(10, ge=1, le=1000, description="ECR images kept by the lifecycle rule")


class LockConfig(_Strict):
    # A stage lock older than this is stale (its command crashed) and is taken over.
    timeout_minutes: int = Field(15, ge=1, le=24 * 60)


class LogConfig(_Strict):
    """[log]: the prediction log (one row per /analyze, /predict and /forecast answer).

    In AWS the log is on when `enabled` and the stage's `prediction-db-url` secret is
    stored (scarab secrets set prediction-db-url --stdin); the URL itself is never in
    scarab.toml. `scarab serve` logs to .scarab/local/predictions.db whenever `enabled`.
    """

    enabled: bool = True
    # Keep each request's input (the image, the features) in the row, not only its digest.
    store_inputs: bool = False


# The prediction log's database URL: a secret, stored like the Gemini key in [secrets]
# backend under this name ({app} and {stage} filled in).
PREDICTION_DB_SECRET = "prediction-db-url"  # noqa: S105 (a name, not a value)
PREDICTION_DB_NAME = "/scarab/{app}/{stage}/prediction-db-url"


def prediction_db_secret_name(app: str, stage: str) -> str:
    """Where the stage's prediction log URL is stored (SSM parameter or secret name)."""
    return PREDICTION_DB_NAME.format(app=app, stage=stage)


class CacheConfig(_Strict):
    """[cache]: the response cache of /analyze, /predict and /forecast."""

    # Seconds an answer is reused; 0 turns the cache off (no table, no X-Cache).
    ttl_seconds: int = Field(300, ge=0, le=86400)
    # Every container shares answers through the stage's table `<app>-<stage>-cache`;
    # false keeps them in each container's memory only.
    shared: bool = True


class UploadsConfig(_Strict):
    """[uploads]: presigned S3 uploads to the stage's uploads bucket (POST /uploads)."""

    # Types as written: `max_mb = true` or `"50"` is an error, not 1 or 50.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # The largest object a presigned POST accepts (its content-length-range), in MiB.
    max_mb: int = Field(50, ge=1, le=5000, description="MiB")


class JobsConfig(_Strict):
    """[jobs]: asynchronous jobs (POST /jobs) run by the analyze function invoking itself."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # How long a job's record (and its idempotency record) is kept: DynamoDB's TTL.
    ttl_hours: int = Field(24, ge=1, le=720)
    # Lambda's retries of a failed asynchronous run (EventInvokeConfig; Lambda allows 0-2)
    # before the event goes to the dead-letter queue and the job ends failed.
    retries: int = Field(2, ge=0, le=2)


# An address SNS and AWS Budgets can mail: one name@domain, no display name or list.
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_EMAIL_MAX = 254
# API Gateway ends an integration after 29 seconds: the default latency alarm is 80% of
# the shorter of that and the longest function timeout.
API_INTEGRATION_TIMEOUT_MS = 29_000
# The share of a limit an alarm fires at by default (duration and latency p99).
DEFAULT_ALARM_SHARE = 0.8
# AWS Budgets takes at most 10 notifications a budget; each threshold has two (ACTUAL
# and FORECASTED).
_MAX_BUDGET_THRESHOLDS = 5


def _check_email(value: str) -> str:
    if len(value) > _EMAIL_MAX or not _EMAIL_RE.match(value):
        raise ValueError(
            "not an email address; give one address such as ops@example.com (no name, no list)"
        )
    return value


_Email = Annotated[str, AfterValidator(_check_email)]


def _check_thresholds(value: list[int]) -> list[int]:
    if not value:
        raise ValueError("give at least one threshold (percent of monthly_usd), e.g. [80, 100]")
    if len(value) > _MAX_BUDGET_THRESHOLDS:
        raise ValueError(
            f"AWS Budgets takes {_MAX_BUDGET_THRESHOLDS * 2} notifications a budget (an actual"
            f" and a forecasted one per threshold): give at most {_MAX_BUDGET_THRESHOLDS}"
        )
    if value != sorted(set(value)):
        raise ValueError("list the thresholds in increasing order, each once, e.g. [50, 80, 100]")
    return value


class AlarmsConfig(_Strict):
    """[alarms]: CloudWatch alarms on each function (through its `live` alias) and on the
    API stage, notifying the SNS topic `<app>-<stage>-alarms` (mailed to `email`)."""

    enabled: bool = True
    email: _Email | None = None
    # Standard-resolution metrics (Lambda's, API Gateway's): a period is whole minutes.
    period_seconds: int = Field(60, ge=60, le=86400, multiple_of=60)
    evaluation_periods: int = Field(1, ge=1, le=1440)
    errors: int = Field(1, ge=1, description="function errors a period that alarm")
    throttles: int = Field(1, ge=1, description="throttled invocations a period that alarm")
    # Default: 80% of each function's timeout.
    duration_p99_ms: int | None = Field(None, ge=1, le=900_000)
    api_5xx_rate: float = Field(5.0, gt=0, le=100, description="percent of requests")
    # Default: 80% of the shorter of API Gateway's 29 s and the longest function timeout.
    api_latency_p99_ms: int | None = Field(None, ge=1, le=API_INTEGRATION_TIMEOUT_MS)

    @model_validator(mode="after")
    def _window(self) -> AlarmsConfig:
        if self.period_seconds * self.evaluation_periods > 86400:
            raise ValueError(
                "period_seconds x evaluation_periods is over one day, the longest window"
                " CloudWatch evaluates; lower one of them"
            )
        return self


class BudgetConfig(_Strict):
    """[budget]: an AWS Budgets cost budget on this stage's cost-allocation tags, mailing
    `email` (or [alarms] email) when actual or forecasted spend passes each threshold."""

    monthly_usd: float = Field(gt=0, le=1_000_000_000)
    email: _Email | None = None
    thresholds: Annotated[
        list[Annotated[int, Field(ge=1, le=1000)]], AfterValidator(_check_thresholds)
    ] = Field(default_factory=lambda: [50, 80, 100])


class ScarabConfig(_Strict):
    app: str = "scarab"
    region: str | None = None
    stage: str = "dev"
    function: FunctionConfig = Field(default_factory=FunctionConfig)
    functions: dict[_FunctionName, FunctionOverride] = Field(default_factory=dict)
    api: ApiConfig = Field(default_factory=ApiConfig)  # type: ignore[arg-type]
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)  # type: ignore[arg-type]
    lock: LockConfig = Field(default_factory=LockConfig)  # type: ignore[arg-type]
    log: LogConfig = Field(default_factory=LogConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)  # type: ignore[arg-type]
    uploads: UploadsConfig = Field(default_factory=UploadsConfig)  # type: ignore[arg-type]
    jobs: JobsConfig = Field(default_factory=JobsConfig)  # type: ignore[arg-type]
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)  # type: ignore[arg-type]
    budget: BudgetConfig | None = None
    sagemaker: SageMakerConfig = Field(default_factory=SageMakerConfig)  # type: ignore[arg-type]
    fargate: FargateConfig = Field(default_factory=FargateConfig)  # type: ignore[arg-type]

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

    @model_validator(mode="after")
    def _name_lengths(self) -> ScarabConfig:
        problem = name_length_problem(self.app, self.stage, self.region)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _one_image_architecture(self) -> ScarabConfig:
        # Both functions run the stage's one image: it is built for one platform.
        if self.function.package == "image":
            for name, override in sorted(self.functions.items()):
                if override.architecture not in (None, self.function.architecture):
                    raise ValueError(
                        f"[functions.{name}] architecture = {override.architecture!r}, but"
                        ' with package = "image" both functions run one image, built for'
                        f" [function] architecture = {self.function.architecture!r}: set the"
                        " architecture in [function] instead"
                    )
        return self

    @model_validator(mode="after")
    def _snapstart_supported(self) -> ScarabConfig:
        problem = snapstart_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _alarm_limits(self) -> ScarabConfig:
        limit = self.alarms.duration_p99_ms
        if limit is not None:
            for fn in FUNCTIONS:
                timeout = self.function_config(fn.name).timeout
                if limit > timeout * 1000:
                    raise ValueError(
                        f"[alarms] duration_p99_ms = {limit} is above the {fn.name} function's"
                        f" timeout ({timeout} s = {timeout * 1000} ms): that alarm could never"
                        " fire. Lower it, or leave it out (default: 80% of each timeout)"
                    )
        if self.budget is not None and (self.budget.email or self.alarms.email) is None:
            raise ValueError(
                "[budget] needs an email to notify: set [budget] email (or [alarms] email)"
            )
        return self

    @property
    def budget_email(self) -> str | None:
        """Where the budget's notifications go: [budget] email, else [alarms] email."""
        if self.budget is None:
            return None
        return self.budget.email or self.alarms.email

    def duration_alarm_ms(self, name: str) -> int:
        """The duration p99 threshold of function `name`: [alarms] duration_p99_ms, or 80%
        of its timeout."""
        if self.alarms.duration_p99_ms is not None:
            return self.alarms.duration_p99_ms
        try:
            timeout = self.function_config(name).timeout
        except UnknownFunctionError:  # the pre-split single function: [function]'s
            timeout = self.function.timeout
        return int(timeout * 1000 * DEFAULT_ALARM_SHARE)

    def latency_alarm_ms(self) -> int:
        """The API latency p99 threshold: [alarms] api_latency_p99_ms, or 80% of the shorter
        of API Gateway's integration timeout and the longest function timeout."""
        if self.alarms.api_latency_p99_ms is not None:
            return self.alarms.api_latency_p99_ms
        longest = max(self.function_config(fn.name).timeout for fn in FUNCTIONS) * 1000
        return int(min(longest, API_INTEGRATION_TIMEOUT_MS) * DEFAULT_ALARM_SHARE)

    @property
    def configured_region(self) -> str | None:
        """The region from --region, scarab.toml or AWS_REGION / AWS_DEFAULT_REGION; None
        when none of them sets it (then the profile's region, see scarab.aws.Aws)."""
        return (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or None
        )

    @property
    def resolved_region(self) -> str:
        """The region on an emulator (scarab serve, --local), where any region will do."""
        return self.configured_region or "us-east-1"

    @property
    def secret_name(self) -> str:
        return self.secrets.gemini_api_key.format(app=self.app, stage=self.stage)

    def function_config(self, name: str) -> FunctionConfig:
        """The effective settings of the catalog function `name`: [function] with
        [functions.<name>]'s keys applied, its environment merged over [function]'s
        (the override wins per variable). ConfigError (a KeyError too) for a name that
        is not in scarab.functions.FUNCTIONS."""
        try:
            _known_function(name)
        except ValueError as exc:
            raise UnknownFunctionError(f"{exc}.") from None
        override = self.functions.get(name)
        if override is None:
            return self.function
        update: dict[str, Any] = {
            key: getattr(override, key)
            for key in override.model_fields_set
            if key not in ("url", "vpc") and getattr(override, key) is not None
        }
        update["environment"] = {**self.function.environment, **override.environment}
        return self.function.model_copy(update=update)

    def function_url(self, name: str) -> UrlConfig | None:
        """The Function URL of the catalog function `name` ([functions.<name>.url])."""
        override = self.functions.get(name)
        return override.url if override else None

    def function_vpc(self, name: str) -> VpcConfig | None:
        """The VPC the catalog function `name` runs in ([functions.<name>.vpc])."""
        override = self.functions.get(name)
        return override.vpc if override else None


class UnknownFunctionError(ConfigError, KeyError):
    """function_config() was asked for a function the catalog does not have."""

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0]) if self.args else ""


# The first Python runtime Lambda SnapStart supports.
SNAPSTART_MIN_RUNTIME = (3, 12)


def _runtime_version(runtime: str) -> tuple[int, int]:
    major, _, minor = runtime.removeprefix("python").partition(".")
    return int(major), int(minor)


def snapstart_problem(config: ScarabConfig) -> str | None:
    """Why the functions that ask for SnapStart cannot have it, or None. SnapStart is
    for zip packages on python3.12 and newer (provisioned concurrency, which scarab does
    not configure, is refused by the deploy when it finds some on the function)."""
    wanted = [fn.name for fn in FUNCTIONS if config.function_config(fn.name).snapstart]
    if not wanted:
        return None
    where = (
        "[function] snapstart = true"
        if config.function.snapstart
        else " and ".join(f"[functions.{name}] snapstart = true" for name in wanted)
    )
    if config.function.package == "image":
        return (
            f"{where}, but Lambda SnapStart works only for zip packages, not container"
            ' images: set [function] package = "zip", or remove snapstart'
        )
    runtime = config.function.runtime
    if _runtime_version(runtime) < SNAPSTART_MIN_RUNTIME:
        least = "python{}.{}".format(*SNAPSTART_MIN_RUNTIME)
        return (
            f"{where}, but Lambda SnapStart for Python needs {least} or newer and"
            f' [function] runtime = "{runtime}": set runtime = "{least}" (or newer), or'
            " remove snapstart"
        )
    return None


def name_length_problem(app: str, stage: str, region: str | None) -> str | None:
    """Why AWS would refuse the names built from `app` and `stage` (see scarab.naming),
    or None: the stage's function, API and role, and each catalog function's
    `<app>-<stage>-<name>` and role `<app>-<stage>-<name>-role`. `region` None: the
    bucket name is not checked (the deploy does)."""
    base = f"{app}-{stage}"
    over: list[str] = []
    if len(base) > _LAMBDA_NAME_MAX:
        over.append(f"the function and API name {base!r} ({len(base)} characters; Lambda allows"
                    f" {_LAMBDA_NAME_MAX})")  # fmt: skip
    role = f"{base}-role"
    if len(role) > _IAM_ROLE_MAX:
        over.append(f"the IAM role name {role!r} ({len(role)} characters; IAM allows"
                    f" {_IAM_ROLE_MAX})")  # fmt: skip
    # Each catalog function's own names; the longest stands for all (fixing it fixes them).
    longest = max((fn.name for fn in FUNCTIONS), key=len)
    function = f"{base}-{longest}"
    if len(function) > _LAMBDA_NAME_MAX:
        over.append(f"the function name {function!r} ({len(function)} characters; Lambda"
                    f" allows {_LAMBDA_NAME_MAX})")  # fmt: skip
    function_role = f"{function}-role"
    if len(function_role) > _IAM_ROLE_MAX:
        over.append(f"the IAM role name {function_role!r} ({len(function_role)} characters;"
                    f" IAM allows {_IAM_ROLE_MAX})")  # fmt: skip
    # <app>-artifacts-<account>-<region>: the S3 bucket a zip over 50 MB is uploaded through.
    # Not known until the run when no region is configured: the deploy checks it then.
    app_max = _S3_BUCKET_MAX - len("-artifacts-") - _ACCOUNT_ID_LEN - 1 - len(region or "")
    if region and len(app) > app_max:
        over.append(
            f"the artifact bucket name {app}-artifacts-<account id>-{region}"
            f" ({len(app) + _S3_BUCKET_MAX - app_max} characters; S3 allows {_S3_BUCKET_MAX})"
        )
    # <app>-<stage>-models-<account>-<region>: the bucket of the stage's model artifacts.
    models_len = len(f"{base}-models-") + _ACCOUNT_ID_LEN + 1 + len(region or "")
    if region and models_len > _S3_BUCKET_MAX:
        over.append(
            f"the model artifacts bucket name {base}-models-<account id>-{region}"
            f" ({models_len} characters; S3 allows {_S3_BUCKET_MAX})"
        )
    # <app>-<stage>-uploads-<account>-<region>: the bucket presigned uploads go to.
    uploads_len = len(f"{base}-uploads-") + _ACCOUNT_ID_LEN + 1 + len(region or "")
    if region and uploads_len > _S3_BUCKET_MAX:
        over.append(
            f"the uploads bucket name {base}-uploads-<account id>-{region}"
            f" ({uploads_len} characters; S3 allows {_S3_BUCKET_MAX})"
        )
    if not over:
        return None
    return (
        f"app {app!r} and stage {stage!r} are too long for AWS: {'; '.join(over)}."
        " Shorten app or stage"
    )


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
    """The keys allowed in the table holding `loc`'s last key. A dict-of-tables field
    ([functions.<name>]) takes any key, so the next part of `loc` is a name, skipped."""
    current: type[BaseModel] = model
    parts = iter(loc[:-1])
    for part in parts:
        field = current.model_fields.get(str(part))
        ann = field.annotation if field else None
        if get_origin(ann) is dict:
            ann = get_args(ann)[1]
            if next(parts, None) is None:
                return []
        # An optional table (`url: UrlConfig | None`): the table's own keys.
        models = [a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if models and not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            ann = models[0]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            current = ann
        else:
            return []
    return sorted(current.model_fields)


def _explain(exc: ValidationError, source: str) -> ConfigError:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # A bad table name ([functions.<name>]) is reported at its key: drop pydantic's marker.
        key = ".".join(str(p) for p in (loc[:-1] if loc[-1:] == ("[key]",) else loc))
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_field_names(ScarabConfig, loc))
            lines.append(f"{source}: unknown key '{key}'; allowed keys here: {allowed}.")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            if not loc:  # a check across keys (name lengths): the message names them
                lines.append(f"{source}: {msg}.")
            elif _sensitive(loc):
                lines.append(f"{source}: '{key}': {msg} (value not shown).")
            else:
                lines.append(f"{source}: '{key}': {msg} (got {err.get('input')!r}).")
    return ConfigError("\n".join(lines))


def _sensitive(loc: tuple[str | int, ...]) -> bool:
    """True when the input at `loc` is or contains a value that may be a secret: `loc` is
    inside a sensitive location, or a table/array above one ([[function]] for [function]).
    Comparing the common prefix covers both; None in a location matches any key."""
    return any(
        all(want is None or want == part for want, part in zip(s, loc, strict=False))
        for s in _SENSITIVE_LOCS
    )


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
