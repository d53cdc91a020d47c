"""Desired resources as data: what a stage should look like, computed from scarab.toml.

Nothing here talks to AWS; the planner compares these against what the reader found.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from scarab.artifacts.zip import LAMBDA_ZIP_LIMIT
from scarab.config import (
    FunctionConfig,
    ScarabConfig,
    UrlConfig,
    VpcConfig,
    prediction_db_secret_name,
)
from scarab.deploy import routes as routes_mod
from scarab.deploy.alarms import BudgetSpec, StageAlarms, budget_spec, stage_alarms
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.functions import ALL_ROUTES_NAME, FUNCTIONS, FunctionDef, get_function
from scarab.naming import TAG_MANAGED_ENV, FunctionNames, Names

# Attached by earlier scarab versions (logs writes on "*"); now detached on redeploy and
# replaced by an inline policy scoped to the function's own log group.
BASIC_EXECUTION_POLICY = "arn:{partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# Request bodies of these types reach the function base64-encoded and intact (API Gateway
# hands anything else over as UTF-8 text); JSON stays text. The image types are the ones
# lens accepts for a raw upload.
BINARY_MEDIA_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "application/octet-stream",
)
# The environment variables that tell the function where its Gemini key is stored.
# The OPTIONS preflight is a MOCK integration: this request template makes it answer 200.
PREFLIGHT_REQUEST_TEMPLATES = {"application/json": '{"statusCode": 200}'}
KEY_PARAM_ENV = "GOOGLE_API_KEY_PARAM"
KEY_BACKEND_ENV = "GOOGLE_API_KEY_BACKEND"
# Where the models function finds the stage's model registry (contract with lens.predict).
REGISTRY_TABLE_ENV = "MODEL_REGISTRY_TABLE"
ARTIFACTS_BUCKET_ENV = "ARTIFACTS_BUCKET"
# A registry version item's `host` naming the SageMaker endpoint that answers for it
# (contract with lens.predict.registry.SAGEMAKER_HOST).
SAGEMAKER_HOST = "sagemaker:"
# The endpoint names SageMaker's CreateEndpoint accepts (contract with
# lens.predict.registry.ENDPOINT_NAME_PATTERN): only these become IAM resources.
ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# The response cache's settings (contract with lens.settings, which reads them).
CACHE_TTL_ENV = "SCARAB_CACHE_TTL_S"
CACHE_TABLE_ENV = "SCARAB_CACHE_TABLE"
# Set (to "1") on a function with SnapStart on: lens does its expensive work in init
# and registers its after-restore hooks (contract with lens.snapstart).
SNAPSTART_ENV = "SCARAB_SNAPSTART"
# The cache table's TTL attribute: epoch seconds (contract with lens.cache.shared).
CACHE_TTL_ATTRIBUTE = "expires_at"
# The sort key of a model's aliases item: after every version (contract with lens).
ALIASES_VERSION = "~aliases"
# The statement that lets anyone call a Function URL with auth NONE (Lambda requires it).
URL_PERMISSION_SID = "scarab-function-url"
URL_INVOKE_ACTION = "lambda:InvokeFunctionUrl"


def api_methods() -> str:
    """Every method the API answers (the gateway responses' CORS header), from the routes."""
    return ",".join([*sorted({r.method for r in routes_mod.ROUTES}), "OPTIONS"])


def ecr_lifecycle(keep: int) -> dict[str, Any]:
    """An image repository's lifecycle rule: keep the last `keep` images."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"keep the last {keep} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": keep,
                },
                "action": {"type": "expire"},
            }
        ]
    }


@dataclass(frozen=True)
class Code:
    """The function's code: a zip (by digest) or an image (by content tag)."""

    package: str  # "zip" | "image"
    zip_path: str | None = None
    zip_sha256_b64: str | None = None  # Lambda's CodeSha256
    zip_size: int = 0
    image_tag: str | None = None
    image_repository: str | None = None
    local_image_ref: str | None = None

    @property
    def via_s3(self) -> bool:
        """A zip over Lambda's direct-upload limit goes through the artifact bucket."""
        return self.package == "zip" and self.zip_size > LAMBDA_ZIP_LIMIT


@dataclass(frozen=True)
class UrlSpec:
    """A function's Lambda Function URL: its auth type and its CORS, in Lambda's shape
    (every key given, empty when [functions.<name>.url] has no cors table)."""

    auth: str  # "AWS_IAM" | "NONE"
    cors: dict[str, Any]

    @property
    def public(self) -> bool:
        """Anyone may call it: it needs the resource-based permission for Principal '*'."""
        return self.auth == "NONE"

    @property
    def has_cors(self) -> bool:
        return bool(self.cors.get("AllowOrigins"))


def normalized_cors(cors: dict[str, Any] | None) -> dict[str, Any]:
    """`cors` as compared for drift: every key, lists sorted, header names lower-case
    (Lambda treats them case-insensitively), no CORS at all the same as empty CORS."""
    cors = cors or {}
    return {
        "AllowCredentials": bool(cors.get("AllowCredentials", False)),
        "AllowHeaders": sorted({str(h).lower() for h in cors.get("AllowHeaders") or []}),
        "AllowMethods": sorted({str(m).upper() for m in cors.get("AllowMethods") or []}),
        "AllowOrigins": sorted(str(o) for o in cors.get("AllowOrigins") or []),
        "ExposeHeaders": sorted({str(h).lower() for h in cors.get("ExposeHeaders") or []}),
        "MaxAge": int(cors.get("MaxAge") or 0),
    }


def url_spec(url: UrlConfig | None) -> UrlSpec | None:
    """The Function URL [functions.<name>.url] describes (None: the function has none)."""
    if url is None:
        return None
    cors: dict[str, Any] = normalized_cors(None)
    if url.cors is not None:
        cors = {
            "AllowCredentials": False,
            "AllowHeaders": list(url.cors.allow_headers),
            "AllowMethods": list(url.cors.allow_methods),
            "AllowOrigins": list(url.cors.allow_origins),
            "ExposeHeaders": [],
            "MaxAge": url.cors.max_age,
        }
    return UrlSpec(auth=url.auth, cors=cors)


@dataclass(frozen=True)
class VpcSpec:
    """The VPC a function runs in: Lambda's VpcConfig (sorted, so order is no drift)."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]

    def as_params(self) -> dict[str, list[str]]:
        return {
            "SubnetIds": list(self.subnet_ids),
            "SecurityGroupIds": list(self.security_group_ids),
        }


# A VpcConfig that takes the function out of its VPC (Lambda's way: empty lists).
NO_VPC: dict[str, list[str]] = {"SubnetIds": [], "SecurityGroupIds": []}


def vpc_spec(vpc: VpcConfig | None) -> VpcSpec | None:
    """The VpcConfig [functions.<name>.vpc] describes (None: the function has no VPC)."""
    if vpc is None:
        return None
    return VpcSpec(tuple(sorted(vpc.subnet_ids)), tuple(sorted(vpc.security_group_ids)))


def live_vpc(config: dict[str, Any]) -> VpcSpec | None:
    """The VPC a live function (GetFunction's Configuration) is attached to, if any
    (a function outside any VPC has no VpcConfig, or one with empty lists)."""
    vpc = config.get("VpcConfig") or {}
    subnets = tuple(sorted(vpc.get("SubnetIds") or []))
    groups = tuple(sorted(vpc.get("SecurityGroupIds") or []))
    return VpcSpec(subnets, groups) if subnets or groups else None


# What Lambda does with a VPC function's role: create, describe and delete the network
# interfaces it attaches in the function's subnets, and move their private addresses.
# Exactly the EC2 actions of AWS's managed AWSLambdaVPCAccessExecutionRole (v3, 2024;
# its logs actions are in scarab's own logs policy, scoped to the function's group).
VPC_ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def vpc_policy() -> dict[str, Any]:
    """The inline policy a VPC function's role needs for its network interfaces."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ManageVpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": list(VPC_ENI_ACTIONS),
                # "*" is required: EC2 supports no resource-level permissions for the
                # Describe actions, and Lambda creates the interfaces before their ARNs
                # exist (AWS's managed policy grants them on "*" as well).
                "Resource": "*",
            }
        ],
    }


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function with what is its own: its role (and the role's inline
    policies), its log group and its invoke permission."""

    key: str  # the catalog name (scarab.functions): analyze, models
    name: str
    arn: str
    runtime: str
    handler: str
    memory: int
    timeout: int
    architecture: str
    environment: dict[str, str]
    tags: dict[str, str]
    code: Code
    description: str
    role_name: str
    role_arn: str
    inline_policies: dict[str, dict[str, Any]]  # policy name -> document
    log_group: str
    log_retention_days: int
    # Its Lambda Function URL ([functions.<name>.url]); None: it has none.
    url: UrlSpec | None = None
    # The VPC it runs in ([functions.<name>.vpc]); None: no VPC.
    vpc: VpcSpec | None = None
    # Published versions kept ([function] keep_versions, per function overridable).
    keep_versions: int = 10
    # Lambda SnapStart on published versions ([function] / [functions.<name>] snapstart).
    snapstart: bool = False
    # The SQS queue Lambda sends a failed asynchronous event to (the jobs' function).
    dead_letter_arn: str | None = None

    @property
    def alias_arn(self) -> str:
        """The `live` alias's ARN: what the API and the Function URL invoke."""
        return f"{self.arn}:{LIVE_ALIAS}"

    @property
    def names(self) -> FunctionNames:
        return FunctionNames(self.key, self.name, self.role_name)


