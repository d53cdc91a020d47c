"""`scarab deploy` as a library: models -> reader -> planner -> executor -> state.

`deploy()` is what the CLI and the local gateway (`scarab serve`) call in-process.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import boto3

from scarab.artifacts import build_zip, image_tag
from scarab.artifacts.zip import Flavor, bytecode_compiler
from scarab.aws import Aws, aws_errors
from scarab.config import ScarabConfig
from scarab.deploy import guards
from scarab.deploy.alarms import stage_alarm_names
from scarab.deploy.executor import Executor
from scarab.deploy.instructions import Step
from scarab.deploy.lock import HeldLock, stage_lock, stale_lock_notice
from scarab.deploy.models import (
    ALIASES_VERSION,
    Code,
    Desired,
    FunctionSpec,
    desired_state,
    function_settings,
    with_hosted_endpoints,
)
from scarab.deploy.planner import (
    API_KEY_ID,
    REST_API_ID,
    USAGE_PLAN_ID,
    carried_environment,
    planned_environment,
    seed_vars,
)
from scarab.deploy.planner import plan as make_plan
from scarab.deploy.planner_url import url_move_warnings, url_var
from scarab.deploy.planner_versions import planned_release, split_warnings, version_var
from scarab.deploy.provenance import project_provenance
from scarab.deploy.reader import Observed, read_all
from scarab.deploy.release_models import LIVE_ALIAS, Release
from scarab.deploy.seeds import packaged_seeds
from scarab.deploy.state import (
    FunctionRecord,
    StageState,
    load_state,
    save_state,
    state_path,
)
from scarab.deploy.weights import check_percent
from scarab.emulator import served_api_url, served_function_url
from scarab.functions import ALL_ROUTES_NAME, FUNCTIONS, FunctionDef
from scarab.naming import Names

Package = Literal["zip", "image"]

__all__ = ["DeployResult", "Flavor", "Package", "Step", "api_url", "deploy", "make_aws"]


@dataclass
class DeployResult:
    url: str
    rest_api_id: str | None
    stage: str
    # The analyze function (the one every earlier scarab reported); all of them below.
    function_name: str
    function_arn: str
    usage_plan_id: str | None
    api_key_id: str | None
    up_to_date: bool
    plan: list[Step]
    aws_calls: int
    mutating_calls: int
    code_sha256: str | None = None
    image_uri: str | None = None
    state_path: Path | None = None
    dry_run: bool = False
    calls: list[str] = field(default_factory=list)
    region: str = ""
    # Things to act on that did not stop the deploy (see deploy/guards.py).
    warnings: list[str] = field(default_factory=list)
    # By catalog name: {"name", "arn", "code_sha256", "image_uri", "url"} of each function
    # ("url": its Function URL, None when [functions.<name>.url] is not set).
    functions: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # One per function whose `live` alias this deploy moved (none on a dry run).
    releases: list[Release] = field(default_factory=list)
    # The stage's alarms as this deploy left them (what a canary bake watches).
    alarm_names: list[str] = field(default_factory=list)


def make_aws(
    config: ScarabConfig,
    *,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    profile: str | None = None,
) -> Aws:
    """A session + clients for this config's region, pointed at `endpoint_url`
    (or AWS_ENDPOINT_URL) when given."""
    return Aws(
        config.configured_region, endpoint_url=endpoint_url, session=session, profile=profile
    )


def api_url(aws: Aws, rest_api_id: str | None, stage: str, project_dir: Path | None = None) -> str:
    """The stage's invoke URL. On an emulator: the running `scarab serve` in front of it
    (API Gateway's rules applied) if any, else the emulator's user-request path."""
    if rest_api_id is None:
        return ""
    if aws.endpoint_url and aws.local:
        served = served_api_url(project_dir, aws.endpoint_url, stage) if project_dir else None
        if served:
            return served
        return f"{aws.endpoint_url.rstrip('/')}/restapis/{rest_api_id}/{stage}/_user_request_"
    suffix = "amazonaws.com.cn" if aws.partition == "aws-cn" else "amazonaws.com"
    return f"https://{rest_api_id}.execute-api.{aws.region}.{suffix}/{stage}"


def _codes(
    config: ScarabConfig,
    project_dir: Path,
    package: Package,
    flavor: Flavor,
    aws: Aws,
    progress: Callable[[str], None] | None,
    functions: tuple[FunctionDef, ...],
    log: bool = False,
) -> dict[str, Code]:
    """Each function's code, by catalog name: its own zip (with the prediction log's
    packages when `log`), or the stage's one image (which has every package)."""
    if package == "image":
        tag = image_tag(project_dir, config.function.architecture)
        names = Names(config.app, config.stage)
        repo = f"{aws.account_id}.dkr.ecr.{aws.region}.amazonaws.com/{names.ecr_repository}"
        image = Code(package="image", image_tag=tag, image_repository=repo)
        return {fn.name: image for fn in functions}
    codes: dict[str, Code] = {}
    note = bytecode_compiler(config.function.runtime).note if flavor == "lambda" else ""
    if note and progress:
        progress(note)  # once: every function shares the runtime
    for fn in functions:
        built = build_zip(
            project_dir,
            flavor=flavor,
            runtime=config.function.runtime,
            architecture=function_settings(config, fn.name).architecture,
            progress=progress,
            function=fn,
            log=log,
        )
        if progress:
            verb = "reused" if built.reused else "built"
            progress(
                f"{verb} {fn.name} {built.flavor} zip {built.sha256[:12]}"
                f" ({built.size / 2**20:.1f} MB)"
            )
        codes[fn.name] = Code(
            package="zip",
            zip_path=str(built.path),
            zip_sha256_b64=built.code_sha256,
            zip_size=built.size,
        )
    return codes


