"""Desired resources as data: what a stage should look like, computed from scarab.toml.

Nothing here talks to AWS; the planner compares these against what the reader found.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from scarab.artifacts.zip import LAMBDA_ZIP_LIMIT
from scarab.config import ScarabConfig
from scarab.deploy import routes as routes_mod
from scarab.naming import TAG_MANAGED_ENV, Names

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
HANDLER = "lens.handler.lambda_handler"
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


def api_methods() -> str:
    """Every method the API answers (the gateway responses' CORS header), from the routes."""
    return ",".join([*sorted({r.method for r in routes_mod.ROUTES}), "OPTIONS"])


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
class FunctionSpec:
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


@dataclass(frozen=True)
class MethodSpec:
    path: str
    http_method: str
    api_key_required: bool
    kind: str  # "proxy" | "preflight"


@dataclass(frozen=True)
class ApiSpec:
    name: str
    integration_uri: str
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
            "uri": self.integration_uri,
            "methods": [m.__dict__ for m in self.methods],
            "cors": self.cors_origin,
            "template": self.preflight_template,
            "allow": self.allow_methods,
            "binary": sorted(self.binary_media_types),
        }
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        return f"scarab:{digest[:24]}"


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
    role_arn: str
    role_trust: dict[str, Any]
    managed_policy_arns: tuple[str, ...]
    # Managed policies scarab attached in the past and detaches when it finds them.
    retired_policy_arns: tuple[str, ...]
    inline_policies: dict[str, dict[str, Any]]  # policy name -> document
    function: FunctionSpec
    log_retention_days: int
    api: ApiSpec
    usage_plan: UsagePlanSpec
    images_keep_last: int
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ecr_lifecycle_policy(self) -> dict[str, Any]:
        """The image repository's lifecycle rule: keep the last `images_keep_last` images
        (deploy and export both put exactly this on the repository)."""
        keep = self.images_keep_last
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

    def source_arn(self, rest_api_id: str) -> str:
        """What may invoke the function: this API's stage, any method, any path."""
        return (
            f"arn:{self.partition}:execute-api:{self.region}:{self.account_id}:"
            f"{rest_api_id}/{self.names.stage}/*/*"
        )


def function_environment(config: ScarabConfig) -> dict[str, str]:
    """The environment scarab sets on the function (contract with lens)."""
    fn = config.function
    env = dict(fn.environment)
    env.setdefault("POWERTOOLS_SERVICE_NAME", "scarab")
    env.setdefault("LOG_LEVEL", "INFO")
    env["ALLOWED_ORIGINS"] = ",".join(fn.allowed_origins)
    if fn.models:
        env["SCARAB_MODELS"] = json.dumps(fn.models, sort_keys=True, separators=(",", ":"))
    if fn.thinking:
        env["SCARAB_THINKING"] = json.dumps(fn.thinking, sort_keys=True, separators=(",", ":"))
    env.update(secret_environment(config))
    return env


def secret_environment(config: ScarabConfig) -> dict[str, str]:
    """Where the function reads its Gemini key: the SSM parameter or Secrets Manager
    secret name, and which of the two stores it is (contract with lens.secrets)."""
    return {KEY_PARAM_ENV: config.secret_name, KEY_BACKEND_ENV: config.secrets.backend}


def secret_policy(
    config: ScarabConfig, region: str, account: str, partition: str
) -> dict[str, Any]:
    """An inline policy that can read exactly the configured secret and nothing else."""
    name = config.secret_name
    if config.secrets.backend == "ssm":
        resource = f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"
        action = "ssm:GetParameter"
    else:
        # Secrets Manager appends a random 6-character suffix to a secret's ARN.
        resource = f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-??????"
        action = "secretsmanager:GetSecretValue"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadGeminiKey", "Effect": "Allow", "Action": action, "Resource": resource}
        ],
    }


def logs_policy(names: Names, region: str, account: str, partition: str) -> dict[str, Any]:
    """An inline policy that writes to the function's own log group and nothing else.

    The deploy creates the group (with its retention), so the function needs no
    logs:CreateLogGroup.
    """
    group = f"arn:{partition}:logs:{region}:{account}:log-group:{names.log_group}:*"
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


def desired_state(
    config: ScarabConfig, *, account_id: str, region: str, partition: str, code: Code
) -> Desired:
    names = Names(config.app, config.stage)
    fn = config.function
    function_arn = f"arn:{partition}:lambda:{region}:{account_id}:function:{names.function}"
    env = function_environment(config)
    tags = names.tags
    fn_tags = {**tags, TAG_MANAGED_ENV: " ".join(sorted(env))}
    methods: list[MethodSpec] = []
    paths = routes_mod.resource_paths()
    for path in paths:
        for route in routes_mod.methods_for(path):
            methods.append(MethodSpec(path, route.method, route.api_key_required, "proxy"))
        methods.append(MethodSpec(path, "OPTIONS", False, "preflight"))
    api = ApiSpec(
        name=names.rest_api,
        integration_uri=(
            f"arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/"
            f"{function_arn}/invocations"
        ),
        methods=tuple(methods),
        resource_paths=tuple(paths),
        cors_origin=routes_mod.cors_origin_expression(fn.allowed_origins),
        preflight_template=routes_mod.preflight_template(fn.allowed_origins),
        allow_methods={p: routes_mod.allow_methods(p) for p in paths},
        tags=tags,
    )
    return Desired(
        names=names,
        region=region,
        account_id=account_id,
        partition=partition,
        role_arn=f"arn:{partition}:iam::{account_id}:role/{names.role}",
        role_trust=LAMBDA_TRUST,
        managed_policy_arns=(),
        retired_policy_arns=(BASIC_EXECUTION_POLICY.format(partition=partition),),
        inline_policies={
            names.logs_policy: logs_policy(names, region, account_id, partition),
            names.inline_policy: secret_policy(config, region, account_id, partition),
        },
        function=FunctionSpec(
            name=names.function,
            arn=function_arn,
            runtime=fn.runtime,
            handler=HANDLER,
            memory=fn.memory,
            timeout=fn.timeout,
            architecture=fn.architecture,
            environment=env,
            tags=fn_tags,
            code=code,
        ),
        log_retention_days=fn.log_retention_days,
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
    )