@dataclass(frozen=True)
class MethodSpec:
    path: str
    http_method: str
    api_key_required: bool
    kind: str  # "proxy" | "preflight"
    # The Lambda integration of a proxy method: the function that serves the route.
    integration_uri: str = ""
    function_arn: str = ""


@dataclass(frozen=True)
class ApiSpec:
    name: str
    methods: tuple[MethodSpec, ...]
    resource_paths: tuple[str, ...]
    cors_origin: str  # mapping expression for Access-Control-Allow-Origin
    preflight_template: str
    allow_methods: dict[str, str]
    tags: dict[str, str]
    binary_media_types: tuple[str, ...] = BINARY_MEDIA_TYPES
    gateway_response_types: tuple[str, ...] = routes_mod.GATEWAY_RESPONSE_TYPES

    def preflight_parameters(self, path: str) -> dict[str, str]:
        params = {
            "method.response.header.Access-Control-Allow-Headers": (
                f"'{routes_mod.CORS_ALLOW_HEADERS}'"
            ),
            "method.response.header.Access-Control-Allow-Methods": (
                f"'{self.allow_methods[path]}'"
            ),
        }
        if self.cors_origin.startswith("'"):
            params["method.response.header.Access-Control-Allow-Origin"] = self.cors_origin
        return params

    def gateway_parameters(self) -> dict[str, str]:
        return {
            "gatewayresponse.header.Access-Control-Allow-Origin": self.cors_origin,
            "gatewayresponse.header.Access-Control-Allow-Headers": (
                f"'{routes_mod.CORS_ALLOW_HEADERS}'"
            ),
            "gatewayresponse.header.Access-Control-Allow-Methods": (f"'{api_methods()}'"),
        }

    @property
    def fingerprint(self) -> str:
        """Changes whenever the API definition does; stored as the deployment description."""
        data = {
            "methods": [m.__dict__ for m in self.methods],
            "cors": self.cors_origin,
            "template": self.preflight_template,
            "allow": self.allow_methods,
            "binary": sorted(self.binary_media_types),
        }
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        return f"scarab:{digest[:24]}"