def deploy(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    package: Package | None = None,
    flavor: Flavor | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
    session: boto3.Session | None = None,
    aws: Aws | None = None,
    force_unlock: bool = False,
    functions: tuple[FunctionDef, ...] = FUNCTIONS,
    canary_percent: float | None = None,
    keep_lock: HeldLock | None = None,
) -> DeployResult:
    """Make the stage match `config`: build, plan, apply, record; idempotent.

    flavor defaults to "local" on a loopback emulator endpoint and "lambda" otherwise.
    A re-run with nothing changed makes only read calls and returns up_to_date=True.
    A dry run plans the same way and applies nothing (`scarab plan` shows its calls).
    Changes are applied under the stage lock (deploy/lock.py); `force_unlock` first
    removes a lock record left by a run that died. `functions` are the stage's
    functions (the catalog's; `(ALL_ROUTES,)` deploys the single-function layout of
    earlier scarab versions, which the migration tests start from).

    A function whose code or configuration changed gets a new version and its `live`
    alias moves there; with `canary_percent`, `live` keeps its version and sends that
    share of the traffic to the new one (a first deploy goes straight to 100%).
    `DeployResult.releases` says what moved.

    With `keep_lock`, the stage lock the run takes stays held after it returns, until
    the caller closes `keep_lock` (a canary's bake runs under the same lock).
    """
    project_dir = project_dir.resolve()
    if canary_percent is not None:
        # Emulators take any weight (1.5 too); Lambda only [0, 1): refuse before any call.
        check_percent(canary_percent, what="--canary")
    aws = aws or make_aws(config, endpoint_url=endpoint_url, session=session)
    pkg: Package = package or config.function.package
    # The source-only zip fits an emulator on this machine (it runs the function in-process);
    # a remote one (LocalStack in a container) runs Lambda's real runtime: the lambda zip.
    flv: Flavor = flavor or ("local" if aws.loopback else "lambda")
    names = Names(config.app, config.stage)
    provenance = project_provenance(project_dir)

    def survey() -> tuple[StageState, Desired, Observed, list[Step]]:
        with aws_errors():
            state = load_state(project_dir, config.stage, aws.endpoint_url)
            state.check_region(aws)
            seeds = packaged_seeds(project_dir, names.models_bucket(aws.account_id, aws.region))
            desired = desired_state(
                config, account_id=aws.account_id, region=aws.region, partition=aws.partition,
                codes=codes, functions=functions, seeds=seeds, log=log_on,
            )  # fmt: skip
            if progress:
                progress("reading the stage's resources")
            bucket = None
            if any(c.via_s3 for c in codes.values()):
                bucket = (names.artifact_bucket(aws.account_id, aws.region), aws.account_id)
            observed = read_all(
                aws, names, state, tuple(fn.names for fn in desired.functions),
                retired=desired.retired, image_tag=desired.code.image_tag,
                include_ecr=pkg == "image", artifact_bucket=bucket,
                registry=_registry_read(desired),
                snapstart=tuple(fn.key for fn in desired.functions if fn.snapstart),
            )  # fmt: skip
            if observed.registry is not None:
                desired = with_hosted_endpoints(desired, observed.registry.hosted_endpoints)
            steps = make_plan(
                desired, observed, state_env=state.managed_envs(), project_dir=project_dir,
                recorded_urls=state.recorded_urls(), provenance=provenance,
                canary_percent=canary_percent,
            )  # fmt: skip
        return state, desired, observed, steps

    own = tuple(names.function(fn.name) for fn in functions)
    with aws_errors():
        state0 = load_state(project_dir, config.stage, aws.endpoint_url)
        # Not the old layout's names: they may be another stage's (see read_legacy_unit).
        guards.preflight(aws, names, state0, own)
        guards.check_vpcs(aws, config)
        # The log is on when [log] enabled finds its database URL stored (the secret's
        # existence only: the CLI never reads the URL); then the zips carry its packages.
        log_on, log_notice = guards.prediction_log(aws, config)
        codes = _codes(config, project_dir, pkg, flv, aws, progress, functions, log_on)
    # Plan without the lock: a run with nothing to do (or a dry run) changes nothing, so
    # it makes no mutating call at all, the lock's included.
    state, desired, observed, steps = survey()
    values = seed_vars(observed)
    if canary_percent is not None and not dry_run and _starts_canary(desired, observed, state):
        with aws_errors():
            guards.check_canary_alarms(aws, stage_alarm_names(desired))
    notice: str | None = None
    if steps and not dry_run:
        take = stage_lock if keep_lock is None else partial(HeldLock.take, keep_lock)
        with take(
            aws, names, project_dir, command="deploy", timeout_minutes=config.lock.timeout_minutes,
            force=force_unlock, progress=progress,
        ):  # fmt: skip
            # Read again under the lock: another run may have changed the stage meanwhile.
            state, desired, observed, steps = survey()
            executor = Executor(aws, seed_vars(observed))
            record = _recorder(project_dir, aws, desired, state, observed)
            if steps:
                executor.execute(steps, progress=progress, after_step=record)
            values = executor.values
            record(values, done=True)
    elif not dry_run:
        if force_unlock:
            guards.forced_unlock(aws, names, progress)
        else:
            # Nothing to do, so the lock is not taken: say when a dead run left one.
            with aws_errors():
                notice = stale_lock_notice(aws, names, project_dir, config.lock.timeout_minutes)
        _recorder(project_dir, aws, desired, state, observed)(values, done=True)
    key_ids = _key_ids(observed, values)
    with aws_errors():
        units = [
            (fn.names, observed.unit(fn.key).role, observed.unit(fn.key).function)
            for fn in desired.functions
        ]
        warnings = guards.deploy_warnings(aws, config, names, units)
        if steps and observed.retired:
            warnings += guards.migration_warnings(observed, state.managed_envs().get("all", []))
    releases = [] if dry_run else _releases(desired, observed, state, values, canary_percent)
    if steps:
        warnings += url_move_warnings(desired, observed)
        moved = {r.key for r in releases}
        warnings += split_warnings([fn for fn in desired.functions if fn.key in moved], observed)
    if log_notice:
        warnings.append(log_notice)
    if notice:
        warnings.append(notice)
    code = desired.code
    main = desired.functions[0]
    return DeployResult(
        url=api_url(aws, values.get(REST_API_ID), config.stage, project_dir),
        rest_api_id=values.get(REST_API_ID),
        stage=config.stage,
        function_name=main.name,
        function_arn=main.arn,
        usage_plan_id=values.get(USAGE_PLAN_ID),
        api_key_id=key_ids[0] if key_ids else None,
        up_to_date=not steps,
        plan=steps,
        aws_calls=len(aws.log.calls),
        mutating_calls=len(aws.log.mutating),
        code_sha256=code.zip_sha256_b64,
        image_uri=f"{code.image_repository}:{code.image_tag}" if code.image_tag else None,
        state_path=None if dry_run else state_path(project_dir, config.stage, aws.endpoint_url),
        dry_run=dry_run,
        calls=list(aws.log.calls),
        region=aws.region,
        warnings=warnings,
        functions={
            fn.key: {
                "name": fn.name,
                "arn": fn.arn,
                "code_sha256": fn.code.zip_sha256_b64,
                "image_uri": _image_uri(fn.code),
                "url": shown_url(aws, project_dir, fn.name, function_url(fn, values)),
            }
            for fn in desired.functions
        },
        releases=releases,
        alarm_names=stage_alarm_names(desired),
    )


