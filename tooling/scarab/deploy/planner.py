"""Compare desired resources with what AWS has and emit the steps that close the gap.

Pure: no AWS calls. Given the same Desired and Observed, the same plan comes out, as
values (deploy/instructions.py), so plans are testable without any server. An empty
plan means "up to date".

The API Gateway steps are built in deploy/planner_api.py.

Ids that exist before the plan runs (the REST API, its resources, the usage plan) are
referred to by `Ref`; `seed_vars` gives their observed values, and instructions that
create them keep theirs under the same names.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from scarab import __version__
from scarab.deploy.instructions import (
    ApiCall,
    FileBytes,
    Instruction,
    PushImage,
    Step,
    Sub,
    UploadArtifact,
    WaitForFunction,
)
from scarab.deploy.models import NO_VPC, UNTAGGED_ENV, Desired, FunctionSpec, live_vpc
from scarab.deploy.planner_alarms import plan_alarms
from scarab.deploy.planner_api import (
    API_KEY_ID,
    REST_API_ID,
    USAGE_PLAN_ID,
    deleting,
    key_instructions,
    method_drift,
    plan_api,
    plan_deployment,
    plan_usage_plan,
    resource_var,
)
from scarab.deploy.planner_cache import plan_cache
from scarab.deploy.planner_jobs import plan_jobs_invoke, plan_jobs_store
from scarab.deploy.planner_registry import plan_registry_store, plan_seeds
from scarab.deploy.planner_snapstart import (
    check_snapstart,
    snapstart_create_params,
    snapstart_drift,
    snapstart_update_params,
)
from scarab.deploy.planner_uploads import plan_uploads
from scarab.deploy.planner_url import plan_url, url_var
from scarab.deploy.planner_versions import (
    Provenance,
    plan_prune,
    plan_release,
    planned_release,
)
from scarab.deploy.reader import Observed, ObservedFunction, ObservedRole, ObservedUnit
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.errors import ScarabError
from scarab.functions import ALL_ROUTES_NAME
from scarab.naming import TAG_MANAGED_ENV

__all__ = [
    "API_KEY_ID",
    "REST_API_ID",
    "USAGE_PLAN_ID",
    "key_instructions",
    "merged_environment",
    "method_drift",
    "plan",
    "seed_vars",
]


def seed_vars(obs: Observed) -> dict[str, Any]:
    """The ids the reader found, under the names the plan's `Ref`s use."""
    out: dict[str, Any] = {}
    if obs.api is not None:
        out[REST_API_ID] = obs.api.id
        out.update({resource_var(p): r["id"] for p, r in obs.api.resources.items()})
    if obs.plan is not None:
        out[USAGE_PLAN_ID] = obs.plan.id
    for key, unit in obs.units.items():
        if unit.function is not None and unit.function.alias_url is not None:
            out[url_var(key)] = unit.function.alias_url.get("FunctionUrl")
    return out


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
    # Scarab's by name, never in the tag (see models.UNTAGGED_ENV).
    return tagged | set(state_env) | UNTAGGED_ENV


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# IAM ---------------------------------------------------------------------------------


