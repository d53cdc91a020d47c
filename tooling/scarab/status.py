"""`scarab status`: what is deployed for a stage, where it drifts from scarab.toml, and
grants on its role and function that scarab did not make (unmanaged_access)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scarab.aws import Aws, aws_errors
from scarab.config import ScarabConfig
from scarab.deploy import api_url
from scarab.deploy.guards import extra_access
from scarab.deploy.models import function_environment
from scarab.deploy.reader import find_rest_api, read_function, read_plan_and_keys, read_role
from scarab.errors import ScarabError
from scarab.stage import open_stage


def _drift(config: ScarabConfig, cfg: dict[str, Any], plan: Any) -> list[dict[str, Any]]:
    fn = config.function
    out: list[dict[str, Any]] = []

    def check(field: str, live: Any, want: Any) -> None:
        if live != want:
            out.append({"field": field, "live": live, "config": want})

    check("function.memory", cfg.get("MemorySize"), fn.memory)
    check("function.timeout", cfg.get("Timeout"), fn.timeout)
    check("function.architecture", (cfg.get("Architectures") or ["x86_64"])[0], fn.architecture)
    package = "image" if cfg.get("PackageType") == "Image" else "zip"
    check("function.package", package, fn.package)
    if package == "zip":
        check("function.runtime", cfg.get("Runtime"), fn.runtime)
    live_env = (cfg.get("Environment") or {}).get("Variables") or {}
    for key, want in sorted(function_environment(config).items()):
        check(f"environment.{key}", live_env.get(key), want)
    if plan is not None:
        check("api.throttle_rate", _f(plan.throttle.get("rateLimit")), config.api.throttle_rate)
        check("api.throttle_burst", _i(plan.throttle.get("burstLimit")), config.api.throttle_burst)
        check("api.quota_limit", _i(plan.quota.get("limit")), config.api.quota_limit)
        check("api.quota_period", plan.quota.get("period"), config.api.quota_period)
    return out


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _i(v: Any) -> int | None:
    return None if v is None else int(v)


def status(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> dict[str, Any]:
    """The stage as deployed: ids, URL, keys (never values), function state and drift."""
    st = open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
    names = st.names
    with aws_errors():
        fn = read_function(st.aws, names)
        api_id = find_rest_api(st.aws, names, st.state.rest_api_id)
        plan, keys = read_plan_and_keys(st.aws, names, st.state.usage_plan_id)
        role = read_role(st.aws, names)
    if fn is None and api_id is None and plan is None:
        raise ScarabError(
            f"Nothing is deployed for stage {names.stage} here. Run 'scarab deploy' first."
        )
    cfg = fn.config if fn else {}
    return {
        "app": names.app,
        "stage": names.stage,
        "region": st.aws.region,
        "function_name": names.function,
        "function_arn": cfg.get("FunctionArn"),
        "rest_api_id": api_id,
        "url": api_url(st.aws, api_id, names.stage, project_dir),
        "usage_plan_id": plan.id if plan else None,
        "api_keys": [
            {"id": k.id, "name": k.name, "enabled": k.enabled, "in_plan": k.in_plan} for k in keys
        ],
        "log_group": names.log_group,
        "function_state": cfg.get("State"),
        "last_update_status": cfg.get("LastUpdateStatus"),
        "last_modified": cfg.get("LastModified"),
        "package": "image" if cfg.get("PackageType") == "Image" else "zip",
        "code_sha256": cfg.get("CodeSha256"),
        "image_digest": (fn.code.get("ResolvedImageUri") if fn else None),
        "drift": _drift(config, cfg, plan) if fn else [],
        # Grants scarab did not make: a redeploy leaves them, so they are listed apart.
        "unmanaged_access": extra_access(names, role, fn, st.aws.region),
    }