def _starts_canary(desired: Desired, observed: Observed, state: StageState) -> bool:
    """Whether the plan gives a new version a share of some function's `live` alias."""
    return any(r.previous is not None for r in _releases(desired, observed, state, {}, 1.0))


def _releases(
    desired: Desired,
    observed: Observed,
    state: StageState,
    values: dict[str, Any],
    canary_percent: float | None,
) -> list[Release]:
    """What the run did to each function's `live` alias (planned from the same
    observation as the steps it ran; the published numbers from the executor)."""
    out = []
    envs = state.managed_envs()
    carried = carried_environment(observed, envs.get(ALL_ROUTES_NAME, []))
    for fn in desired.functions:
        unit = observed.unit(fn.key)
        env = planned_environment(fn, unit, envs.get(fn.key, []), carried)
        planned = planned_release(fn, unit, env, canary_percent)
        if planned is None:
            continue
        target = planned.target or values.get(version_var(fn.key))
        out.append(
            Release(
                function=fn.name,
                key=fn.key,
                previous=planned.previous,
                published=None if target is None else str(target),
                canary_weight=planned.canary_weight,
            )
        )
    return out


def shown_url(aws: Aws, project_dir: Path, function: str, url: str | None) -> str | None:
    """The Function URL to show: on an emulator with `scarab serve` in front of it, where
    serve answers it (the emulator's own URL is not reachable); else `url` itself."""
    if url and aws.endpoint_url and aws.local:
        return served_function_url(project_dir, aws.endpoint_url, function) or url
    return url