@dataclass(frozen=True)
class SeedModel:
    """A packaged model put into the registry on deploy: its version item (DynamoDB
    attribute values) and its files, each (path, sha256, size, key in the bucket)."""

    name: str
    version: str
    item: dict[str, Any]
    files: tuple[tuple[str, str, int, str], ...]


@dataclass(frozen=True)
class RegistrySpec:
    """The stage's model registry: a DynamoDB table and a versioned, private, encrypted
    bucket for the artifacts; `seeds` are the packaged models."""

    table: str
    table_arn: str
    bucket: str
    bucket_arn: str
    tags: dict[str, str]
    seeds: tuple[SeedModel, ...] = ()

    @property
    def environment(self) -> dict[str, str]:
        return {REGISTRY_TABLE_ENV: self.table, ARTIFACTS_BUCKET_ENV: self.bucket}


def registry_policy(registry: RegistrySpec) -> dict[str, Any]:
    """An inline policy that reads exactly the registry table and the artifacts in its
    bucket (models/ and data/), and nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadRegistry",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"],
                "Resource": registry.table_arn,
            },
            {
                "Sid": "ReadArtifacts",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [f"{registry.bucket_arn}/models/*", f"{registry.bucket_arn}/data/*"],
            },
        ],
    }


def hosted_endpoint(host: object) -> str | None:
    """The endpoint a registry item's `host` names, or None: not hosted, or not a name
    SageMaker could give an endpoint (a wildcard or a path must never reach a policy's
    Resource, where `endpoint/*` would grant every endpoint in the account)."""
    if not isinstance(host, str) or not host.startswith(SAGEMAKER_HOST):
        return None
    endpoint = host.removeprefix(SAGEMAKER_HOST)
    return endpoint if ENDPOINT_NAME.fullmatch(endpoint) else None


def invoke_endpoints_policy(
    endpoints: Iterable[str], region: str, account_id: str, partition: str
) -> dict[str, Any]:
    """An inline policy that invokes exactly these SageMaker endpoints. SageMaker writes
    the names in its ARNs in lower case; both spellings are listed when they differ."""
    names = sorted({n for e in endpoints for n in (e, e.lower())})
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeHostingEndpoints",
                "Effect": "Allow",
                "Action": "sagemaker:InvokeEndpoint",
                "Resource": [
                    f"arn:{partition}:sagemaker:{region}:{account_id}:endpoint/{n}" for n in names
                ],
            }
        ],
    }


def with_hosted_endpoints(desired: Desired, endpoints: Iterable[str]) -> Desired:
    """`desired` with the registry-reading functions' roles allowed to invoke the
    SageMaker endpoints the registry's versions are hosted on (known only once the
    registry table is read; none: no such policy, and a stale one is deleted)."""
    hosted = sorted(set(endpoints))
    if not hosted or desired.registry is None:
        return desired
    policy = invoke_endpoints_policy(hosted, desired.region, desired.account_id, desired.partition)
    name = desired.names.invoke_endpoints_policy
    functions = tuple(
        replace(fn, inline_policies={**fn.inline_policies, name: policy})
        if get_function(fn.key).reads_registry
        else fn
        for fn in desired.functions
    )
    return replace(desired, functions=functions)


def registry_spec(
    names: Names, *, account_id: str, region: str, partition: str, seeds: tuple[SeedModel, ...]
) -> RegistrySpec:
    table = names.registry_table
    bucket = names.models_bucket(account_id, region)
    return RegistrySpec(
        table=table,
        table_arn=f"arn:{partition}:dynamodb:{region}:{account_id}:table/{table}",
        bucket=bucket,
        bucket_arn=f"arn:{partition}:s3:::{bucket}",
        tags=names.tags,
        seeds=seeds,
    )


@dataclass(frozen=True)
class CacheSpec:
    """The stage's shared response cache: a DynamoDB table whose items expire through
    DynamoDB's TTL on `ttl_attribute`."""

    table: str
    table_arn: str
    tags: dict[str, str]
    ttl_attribute: str = CACHE_TTL_ATTRIBUTE


