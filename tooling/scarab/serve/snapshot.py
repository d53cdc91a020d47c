"""What was deployed into the emulator, read into one immutable snapshot.

The local gateway enforces API Gateway's rules from this snapshot only: resources,
methods, integrations, gateway responses, usage plans, API keys and the Lambda
functions the integrations point at. The request path never calls the emulator;
`scarab.serve.watcher` replaces the snapshot in the background.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scarab.serve.routing import Router, RouteTarget

if TYPE_CHECKING:
    from scarab.serve.aliases import FunctionTarget

_LAMBDA_URI = re.compile(
    r"^arn:[^:]+:apigateway:[^:]+:lambda:path/[^/]+/functions/(?P<fn>.+)/invocations$"
)
_STAGE_VAR = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")

EMPTY: Mapping[str, str] = MappingProxyType({})
NO_THROTTLES: Mapping[str, Throttle] = MappingProxyType({})


@dataclass(frozen=True)
class IntegrationResponse:
    status_code: str
    selection_pattern: str
    headers: Mapping[str, str]  # method.response.header.X -> raw mapping expression
    templates: Mapping[str, str]


@dataclass(frozen=True)
class Integration:
    type: str  # AWS_PROXY, MOCK, AWS, HTTP, HTTP_PROXY
    uri: str
    request_templates: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    responses: tuple[IntegrationResponse, ...] = ()
    timeout_ms: int | None = None

    def function_ref(self, stage_variables: Mapping[str, str]) -> str | None:
        """The Lambda function ARN (maybe qualified) an AWS/AWS_PROXY integration calls."""
        match = _LAMBDA_URI.match(self.uri or "")
        if match is None:
            return None
        return _STAGE_VAR.sub(lambda m: stage_variables.get(m.group(1), ""), match.group("fn"))


@dataclass(frozen=True)
class Method:
    http_method: str
    api_key_required: bool
    authorization_type: str
    integration: Integration | None


@dataclass(frozen=True)
class Resource:
    id: str
    path: str
    methods: Mapping[str, Method]


@dataclass(frozen=True)
class GatewayResponse:
    response_type: str
    status_code: int | None
    parameters: Mapping[str, str]
    templates: Mapping[str, str]


@dataclass(frozen=True)
class Throttle:
    rate: float
    burst: int


@dataclass(frozen=True)
class Quota:
    limit: int
    period: str  # DAY | WEEK | MONTH
    offset: int


@dataclass(frozen=True)
class UsagePlan:
    id: str
    name: str
    throttle: Throttle | None
    quota: Quota | None
    # "{resourcePath}/{httpMethod}" -> per-method throttle from the plan's apiStage.
    method_throttles: Mapping[str, Throttle] = field(default_factory=lambda: NO_THROTTLES)


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    value: str
    enabled: bool
    created: float


@dataclass(frozen=True)
class FunctionConfig:
    """One deployed Lambda function, as far as running it locally needs."""

    name: str
    arn: str
    code_sha256: str  # base64, as Lambda reports it
    handler: str
    runtime: str
    timeout_s: int
    memory_mb: int
    environment: Mapping[str, str]
    version: str = "$LATEST"  # the published version this configuration is

    @property
    def identity(self) -> tuple[str, str]:
        """Which function and version this is (each version has its own workers)."""
        return (self.arn.split(":function:")[0] + ":function:" + self.name, self.version)

    @property
    def code_hex(self) -> str | None:
        """The sha256 as hex: the name of the content-addressed zip the deploy tool built."""
        try:
            return base64.b64decode(self.code_sha256, validate=True).hex()
        except (binascii.Error, ValueError):
            return None

    @property
    def version_key(self) -> tuple[Any, ...]:
        """Changes whenever a redeploy needs a fresh warm container."""
        return (
            self.arn,
            self.version,
            self.code_sha256,
            self.handler,
            self.timeout_s,
            self.memory_mb,
            tuple(sorted(self.environment.items())),
        )


@dataclass(frozen=True)
class FunctionUrl:
    """One function's URL as deployed: GetFunctionUrlConfig's AuthType and Cors."""

    function: FunctionConfig
    url: str  # the deployed URL (https://<id>.lambda-url.<region>.on.aws/)
    auth: str  # "AWS_IAM" | "NONE"
    cors: Mapping[str, Any]
    # auth NONE: whether the function's resource policy lets anyone invoke the URL
    # (lambda:InvokeFunctionUrl for "*"); without it AWS answers every caller 403.
    public: bool = False
    # When the URL is on an alias or version: the versions it routes to.
    target: FunctionTarget | None = None

    @property
    def domain(self) -> str:
        return urlsplit(self.url).netloc or "local.lambda-url.localhost"


@dataclass(frozen=True)
class Snapshot:
    """Everything the gateway needs to answer one request."""

    rest_api_id: str
    stage: str
    region: str
    account_id: str
    binary_media_types: tuple[str, ...]
    stage_variables: Mapping[str, str]
    router: Router
    gateway_responses: Mapping[str, GatewayResponse]
    # Only keys usable on this stage: in a usage plan bound to it. Value -> (key, plan).
    keys: Mapping[str, tuple[ApiKey, UsagePlan]]
    functions: Mapping[str, FunctionConfig]  # integration function ref -> config
    local_key: ApiKey | None = None  # the key serve uses for its /api proxy
    plans: tuple[UsagePlan, ...] = field(default=())
    # By function name: the deployed Function URLs (served under /_url/<name>/).
    urls: Mapping[str, FunctionUrl] = field(default_factory=lambda: MappingProxyType({}))
    # Integration function ref -> what it runs (every version an alias routes to).
    targets: Mapping[str, FunctionTarget] = field(default_factory=lambda: MappingProxyType({}))
    # Integration function ref -> why it cannot be served (a bad alias routing config).
    problems: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    api_name: str = ""

    def configs(self) -> list[FunctionConfig]:
        """Every function version serve may run for this snapshot (no duplicates)."""
        out: dict[tuple[Any, ...], FunctionConfig] = {}
        for fn in self.functions.values():
            out.setdefault(fn.version_key, fn)
        for target in self.targets.values():
            for fn in target.configs:
                out.setdefault(fn.version_key, fn)
        for url in self.urls.values():
            for fn in url.target.configs if url.target else (url.function,):
                out.setdefault(fn.version_key, fn)
        return list(out.values())

    def route(self, method: str, path: str) -> RouteTarget | None:
        return self.router.match(method, path)


def _str_map(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict):
        return EMPTY
    return MappingProxyType({str(k): str(v) for k, v in value.items() if v is not None})


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _throttle(raw: Any) -> Throttle | None:
    if not isinstance(raw, dict) or ("rateLimit" not in raw and "burstLimit" not in raw):
        return None
    try:
        rate = float(raw.get("rateLimit", 0.0))
    except (TypeError, ValueError):
        rate = 0.0
    return Throttle(rate=rate, burst=_int(raw.get("burstLimit"), 0))


def _quota(raw: Any) -> Quota | None:
    if not isinstance(raw, dict) or "limit" not in raw:
        return None
    return Quota(
        limit=_int(raw.get("limit")),
        period=str(raw.get("period") or "DAY").upper(),
        offset=_int(raw.get("offset")),
    )


def parse_integration(raw: Mapping[str, Any] | None) -> Integration | None:
    if not raw:
        return None
    responses = tuple(
        IntegrationResponse(
            status_code=str(resp.get("statusCode") or code),
            selection_pattern=str(resp.get("selectionPattern") or ""),
            headers=_str_map(resp.get("responseParameters")),
            templates=_str_map(resp.get("responseTemplates")),
        )
        for code, resp in sorted((raw.get("integrationResponses") or {}).items())
    )
    timeout = raw.get("timeoutInMillis")
    return Integration(
        type=str(raw.get("type") or ""),
        uri=str(raw.get("uri") or ""),
        request_templates=_str_map(raw.get("requestTemplates")),
        responses=responses,
        timeout_ms=_int(timeout) if timeout not in (None, "") else None,
    )


def parse_resources(items: list[dict[str, Any]]) -> tuple[Resource, ...]:
    resources = []
    for item in items:
        methods = {}
        for verb, raw in (item.get("resourceMethods") or {}).items():
            raw = raw or {}
            methods[verb.upper()] = Method(
                http_method=verb.upper(),
                api_key_required=bool(raw.get("apiKeyRequired")),
                authorization_type=str(raw.get("authorizationType") or "NONE"),
                integration=parse_integration(raw.get("methodIntegration")),
            )
        resources.append(
            Resource(id=str(item["id"]), path=str(item["path"]), methods=MappingProxyType(methods))
        )
    return tuple(resources)


def parse_gateway_responses(items: list[dict[str, Any]]) -> Mapping[str, GatewayResponse]:
    out = {}
    for item in items:
        status = item.get("statusCode")
        out[str(item["responseType"])] = GatewayResponse(
            response_type=str(item["responseType"]),
            status_code=_int(status) if status not in (None, "") else None,
            parameters=_str_map(item.get("responseParameters")),
            templates=_str_map(item.get("responseTemplates")),
        )
    return MappingProxyType(out)


def parse_plan(raw: Mapping[str, Any], rest_api_id: str, stage: str) -> UsagePlan | None:
    """The plan, if one of its apiStages is this API's stage."""
    for api_stage in raw.get("apiStages") or []:
        if api_stage.get("apiId") == rest_api_id and api_stage.get("stage") == stage:
            method_throttles = {}
            for key, value in (api_stage.get("throttle") or {}).items():
                throttle = _throttle(value)
                if throttle is not None:
                    method_throttles[str(key)] = throttle
            return UsagePlan(
                id=str(raw["id"]),
                name=str(raw.get("name") or raw["id"]),
                throttle=_throttle(raw.get("throttle")),
                quota=_quota(raw.get("quota")),
                method_throttles=MappingProxyType(method_throttles),
            )
    return None


