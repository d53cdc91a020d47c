"""Compare desired resources with what AWS has and emit the steps that close the gap.

Pure: no AWS calls. Given the same Desired and Observed, the same plan comes out, as
values (deploy/instructions.py), so plans are testable without any server. An empty
plan means "up to date".

Ids that exist before the plan runs (the REST API, its resources, the usage plan) are
referred to by `Ref`; `seed_vars` gives their observed values, and instructions that
create them keep theirs under the same names.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from scarab.deploy.instructions import (
    ApiCall,
    FileBytes,
    Instruction,
    PushImage,
    Ref,
    Step,
    Sub,
    UploadArtifact,
    WaitForFunction,
)
from scarab.deploy.models import ApiSpec, Desired, MethodSpec
from scarab.deploy.reader import Observed, ObservedFunction
from scarab.errors import ScarabError
from scarab.naming import TAG_MANAGED_ENV, Names

REST_API_ID = "rest_api_id"
USAGE_PLAN_ID = "usage_plan_id"
API_KEY_ID = "api_key_id"


def resource_var(path: str) -> str:
    """The name under which the id of the API resource at `path` is kept."""
    return f"resource:{path}"


def seed_vars(obs: Observed) -> dict[str, Any]:
    """The ids the reader found, under the names the plan's `Ref`s use."""
    out: dict[str, Any] = {}
    if obs.api is not None:
        out[REST_API_ID] = obs.api.id
        out.update({resource_var(p): r["id"] for p, r in obs.api.resources.items()})
    if obs.plan is not None:
        out[USAGE_PLAN_ID] = obs.plan.id
    return out


def deleting(why: str) -> str:
    """A delete step's reason says that it deletes."""
    return f"deletes it: {why}"


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


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# IAM ---------------------------------------------------------------------------------