def cache_spec(
    config: ScarabConfig, *, account_id: str, region: str, partition: str
) -> CacheSpec | None:
    """The shared cache table `[cache]` asks for (None: the cache is off or not shared)."""
    if config.cache.ttl_seconds == 0 or not config.cache.shared:
        return None
    names = Names(config.app, config.stage)
    table = names.cache_table
    return CacheSpec(
        table=table,
        table_arn=f"arn:{partition}:dynamodb:{region}:{account_id}:table/{table}",
        tags=names.tags,
    )


def cache_policy(cache: CacheSpec) -> dict[str, Any]:
    """An inline policy that reads and writes items of exactly the cache table."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UseResponseCache",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                "Resource": cache.table_arn,
            }
        ],
    }


def cache_environment(config: ScarabConfig) -> dict[str, str]:
    """The cache's variables on every function: its TTL, and the table when shared."""
    env = {CACHE_TTL_ENV: str(config.cache.ttl_seconds)}
    if config.cache.ttl_seconds > 0 and config.cache.shared:
        env[CACHE_TABLE_ENV] = Names(config.app, config.stage).cache_table
    return env


# Presigned uploads and jobs (contract with lens.settings, which reads these).
UPLOADS_BUCKET_ENV = "SCARAB_UPLOADS_BUCKET"
UPLOADS_MAX_BYTES_ENV = "SCARAB_UPLOADS_MAX_BYTES"
JOBS_TABLE_ENV = "SCARAB_JOBS_TABLE"
JOBS_TTL_ENV = "SCARAB_JOBS_TTL_S"
UPLOADS_PREFIX = "uploads/"
JOBS_KEY_ATTRIBUTE = "id"
JOBS_TTL_ATTRIBUTE = "expiration"
# Scarab's by name (config.DERIVED_ENV reserves them), so never listed in the managed-env
# tag: AWS caps a tag value at 256 characters, and the names already there come close.
UNTAGGED_ENV = frozenset({UPLOADS_BUCKET_ENV, UPLOADS_MAX_BYTES_ENV, JOBS_TABLE_ENV, JOBS_TTL_ENV})
MIB = 1024 * 1024
# A browser may cache the bucket's CORS preflight this long.
UPLOADS_CORS_MAX_AGE_S = 3600
# Leftover uploads (never analyzed, or a multipart upload never finished) go after a day.
UPLOADS_EXPIRE_DAYS = 1
UPLOADS_LIFECYCLE_ID = "scarab-expire-uploads"
# SQS's longest retention: a failed job's event waits there until the mapping marks it.
JOBS_DLQ_RETENTION_S = 14 * 86400
# An asynchronous job event older than this is not retried any more (it goes to the DLQ).
JOBS_MAX_EVENT_AGE_S = 3600
JOBS_BATCH_SIZE = 10
JOBS_RESPONSE_TYPES = ("ReportBatchItemFailures",)
# SQS's longest visibility timeout (12 hours).
_SQS_MAX_VISIBILITY_S = 43200