def function_url(fn: FunctionSpec, values: dict[str, Any]) -> str | None:
    """Function `fn`'s Function URL after the run (None: it has none, or a dry run has
    not created it yet)."""
    if fn.url is None:
        return None
    got = values.get(url_var(fn.key))
    return str(got) if got else None


def _registry_read(desired: Desired) -> tuple[str, str, tuple[Any, ...], str] | None:
    r = desired.registry
    return None if r is None else (r.table, r.bucket, r.seeds, ALIASES_VERSION)


def _image_uri(code: Code) -> str | None:
    return f"{code.image_repository}:{code.image_tag}" if code.image_tag else None


def _key_ids(observed: Observed, values: dict[str, Any]) -> list[str]:
    """The keys in the usage plan: those the reader found, then one the plan attached."""
    ids = [k.id for k in observed.keys if k.in_plan]
    if values.get(API_KEY_ID):
        ids.append(str(values[API_KEY_ID]))
    return list(dict.fromkeys(ids))


def _recorder(
    project_dir: Path,
    aws: Aws,
    desired: Desired,
    previous: StageState,
    observed: Observed,
) -> Callable[..., None]:
    def record(values: dict[str, Any], done: bool = False) -> None:
        names = desired.names
        rest_api_id = values.get(REST_API_ID)
        functions: dict[str, FunctionRecord] = {}
        for fn in desired.functions:
            managed = sorted(set(fn.environment))
            before = previous.managed_envs().get(fn.key, [])
            functions[fn.key] = {
                "name": fn.name,
                "arn": fn.arn,
                "role_arn": fn.role_arn,
                "log_group": fn.log_group,
                "code_sha256": fn.code.zip_sha256_b64,
                "image_uri": _image_uri(fn.code),
                # Until a run completes (and the function carries the new tag), remember
                # the old names too, so a variable dropped from the config still goes.
                "managed_env": managed if done else sorted(set(managed) | set(before)),
            }
            url = function_url(fn, values)
            if url is None and not done and previous.functions.get(fn.key, {}).get("url"):
                url = previous.functions[fn.key].get("url")  # not deleted yet: still ours
            if url:
                functions[fn.key]["url"] = url
                if url == function_url(fn, values):  # made (or found) on the alias
                    functions[fn.key]["url_on"] = LIVE_ALIAS
                elif previous.functions.get(fn.key, {}).get("url_on"):
                    functions[fn.key]["url_on"] = previous.functions[fn.key]["url_on"]
        state = StageState(
            app=names.app,
            stage=names.stage,
            region=aws.region,
            account_id=desired.account_id,
            endpoint_url=aws.endpoint_url if aws.local else None,
            rest_api_id=rest_api_id,
            usage_plan_id=values.get(USAGE_PLAN_ID),
            api_key_ids=_key_ids(observed, values),
            url=api_url(aws, rest_api_id, names.stage, project_dir),
            functions=functions,
            updated_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        save_state(project_dir, state)

    return record
