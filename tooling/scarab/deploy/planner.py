"""Compare desired resources with what AWS has and emit the steps that close the gap.

Pure: no AWS calls. Given the same Desired and Observed, the same plan comes out,
so plans are testable without any server. An empty plan means "up to date".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scarab.deploy import actions as act
from scarab.deploy.models import ApiSpec, Desired, MethodSpec
from scarab.deploy.plan import Context, Step
from scarab.deploy.reader import Observed, ObservedFunction
from scarab.errors import ScarabError
from scarab.naming import TAG_MANAGED_ENV


def merged_environment(
    desired: dict[str, str], live: dict[str, str], previously_managed: set[str]
) -> dict[str, str]:
    """The live environment, updated by scarab without dropping anyone else's variables.

    Variables scarab set before and the config no longer has are removed; variables
    scarab never set are kept as they are; the config's values win for its own names.
    """
    kept = {k: v for k, v in live.items() if k in desired or k not in previously_managed}
    return {**kept, **desired}


def previously_managed(function: ObservedFunction | None, state_env: list[str]) -> set[str]:
    tagged = set()
    if function is not None:
        tagged = set(function.tags.get(TAG_MANAGED_ENV, "").split())
    return tagged | set(state_env)


def plan_role(d: Desired, obs: Observed) -> list[Step]:
    res = f"iam.role {d.names.role}"
    steps: list[Step] = []
    role = obs.role
    if role is None:
        steps.append(Step(res, "create", "missing", act.create_role))
        attached: set[str] = set()
        inline: dict[str, dict[str, Any]] = {}
    else:
        if _norm_trust(role.trust) != _norm_trust(d.role_trust):
            steps.append(Step(res, "update", "trust policy is not Lambda's", act.update_trust))
        attached = role.attached
        inline = role.inline
    for arn in d.managed_policy_arns:
        if arn not in attached:
            name = arn.rsplit("/", 1)[1]
            steps.append(
                Step(f"{res} policy {name}", "create", "not attached", act.attach_policy(arn))
            )
    for name, doc in d.inline_policies.items():
        have = inline.get(name)
        if have != doc:
            steps.append(
                Step(
                    f"{res} inline {name}",
                    "create" if have is None else "update",
                    "missing" if have is None else "grants something other than scarab's policy",
                    act.put_inline_policy(name),
                )
            )
    for arn in d.retired_policy_arns:
        if arn in attached:
            name = arn.rsplit("/", 1)[1]
            steps.append(
                Step(
                    f"{res} policy {name}",
                    "delete",
                    "grants more than the function needs (logs on every group)",
                    act.detach_policy(arn),
                )
            )
    return steps


def _norm_trust(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for st in doc.get("Statement", []):
        principal = st.get("Principal", {})
        service = principal.get("Service") if isinstance(principal, dict) else principal
        services = service if isinstance(service, list) else [service]
        actions = st.get("Action")
        acts = actions if isinstance(actions, list) else [actions]
        out += [(st.get("Effect", ""), str(s), str(a)) for s in services for a in acts]
    return sorted(out)


def plan_logs(d: Desired, obs: Observed) -> list[Step]:
    res = f"logs.group {d.names.log_group}"
    steps = []
    if not obs.log_group_exists:
        steps.append(Step(res, "create", "missing", act.create_log_group))
    if obs.log_group_retention != d.log_retention_days:
        why = (
            f"retention {obs.log_group_retention or 'never expires'} -> {d.log_retention_days} days"
        )
        steps.append(Step(f"{res} retention", "update", why, act.put_retention))
    return steps


def plan_image(d: Desired, obs: Observed, project_dir: Path) -> list[Step]:
    code = d.function.code
    if code.package != "image":
        return []
    steps = []
    if obs.ecr_repository_uri is None:
        steps.append(
            Step(
                f"ecr.repository {d.names.ecr_repository}",
                "create",
                "missing",
                act.create_repository,
            )
        )
    if not obs.ecr_has_tag:
        steps.append(
            Step(
                f"ecr.image {code.image_tag}",
                "create",
                "this image is not in ECR yet (build and push)",
                act.push_image(project_dir),
            )
        )
    return steps


def plan_function(d: Desired, obs: Observed, state_env: list[str]) -> list[Step]:
    fn = d.function
    res = f"lambda.function {fn.name}"
    live = obs.function
    managed = previously_managed(live, state_env)
    if live is None:
        return [Step(res, "create", "missing", act.create_function(fn.environment))]
    cfg = live.config
    steps = []
    live_type = cfg.get("PackageType", "Zip")
    want_type = "Image" if fn.code.package == "image" else "Zip"
    if live_type != want_type:
        raise ScarabError(
            f"The function {fn.name} is a {live_type} package and the config asks for"
            f" {want_type}; Lambda cannot switch a function's package type. Run"
            f" 'scarab destroy' for this stage first, or keep package = \"{live_type.lower()}\"."
        )
    code_reason = None
    if fn.code.package == "zip" and cfg.get("CodeSha256") != fn.code.zip_sha256_b64:
        code_reason = "code changed"
    if fn.code.package == "image":
        live_uri = str(live.code.get("ImageUri", ""))
        if not live_uri.endswith(f":{fn.code.image_tag}"):
            code_reason = "image changed"
    if (cfg.get("Architectures") or ["x86_64"]) != [fn.architecture]:
        code_reason = f"architecture -> {fn.architecture}"
    if code_reason:
        steps.append(Step(f"{res} code", "update", code_reason, act.update_code))
    env = merged_environment(fn.environment, live.env, managed)
    diffs = []
    if env != live.env:
        changed = sorted(k for k in set(env) | set(live.env) if env.get(k) != live.env.get(k))
        diffs.append("environment " + ",".join(changed))
    for key, want in (("MemorySize", fn.memory), ("Timeout", fn.timeout), ("Role", d.role_arn)):
        if cfg.get(key) != want:
            diffs.append(f"{key} {cfg.get(key)} -> {want}")
    if fn.code.package == "zip":
        for key, want_s in (("Runtime", fn.runtime), ("Handler", fn.handler)):
            if cfg.get(key) != want_s:
                diffs.append(f"{key} {cfg.get(key)} -> {want_s}")
    if diffs:
        steps.append(
            Step(f"{res} configuration", "update", "; ".join(diffs), act.update_configuration(env))
        )
    if any(live.tags.get(k) != v for k, v in fn.tags.items()):
        steps.append(Step(f"{res} tags", "update", "tags differ", act.tag_function))
    return steps


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
        if integ.get("uri") != api.integration_uri:
            return "integration targets another function"
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


def plan_api(d: Desired, obs: Observed) -> list[Step]:
    api = d.api
    res = f"apigateway.rest_api {api.name}"
    steps: list[Step] = []
    live = obs.api
    resources: dict[str, dict[str, Any]] = live.resources if live else {}
    if live is None:
        steps.append(Step(res, "create", "missing", act.create_rest_api, touches_api=True))
    else:
        steps += _plan_binary_media_types(res, api, live.binary_media_types)
    for path in api.resource_paths:
        if path not in resources:
            steps.append(
                Step(
                    f"{res} resource {path}",
                    "create",
                    "missing",
                    act.create_resource(path),
                    touches_api=True,
                )
            )
    for spec in api.methods:
        current = (resources.get(spec.path) or {}).get("methods", {}).get(spec.http_method)
        why = method_drift(current, spec, api)
        if why is not None:
            steps.append(
                Step(
                    f"{res} {spec.http_method} {spec.path}",
                    "create" if current is None else "update",
                    why,
                    act.put_method(spec, replace=current is not None),
                    touches_api=True,
                )
            )
    wanted = {(m.path, m.http_method) for m in api.methods}
    for path, info in sorted(resources.items()):
        if path not in api.resource_paths:
            continue
        for verb in sorted(info.get("methods", {})):
            if (path, verb) not in wanted:
                steps.append(
                    Step(
                        f"{res} {verb} {path}",
                        "delete",
                        "not in the routes table",
                        act.delete_method(path, verb),
                        touches_api=True,
                    )
                )
    extra = [p for p in resources if p != "/" and p not in api.resource_paths]
    for path in sorted(extra):
        parent = path.rsplit("/", 1)[0]
        if parent in extra:
            continue  # deleted with its parent
        steps.append(
            Step(
                f"{res} resource {path}",
                "delete",
                "not in the routes table",
                act.delete_resource(path),
                touches_api=True,
            )
        )
    want_gw = api.gateway_parameters()
    for rtype in ("DEFAULT_4XX", "DEFAULT_5XX"):
        have = (live.gateway_responses.get(rtype) if live else None) or {}
        if any(have.get(k) != v for k, v in want_gw.items()):
            steps.append(
                Step(
                    f"{res} gateway-response {rtype}",
                    "update" if have else "create",
                    "CORS headers missing" if not have else "CORS headers differ",
                    act.put_gateway_response(rtype),
                    touches_api=True,
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
    return [
        Step(
            f"{res} binaryMediaTypes",
            "update",
            f"binary media types differ ({why})",
            act.patch_binary_media_types(tuple(add), tuple(remove)),
            touches_api=True,
        )
    ]


def plan_deployment(d: Desired, obs: Observed, api_changed: bool) -> list[Step]:
    res = f"apigateway.stage {d.names.stage}"
    live = obs.api
    if live is None or not live.stage_exists:
        return [Step(res, "create", "stage missing: deploy the API", act.create_deployment)]
    if api_changed:
        return [Step(res, "update", "API changed: new deployment", act.create_deployment)]
    if live.stage_fingerprint != d.api.fingerprint:
        return [Step(res, "update", "stage runs an older API definition", act.create_deployment)]
    return []


def plan_permission(d: Desired, obs: Observed) -> list[Step]:
    res = f"lambda.permission {d.names.permission_sid}"
    statements = obs.function.policy if obs.function else []
    ours = [s for s in statements if s.get("Sid") == d.names.permission_sid]
    api_id = obs.api.id if obs.api else None
    if not ours:
        return [Step(res, "create", "API Gateway may not invoke the function", act.add_permission)]
    cond = ours[0].get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
    want = d.source_arn(api_id) if api_id else None
    if cond != want:
        return [
            Step(res, "delete", "scoped to another API or stage", act.remove_permission),
            Step(res, "create", "scope it to this API's stage", act.add_permission),
        ]
    return []


def plan_usage_plan(d: Desired, obs: Observed) -> list[Step]:
    p = d.usage_plan
    res = f"apigateway.usage_plan {p.name}"
    steps: list[Step] = []
    live = obs.plan
    if live is None:
        steps.append(Step(res, "create", "missing", act.create_usage_plan))
    else:
        diffs: list[str] = []
        ops: list[dict[str, str]] = []
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
            steps.append(
                Step(
                    res,
                    "update",
                    ", ".join(diffs) + " differ",
                    act.patch_usage_plan(lambda ctx, ops=ops: ops),
                )
            )
        api_id = obs.api.id if obs.api else None
        stages = [(s.get("apiId"), s.get("stage")) for s in live.api_stages]
        if (api_id, d.names.stage) not in stages:
            steps.append(
                Step(
                    f"{res} stage",
                    "update",
                    "not bound to this API's stage",
                    act.patch_usage_plan(_stage_ops(stages, d.names.stage)),
                )
            )
    steps += plan_keys(d, obs)
    return steps


def _stage_ops(stages: list[tuple[Any, Any]], stage: str) -> Any:
    def ops(ctx: Context) -> list[dict[str, str]]:
        out = [
            {"op": "remove", "path": "/apiStages", "value": f"{a}:{s}"}
            for a, s in stages
            if s == stage and a != ctx.rest_api_id
        ]
        out.append({"op": "add", "path": "/apiStages", "value": f"{ctx.rest_api_id}:{stage}"})
        return out

    return ops


def _fmt(rate: float) -> str:
    # "5" rather than "5.0": both are valid rates, and integral text parses everywhere.
    return str(int(rate)) if float(rate).is_integer() else str(rate)


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def plan_keys(d: Desired, obs: Observed) -> list[Step]:
    if any(k.in_plan for k in obs.keys) and obs.plan is not None:
        return []
    first = d.usage_plan.first_key_name
    existing = [k for k in obs.keys if k.name == first]
    if existing:
        return [
            Step(
                f"apigateway.api_key {first}",
                "update",
                "not in the usage plan",
                act.attach_key(existing[0].id),
            )
        ]
    return [
        Step(
            f"apigateway.api_key {first}",
            "create",
            "the usage plan has no key",
            act.create_first_key,
        )
    ]


def plan(
    d: Desired,
    obs: Observed,
    *,
    state_env: list[str] | None = None,
    project_dir: Path | None = None,
) -> list[Step]:
    """Every step needed to make AWS match `d`, in dependency order."""
    steps = plan_role(d, obs)
    steps += plan_logs(d, obs)
    steps += plan_image(d, obs, project_dir or Path.cwd())
    steps += plan_function(d, obs, state_env or [])
    api_steps = plan_api(d, obs)
    steps += api_steps
    steps += plan_permission(d, obs)
    steps += plan_deployment(d, obs, api_changed=bool(api_steps))
    steps += plan_usage_plan(d, obs)
    return steps