@dataclass(frozen=True)
class UploadsSpec:
    """The stage's uploads bucket: private, encrypted, owner-enforced, CORS for the
    stage's origins (POST only), objects under uploads/ expiring after a day."""

    bucket: str
    bucket_arn: str
    origins: tuple[str, ...]
    max_bytes: int
    tags: dict[str, str]

    @property
    def environment(self) -> dict[str, str]:
        return {UPLOADS_BUCKET_ENV: self.bucket, UPLOADS_MAX_BYTES_ENV: str(self.max_bytes)}

    @property
    def cors(self) -> dict[str, Any]:
        """The bucket's CORSConfiguration (S3's spelling): a browser POSTs the form. No
        rule without origins (S3 refuses a rule with no AllowedOrigin as MalformedXML):
        then only same-origin or non-browser clients upload."""
        if not self.origins:
            return {"CORSRules": []}
        return {
            "CORSRules": [
                {
                    "AllowedHeaders": ["*"],
                    "AllowedMethods": ["POST"],
                    "AllowedOrigins": list(self.origins),
                    "MaxAgeSeconds": UPLOADS_CORS_MAX_AGE_S,
                }
            ]
        }

    @property
    def lifecycle(self) -> dict[str, Any]:
        """The bucket's LifecycleConfiguration (S3's spelling)."""
        return {
            "Rules": [
                {
                    "ID": UPLOADS_LIFECYCLE_ID,
                    "Filter": {"Prefix": UPLOADS_PREFIX},
                    "Status": "Enabled",
                    "Expiration": {"Days": UPLOADS_EXPIRE_DAYS},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": UPLOADS_EXPIRE_DAYS},
                }
            ]
        }


def uploads_spec(
    config: ScarabConfig, *, account_id: str, region: str, partition: str
) -> UploadsSpec:
    names = Names(config.app, config.stage)
    bucket = names.uploads_bucket(account_id, region)
    return UploadsSpec(
        bucket=bucket,
        bucket_arn=f"arn:{partition}:s3:::{bucket}",
        origins=tuple(config.function.allowed_origins),
        max_bytes=config.uploads.max_mb * MIB,
        tags=names.tags,
    )


def uploads_policy(uploads: UploadsSpec) -> dict[str, Any]:
    """An inline policy that writes, reads and deletes objects under exactly the
    uploads bucket's uploads/ prefix (the presigned POST is signed with it)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UseUploads",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                "Resource": f"{uploads.bucket_arn}/{UPLOADS_PREFIX}*",
            }
        ],
    }


@dataclass(frozen=True)
class JobsSpec:
    """The stage's jobs: a DynamoDB table with DynamoDB's TTL on `expiration`, and the
    dead-letter queue of the job function's failed asynchronous runs, mapped back to it."""

    table: str
    table_arn: str
    queue: str
    queue_arn: str
    ttl_seconds: int
    retries: int
    # The function that runs them (the one serving POST /jobs) and its role's timeout.
    function_key: str
    visibility_timeout: int
    tags: dict[str, str]
    ttl_attribute: str = JOBS_TTL_ATTRIBUTE

    @property
    def environment(self) -> dict[str, str]:
        return {JOBS_TABLE_ENV: self.table, JOBS_TTL_ENV: str(self.ttl_seconds)}

    @property
    def queue_attributes(self) -> dict[str, str]:
        """The queue's attributes as SQS spells them (strings)."""
        return {
            "MessageRetentionPeriod": str(JOBS_DLQ_RETENTION_S),
            "VisibilityTimeout": str(self.visibility_timeout),
        }

    @property
    def invoke_config(self) -> dict[str, int]:
        """The EventInvokeConfig of the function's `live` alias (what it invokes itself
        through: context.invoked_function_arn names the alias the API invoked)."""
        return {
            "MaximumRetryAttempts": self.retries,
            "MaximumEventAgeInSeconds": JOBS_MAX_EVENT_AGE_S,
        }


def jobs_function(functions: Iterable[FunctionDef]) -> FunctionDef | None:
    """The function that serves POST /jobs (None: none of `functions` does)."""
    return next((f for f in functions if any(r.path == "/jobs" for r in f.routes)), None)


def serves_uploads(fn_def: FunctionDef) -> bool:
    """Whether `fn_def` reads uploads: it serves /analyze, /predict or /jobs."""
    paths = ("/analyze", "/predict/{model_id}", "/uploads", "/jobs")
    return any(r.path in paths for r in fn_def.routes)


def jobs_spec(
    config: ScarabConfig,
    fn_def: FunctionDef,
    *,
    account_id: str,
    region: str,
    partition: str,
) -> JobsSpec:
    names = Names(config.app, config.stage)
    timeout = function_settings(config, fn_def.name).timeout
    return JobsSpec(
        table=names.jobs_table,
        table_arn=f"arn:{partition}:dynamodb:{region}:{account_id}:table/{names.jobs_table}",
        queue=names.jobs_dlq,
        queue_arn=f"arn:{partition}:sqs:{region}:{account_id}:{names.jobs_dlq}",
        ttl_seconds=config.jobs.ttl_hours * 3600,
        retries=config.jobs.retries,
        function_key=fn_def.name,
        # AWS refuses an SQS mapping whose queue hides a message for less than the
        # function's timeout; six times it is AWS's advice (a batch may be retried).
        visibility_timeout=min(_SQS_MAX_VISIBILITY_S, max(30, 6 * timeout)),
        tags=names.tags,
    )


