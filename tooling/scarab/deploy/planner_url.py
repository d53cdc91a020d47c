"""The Function URL part of the plan ([functions.<name>.url]). Pure, like deploy/planner.py
(which puts these steps after the function exists).

A URL with auth NONE needs a resource-based permission that lets anyone (Principal "*")
call `lambda:InvokeFunctionUrl` with FunctionUrlAuthType NONE; scarab's statement is
URL_PERMISSION_SID. Both are on the `live` alias (the URL runs what `live` serves); a
URL on the function itself, which earlier scarab versions made, is replaced (its
address changes: url_move_warnings says so). A URL is deleted only when scarab made it
(the state record names it), never one someone added by hand to a function with no
[functions.<name>.url].
"""

from __future__ import annotations

from typing import Any

from scarab.deploy.instructions import ApiCall, Step
from scarab.deploy.models import (
    URL_INVOKE_ACTION,
    URL_PERMISSION_SID,
    Desired,
    FunctionSpec,
    normalized_cors,
)
from scarab.deploy.planner_api import deleting
from scarab.deploy.reader import Observed, ObservedUnit
from scarab.deploy.release_models import LIVE_ALIAS


def url_var(key: str) -> str:
    """The plan variable holding function `key`'s Function URL once it exists."""
    return f"function_url_{key}"


def public_url_statement(statement: dict[str, Any]) -> bool:
    """True for scarab's permission as Lambda stores it: anyone may invoke the URL, for
    auth NONE only (Lambda puts FunctionUrlAuthType in a StringEquals condition)."""
    if statement.get("Sid") != URL_PERMISSION_SID:
        return False
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        principal = principal.get("AWS")
    cond = (statement.get("Condition") or {}).get("StringEquals") or {}
    auth = cond.get("lambda:FunctionUrlAuthType", statement.get("FunctionUrlAuthType"))
    return (
        principal == "*"
        and statement.get("Action") == URL_INVOKE_ACTION
        and statement.get("Effect", "Allow") == "Allow"
        and auth == "NONE"
    )


def _add_url_permission(fn: FunctionSpec) -> ApiCall:
    return ApiCall(
        "lambda",
        "AddPermission",
        {
            "FunctionName": fn.name,
            "Qualifier": LIVE_ALIAS,
            "StatementId": URL_PERMISSION_SID,
            "Action": URL_INVOKE_ACTION,
            "Principal": "*",
            # Only through the URL with auth NONE: not a licence to call Invoke.
            "FunctionUrlAuthType": "NONE",
        },
    )


def _remove_url_permission(fn: FunctionSpec, qualified: bool = True) -> ApiCall:
    alias = {"Qualifier": LIVE_ALIAS} if qualified else {}
    return ApiCall(
        "lambda",
        "RemovePermission",
        {"FunctionName": fn.name, **alias, "StatementId": URL_PERMISSION_SID},
        missing_ok=True,
    )


def url_move_warnings(d: Desired, obs: Observed) -> list[str]:
    """A warning for each Function URL a deploy moves from the function itself (where
    earlier scarab versions made it) to the `live` alias: Lambda gives the alias a new
    URL, so callers of the old one must be told."""
    out = []
    for fn in d.functions:
        live = obs.unit(fn.key).function
        if fn.url is not None and live is not None and live.url is not None:
            out.append(
                f"The Function URL of {fn.name} moves to its '{LIVE_ALIAS}' alias, and its"
                f" address changes: {live.url.get('FunctionUrl')} stops answering. Tell its"
                " callers the new URL (the deploy prints it; 'scarab status' shows it)."
            )
    return out


def plan_url(d: Desired, fn: FunctionSpec, unit: ObservedUnit, recorded: bool) -> list[Step]:
    """Create, update or delete function `fn`'s Function URL and its permission, on the
    `live` alias. A URL on the function itself (earlier scarab versions) goes first:
    an emulator that keeps one URL per function would otherwise lose the new one.
    `recorded`: the state record says scarab made the URL the function has."""
    res = f"lambda.url {fn.name}:{LIVE_ALIAS}"
    perm = f"lambda.permission {fn.name}:{LIVE_ALIAS} {URL_PERMISSION_SID}"
    live = unit.function
    want = fn.url
    steps: list[Step] = []
    own = live.url if live else None
    own_grant = [s for s in (live.policy if live else []) if s.get("Sid") == URL_PERMISSION_SID]
    if own_grant:
        why = deleting(f"the URL is the {LIVE_ALIAS} alias's, with its own permission")
        remove = (_remove_url_permission(fn, qualified=False),)
        steps.append(
            Step(f"lambda.permission {fn.name} {URL_PERMISSION_SID}", "delete", why, remove)
        )
    if own is not None and (want is not None or recorded or own_grant):
        delete = ApiCall(
            "lambda", "DeleteFunctionUrlConfig", {"FunctionName": fn.name}, missing_ok=True
        )
        if want is not None:
            why = deleting(
                f"replaced by a URL on the {LIVE_ALIAS} alias; {own.get('FunctionUrl')}"
                " stops answering"
            )
        else:
            why = deleting(f"[functions.{fn.key}.url] is no longer in scarab.toml")
        steps.append(Step(f"lambda.url {fn.name}", "delete", why, (delete,)))
    have = live.alias_url if live else None
    statements = live.alias_policy if live else []
    ours = [s for s in statements if s.get("Sid") == URL_PERMISSION_SID]
    qualified = {"FunctionName": fn.name, "Qualifier": LIVE_ALIAS}
    if want is None:
        if have is not None and (recorded or ours):
            delete = ApiCall("lambda", "DeleteFunctionUrlConfig", qualified, missing_ok=True)
            why = deleting(f"[functions.{fn.key}.url] is no longer in scarab.toml")
            steps.append(Step(res, "delete", why, (delete,)))
        if ours:
            why = deleting("the function has no public Function URL any more")
            steps.append(Step(perm, "delete", why, (_remove_url_permission(fn),)))
        return steps
    params: dict[str, Any] = {**qualified, "AuthType": want.auth, "Cors": want.cors}
    if have is None:
        create = ApiCall(
            "lambda",
            "CreateFunctionUrlConfig",
            params,
            output_var=url_var(fn.key),
            output_path="FunctionUrl",
        )
        steps.append(Step(res, "create", "missing", (create,)))
    else:
        diffs = []
        if have.get("AuthType") != want.auth:
            diffs.append(f"auth {have.get('AuthType')} -> {want.auth}")
        if normalized_cors(have.get("Cors")) != normalized_cors(want.cors):
            diffs.append(f"CORS differs from [functions.{fn.key}.url.cors]")
        if diffs:
            update = ApiCall(
                "lambda",
                "UpdateFunctionUrlConfig",
                params,
                output_var=url_var(fn.key),
                output_path="FunctionUrl",
            )
            steps.append(Step(res, "update", "; ".join(diffs), (update,)))
    good = [s for s in ours if public_url_statement(s)]
    if want.public and not good:
        calls: tuple[ApiCall, ...] = (_add_url_permission(fn),)
        if ours:  # a statement of that id that grants something else: replaced
            calls = (_remove_url_permission(fn), *calls)
        why = "auth NONE: Lambda answers 403 to everyone until the URL may be invoked publicly"
        steps.append(Step(perm, "create", why, calls))
    elif not want.public and ours:
        why = deleting("auth AWS_IAM: callers need IAM permission, not a public grant")
        steps.append(Step(perm, "delete", why, (_remove_url_permission(fn),)))
    return steps