def plan_role(d: Desired, fn: FunctionSpec, unit: ObservedUnit) -> list[Step]:
    res = f"iam.role {fn.role_name}"
    role_name = fn.role_name
    steps: list[Step] = []
    role = unit.role
    if role is None:
        create = ApiCall(
            "iam",
            "CreateRole",
            {
                "RoleName": role_name,
                "AssumeRolePolicyDocument": json.dumps(d.role_trust),
                "Description": f"Execution role of the {fn.name} function (scarab)",
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
    for name, doc in fn.inline_policies.items():
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
    for name in sorted(set(inline) - set(fn.inline_policies)):
        if name == d.names.vpc_policy:
            continue  # after the function left its VPC (plan_vpc_release)
        if name in _SCARAB_POLICIES:
            # A policy scarab put there that this function no longer needs (the models
            # function reads no Gemini key); anyone else's is reported, never removed.
            delete = ApiCall("iam", "DeleteRolePolicy", {"RoleName": role_name, "PolicyName": name})
            why = deleting("grants what this function does not read")
            steps.append(Step(f"{res} inline {name}", "delete", why, (delete,)))
    return steps


# The inline policies scarab writes (deploy/models.py names them through Names).
_SCARAB_POLICIES = (
    "scarab-read-secret",
    "scarab-write-logs",
    "scarab-read-registry",
    "scarab-read-prediction-db",
    "scarab-use-cache",
    "scarab-vpc-network-interfaces",
    "scarab-invoke-endpoints",
    "scarab-use-uploads",
    "scarab-run-jobs",
)


def plan_vpc_release(d: Desired, fn: FunctionSpec, unit: ObservedUnit) -> list[Step]:
    """Delete the network-interface policy of a function that no longer runs in a VPC.
    Planned after the function's configuration update that detaches it: Lambda uses the
    role to release the interfaces, so the grant goes only once the function is out."""
    role = unit.role
    name = d.names.vpc_policy
    if role is None or name not in role.inline or name in fn.inline_policies:
        return []
    delete = ApiCall(
        "iam", "DeleteRolePolicy", {"RoleName": fn.role_name, "PolicyName": name},
        missing_ok=True,
    )  # fmt: skip
    why = deleting("the function runs in no VPC any more")
    return [Step(f"iam.role {fn.role_name} inline {name}", "delete", why, (delete,))]


def foreign_grants(role: ObservedRole) -> list[str]:
    """The inline and managed policies on `role` that scarab did not put there (the
    managed policy earlier versions attached is scarab's)."""
    inline = sorted(set(role.inline) - set(_SCARAB_POLICIES))
    attached = sorted(a for a in role.attached if not a.endswith(_BASIC_EXECUTION_SUFFIX))
    return inline + attached


_BASIC_EXECUTION_SUFFIX = ":policy/service-role/AWSLambdaBasicExecutionRole"


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


def plan_logs(d: Desired, fn: FunctionSpec, unit: ObservedUnit) -> list[Step]:
    group = fn.log_group
    res = f"logs.group {group}"
    steps = []
    days = fn.log_retention_days
    if not unit.log_group_exists:
        create = ApiCall("logs", "CreateLogGroup", {"logGroupName": group, "tags": d.tags})
        steps.append(Step(res, "create", "missing", (create,)))
    if unit.log_group_retention != days:
        why = f"retention {unit.log_group_retention or 'never expires'} -> {days} days"
        put = ApiCall(
            "logs", "PutRetentionPolicy", {"logGroupName": group, "retentionInDays": days}
        )
        steps.append(Step(f"{res} retention", "update", why, (put,)))
    return steps


# ECR and the image -------------------------------------------------------------------


def plan_image(d: Desired, obs: Observed, project_dir: Path) -> list[Step]:
    """The ECR repository and the stage's image (one image; each function runs its own
    handler from it)."""
    code = d.code
    if code.package != "image":
        return []
    repo = d.names.ecr_repository
    steps = []
    if obs.ecr_repository_uri is None:
        lifecycle = d.ecr_lifecycle_policy
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
            d.functions[0].architecture,
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


def _code(d: Desired, fn: FunctionSpec) -> tuple[list[Instruction], dict[str, Any]]:
    """Instructions that put the code where Lambda reads it, and the Code parameters."""
    code = fn.code
    if code.package == "image":
        return [], {"ImageUri": f"{code.image_repository}:{code.image_tag}"}
    assert code.zip_path is not None and code.zip_sha256_b64 is not None
    body = FileBytes(code.zip_path, _hex(code.zip_sha256_b64), code.zip_size)
    if not code.via_s3:
        return [], {"ZipFile": body}
    bucket = d.names.artifact_bucket(d.account_id, d.region)
    key = f"{fn.name}/{body.sha256}.zip"
    upload = UploadArtifact(bucket, key, body, expected_owner=d.account_id)
    return [upload], {"S3Bucket": bucket, "S3Key": key}


def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex()


def plan_artifact_bucket(d: Desired, obs: Observed) -> list[Step]:
    """The bucket a large zip goes through, created on first use and never public."""
    if not any(fn.code.via_s3 for fn in d.functions) or obs.artifact_bucket_exists:
        return []
    bucket = d.names.artifact_bucket(d.account_id, d.region)
    why = "missing (the zip is over Lambda's direct-upload limit)"
    return [create_artifact_bucket(bucket, d.region, d.account_id, why)]


def create_artifact_bucket(bucket: str, region: str, account_id: str, why: str) -> Step:
    """The step that creates the artifact bucket, private (the SageMaker target's
    model.tar.gz goes there too)."""
    params: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    # CreateBucket takes no expected owner: a bucket it creates is ours.
    create = ApiCall("s3", "CreateBucket", params)
    block = ApiCall(
        "s3",
        "PutPublicAccessBlock",
        {
            "Bucket": bucket,
            "ExpectedBucketOwner": account_id,
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    return Step(f"s3.bucket {bucket}", "create", why, (create, block))


def _image_config(fn: FunctionSpec) -> dict[str, Any]:
    # The image's CMD is the all-routes handler; each function runs its own.
    return {"Command": [fn.handler]}


def carried_environment(obs: Observed, state_env: list[str]) -> dict[str, str]:
    """Variables someone set by hand on a retired function (scarab never set them): a
    function created to replace it starts with them, so the move loses none."""
    out: dict[str, str] = {}
    for unit in obs.retired.values():
        if unit.function is not None:
            managed = previously_managed(unit.function, state_env)
            out.update({k: v for k, v in unit.function.env.items() if k not in managed})
    return out


def plan_function(
    d: Desired,
    fn: FunctionSpec,
    unit: ObservedUnit,
    state_env: list[str],
    carried: dict[str, str] | None = None,
) -> list[Step]:
    res = f"lambda.function {fn.name}"
    live = unit.function
    check_snapstart(fn, live)
    managed = previously_managed(live, state_env)
    wait = WaitForFunction(fn.name)
    if live is None:
        upload, code_params = _code(d, fn)
        params: dict[str, Any] = {
            "FunctionName": fn.name,
            "Role": fn.role_arn,
            "Code": code_params,
            "MemorySize": fn.memory,
            "Timeout": fn.timeout,
            "Architectures": [fn.architecture],
            # The config's values win; the tag names only the config's variables.
            "Environment": {"Variables": {**(carried or {}), **fn.environment}},
            "Tags": fn.tags,
            "Description": fn.description,
        }
        if fn.code.package == "image":
            params.update(PackageType="Image", ImageConfig=_image_config(fn))
        else:
            params.update(PackageType="Zip", Runtime=fn.runtime, Handler=fn.handler)
        if fn.vpc is not None:
            params["VpcConfig"] = fn.vpc.as_params()
        if fn.dead_letter_arn is not None:
            params["DeadLetterConfig"] = {"TargetArn": fn.dead_letter_arn}
        params.update(snapstart_create_params(fn))
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
        upload, code_params = _code(d, fn)
        update = ApiCall(
            "lambda",
            "UpdateFunctionCode",
            {"FunctionName": fn.name, "Architectures": [fn.architecture], **code_params},
        )
        steps.append(Step(f"{res} code", "update", code_reason, (*upload, update, wait)))
    env = merged_environment(fn.environment, live.env, managed)
    live_tags = dict(live.tags)
    diffs = []
    if env != live.env:
        changed = sorted(k for k in set(env) | set(live.env) if env.get(k) != live.env.get(k))
        diffs.append("environment " + ",".join(changed))
    for key, want in (("MemorySize", fn.memory), ("Timeout", fn.timeout), ("Role", fn.role_arn)):
        if cfg.get(key) != want:
            diffs.append(f"{key} {cfg.get(key)} -> {want}")
    if fn.code.package == "zip":
        for key, want_s in (("Runtime", fn.runtime), ("Handler", fn.handler)):
            if cfg.get(key) != want_s:
                diffs.append(f"{key} {cfg.get(key)} -> {want_s}")
    else:
        live_image = (cfg.get("ImageConfigResponse") or {}).get("ImageConfig") or {}
        if live_image.get("Command") != [fn.handler]:
            diffs.append(f"image command -> {fn.handler}")
    have_vpc = live_vpc(cfg)
    if have_vpc != fn.vpc:
        if fn.vpc is None:
            diffs.append(f"VPC: leaves [functions.{fn.key}.vpc]'s subnets (no VPC)")
        elif have_vpc is None:
            diffs.append(f"VPC: none -> subnets {', '.join(fn.vpc.subnet_ids)}")
        else:
            diffs.append(f"VPC differs from [functions.{fn.key}.vpc]")
    snapstart_change = snapstart_drift(fn, cfg)
    if snapstart_change:
        diffs.append(snapstart_change)
    live_dlq = (cfg.get("DeadLetterConfig") or {}).get("TargetArn") or None
    if not live.dead_letter_unreported and live_dlq != fn.dead_letter_arn:
        diffs.append(f"dead-letter queue {live_dlq or 'none'} -> {fn.dead_letter_arn or 'none'}")
    if diffs:
        params = {
            "FunctionName": fn.name,
            "Role": fn.role_arn,
            "MemorySize": fn.memory,
            "Timeout": fn.timeout,
            "Environment": {"Variables": env},
        }
        if fn.vpc is not None:
            params["VpcConfig"] = fn.vpc.as_params()
        elif have_vpc is not None:
            params["VpcConfig"] = NO_VPC  # empty lists: Lambda detaches the function
        if fn.code.package == "zip":
            params.update(Runtime=fn.runtime, Handler=fn.handler)
        else:
            params["ImageConfig"] = _image_config(fn)
        if fn.dead_letter_arn is not None or live_dlq is not None:
            # An empty TargetArn removes it.
            params["DeadLetterConfig"] = {"TargetArn": fn.dead_letter_arn or ""}
        params.update(snapstart_update_params(fn, cfg))
        update = ApiCall(
            "lambda", "UpdateFunctionConfiguration", params, retry_while_role_not_ready=True
        )
        tagged = set(live.tags.get(TAG_MANAGED_ENV, "").split())
        if set(fn.environment) - tagged - UNTAGGED_ENV:
            # Name the new variables as scarab's before setting them: a run killed in
            # between must not leave a variable on the function that nothing says is ours.
            named = (tagged | set(fn.environment)) - UNTAGGED_ENV
            during = {**fn.tags, TAG_MANAGED_ENV: " ".join(sorted(named))}
            tag = ApiCall("lambda", "TagResource", {"Resource": fn.arn, "Tags": during})
            steps.append(Step(f"{res} tags", "update", "names the new variables", (tag,)))
            live_tags = {**live.tags, **during}
        steps.append(Step(f"{res} configuration", "update", "; ".join(diffs), (update, wait)))
    if any(live_tags.get(k) != v for k, v in fn.tags.items()):
        tag = ApiCall("lambda", "TagResource", {"Resource": fn.arn, "Tags": fn.tags})
        steps.append(Step(f"{res} tags", "update", "tags differ", (tag,)))
    return steps


def _add_permission(d: Desired, fn: FunctionSpec) -> ApiCall:
    return ApiCall(
        "lambda",
        "AddPermission",
        {
            "FunctionName": fn.name,
            # On the alias the API invokes: $LATEST and the versions are not callable.
            "Qualifier": LIVE_ALIAS,
            "StatementId": d.names.alias_permission_sid,
            "Action": "lambda:InvokeFunction",
            "Principal": "apigateway.amazonaws.com",
            # This API's stage (any method and path) and nothing else.
            "SourceArn": Sub(d.source_arn("${" + REST_API_ID + "}")),
        },
    )


def plan_permission(d: Desired, fn: FunctionSpec, unit: ObservedUnit, obs: Observed) -> list[Step]:
    """API Gateway's permission to invoke the `live` alias of `fn`, scoped to this API's
    stage (the alias exists by then: the versions steps come first)."""
    sid = d.names.alias_permission_sid
    res = f"lambda.permission {fn.name}:{LIVE_ALIAS} {sid}"
    statements = unit.function.alias_policy if unit.function else []
    ours = [s for s in statements if s.get("Sid") == sid]
    api_id = obs.api.id if obs.api else None
    if not ours:
        why = "API Gateway may not invoke the live alias"
        return [Step(res, "create", why, (_add_permission(d, fn),))]
    cond = ours[0].get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
    want = d.source_arn(api_id) if api_id else None
    if cond != want:
        remove = ApiCall(
            "lambda",
            "RemovePermission",
            {"FunctionName": fn.name, "Qualifier": LIVE_ALIAS, "StatementId": sid},
        )
        return [
            Step(res, "delete", deleting("scoped to another API or stage"), (remove,)),
            Step(res, "create", "scope it to this API's stage", (_add_permission(d, fn),)),
        ]
    return []


def plan_unqualified_permission(d: Desired, fn: FunctionSpec, unit: ObservedUnit) -> list[Step]:
    """Remove the permission on the function itself that earlier scarab versions gave
    API Gateway: planned after the deployment that moves the stage to the alias, so
    no request finds neither permission."""
    sid = d.names.permission_sid
    if unit.function is None or not any(s.get("Sid") == sid for s in unit.function.policy):
        return []
    remove = ApiCall(
        "lambda", "RemovePermission", {"FunctionName": fn.name, "StatementId": sid},
        missing_ok=True,
    )  # fmt: skip
    why = deleting(f"the API invokes the {LIVE_ALIAS} alias now, with its own permission")
    return [Step(f"lambda.permission {fn.name} {sid}", "delete", why, (remove,))]


def planned_environment(
    fn: FunctionSpec, unit: ObservedUnit, state_env: list[str], carried: dict[str, str]
) -> dict[str, str]:
    """The environment function `fn`'s $LATEST has once plan_function's steps ran (what
    a version published after them freezes)."""
    if unit.function is None:
        return {**carried, **fn.environment}
    managed = previously_managed(unit.function, state_env)
    return merged_environment(fn.environment, unit.function.env, managed)


def _ours(tags: dict[str, str], d: Desired) -> bool:
    """Tagged for this stage: only then is an older layout's resource deleted."""
    return all(tags.get(k) == v for k, v in d.names.tags.items())


def plan_retire(d: Desired, obs: Observed) -> list[Step]:
    """Delete the functions of an older layout, after the API stopped routing to them.

    Their log groups stay (with their retention), so no log line is lost; `scarab
    destroy` removes them with the stage. A role another region's function still
    uses stays too, and so does a role with grants scarab did not make (they are the
    user's; the deploy warns, see guards.migration_warnings).
    """
    steps: list[Step] = []
    for old in d.retired:
        unit = obs.retired.get(old.function)
        if unit is None:
            continue
        why = deleting(
            f"replaced by {', '.join(f.name for f in d.functions)}; the API no longer routes to it"
        )
        if unit.function is not None and _ours(unit.function.tags, d):
            delete = ApiCall(
                "lambda", "DeleteFunction", {"FunctionName": old.function}, missing_ok=True
            )
            steps.append(Step(f"lambda.function {old.function}", "delete", why, (delete,)))
        role = unit.role
        if (
            role is not None
            and not unit.role_users
            and _ours(role.tags, d)
            and not (foreign_grants(role))
        ):
            calls = [
                ApiCall(
                    "iam", "DetachRolePolicy", {"RoleName": old.role, "PolicyArn": arn},
                    missing_ok=True,
                )
                for arn in sorted(role.attached)
            ]  # fmt: skip
            calls += [
                ApiCall(
                    "iam", "DeleteRolePolicy", {"RoleName": old.role, "PolicyName": name},
                    missing_ok=True,
                )
                for name in sorted(role.inline)
            ]  # fmt: skip
            calls.append(ApiCall("iam", "DeleteRole", {"RoleName": old.role}, missing_ok=True))
            steps.append(Step(f"iam.role {old.role}", "delete", why, tuple(calls)))
    return steps


def plan(
    d: Desired,
    obs: Observed,
    *,
    state_env: dict[str, list[str]] | None = None,
    project_dir: Path | None = None,
    recorded_urls: frozenset[str] = frozenset(),
    provenance: Provenance | None = None,
    canary_percent: float | None = None,
) -> list[Step]:
    """Every step needed to make AWS match `d`, in dependency order. `recorded_urls`:
    the functions (by catalog name) whose Function URL the state record says scarab made.
    `provenance` goes into the description of each version published; `canary_percent`:
    a published version gets that share of `live`'s traffic (planner_versions).

    Each function is complete (role, logs, code, a version, the `live` alias, the
    permission) before the API routes to it, and a retired function goes only after the
    new deployment stopped using it: a stage moves to a new layout with no request
    failing in between.
    """
    steps: list[Step] = []
    for fn in d.functions:
        unit = obs.unit(fn.key)
        steps += plan_role(d, fn, unit)
        steps += plan_logs(d, fn, unit)
    # The registry before the functions: the models function reads it from its first call.
    steps += plan_registry_store(d, obs.registry)
    steps += plan_seeds(d, obs.registry)
    # The cache table too: every function reads it from its first call.
    steps += plan_cache(d, obs.cache)
    # The uploads bucket, and the jobs' table and queue: the function's DeadLetterConfig
    # names the queue, which Lambda checks exists.
    steps += plan_uploads(d, obs.uploads)
    steps += plan_jobs_store(d, obs.jobs)
    steps += plan_image(d, obs, project_dir or Path.cwd())
    steps += plan_artifact_bucket(d, obs)
    carried = carried_environment(obs, (state_env or {}).get(ALL_ROUTES_NAME, []))
    made_by = provenance or Provenance(commit=None, scarab=__version__)
    for fn in d.functions:
        env = (state_env or {}).get(fn.key, [])
        unit = obs.unit(fn.key)
        steps += plan_function(d, fn, unit, env, carried)
        steps += plan_vpc_release(d, fn, unit)
        environment = planned_environment(fn, unit, env, carried)
        steps += plan_release(fn, unit, environment, made_by, canary_percent)
        release = planned_release(fn, unit, environment, canary_percent)
        steps += plan_prune(fn, unit, release)
    # On the `live` alias the releases made: its retries and the queue's mapping to it.
    steps += plan_jobs_invoke(d, obs.jobs)
    # The alias's permission before the integrations name the alias; on a first deploy
    # after the API exists (the permission names it). Either way before the deployment.
    permissions = [s for fn in d.functions for s in plan_permission(d, fn, obs.unit(fn.key), obs)]
    if obs.api is not None:
        steps += permissions
    api_steps = plan_api(d, obs)
    steps += api_steps
    if obs.api is None:
        steps += permissions
    for fn in d.functions:
        steps += plan_url(d, fn, obs.unit(fn.key), fn.key in recorded_urls)
    steps += plan_deployment(d, obs, api_changed=bool(api_steps))
    for fn in d.functions:
        steps += plan_unqualified_permission(d, fn, obs.unit(fn.key))
    steps += plan_usage_plan(d, obs)
    steps += plan_retire(d, obs)
    # Last: the alarms watch what the steps above made (the functions' alias, the API).
    steps += plan_alarms(d, obs.alarms)
    return steps