def jobs_policy(jobs: JobsSpec, function_arn: str) -> dict[str, Any]:
    """An inline policy for exactly the jobs table, the dead-letter queue (Lambda sends
    to it as the function's role; the mapping receives and deletes with it) and the
    function invoking itself (any qualifier: it invokes the ARN it was invoked by)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UseJobsTable",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                "Resource": jobs.table_arn,
            },
            {
                "Sid": "UseJobsDeadLetterQueue",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:SendMessage",
                ],
                "Resource": jobs.queue_arn,
            },
            {
                "Sid": "InvokeItselfForJobs",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": [function_arn, f"{function_arn}:*"],
            },
        ],
    }


@dataclass(frozen=True)
class UsagePlanSpec:
    name: str
    rate: float
    burst: int
    quota_limit: int
    quota_period: str
    first_key_name: str
    tags: dict[str, str]


@dataclass(frozen=True)
class Desired:
    """Everything one stage should be."""

    names: Names
    region: str
    account_id: str
    partition: str
    role_trust: dict[str, Any]
    managed_policy_arns: tuple[str, ...]
    # Managed policies scarab attached in the past and detaches when it finds them.
    retired_policy_arns: tuple[str, ...]
    functions: tuple[FunctionSpec, ...]
    api: ApiSpec
    usage_plan: UsagePlanSpec
    images_keep_last: int
    tags: dict[str, str] = field(default_factory=dict)
    # The functions of an older layout that this one replaces (the single function of a
    # stage deployed before the split): deleted once the API no longer routes to them.
    retired: tuple[FunctionNames, ...] = ()
    # The model registry, when a function serves it (the models function).
    registry: RegistrySpec | None = None
    # The shared response cache table ([cache] shared, with a TTL above 0).
    cache: CacheSpec | None = None
    # The uploads bucket, and the jobs' table and dead-letter queue (None: no function
    # of the stage serves POST /jobs).
    uploads: UploadsSpec | None = None
    jobs: JobsSpec | None = None
    # [alarms] (None: enabled = false) and [budget] (None: no [budget] table).
    alarms: StageAlarms | None = None
    budget: BudgetSpec | None = None

    def function(self, key: str) -> FunctionSpec:
        """The function called `key` in the catalog; KeyError if the stage has none."""
        for fn in self.functions:
            if fn.key == key:
                return fn
        raise KeyError(key)

    @property
    def code(self) -> Code:
        """The stage's package (zip or image): every function is packaged the same way."""
        return self.functions[0].code

    @property
    def ecr_lifecycle_policy(self) -> dict[str, Any]:
        """The image repository's lifecycle rule: keep the last `images_keep_last` images
        (deploy and export both put exactly this on the repository)."""
        return ecr_lifecycle(self.images_keep_last)

    def source_arn(self, rest_api_id: str) -> str:
        """What may invoke the function: this API's stage, any method, any path."""
        return (
            f"arn:{self.partition}:execute-api:{self.region}:{self.account_id}:"
            f"{rest_api_id}/{self.names.stage}/*/*"
        )


def function_settings(config: ScarabConfig, key: str) -> FunctionConfig:
    """Function `key`'s settings: [function] with its [functions.<key>] applied."""
    return config.function if key == ALL_ROUTES_NAME else config.function_config(key)


def function_environment(
    config: ScarabConfig, key: str = "analyze", *, log: bool = False
) -> dict[str, str]:
    """The environment scarab sets on function `key` (contract with lens). Only a
    function that calls Gemini gets the Gemini settings and the key's location; with
    `log` (the stage's prediction log is on) every function gets where its URL is."""
    fn = function_settings(config, key)
    env = dict(fn.environment)
    env.setdefault("POWERTOOLS_SERVICE_NAME", "scarab")
    env.setdefault("LOG_LEVEL", "INFO")
    env["ALLOWED_ORIGINS"] = ",".join(config.function.allowed_origins)
    env.update(cache_environment(config))
    if fn.snapstart:
        env[SNAPSTART_ENV] = "1"
    if get_function(key).uses_gemini:
        defaults = config.function
        if defaults.models:
            env["SCARAB_MODELS"] = json.dumps(
                defaults.models, sort_keys=True, separators=(",", ":")
            )
        if defaults.thinking:
            env["SCARAB_THINKING"] = json.dumps(
                defaults.thinking, sort_keys=True, separators=(",", ":")
            )
        env.update(secret_environment(config))
    if log:
        env.update(log_environment(config))
    return env