def plan_role(d: Desired, obs: Observed) -> list[Step]:
    res = f"iam.role {d.names.role}"
    role_name = d.names.role
    steps: list[Step] = []
    role = obs.role
    if role is None:
        create = ApiCall(
            "iam",
            "CreateRole",
            {
                "RoleName": role_name,
                "AssumeRolePolicyDocument": json.dumps(d.role_trust),
                "Description": f"Execution role of the {d.names.function} function (scarab)",
                "Tags": _tag_list(d.tags),
            },
        )
        steps.append(Step(res, "create", "missing", (create,)))
        attached: set[str] = set()
        inline: dict[str, dict[str, Any]] = {}
    else:
        if _norm_trust(role.trust) != _norm_trust(d.role_trust):
            update = ApiCall(
                "iam",
                "UpdateAssumeRolePolicy",
                {"RoleName": role_name, "PolicyDocument": json.dumps(d.role_trust)},
            )
            steps.append(Step(res, "update", "trust policy is not Lambda's", (update,)))
        attached = role.attached
        inline = role.inline
    for arn in d.managed_policy_arns:
        if arn not in attached:
            name = arn.rsplit("/", 1)[1]
            attach = ApiCall("iam", "AttachRolePolicy", {"RoleName": role_name, "PolicyArn": arn})
            steps.append(Step(f"{res} policy {name}", "create", "not attached", (attach,)))
    for name, doc in d.inline_policies.items():
        have = inline.get(name)
        if have != doc:
            put = ApiCall(
                "iam",
                "PutRolePolicy",
                {"RoleName": role_name, "PolicyName": name, "PolicyDocument": json.dumps(doc)},
            )
            steps.append(
                Step(
                    f"{res} inline {name}",
                    "create" if have is None else "update",
                    "missing" if have is None else "grants something other than scarab's policy",
                    (put,),
                )
            )
    for arn in d.retired_policy_arns:
        if arn in attached:
            name = arn.rsplit("/", 1)[1]
            detach = ApiCall("iam", "DetachRolePolicy", {"RoleName": role_name, "PolicyArn": arn})
            steps.append(
                Step(
                    f"{res} policy {name}",
                    "delete",
                    deleting("grants more than the function needs (logs on every group)"),
                    (detach,),
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


# Logs --------------------------------------------------------------------------------


def plan_logs(d: Desired, obs: Observed) -> list[Step]:
    group = d.names.log_group
    res = f"logs.group {group}"
    steps = []
    if not obs.log_group_exists:
        create = ApiCall("logs", "CreateLogGroup", {"logGroupName": group, "tags": d.tags})
        steps.append(Step(res, "create", "missing", (create,)))
    if obs.log_group_retention != d.log_retention_days:
        why = (
            f"retention {obs.log_group_retention or 'never expires'} -> {d.log_retention_days} days"
        )
        put = ApiCall(
            "logs",
            "PutRetentionPolicy",
            {"logGroupName": group, "retentionInDays": d.log_retention_days},
        )
        steps.append(Step(f"{res} retention", "update", why, (put,)))
    return steps


# ECR and the image -------------------------------------------------------------------


def plan_image(d: Desired, obs: Observed, project_dir: Path) -> list[Step]:
    code = d.function.code
    if code.package != "image":
        return []
    repo = d.names.ecr_repository
    steps = []
    if obs.ecr_repository_uri is None:
        lifecycle = {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"keep the last {d.images_keep_last} images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": d.images_keep_last,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }
        create = ApiCall(
            "ecr",
            "CreateRepository",
            {
                "repositoryName": repo,
                "imageScanningConfiguration": {"scanOnPush": True},
                "imageTagMutability": "MUTABLE",
                "tags": _tag_list(d.tags),
            },
        )
        policy = ApiCall(
            "ecr",
            "PutLifecyclePolicy",
            {"repositoryName": repo, "lifecyclePolicyText": json.dumps(lifecycle)},
        )
        steps.append(Step(f"ecr.repository {repo}", "create", "missing", (create, policy)))
    if not obs.ecr_has_tag:
        push = PushImage(
            str(project_dir),
            d.function.architecture,
            str(code.image_repository),
            str(code.image_tag),
        )
        steps.append(
            Step(
                f"ecr.image {code.image_tag}",
                "create",
                "this image is not in ECR yet (build and push)",
                (push,),
            )
        )
    return steps


# Lambda ------------------------------------------------------------------------------


def _code(d: Desired) -> tuple[list[Instruction], dict[str, Any]]:
    """Instructions that put the code where Lambda reads it, and the Code parameters."""
    code = d.function.code
    if code.package == "image":
        return [], {"ImageUri": f"{code.image_repository}:{code.image_tag}"}
    assert code.zip_path is not None and code.zip_sha256_b64 is not None
    body = FileBytes(code.zip_path, _hex(code.zip_sha256_b64), code.zip_size)
    if not code.via_s3:
        return [], {"ZipFile": body}
    bucket = d.names.artifact_bucket(d.account_id, d.region)
    key = f"{d.names.function}/{body.sha256}.zip"
    upload = UploadArtifact(bucket, key, body, expected_owner=d.account_id)
    return [upload], {"S3Bucket": bucket, "S3Key": key}


def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex()


def plan_artifact_bucket(d: Desired, obs: Observed) -> list[Step]:
    """The bucket a large zip goes through, created on first use and never public."""
    if not d.function.code.via_s3 or obs.artifact_bucket_exists:
        return []
    bucket = d.names.artifact_bucket(d.account_id, d.region)
    params: dict[str, Any] = {"Bucket": bucket}
    if d.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": d.region}
    # CreateBucket takes no expected owner: a bucket it creates is ours.
    create = ApiCall("s3", "CreateBucket", params)
    block = ApiCall(
        "s3",
        "PutPublicAccessBlock",
        {
            "Bucket": bucket,
            "ExpectedBucketOwner": d.account_id,
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    why = "missing (the zip is over Lambda's direct-upload limit)"
    return [Step(f"s3.bucket {bucket}", "create", why, (create, block))]


def plan_function(d: Desired, obs: Observed, state_env: list[str]) -> list[Step]:
    fn = d.function
    res = f"lambda.function {fn.name}"
    live = obs.function
    managed = previously_managed(live, state_env)
    wait = WaitForFunction(fn.name)
    if live is None:
        upload, code_params = _code(d)
        params: dict[str, Any] = {
            "FunctionName": fn.name,
            "Role": d.role_arn,
            "Code": code_params,
            "MemorySize": fn.memory,
            "Timeout": fn.timeout,
            "Architectures": [fn.architecture],
            "Environment": {"Variables": dict(fn.environment)},
            "Tags": fn.tags,
            "Description": "Scarab image analysis (deployed by scarab)",
        }
        if fn.code.package == "image":
            params["PackageType"] = "Image"
        else:
            params.update(PackageType="Zip", Runtime=fn.runtime, Handler=fn.handler)
        create = ApiCall("lambda", "CreateFunction", params, retry_while_role_not_ready=True)
        return [Step(res, "create", "missing", (*upload, create, wait))]
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
        upload, code_params = _code(d)
        update = ApiCall(
            "lambda",
            "UpdateFunctionCode",
            {"FunctionName": fn.name, "Architectures": [fn.architecture], **code_params},
        )
        steps.append(Step(f"{res} code", "update", code_reason, (*upload, update, wait)))
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
        params = {
            "FunctionName": fn.name,
            "Role": d.role_arn,
            "MemorySize": fn.memory,
            "Timeout": fn.timeout,
            "Environment": {"Variables": env},
        }
        if fn.code.package == "zip":
            params.update(Runtime=fn.runtime, Handler=fn.handler)
        update = ApiCall(
            "lambda", "UpdateFunctionConfiguration", params, retry_while_role_not_ready=True
        )
        steps.append(Step(f"{res} configuration", "update", "; ".join(diffs), (update, wait)))
    if any(live.tags.get(k) != v for k, v in fn.tags.items()):
        tag = ApiCall("lambda", "TagResource", {"Resource": fn.arn, "Tags": fn.tags})
        steps.append(Step(f"{res} tags", "update", "tags differ", (tag,)))
    return steps


def _add_permission(d: Desired) -> ApiCall:
    return ApiCall(
        "lambda",
        "AddPermission",
        {
            "FunctionName": d.function.name,
            "StatementId": d.names.permission_sid,
            "Action": "lambda:InvokeFunction",
            "Principal": "apigateway.amazonaws.com",
            # This API's stage (any method and path) and nothing else.
            "SourceArn": Sub(d.source_arn("${" + REST_API_ID + "}")),
        },
    )


def plan_permission(d: Desired, obs: Observed) -> list[Step]:
    res = f"lambda.permission {d.names.permission_sid}"
    statements = obs.function.policy if obs.function else []
    ours = [s for s in statements if s.get("Sid") == d.names.permission_sid]
    api_id = obs.api.id if obs.api else None
    if not ours:
        why = "API Gateway may not invoke the function"
        return [Step(res, "create", why, (_add_permission(d),))]
    cond = ours[0].get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
    want = d.source_arn(api_id) if api_id else None
    if cond != want:
        remove = ApiCall(
            "lambda",
            "RemovePermission",
            {"FunctionName": d.function.name, "StatementId": d.names.permission_sid},
        )
        return [
            Step(res, "delete", deleting("scoped to another API or stage"), (remove,)),
            Step(res, "create", "scope it to this API's stage", (_add_permission(d),)),
        ]
    return []


# API Gateway -------------------------------------------------------------------------


def _apigw(operation: str, params: dict[str, Any], **kw: Any) -> ApiCall:
    return ApiCall("apigateway", operation, {"restApiId": Ref(REST_API_ID), **params}, **kw)


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
        integration = {
            **ids,
            "type": "AWS_PROXY",
            "integrationHttpMethod": "POST",
            "uri": api.integration_uri,
        }
        calls.append(_apigw("PutIntegration", integration))
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
                "requestTemplates": {"application/json": '{"statusCode": 200}'},
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
            steps.append(
                Step(
                    f"{res} {spec.http_method} {spec.path}",
                    "create" if current is None else "update",
                    why,
                    method_calls(spec, api, replace=current is not None),
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
    deploy = (
        _apigw("CreateDeployment", {"stageName": d.names.stage, "description": d.api.fingerprint}),
    )
    if live is None or not live.stage_exists:
        return [Step(res, "create", "stage missing: deploy the API", deploy)]
    if api_changed:
        return [Step(res, "update", "API changed: new deployment", deploy)]
    if live.stage_fingerprint != d.api.fingerprint:
        return [Step(res, "update", "stage runs an older API definition", deploy)]
    return []


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
    steps += plan_artifact_bucket(d, obs)
    steps += plan_function(d, obs, state_env or [])
    api_steps = plan_api(d, obs)
    steps += api_steps
    steps += plan_permission(d, obs)
    steps += plan_deployment(d, obs, api_changed=bool(api_steps))
    steps += plan_usage_plan(d, obs)
    return steps
