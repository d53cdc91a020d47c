"""The API Gateway part of the plan: the REST API, its methods and stage, the usage plan
and the first key. Pure, like deploy/planner.py (which puts these steps in order)."""

from __future__ import annotations

from typing import Any

from scarab.deploy.instructions import ApiCall, Ref, Step, Sub
from scarab.deploy.models import PREFLIGHT_REQUEST_TEMPLATES, ApiSpec, Desired, MethodSpec
from scarab.deploy.reader import Observed
from scarab.naming import Names

REST_API_ID = "rest_api_id"
USAGE_PLAN_ID = "usage_plan_id"
API_KEY_ID = "api_key_id"


def resource_var(path: str) -> str:
    """The name under which the id of the API resource at `path` is kept."""
    return f"resource:{path}"


def deleting(why: str) -> str:
    """A delete step's reason says that it deletes."""
    return f"deletes it: {why}"


# API Gateway -------------------------------------------------------------------------


def _apigw(operation: str, params: dict[str, Any], **kw: Any) -> ApiCall:
    return ApiCall("apigateway", operation, {"restApiId": Ref(REST_API_ID), **params}, **kw)


# The one drift fixed in place: PutIntegration replaces the target, and the method is
# never missing in between (a stage moving to its split functions stays routable).
RETARGET = "integration targets another function"


def method_drift(observed: dict[str, Any] | None, spec: MethodSpec, api: ApiSpec) -> str | None:
    """Why the live method differs from the spec, or None when it matches."""
    if observed is None:
        return "missing"
    if observed.get("authorizationType", "NONE") != "NONE":
        return f"authorization is {observed.get('authorizationType')}"
    if bool(observed.get("apiKeyRequired")) != spec.api_key_required:
        return f"apiKeyRequired should be {str(spec.api_key_required).lower()}"
    integ = observed.get("methodIntegration") or {}
    if spec.kind == "proxy":
        if integ.get("type") != "AWS_PROXY":
            return f"integration is {integ.get('type') or 'missing'}, not AWS_PROXY"
        if integ.get("uri") != spec.integration_uri:
            return RETARGET
        return None
    if integ.get("type") != "MOCK":
        return f"integration is {integ.get('type') or 'missing'}, not MOCK"
    if "200" not in (observed.get("methodResponses") or {}):
        return "no 200 method response"
    resp = (integ.get("integrationResponses") or {}).get("200") or {}
    if (resp.get("responseParameters") or {}) != api.preflight_parameters(spec.path):
        return "CORS headers differ"
    template = (resp.get("responseTemplates") or {}).get("application/json") or ""
    if template != api.preflight_template:
        return "CORS origin template differs"
    return None


def _proxy_integration(spec: MethodSpec) -> ApiCall:
    ids = {"resourceId": Ref(resource_var(spec.path)), "httpMethod": spec.http_method}
    return _apigw(
        "PutIntegration",
        {**ids, "type": "AWS_PROXY", "integrationHttpMethod": "POST", "uri": spec.integration_uri},
    )


def method_calls(spec: MethodSpec, api: ApiSpec, replace: bool) -> tuple[ApiCall, ...]:
    """The method and its integration (a drifted one is deleted first)."""
    ids = {"resourceId": Ref(resource_var(spec.path)), "httpMethod": spec.http_method}
    calls: list[ApiCall] = []
    if replace:
        calls.append(_apigw("DeleteMethod", ids))
    calls.append(
        _apigw(
            "PutMethod",
            {**ids, "authorizationType": "NONE", "apiKeyRequired": spec.api_key_required},
        )
    )
    if spec.kind == "proxy":
        calls.append(_proxy_integration(spec))
        return tuple(calls)
    params = api.preflight_parameters(spec.path)
    method_headers = {
        **dict.fromkeys(params, False),
        "method.response.header.Access-Control-Allow-Origin": False,
    }
    calls += [
        _apigw(
            "PutMethodResponse", {**ids, "statusCode": "200", "responseParameters": method_headers}
        ),
        _apigw(
            "PutIntegration",
            {
                **ids,
                "type": "MOCK",
                "requestTemplates": PREFLIGHT_REQUEST_TEMPLATES,
            },
        ),
        _apigw(
            "PutIntegrationResponse",
            {
                **ids,
                "statusCode": "200",
                "responseParameters": params,
                "responseTemplates": {"application/json": api.preflight_template},
            },
        ),
    ]
    return tuple(calls)


def _binary_ops(add: tuple[str, ...], remove: tuple[str, ...]) -> list[dict[str, str]]:
    # AWS reads the type from the path ("/" spelled "~1"); emulators read "value".
    return [
        {"op": "remove", "path": f"/binaryMediaTypes/{t.replace('/', '~1')}", "value": t}
        for t in remove
    ] + [
        {"op": "add", "path": f"/binaryMediaTypes/{t.replace('/', '~1')}", "value": t} for t in add
    ]