# The prediction log's variables (contract with lens.log; scarab.config.LOG_DERIVED_ENV).
LOG_ENABLED_ENV = "SCARAB_LOG_ENABLED"
LOG_STORE_INPUTS_ENV = "SCARAB_LOG_STORE_INPUTS"
LOG_STAGE_ENV = "SCARAB_STAGE"
LOG_URL_PARAM_ENV = "PREDICTION_DB_URL_PARAM"
LOG_URL_BACKEND_ENV = "PREDICTION_DB_URL_BACKEND"


def log_environment(config: ScarabConfig) -> dict[str, str]:
    """Where a function with the prediction log on reads the database URL (the secret's
    name and store, never the URL), and what it records."""
    env = {
        LOG_ENABLED_ENV: "true",
        LOG_STAGE_ENV: config.stage,
        LOG_URL_PARAM_ENV: prediction_db_secret_name(config.app, config.stage),
        LOG_URL_BACKEND_ENV: config.secrets.backend,
    }
    if config.log.store_inputs:
        env[LOG_STORE_INPUTS_ENV] = "true"
    return env


def _read_policy(
    sid: str, name: str, backend: str, region: str, account: str, partition: str
) -> dict[str, Any]:
    """An inline policy that can read exactly the parameter or secret `name`."""
    if backend == "ssm":
        resource = f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"
        action = "ssm:GetParameter"
    else:
        # Secrets Manager appends a random 6-character suffix to a secret's ARN.
        resource = f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-??????"
        action = "secretsmanager:GetSecretValue"
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource}],
    }


def log_db_policy(
    config: ScarabConfig, region: str, account: str, partition: str
) -> dict[str, Any]:
    """An inline policy that can read exactly the prediction log's URL and nothing else
    (no kms:Decrypt: like the Gemini key, a SecureString under the account's default
    aws/ssm key is decrypted for whoever may read it)."""
    name = prediction_db_secret_name(config.app, config.stage)
    return _read_policy(
        "ReadPredictionDbUrl", name, config.secrets.backend, region, account, partition
    )


def secret_environment(config: ScarabConfig) -> dict[str, str]:
    """Where the function reads its Gemini key: the SSM parameter or Secrets Manager
    secret name, and which of the two stores it is (contract with lens.secrets)."""
    return {KEY_PARAM_ENV: config.secret_name, KEY_BACKEND_ENV: config.secrets.backend}


def secret_policy(
    config: ScarabConfig, region: str, account: str, partition: str
) -> dict[str, Any]:
    """An inline policy that can read exactly the configured secret and nothing else."""
    return _read_policy(
        "ReadGeminiKey", config.secret_name, config.secrets.backend, region, account, partition
    )


def logs_policy(log_group: str, region: str, account: str, partition: str) -> dict[str, Any]:
    """An inline policy that writes to the function's own log group and nothing else.

    The deploy creates the group (with its retention), so the function needs no
    logs:CreateLogGroup.
    """
    group = f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}:*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": group,
            }
        ],
    }


def function_spec(
    config: ScarabConfig,
    fn_def: FunctionDef,
    *,
    account_id: str,
    region: str,
    partition: str,
    code: Code,
    registry: RegistrySpec | None = None,
    cache: CacheSpec | None = None,
    log: bool = False,
    uploads: UploadsSpec | None = None,
    jobs: JobsSpec | None = None,
) -> FunctionSpec:
    """Function `fn_def` of the stage as it should be, with its role and log group;
    with `log`, it writes the prediction log (its URL's location, a role that reads it)."""
    names = Names(config.app, config.stage)
    own = names.function(fn_def.name)
    settings = function_settings(config, fn_def.name)
    env = function_environment(config, fn_def.name, log=log)
    policies = {names.logs_policy: logs_policy(own.log_group, region, account_id, partition)}
    if fn_def.uses_gemini:
        policies[names.inline_policy] = secret_policy(config, region, account_id, partition)
    if log:
        policies[names.log_db_policy] = log_db_policy(config, region, account_id, partition)
    if fn_def.reads_registry and registry is not None:
        env.update(registry.environment)
        policies[names.registry_policy] = registry_policy(registry)
    if cache is not None:
        policies[names.cache_policy] = cache_policy(cache)
    arn = f"arn:{partition}:lambda:{region}:{account_id}:function:{own.function}"
    if uploads is not None and serves_uploads(fn_def):
        env.update(uploads.environment)
        policies[names.uploads_policy] = uploads_policy(uploads)
    dead_letter = None
    if jobs is not None and jobs.function_key == fn_def.name:
        env.update(jobs.environment)
        policies[names.jobs_policy] = jobs_policy(jobs, arn)
        dead_letter = jobs.queue_arn
    vpc = vpc_spec(config.function_vpc(fn_def.name))
    if vpc is not None:
        policies[names.vpc_policy] = vpc_policy()
    return FunctionSpec(
        key=fn_def.name,
        name=own.function,
        arn=arn,
        runtime=config.function.runtime,
        handler=fn_def.handler,
        memory=settings.memory,
        timeout=settings.timeout,
        architecture=settings.architecture,
        environment=env,
        tags={**names.tags, TAG_MANAGED_ENV: " ".join(sorted(set(env) - UNTAGGED_ENV))},
        code=code,
        description=f"Scarab {fn_def.name}: {fn_def.description} (deployed by scarab)",
        role_name=own.role,
        role_arn=f"arn:{partition}:iam::{account_id}:role/{own.role}",
        inline_policies=policies,
        log_group=own.log_group,
        log_retention_days=config.function.log_retention_days,
        url=url_spec(config.function_url(fn_def.name)),
        vpc=vpc,
        snapstart=settings.snapstart,
        keep_versions=settings.keep_versions,
        dead_letter_arn=dead_letter,
    )


