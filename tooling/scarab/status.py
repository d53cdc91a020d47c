"""`scarab status`: what is deployed for a stage, where it drifts from scarab.toml, and
grants on its role and function that scarab did not make (unmanaged_access)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scarab.aws import Aws, aws_errors
from scarab.config import ScarabConfig, prediction_db_secret_name
from scarab.deploy import api_url, shown_url
from scarab.deploy.guards import extra_access, prediction_log
from scarab.deploy.models import (
    LOG_ENABLED_ENV,
    VpcSpec,
    cache_spec,
    function_environment,
    function_settings,
    live_vpc,
    vpc_spec,
)
from scarab.deploy.reader import (
    find_rest_api,
    read_cache,
    read_function,
    read_jobs,
    read_legacy_unit,
    read_plan_and_keys,
    read_role,
    read_uploads,
)
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.errors import ScarabError
from scarab.functions import FUNCTIONS
from scarab.naming import FunctionNames, Names
from scarab.stage import open_stage


def _checker(out: list[dict[str, Any]]) -> Any:
    def check(field: str, live: Any, want: Any) -> None:
        if live != want:
            out.append({"field": field, "live": live, "config": want})

    return check


def _drift(config: ScarabConfig, key: str, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Where function `key` differs from its settings ([function] + [functions.<key>])."""
    fn = function_settings(config, key)
    out: list[dict[str, Any]] = []
    check = _checker(out)

    check("function.memory", cfg.get("MemorySize"), fn.memory)
    check("function.timeout", cfg.get("Timeout"), fn.timeout)
    check("function.architecture", (cfg.get("Architectures") or ["x86_64"])[0], fn.architecture)
    package = "image" if cfg.get("PackageType") == "Image" else "zip"
    check("function.package", package, fn.package)
    if package == "zip":
        check("function.runtime", cfg.get("Runtime"), fn.runtime)
    live_env = (cfg.get("Environment") or {}).get("Variables") or {}
    for name, want in sorted(function_environment(config, key).items()):
        check(f"environment.{name}", live_env.get(name), want)
    check("vpc", _vpc(live_vpc(cfg)), _vpc(vpc_spec(config.function_vpc(key))))
    return out


def _vpc(vpc: VpcSpec | None) -> dict[str, list[str]] | None:
    """A VpcConfig as status shows it ([functions.<name>.vpc]'s keys; None: no VPC)."""
    if vpc is None:
        return None
    return {"subnet_ids": list(vpc.subnet_ids), "security_group_ids": list(vpc.security_group_ids)}


