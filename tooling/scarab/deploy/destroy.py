"""`scarab destroy`: remove everything a stage created, in dependency order,
tolerating pieces that are already gone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from scarab.aws import Aws, call, error_code, explain
from scarab.config import ScarabConfig
from scarab.deploy.guards import role_users
from scarab.deploy.reader import find_rest_api, find_usage_plan, read_plan_and_keys
from scarab.deploy.state import delete_state
from scarab.errors import ScarabError
from scarab.stage import open_stage

_GONE = {
    "NotFoundException",
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NoSuchEntityException",
    "RepositoryNotFoundException",
}


def _quietly(fn: Callable[..., Any], **params: Any) -> bool:
    """Call; True if it did something, False if the target was already gone."""
    try:
        call(fn, **params)
        return True
    except Exception as exc:
        if error_code(exc) in _GONE:
            return False
        raise


def destroy(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    include_images: bool = False,
    aws: Aws | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Delete the stage's resources; returns what was removed (one line each)."""
    st = open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
    names, a = st.names, st.aws
    apigw, lam, iam, logs = (a.client(s) for s in ("apigateway", "lambda", "iam", "logs"))
    removed: list[str] = []

    def note(what: str) -> None:
        removed.append(what)
        if progress:
            progress(f"deleted {what}")

    with st.lock("destroy"):
        try:
            plan = find_usage_plan(a, names, st.state.usage_plan_id)
            _, keys = read_plan_and_keys(a, names, st.state.usage_plan_id)
            for key in keys:
                if plan is not None and key.in_plan:
                    _quietly(apigw.delete_usage_plan_key, usagePlanId=plan["id"], keyId=key.id)
                if _quietly(apigw.delete_api_key, apiKey=key.id):
                    note(f"api key {key.name} ({key.id})")
            # Every plan of that name: duplicates (a concurrent deploy's) go too.
            seen: set[str] = set()
            while plan is not None and plan["id"] not in seen:
                seen.add(plan["id"])
                if _delete_usage_plan(apigw, plan):
                    note(f"usage plan {names.usage_plan} ({plan['id']})")
                plan = find_usage_plan(a, names, None)
            while (api_id := find_rest_api(a, names, st.state.rest_api_id)) is not None:
                if not _quietly(apigw.delete_rest_api, restApiId=api_id):
                    break
                note(f"rest api {names.rest_api} ({api_id})")
            if _quietly(
                lam.remove_permission, FunctionName=names.function, StatementId=names.permission_sid
            ):
                note(f"permission {names.permission_sid}")
            if _quietly(lam.delete_function, FunctionName=names.function):
                note(f"function {names.function}")
            if _quietly(logs.delete_log_group, logGroupName=names.log_group):
                note(f"log group {names.log_group}")
            # IAM is global: the role goes only once no function of this name uses it anywhere.
            users = role_users(a, names.function, names.role)
            if not users:
                _delete_role(iam, names.role, note)
            if include_images and _quietly(
                a.client("ecr").delete_repository, repositoryName=names.ecr_repository, force=True
            ):
                note(f"ecr repository {names.ecr_repository}")
        except Exception as exc:
            raise explain(exc) from None
    delete_state(st.project_dir, names.stage, a.endpoint_url)
    if users:
        done = f"Removed {len(removed)} resources of stage {names.stage} in {a.region}, but"
        raise ScarabError(
            f"{done} kept the IAM role {names.role}: {'; '.join(users)}."
            + _role_advice(a.region, users)
        )
    return removed


def _role_advice(region: str, users: list[str]) -> str:
    others = sorted({u.rsplit(" in ", 1)[1].split()[0] for u in users if "still uses" in u})
    if others and others != [region]:
        return "".join(
            f" Run 'scarab destroy --region {r}' to remove that stage (and the role)."
            for r in others
            if r != region
        )
    return (
        " Re-run 'scarab destroy' once the function is gone; it then removes the role."
        " If you are sure nothing uses it: aws iam delete-role --role-name"
        " (after detaching its policies)."
    )


def _delete_usage_plan(apigw: Any, plan: dict[str, Any]) -> bool:
    # A usage plan cannot be deleted while it still lists API stages.
    for stage in plan.get("apiStages") or []:
        _quietly(
            apigw.update_usage_plan,
            usagePlanId=plan["id"],
            patchOperations=[
                {
                    "op": "remove",
                    "path": "/apiStages",
                    "value": f"{stage['apiId']}:{stage['stage']}",
                }
            ],
        )
    return _quietly(apigw.delete_usage_plan, usagePlanId=plan["id"])


def _delete_role(iam: Any, role: str, note: Callable[[str], None]) -> None:
    try:
        attached = call(iam.list_attached_role_policies, RoleName=role)["AttachedPolicies"]
        inline = call(iam.list_role_policies, RoleName=role)["PolicyNames"]
    except Exception as exc:
        if error_code(exc) in _GONE:
            return
        raise
    for pol in attached:
        _quietly(iam.detach_role_policy, RoleName=role, PolicyArn=pol["PolicyArn"])
    for name in inline:
        _quietly(iam.delete_role_policy, RoleName=role, PolicyName=name)
    if _quietly(iam.delete_role, RoleName=role):
        note(f"role {role}")