def plan_api(d: Desired, obs: Observed) -> list[Step]:
    api = d.api
    res = f"apigateway.rest_api {api.name}"
    steps: list[Step] = []
    live = obs.api
    resources: dict[str, dict[str, Any]] = live.resources if live else {}
    if live is None:
        create = ApiCall(
            "apigateway",
            "CreateRestApi",
            {
                "name": api.name,
                "description": f"Scarab API, stage {d.names.stage} (managed by scarab)",
                "endpointConfiguration": {"types": ["REGIONAL"]},
                "apiKeySource": "HEADER",
                "tags": api.tags,
            },
            output_var=REST_API_ID,
            output_path="id",
        )
        root = _apigw("GetRestApi", {}, output_var=resource_var("/"), output_path="rootResourceId")
        # Patched in rather than given to CreateRestApi: some emulators drop them there.
        binary = _apigw(
            "UpdateRestApi", {"patchOperations": _binary_ops(api.binary_media_types, ())}
        )
        steps.append(Step(res, "create", "missing", (create, root, binary)))
    else:
        steps += _plan_binary_media_types(res, api, live.binary_media_types)
    for path in api.resource_paths:
        if path not in resources:
            parent, _, part = path.rpartition("/")
            create_resource = _apigw(
                "CreateResource",
                {"parentId": Ref(resource_var(parent or "/")), "pathPart": part},
                output_var=resource_var(path),
                output_path="id",
            )
            steps.append(Step(f"{res} resource {path}", "create", "missing", (create_resource,)))
    for spec in api.methods:
        current = (resources.get(spec.path) or {}).get("methods", {}).get(spec.http_method)
        why = method_drift(current, spec, api)
        if why is not None:
            calls = (
                (_proxy_integration(spec),)
                if why == RETARGET
                else method_calls(spec, api, replace=current is not None)
            )
            steps.append(
                Step(
                    f"{res} {spec.http_method} {spec.path}",
                    "create" if current is None else "update",
                    why,
                    calls,
                )
            )
    wanted = {(m.path, m.http_method) for m in api.methods}
    for path, info in sorted(resources.items()):
        if path not in api.resource_paths:
            continue
        for verb in sorted(info.get("methods", {})):
            if (path, verb) not in wanted:
                delete = _apigw(
                    "DeleteMethod", {"resourceId": Ref(resource_var(path)), "httpMethod": verb}
                )
                why = deleting("not in the routes table")
                steps.append(Step(f"{res} {verb} {path}", "delete", why, (delete,)))
    extra = [p for p in resources if p != "/" and p not in api.resource_paths]
    for path in sorted(extra):
        parent = path.rsplit("/", 1)[0]
        if parent in extra:
            continue  # deleted with its parent
        delete = _apigw("DeleteResource", {"resourceId": Ref(resource_var(path))})
        why = deleting("not in the routes table")
        steps.append(Step(f"{res} resource {path}", "delete", why, (delete,)))
    want_gw = api.gateway_parameters()
    for rtype in api.gateway_response_types:
        have = (live.gateway_responses.get(rtype) if live else None) or {}
        if any(have.get(k) != v for k, v in want_gw.items()):
            put = _apigw(
                "PutGatewayResponse", {"responseType": rtype, "responseParameters": want_gw}
            )
            steps.append(
                Step(
                    f"{res} gateway-response {rtype}",
                    "update" if have else "create",
                    "CORS headers missing" if not have else "CORS headers differ",
                    (put,),
                )
            )
    return steps


def _media_type(value: str) -> str:
    # API Gateway spells "/" as "~1" in patch paths; some tools store that spelling.
    return value.replace("~1", "/").lower()


def _plan_binary_media_types(res: str, api: ApiSpec, live: tuple[str, ...]) -> list[Step]:
    have = {_media_type(t): t for t in live}
    add = [t for t in api.binary_media_types if _media_type(t) not in have]
    wanted = {_media_type(t) for t in api.binary_media_types}
    remove = [raw for norm, raw in sorted(have.items()) if norm not in wanted]
    if not add and not remove:
        return []
    why = ", ".join([*(f"+{t}" for t in add), *(f"-{t}" for t in remove)])
    patch = _apigw("UpdateRestApi", {"patchOperations": _binary_ops(tuple(add), tuple(remove))})
    return [
        Step(f"{res} binaryMediaTypes", "update", f"binary media types differ ({why})", (patch,))
    ]


def plan_deployment(d: Desired, obs: Observed, api_changed: bool) -> list[Step]:
    res = f"apigateway.stage {d.names.stage}"
    live = obs.api
    create = _apigw(
        "CreateDeployment", {"stageName": d.names.stage, "description": d.api.fingerprint}
    )
    # CreateDeployment takes no tags: the stage is tagged after each one (AWS keeps a
    # stage's tags across deployments; moto replaces the stage and drops them).
    tag = ApiCall(
        "apigateway", "TagResource",
        {"resourceArn": Sub(stage_arn(d)), "tags": dict(d.api.tags)},
    )  # fmt: skip
    deploy = (create, tag)
    if live is None or not live.stage_exists:
        return [Step(res, "create", "stage missing: deploy the API", deploy)]
    if api_changed:
        return [Step(res, "update", "API changed: new deployment", deploy)]
    if live.stage_fingerprint != d.api.fingerprint:
        return [Step(res, "update", "stage runs an older API definition", deploy)]
    if any(live.stage_tags.get(k) != v for k, v in d.api.tags.items()):
        return [Step(f"{res} tags", "update", "tags differ", (tag,))]
    return []