def _api_drift(config: ScarabConfig, plan: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    check = _checker(out)
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
        found = [(names.function(f.name), read_function(st.aws, names.function(f.name),
                  st.state.functions.get(f.name, {}).get("url_on") == LIVE_ALIAS))
                 for f in FUNCTIONS]  # fmt: skip
        old = read_legacy_unit(st.aws, names)
        legacy = old.function if old else None
        api_id = find_rest_api(st.aws, names, st.state.rest_api_id)
        plan, keys = read_plan_and_keys(st.aws, names, st.state.usage_plan_id)
        roles = {fn.key: read_role(st.aws, fn) for fn, _ in found}
        cache_live = read_cache(st.aws, names.cache_table)
        bucket = names.uploads_bucket(st.aws.account_id, st.aws.region)
        uploads_live = read_uploads(st.aws, bucket)
        jobs_live = read_jobs(st.aws, names, names.function("analyze"))
        log_wanted, _ = prediction_log(st.aws, config)
    if all(f is None for _, f in found) and legacy is None and api_id is None and plan is None:
        raise ScarabError(
            f"Nothing is deployed for stage {names.stage} here. Run 'scarab deploy' first."
        )
    functions = {
        fn.key: _function_status(config, fn, live)
        for fn, live in found
    }  # fmt: skip
    for fn, _ in found:  # where a running `scarab serve` answers the URL, when it does
        entry = functions[fn.key]
        entry["url"] = shown_url(st.aws, project_dir, fn.function, entry["url"])
    if legacy is not None:
        # A stage deployed before the split, not yet migrated: the next deploy does it.
        functions["all"] = _function_status(config, names.legacy, legacy)
    # The function that answers /analyze: the analyze function, or the old single one
    # while the stage is not migrated yet.
    main = functions["analyze"]
    if not main["deployed"] and "all" in functions:
        main = functions["all"]
    owned = [(fn, roles[fn.key], live) for fn, live in found]
    if old is not None:
        owned.append((names.legacy, old.role, old.function))
    unmanaged = [
        item
        for fn, role, live in owned
        for item in extra_access(names, fn, role, live, st.aws.region)
    ]
    return {
        "app": names.app,
        "stage": names.stage,
        "region": st.aws.region,
        # The analyze function's, as earlier scarab versions reported; all under functions.
        "function_name": main["function_name"],
        "function_arn": main["function_arn"],
        "rest_api_id": api_id,
        "url": api_url(st.aws, api_id, names.stage, project_dir),
        "usage_plan_id": plan.id if plan else None,
        "api_keys": [
            {"id": k.id, "name": k.name, "enabled": k.enabled, "in_plan": k.in_plan} for k in keys
        ],
        **{k: main[k] for k in _MAIN_FIELDS},
        "cache": _cache_status(config, cache_live),
        "uploads": {
            "bucket": bucket,
            "exists": uploads_live.bucket_exists,
            "max_mb": config.uploads.max_mb,
        },
        "jobs": _jobs_status(config, names, jobs_live),
        "prediction_log": _log_status(config, found, log_wanted),
        # Every difference: the API's, the cache's, the log's, then each function's (named
        # in "function").
        "drift": _api_drift(config, plan)
        + _cache_drift(config, st.aws, cache_live)
        + _jobs_drift(config, uploads_live, jobs_live)
        + _log_drift(found, log_wanted)
        + [{**d, "function": key} for key, fn in functions.items() for d in fn["drift"]],
        "functions": functions,
        # Grants scarab did not make: a redeploy leaves them, so they are listed apart.
        "unmanaged_access": unmanaged,
    }


def _cache_wanted(config: ScarabConfig, aws: Aws) -> bool:
    spec = cache_spec(config, account_id=aws.account_id, region=aws.region, partition="aws")
    return spec is not None


def _cache_status(config: ScarabConfig, live: Any) -> dict[str, Any]:
    """The shared response cache: its table as [cache] wants it, and as found."""
    return {
        "ttl_seconds": config.cache.ttl_seconds,
        "shared": config.cache.shared,
        "table": Names(config.app, config.stage).cache_table,
        "table_exists": live.table_exists,
        "table_ttl_enabled": live.ttl_enabled,
    }


def _cache_drift(config: ScarabConfig, aws: Aws, live: Any) -> list[dict[str, Any]]:
    """The table [cache] asks for, missing or with DynamoDB's TTL off (a deploy repairs
    both; without the table every request counts a CacheErrors)."""
    out: list[dict[str, Any]] = []
    if _cache_wanted(config, aws):
        check = _checker(out)
        check("cache.table", "present" if live.table_exists else "missing", "present")
        if live.table_exists:
            check("cache.table_ttl", live.ttl_enabled, True)
    return out


def _jobs_status(config: ScarabConfig, names: Names, live: Any) -> dict[str, Any]:
    """The jobs' table and dead-letter queue as found, and the retries on `live`."""
    invoke = live.invoke_config or {}
    return {
        "table": names.jobs_table,
        "table_exists": live.table_exists,
        "queue": names.jobs_dlq,
        "queue_exists": live.queue_url is not None,
        "retries": invoke.get("MaximumRetryAttempts"),
        "ttl_hours": config.jobs.ttl_hours,
    }


def _jobs_drift(config: ScarabConfig, uploads: Any, jobs: Any) -> list[dict[str, Any]]:
    """The uploads bucket, the jobs table, queue and mapping missing, or other retries
    than [jobs] retries (a deploy repairs each)."""
    out: list[dict[str, Any]] = []
    check = _checker(out)

    def present(ok: bool) -> str:
        return "present" if ok else "missing"

    check("uploads.bucket", present(uploads.bucket_exists), "present")
    check("jobs.table", present(jobs.table_exists), "present")
    check("jobs.queue", present(jobs.queue_url is not None), "present")
    if jobs.queue_url is not None:
        check("jobs.mapping", present(bool(jobs.mappings)), "present")
    if jobs.invoke_config is not None:
        check("jobs.retries", jobs.invoke_config.get("MaximumRetryAttempts"), config.jobs.retries)
    return out


def _deployed_log(found: list[tuple[FunctionNames, Any]]) -> bool | None:
    """Whether the deployed functions log (None: none is deployed)."""
    envs = [
        (live.config.get("Environment") or {}).get("Variables") or {}
        for _, live in found
        if live is not None
    ]
    if not envs:
        return None
    return any(env.get(LOG_ENABLED_ENV) == "true" for env in envs)


def _log_status(
    config: ScarabConfig, found: list[tuple[FunctionNames, Any]], wanted: bool
) -> dict[str, Any]:
    """The prediction log: [log] enabled, whether its URL's secret is stored (its name,
    never its value), and whether the deployed functions log."""
    return {
        "enabled": config.log.enabled,
        "secret": prediction_db_secret_name(config.app, config.stage),
        "on": wanted,
        "deployed": _deployed_log(found),
    }


def _log_drift(found: list[tuple[FunctionNames, Any]], wanted: bool) -> list[dict[str, Any]]:
    """The functions log and the secret is gone (or [log] turned off), or the other way
    round: the next deploy follows the secret."""
    out: list[dict[str, Any]] = []
    deployed = _deployed_log(found)
    if deployed is not None:
        _checker(out)("log.on", deployed, wanted)
    return out


_MAIN_FIELDS = (
    "log_group", "function_state", "last_update_status", "last_modified", "package",
    "code_sha256", "image_digest",
)  # fmt: skip


def _function_status(config: ScarabConfig, fn: FunctionNames, live: Any) -> dict[str, Any]:
    """One function as deployed, and where it drifts from scarab.toml."""
    cfg = live.config if live else {}
    return {
        "function_name": fn.function,
        "function_arn": cfg.get("FunctionArn"),
        "deployed": live is not None,
        "log_group": fn.log_group,
        "function_state": cfg.get("State"),
        "last_update_status": cfg.get("LastUpdateStatus"),
        "last_modified": cfg.get("LastModified"),
        "package": "image" if cfg.get("PackageType") == "Image" else "zip",
        "code_sha256": cfg.get("CodeSha256"),
        "image_digest": (live.code.get("ResolvedImageUri") if live else None),
        # Its Lambda Function URL, None when it has none ([functions.<name>.url]): the
        # `live` alias's (one on the function itself is an earlier scarab's).
        "url": (live.alias_url or live.url or {}).get("FunctionUrl") if live else None,
        "drift": _drift(config, fn.key, cfg) if live else [],
    }