def parse_key(raw: Mapping[str, Any]) -> ApiKey:
    created = raw.get("createdDate")
    if created is not None and hasattr(created, "timestamp"):
        created = created.timestamp()
    try:
        created_f = float(created) if created is not None else 0.0
    except (TypeError, ValueError):
        created_f = 0.0
    return ApiKey(
        id=str(raw["id"]),
        name=str(raw.get("name") or raw["id"]),
        value=str(raw.get("value") or ""),
        enabled=bool(raw.get("enabled", False)),
        created=created_f,
    )


def parse_function(config: Mapping[str, Any]) -> FunctionConfig:
    env = (config.get("Environment") or {}).get("Variables") or {}
    return FunctionConfig(
        name=str(config["FunctionName"]),
        arn=str(config["FunctionArn"]),
        code_sha256=str(config.get("CodeSha256") or ""),
        handler=str(config.get("Handler") or ""),
        runtime=str(config.get("Runtime") or ""),
        timeout_s=_int(config.get("Timeout"), 3) or 3,
        memory_mb=_int(config.get("MemorySize"), 128) or 128,
        environment=_str_map(env),
        version=str(config.get("Version") or "$LATEST"),
    )


def choose_local_key(candidates: list[ApiKey]) -> ApiKey | None:
    """The key serve's /api proxy sends: the newest enabled key of the stage's plan."""
    enabled = [k for k in candidates if k.enabled and k.value]
    if not enabled:
        return None
    # Stable on ties (moto's createdDate has one-second resolution): later in plan order wins.
    return max(enumerate(enabled), key=lambda pair: (pair[1].created, pair[0]))[1]