def stage_arn(d: Desired) -> str:
    """The API stage's ARN (a Sub template: the REST API's id is known when it runs)."""
    return (
        f"arn:{d.partition}:apigateway:{d.region}::/restapis/${{{REST_API_ID}}}/stages/"
        f"{d.names.stage}"
    )


# Usage plan and keys -----------------------------------------------------------------


def _patch_plan(ops: list[dict[str, Any]]) -> ApiCall:
    return ApiCall(
        "apigateway",
        "UpdateUsagePlan",
        {"usagePlanId": Ref(USAGE_PLAN_ID), "patchOperations": ops},
    )


def plan_usage_plan(d: Desired, obs: Observed) -> list[Step]:
    p = d.usage_plan
    stage = d.names.stage
    res = f"apigateway.usage_plan {p.name}"
    steps: list[Step] = []
    live = obs.plan
    if live is None:
        create = ApiCall(
            "apigateway",
            "CreateUsagePlan",
            {
                "name": p.name,
                "description": f"Throttle and quota for {d.names.base} (managed by scarab)",
                "apiStages": [{"apiId": Ref(REST_API_ID), "stage": stage}],
                "throttle": {"rateLimit": p.rate, "burstLimit": p.burst},
                "quota": {"limit": p.quota_limit, "period": p.quota_period},
                "tags": p.tags,
            },
            output_var=USAGE_PLAN_ID,
            output_path="id",
        )
        steps.append(Step(res, "create", "missing", (create,)))
    else:
        diffs: list[str] = []
        ops: list[dict[str, Any]] = []
        if _num(live.throttle.get("rateLimit")) != float(p.rate):
            diffs.append("throttle rate")
            ops.append({"op": "replace", "path": "/throttle/rateLimit", "value": _fmt(p.rate)})
        if _num(live.throttle.get("burstLimit")) != float(p.burst):
            diffs.append("throttle burst")
            ops.append({"op": "replace", "path": "/throttle/burstLimit", "value": str(p.burst)})
        if _num(live.quota.get("limit")) != float(p.quota_limit):
            diffs.append("quota limit")
            ops.append({"op": "replace", "path": "/quota/limit", "value": str(p.quota_limit)})
        if live.quota.get("period") != p.quota_period:
            diffs.append("quota period")
            ops.append({"op": "replace", "path": "/quota/period", "value": p.quota_period})
        if ops:
            steps.append(Step(res, "update", ", ".join(diffs) + " differ", (_patch_plan(ops),)))
        api_id = obs.api.id if obs.api else None
        stages = [(s.get("apiId"), s.get("stage")) for s in live.api_stages]
        if (api_id, stage) not in stages:
            # Unbind this stage of any other API (an old one), then bind this API's.
            stage_ops: list[dict[str, Any]] = [
                {"op": "remove", "path": "/apiStages", "value": f"{a}:{s}"}
                for a, s in stages
                if s == stage and (api_id is None or a != api_id)
            ]
            stage_ops.append(
                {"op": "add", "path": "/apiStages", "value": Sub("${" + REST_API_ID + "}:" + stage)}
            )
            why = "not bound to this API's stage"
            steps.append(Step(f"{res} stage", "update", why, (_patch_plan(stage_ops),)))
    steps += plan_keys(d, obs)
    return steps


def _fmt(rate: float) -> str:
    # "5" rather than "5.0": both are valid rates, and integral text parses everywhere.
    return str(int(rate)) if float(rate).is_integer() else str(rate)


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def key_instructions(names: Names, name: str) -> tuple[ApiCall, ApiCall]:
    """Create a key tagged for the stage and put it in the usage plan (its id is kept
    as `api_key_id`; the key's value is never kept)."""
    create = ApiCall(
        "apigateway",
        "CreateApiKey",
        {
            "name": name,
            "description": f"API key for {names.base} (managed by scarab)",
            "enabled": True,
            "tags": names.tags,
        },
        output_var=API_KEY_ID,
        output_path="id",
    )
    return create, attach_key(Ref(API_KEY_ID))


def attach_key(key_id: str | Ref) -> ApiCall:
    return ApiCall(
        "apigateway",
        "CreateUsagePlanKey",
        {"usagePlanId": Ref(USAGE_PLAN_ID), "keyId": key_id, "keyType": "API_KEY"},
        output_var=API_KEY_ID,
        output_path="id",
    )


def plan_keys(d: Desired, obs: Observed) -> list[Step]:
    if any(k.in_plan for k in obs.keys) and obs.plan is not None:
        return []
    first = d.usage_plan.first_key_name
    res = f"apigateway.api_key {first}"
    existing = [k for k in obs.keys if k.name == first]
    if existing:
        return [Step(res, "update", "not in the usage plan", (attach_key(existing[0].id),))]
    return [Step(res, "create", "the usage plan has no key", key_instructions(d.names, first))]