def integration_uri(partition: str, region: str, function_arn: str) -> str:
    """API Gateway's Lambda proxy integration URI for the function at `function_arn`."""
    return (
        f"arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/"
        f"{function_arn}/invocations"
    )


def desired_state(
    config: ScarabConfig,
    *,
    account_id: str,
    region: str,
    partition: str,
    codes: dict[str, Code],
    functions: tuple[FunctionDef, ...] = FUNCTIONS,
    seeds: tuple[SeedModel, ...] = (),
    log: bool = False,
) -> Desired:
    """The stage as `config` describes it: `functions` (by default the catalog's), each
    with the code in `codes[name]`, and the API routing each route to its function.
    `log`: the prediction log is on (see scarab.deploy.guards.prediction_log).

    `functions=(ALL_ROUTES,)` describes the single-function layout of stages deployed
    before the split (what the migration tests start from).
    """
    names = Names(config.app, config.stage)
    fn_cfg = config.function
    tags = names.tags
    registry = None
    if any(f.reads_registry for f in functions):
        registry = registry_spec(
            names, account_id=account_id, region=region, partition=partition, seeds=seeds
        )
    cache = cache_spec(config, account_id=account_id, region=region, partition=partition)
    where = {"account_id": account_id, "region": region, "partition": partition}
    uploads = uploads_spec(config, **where)
    runs_jobs = jobs_function(functions)
    jobs = None if runs_jobs is None else jobs_spec(config, runs_jobs, **where)
    specs = tuple(
        function_spec(
            config, f, account_id=account_id, region=region, partition=partition,
            code=codes[f.name], registry=registry, cache=cache, log=log,
            uploads=uploads, jobs=jobs,
        )
        for f in functions
    )  # fmt: skip
    by_key = {s.key: s for s in specs}
    serves = {r: s for s in specs for r in get_function(s.key).routes}
    methods: list[MethodSpec] = []
    paths = routes_mod.resource_paths()
    for path in paths:
        for route in routes_mod.methods_for(path):
            target = serves[route] if route in serves else by_key[ALL_ROUTES_NAME]
            methods.append(
                MethodSpec(
                    path, route.method, route.api_key_required, "proxy",
                    # The alias: the API runs what `live` serves, never $LATEST.
                    integration_uri=integration_uri(partition, region, target.alias_arn),
                    function_arn=target.arn,
                )
            )  # fmt: skip
        methods.append(MethodSpec(path, "OPTIONS", False, "preflight"))
    api = ApiSpec(
        name=names.rest_api,
        methods=tuple(methods),
        resource_paths=tuple(paths),
        cors_origin=routes_mod.cors_origin_expression(fn_cfg.allowed_origins),
        preflight_template=routes_mod.preflight_template(fn_cfg.allowed_origins),
        allow_methods={p: routes_mod.allow_methods(p) for p in paths},
        tags=tags,
    )
    keys = {f.name for f in functions}
    retired = () if ALL_ROUTES_NAME in keys else (names.legacy,)
    return Desired(
        names=names,
        region=region,
        account_id=account_id,
        partition=partition,
        role_trust=LAMBDA_TRUST,
        managed_policy_arns=(),
        retired_policy_arns=(BASIC_EXECUTION_POLICY.format(partition=partition),),
        functions=specs,
        api=api,
        usage_plan=UsagePlanSpec(
            name=names.usage_plan,
            rate=config.api.throttle_rate,
            burst=config.api.throttle_burst,
            quota_limit=config.api.quota_limit,
            quota_period=config.api.quota_period,
            first_key_name=names.key(1),
            tags=tags,
        ),
        images_keep_last=config.images.keep_last,
        tags=tags,
        retired=retired,
        registry=registry,
        cache=cache,
        uploads=uploads,
        jobs=jobs,
        alarms=stage_alarms(config, specs, account_id, region, partition),
        budget=budget_spec(config),
    )
