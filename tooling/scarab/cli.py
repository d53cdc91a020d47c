"""The `scarab` command line: a thin Typer shell over the scarab library.

Exit codes: 0 ok, 1 failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import typer
from rich.console import Console
from rich.markup import escape

from scarab.errors import EXIT_USAGE, ScarabError
from scarab.speeds import DEFAULT_SPEED, SPEEDS, SPEEDS_SPOKEN

T = TypeVar("T")

app = typer.Typer(
    help="Build, deploy and run the Scarab image-analysis API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="List, create, rotate and revoke API keys.", no_args_is_help=True)
secrets_app = typer.Typer(help="Store secrets the function reads.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(secrets_app, name="secrets")
models_app = typer.Typer(
    help="Push, list, promote, split and remove the stage's models (the model registry).",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Options shared by the commands that talk to AWS.
StageOpt = typer.Option(None, "--stage", "-s", help="Stage name (default: scarab.toml's).")
RegionOpt = typer.Option(
    None, "--region", help="AWS region (default: scarab.toml, AWS_REGION, the profile's)."
)
ProfileOpt = typer.Option(None, "--profile", help="AWS profile (default: AWS_PROFILE).")
EndpointOpt = typer.Option(
    None,
    "--endpoint-url",
    help="Send every AWS call to this endpoint, e.g. an emulator (default: AWS_ENDPOINT_URL).",
)
LocalOpt = typer.Option(
    False,
    "--local",
    help="Use the embedded emulator (a running 'scarab serve' one, or a private one).",
)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
ImageOpt = typer.Option(None, "--image", exists=True, dir_okay=False, help="Image file.")
TargetOpt = typer.Option(
    "lambda",
    "--target",
    help="Where the stage runs: lambda (API Gateway + Lambda), sagemaker or fargate.",
)


@dataclass
class Target:
    config: Any
    project_dir: Path
    endpoint_url: str | None
    local: bool


@contextlib.contextmanager
def _target(
    stage: str | None,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    local: bool,
    overrides: dict[str, Any] | None = None,
) -> Iterator[Target]:
    from scarab.config import find_project_dir, load_config

    if profile:
        os.environ["AWS_PROFILE"] = profile
    project_dir = find_project_dir()
    config = load_config(project_dir, {"stage": stage, "region": region, **(overrides or {})})
    if local and endpoint_url:
        raise ScarabError("Use either --local or --endpoint-url, not both.")
    if local:
        from scarab.emulator import local_endpoint

        _local_credentials()
        # The region `scarab serve` uses for this project, whatever the profile says.
        config = config.model_copy(update={"region": config.resolved_region})
        with local_endpoint(project_dir) as url:
            yield Target(config, project_dir, url, True)
        return
    yield Target(config, project_dir, endpoint_url or os.environ.get("AWS_ENDPOINT_URL"), False)


def _local_credentials() -> None:
    """The emulator accepts any credentials; make sure some exist (the fake ones, unless
    the environment has its own)."""
    from scarab.emulator import FAKE_CREDENTIALS

    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        os.environ.update(FAKE_CREDENTIALS)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a cancelled CI job, `timeout`, `docker stop`, a closed terminal),
    raised like Ctrl-C so that every `finally` runs: the stage lock is released."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _terminate)


def _run(fn: Callable[[], T]) -> T:
    """Run a command body; print ScarabErrors as advice and exit with their code."""
    _install_signal_handlers()
    try:
        return fn()
    except ScarabError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True)
        raise typer.Exit(exc.exit_code) from None
    except Terminated as exc:
        err.print(f"{signal.Signals(exc.signum).name}: stopped; re-run the same command to finish.")
        raise typer.Exit(128 + exc.signum) from None
    except KeyboardInterrupt:
        err.print("interrupted; re-run the same command to finish.")
        raise typer.Exit(130) from None


_SHARED_OPTIONS = (
    ("stage", str | None, StageOpt),
    ("region", str | None, RegionOpt),
    ("profile", str | None, ProfileOpt),
    ("endpoint_url", str | None, EndpointOpt),
    ("local", bool, LocalOpt),
)


def aws_command(
    group: typer.Typer,
    name: str | None = None,
    overrides: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    context_settings: dict[str, Any] | None = None,
    targets: bool = False,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register `fn(target, **options)` as a command of `group` that also takes the options
    every AWS command shares (--stage --region --profile --endpoint-url --local).

    The command resolves them into a Target (config, project dir, endpoint; the embedded
    emulator with --local), calls `fn` inside it, and prints ScarabErrors as advice with
    their exit code. `overrides` maps the command's own options to config overrides.
    With `targets`, the command also takes --target; any target but lambda runs the
    command of that name in scarab.targets.<target>.commands instead of `fn`.
    """

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        hints = get_type_hints(fn)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in list(inspect.signature(fn).parameters.values())[1:]  # all but `target`
        ]
        shared = [
            inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=kind)
            for key, kind, opt in _SHARED_OPTIONS
        ]
        if targets:
            shared.append(
                inspect.Parameter(
                    "target_name", inspect.Parameter.KEYWORD_ONLY, default=TargetOpt,
                    annotation=str,
                )
            )  # fmt: skip
        group_name = {keys_app: "keys", models_app: "models", secrets_app: "secrets"}.get(group)
        spoken = " ".join(filter(None, [group_name, name or fn.__name__]))

        def command(**options: Any) -> None:
            where = {key: options.pop(key) for key, _, _ in _SHARED_OPTIONS}
            target_name = options.pop("target_name", "lambda")
            extra = overrides(options) if overrides else None

            def body() -> None:
                from scarab.targets import DEFAULT_TARGET, command_for

                run = fn
                if target_name != DEFAULT_TARGET:
                    run = command_for(target_name, fn.__name__, spoken)
                with _target(**where, overrides=extra) as target:
                    run(target, **options)

            _run(body)

        params = [*own, *shared]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__name__, command.__doc__ = fn.__name__, fn.__doc__
        group.command(name, context_settings=context_settings)(command)
        return fn

    return register


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


class _Progress:
    """Long steps show a spinner; each finished step is printed as a line."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._status: Any = None

    def __enter__(self) -> _Progress:
        if not self.quiet and err.is_terminal:
            self._status = err.status("working")
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        if self._status is not None:
            self._status.update(message)
        err.print(f"  {message}", markup=False)


@app.command()
def version() -> None:
    """Print scarab's version."""
    from scarab import __version__

    typer.echo(__version__)


@app.command()
def build(
    package: str = typer.Option(None, "--package", help="image or zip (default: scarab.toml)."),
    flavor: str = typer.Option(
        "lambda", "--flavor", help="zip flavor: lambda (manylinux wheels) or local (source only)."
    ),
    log: bool = typer.Option(
        False,
        "--log",
        help="Pack the prediction log's packages, as deploy does when the log is on"
        " (for zips of an exported stack with [log] enabled).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Build the artifacts: a reproducible zip per function, or an image with docker.

    With zip packaging, one zip per function of the catalog (analyze, models), each for
    its own architecture, which deploy uploads, and the all-routes zip of stages deployed
    before the split; --json prints the all-routes zip's fields at the top level and each
    function's under "functions".
    """

    def body() -> None:
        from scarab.artifacts import build_image, build_zip
        from scarab.artifacts.zip import bytecode_compiler
        from scarab.config import find_project_dir, load_config
        from scarab.deploy.models import function_settings
        from scarab.functions import FUNCTIONS

        project_dir = find_project_dir()
        config = load_config(project_dir, {"function.package": package})
        fn = config.function
        if flavor not in ("lambda", "local"):
            raise _usage(f"--flavor {flavor!r}: use lambda or local.")
        with _Progress(as_json) as progress:
            if fn.package == "image":
                img = build_image(project_dir, fn.architecture)
                data: dict[str, Any] = {
                    "package": "image",
                    "image": img.local_ref,
                    "tag": img.tag,
                    "platform": img.platform,
                }
            else:
                # Said once for the whole build (every zip shares the runtime).
                note = bytecode_compiler(fn.runtime).note if flavor == "lambda" else ""
                if note:
                    progress(note)
                options: dict[str, Any] = {
                    "flavor": flavor,
                    "runtime": fn.runtime,
                    "architecture": fn.architecture,
                    "progress": progress,
                    "log": log,
                }
                # Each function for its own architecture ([functions.<name>] may differ).
                functions = {
                    f.name: build_zip(
                        project_dir,
                        **{
                            **options,
                            "architecture": function_settings(config, f.name).architecture,
                        },
                        function=f,
                    )
                    for f in FUNCTIONS
                }
                data = {
                    "package": "zip",
                    **_zip_fields(build_zip(project_dir, **options)),
                    "functions": {name: _zip_fields(z) for name, z in functions.items()},
                    "bytecode_note": note or None,
                    "log": log,  # the prediction log's packages are in every zip
                }
        if as_json:
            _print_json(data)
        elif data["package"] == "zip":
            rows = [*data["functions"].values(), data]
            for row in rows:
                via = " (over 50 MB: deploy uploads it through S3)" if row["upload_via_s3"] else ""
                out.print(
                    f"{row['function']} ({row['handler']})\n  {row['path']}\n"
                    f"  {row['size'] / 2**20:.1f} MB zipped,"
                    f" {row['unzipped_size'] / 2**20:.1f} MB unzipped{via}\n"
                    f"  sha256 {row['sha256']}, bytecode {row['bytecode'] or 'none'}"
                )
            out.print(
                "deploy uploads the analyze and models zips; the all-routes zip is what"
                " stages deployed before the split ran (the benchmarks' baseline)"
            )
        else:
            out.print(f"built {data['image']} for {data['platform']}")

    _run(body)


def _zip_fields(z: Any) -> dict[str, Any]:
    """What `build --json` reports for one zip (a scarab.artifacts.ZipBuild)."""
    return {
        "function": z.function,
        "handler": z.handler,
        "flavor": z.flavor,
        "path": str(z.path),
        "sha256": z.sha256,
        "code_sha256": z.code_sha256,
        "size": z.size,
        "unzipped_size": z.unzipped_size,
        "upload_via_s3": z.needs_s3,
        "reused": z.reused,
        "bytecode": z.bytecode,  # the cache tag of its .pyc files (cpython-312), or None
    }


def _usage(message: str) -> ScarabError:
    e = ScarabError(message)
    e.exit_code = EXIT_USAGE
    return e


def _print_plan(stage: str, region: str, steps: list[Any], as_json: bool, verb: str) -> None:
    """A plan as `scarab plan` shows it: every step, and with --json its exact calls."""
    from scarab.deploy.display import plan_document, render

    if as_json:
        _print_json(plan_document(stage, region, steps))
        return
    if not steps:
        out.print(f"Stage {stage} is up to date; nothing to do.")
        return
    out.print(f"Plan for stage {stage} in {region} ({len(steps)} changes, {verb}):")
    for step, shown in zip(steps, render(steps), strict=True):
        out.print(f"  {step.describe()}", markup=False)
        for c in shown["calls"]:
            out.print(f"      {c['service']}.{c['operation']}", markup=False)


def _flavor(flavor: str | None) -> None:
    if flavor not in (None, "lambda", "local"):
        raise _usage(f"--flavor {flavor!r}: use lambda or local.")


PackageOpt = typer.Option(None, "--package", help="image or zip (default: scarab.toml).")
FlavorOpt = typer.Option(
    None, "--flavor", help="zip flavor: lambda or local (default: local with --local)."
)


@aws_command(app, "plan", overrides=lambda o: {"function.package": o["package"]}, targets=True)
def plan_command(
    target: Target,
    package: str = PackageOpt,
    flavor: str = FlavorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show the exact calls 'scarab deploy' would make, without making them."""
    _plan(target, flavor, as_json)


def _plan(
    target: Target, flavor: str | None, as_json: bool, options: dict[str, Any] | None = None
) -> None:
    from scarab import deploy as lib

    _flavor(flavor)
    with _Progress(as_json) as progress:
        result = lib.deploy(
            target.config,
            project_dir=target.project_dir,
            endpoint_url=target.endpoint_url,
            flavor=flavor,  # type: ignore[arg-type]
            dry_run=True,
            progress=progress,
            **(options or {}),
        )
    _print_plan(result.stage, result.region, result.plan, as_json, "dry run")


@aws_command(app, overrides=lambda o: {"function.package": o["package"]}, targets=True)
def deploy(
    target: Target,
    package: str = PackageOpt,
    flavor: str = FlavorOpt,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan ('scarab plan'); change nothing."
    ),
    show_key: bool = typer.Option(False, "--show-key", help="Also print the API key's value."),
    force_unlock: bool = typer.Option(
        False, "--force-unlock", help="First remove the stage lock a dead run left behind."
    ),
    as_json: bool = JsonOpt,
    canary: str = typer.Option(
        None,
        "--canary",
        help="Give a new version PERCENT of the traffic, bake, then promote or roll back.",
        metavar="PERCENT",
    ),
    bake_seconds: str = typer.Option(
        None,
        "--bake",
        help=(
            "With --canary: seconds to watch the stage's alarms (default 300; at most"
            " [lock] timeout_minutes minus 5 min)."
        ),
        metavar="SECONDS",
    ),
) -> None:
    """Build, then create or update everything the stage needs, in one idempotent run.

    With --canary PERCENT a published version gets PERCENT of the `live` alias's traffic
    while the stage's alarms are watched for --bake SECONDS: any alarm in ALARM rolls it
    back (exit 1), none promotes it to all traffic; Ctrl-C rolls back (exit 130).
    """
    from scarab.deploy.lock import HeldLock

    canary_options, bake_for = _canary_options(canary, bake_seconds, target.config)
    if dry_run:
        _plan(target, flavor, as_json, canary_options)
        return
    _flavor(flavor)
    if bake_for is None:
        _deploy(target, flavor, show_key, force_unlock, as_json, canary_options, None, None)
        return
    # The lock the deploy takes is held through the bake: no other run between them.
    with HeldLock() as held:
        _deploy(target, flavor, show_key, force_unlock, as_json, canary_options, bake_for, held)


def _deploy(
    target: Target,
    flavor: str,
    show_key: bool,
    force_unlock: bool,
    as_json: bool,
    canary_options: dict[str, Any],
    bake_for: float | None,
    held: Any,
) -> None:
    """deploy's body: deploy, then (with `bake_for`) bake under the `held` lock."""
    from scarab import deploy as lib
    from scarab.keys import get_key_value

    with _Progress(as_json) as progress:
        result = lib.deploy(
            target.config,
            project_dir=target.project_dir,
            endpoint_url=target.endpoint_url,
            flavor=flavor,  # type: ignore[arg-type]
            progress=progress,
            force_unlock=force_unlock,
            keep_lock=held,
            **canary_options,
        )
    if bake_for is not None:
        with _canary_guard(target, result):  # until the bake watches it
            _deployed_then_bake(target, result, show_key, as_json, bake_for, held)
        return
    key_value = None
    if show_key and result.api_key_id:
        key_value = get_key_value(
            target.config,
            result.api_key_id,
            project_dir=target.project_dir,
            endpoint_url=target.endpoint_url,
        )
    data = _deploy_data(result, key_value)
    if as_json:
        _print_json(data)  # the warnings are in it
        return
    _print_deployed(result, show_key, key_value)


def _deployed_then_bake(
    target: Target, result: Any, show_key: bool, as_json: bool, bake_for: float, held: Any
) -> None:
    from scarab.keys import get_key_value

    key_value = None
    if show_key and result.api_key_id:
        key_value = get_key_value(
            target.config,
            result.api_key_id,
            project_dir=target.project_dir,
            endpoint_url=target.endpoint_url,
        )
    data = _deploy_data(result, key_value)
    if not as_json:
        _print_deployed(result, show_key, key_value)
    outcome = _bake(target, result, bake_for, as_json, held)
    if as_json:
        _print_json({**data, "canary": outcome})
    if outcome is not None and not outcome["promoted"]:
        raise ScarabError(f"The canary was rolled back: {outcome['reason']}.")


@contextlib.contextmanager
def _canary_guard(target: Target, result: Any) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) after the deploy started a canary and before the bake watches
    it rolls it back: a canary must never be left serving unwatched. (Once the bake
    watches, it rolls back itself and raises BakeInterrupted, which _bake handles.)"""
    from scarab.aws import aws_errors
    from scarab.release.bake import BakeInterrupted, roll_back
    from scarab.stage import open_stage

    try:
        yield
    except BakeInterrupted:
        raise
    except KeyboardInterrupt as exc:
        name = str(exc) or "SIGINT"
        st = open_stage(
            target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url
        )
        with aws_errors():
            moves, skipped = roll_back(st.aws, st.names, result.releases)
        _print_stopped(moves, skipped)
        done = "rolled back" if moves else "not rolled back (no canary was left to roll back)"
        err.print(f"{name} before the bake began: the canary was {done}.", markup=False)
        raise typer.Exit(130) from None


def _print_stopped(moves: list[Any], skipped: list[str]) -> None:
    for m in moves:
        for line in m.lines():
            err.print(line, markup=False)
    for name in skipped:
        err.print(f"{name}: its alias moved during the bake; left as it is.", markup=False)


def _deploy_data(result: Any, key_value: str | None) -> dict[str, Any]:
    data = {
        "url": result.url,
        "rest_api_id": result.rest_api_id,
        "stage": result.stage,
        "function_name": result.function_name,
        "functions": result.functions,
        "usage_plan_id": result.usage_plan_id,
        "api_key_id": result.api_key_id,
        "up_to_date": result.up_to_date,
        "dry_run": False,
        "plan": [s.as_dict() for s in result.plan],
        "aws_calls": result.aws_calls,
        "mutating_calls": result.mutating_calls,
        "warnings": result.warnings,
        "releases": [vars(r) for r in result.releases],
    }
    if key_value is not None:
        data["api_key"] = key_value
    return data


def _print_deployed(result: Any, show_key: bool, key_value: str | None) -> None:
    for warning in result.warnings:
        err.print(f"warning: {warning}.", markup=False)
    if result.up_to_date:
        out.print(
            f"Stage {result.stage} is up to date ({result.aws_calls} read calls, no changes)."
        )
    else:
        out.print(f"Deployed stage {result.stage}: {len(result.plan)} changes.")
    out.print(f"  url:     {result.url}", markup=False)
    for name, fn in result.functions.items():
        if fn.get("url"):
            out.print(f"  {name} function url: {fn['url']}", markup=False)
    for r in result.releases:
        was = f" (was {r.previous})" if r.previous and r.previous != r.published else ""
        share = "" if r.canary_weight is None else f", a canary of {r.canary_weight * 100:g}%"
        out.print(f"  {r.key}: live -> version {r.published}{share}{was}", markup=False)
    out.print(
        f"  api key: {result.api_key_id}"
        + ("" if show_key else "  (value: scarab keys list --show-values, or deploy --show-key)"),
        markup=False,
    )
    if key_value is not None:
        out.print(f"  key:     {key_value}", markup=False)


def _canary_options(
    canary: str | None, bake_seconds: str | None, config: Any
) -> tuple[dict[str, Any], float | None]:
    """deploy()'s canary keyword and the bake's length, validated before anything runs
    (a bake the stage lock would not outlast included)."""
    from scarab.deploy.weights import parse_percent
    from scarab.release.bake import DEFAULT_BAKE_SECONDS, check_fits_lock, check_seconds

    if canary is None:
        if bake_seconds is not None:
            raise _usage("--bake SECONDS needs --canary PERCENT.")
        return {}, None
    percent = parse_percent(canary, what="--canary")
    seconds = check_seconds(DEFAULT_BAKE_SECONDS if bake_seconds is None else bake_seconds)
    check_fits_lock(seconds, config.lock.timeout_minutes)
    return {"canary_percent": percent}, seconds


def _bake(
    target: Target, result: Any, seconds: float, as_json: bool, held: Any = None
) -> dict[str, Any] | None:
    """Bake the canaries `result` started, under the lock the deploy took and `held`
    keeps; what happened, as --json shows it."""
    from scarab.aws import aws_errors
    from scarab.release.bake import BakeInterrupted, bake, canaries
    from scarab.stage import open_stage

    releases = canaries(result.releases)
    if not releases:
        err.print(
            "no canary to bake: no version was published with a share of the traffic"
            " (nothing changed, or a first version, which gets all of it).",
            markup=False,
        )
        return None
    st = open_stage(target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url)
    try:
        with _Progress(as_json) as progress, aws_errors():
            # The deploy's own lock, which `held` keeps; a caller without one takes it here.
            lock: contextlib.AbstractContextManager[None] = (
                contextlib.nullcontext()
                if held is not None and held.held
                else st.lock("deploy --canary", progress=progress)
            )
            with lock:
                outcome = bake(
                    st.aws, st.names, releases, seconds=seconds,
                    # Exactly the alarms this deploy made (not every name with the prefix).
                    alarm_names=lambda: list(result.alarm_names), progress=progress,
                )  # fmt: skip
    except BakeInterrupted as exc:
        _print_stopped(exc.moves, exc.skipped)
        err.print(f"{exc.what}.", markup=False)
        raise typer.Exit(130) from None
    if not as_json:
        out.print("Promoted the canary:" if outcome.promoted else f"Rolled back: {outcome.reason}.")
        for m in outcome.moves:
            for line in m.lines():
                out.print(line, markup=False)
        for name in outcome.skipped:
            out.print(f"{name}: its alias moved during the bake; left as it is.", markup=False)
    return {
        "promoted": outcome.promoted,
        "reason": outcome.reason or None,
        "alarm": None if outcome.alarm is None else vars(outcome.alarm),
        "watched": outcome.watched,
        "moves": [m.as_dict() for m in outcome.moves],
        "skipped": outcome.skipped,
    }


@aws_command(app, targets=True)
def status(
    target: Target,
    as_json: bool = JsonOpt,
) -> None:
    """Show what is deployed for the stage and any drift from scarab.toml."""
    from scarab.status import status as lib_status

    data = lib_status(
        target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )
    if as_json:
        _print_json(data)
        return
    for key in ("stage", "url", "rest_api_id", "usage_plan_id"):
        if data.get(key) is not None:
            out.print(f"{key + ':':<16}{data[key]}", markup=False)
    for name, fn in data["functions"].items():
        out.print(f"function {name}:", markup=False)
        for key in (
            "function_name", "function_arn", "function_state", "last_modified",
            "code_sha256", "image_digest", "log_group", "url",
        ):  # fmt: skip
            if fn.get(key) is not None:
                out.print(f"  {key + ':':<16}{fn[key]}", markup=False)
    for k in data["api_keys"]:
        state = "enabled" if k["enabled"] else "disabled"
        out.print(f"{'api key:':<16}{k['id']}  {k['name']}  {state}", markup=False)
    cache = data["cache"]
    table = "missing" if not cache["table_exists"] else "TTL on"
    if cache["table_exists"] and not cache["table_ttl_enabled"]:
        table = "TTL off"
    out.print(f"{'cache table:':<16}{cache['table']} ({table})", markup=False)
    log = data["prediction_log"]
    logging = "on" if log["deployed"] else "off"
    stored = "stored" if log["on"] else "not stored" if log["enabled"] else "[log] disabled"
    out.print(f"{'prediction log:':<16}{logging} (URL {log['secret']}: {stored})", markup=False)
    if data["drift"]:
        out.print("drift (live vs scarab.toml; 'scarab deploy' repairs it):")
        for d in data["drift"]:
            where = f"{d['function']} " if "function" in d else ""
            out.print(f"  {where}{d['field']}: {d['live']!r} -> {d['config']!r}", markup=False)
    else:
        out.print("no drift from scarab.toml")
    if data["unmanaged_access"]:
        out.print(
            "access scarab did not grant ('scarab deploy' leaves it; remove it if unintended):"
        )
        for item in data["unmanaged_access"]:
            out.print(f"  {item['kind']} {item['name']}: {item['remove']}", markup=False)


@aws_command(keys_app, "list", targets=True)
def keys_list(
    target: Target,
    show_values: bool = typer.Option(False, "--show-values", help="Include key values."),
    as_json: bool = JsonOpt,
) -> None:
    """List the stage's API keys (id, name, enabled, created; values only if asked)."""
    from scarab.keys import list_keys

    keys = list_keys(
        target.config,
        project_dir=target.project_dir,
        endpoint_url=target.endpoint_url,
        include_values=show_values,
    )
    if as_json:
        _print_json([k.as_dict() for k in keys])
        return
    for k in keys:
        line = f"{k.id}  {k.name}  {'enabled' if k.enabled else 'disabled'}  {k.created}"
        if not k.in_plan:
            line += "  (not in the usage plan)"
        if k.value is not None:
            line += f"  {k.value}"
        out.print(line, markup=False)


def _print_new_key(info: Any, as_json: bool, verb: str) -> None:
    if as_json:
        _print_json(info.as_dict())
        return
    out.print(f"{verb} {info.name} ({info.id}) in the usage plan.", markup=False)
    out.print(f"  value: {info.value}", markup=False)


@aws_command(keys_app, "create", targets=True)
def keys_create(
    target: Target,
    name: str = typer.Argument(..., help="Name of the new key."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a key in the stage's usage plan and print it."""
    from scarab.keys import create_key

    info = create_key(
        target.config, name, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )
    _print_new_key(info, as_json, "Created")


@aws_command(keys_app, "rotate", targets=True)
def keys_rotate(
    target: Target,
    as_json: bool = JsonOpt,
) -> None:
    """Create the next key; the old ones keep working until you revoke them."""
    from scarab.keys import rotate_key

    info = rotate_key(
        target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )
    _print_new_key(info, as_json, "Rotated in")
    if not as_json:
        out.print(
            "  The previous keys still work; switch clients over, then run"
            " 'scarab keys revoke OLD_KEY_ID'."
        )


@aws_command(keys_app, "revoke", targets=True)
def keys_revoke(
    target: Target,
    key_id: str = typer.Argument(..., help="Id of the key to revoke."),
) -> None:
    """Remove a key from the usage plan and delete it."""
    from scarab.keys import revoke_key

    revoke_key(
        target.config, key_id, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )
    out.print(f"Revoked {key_id}.", markup=False)


# -- scarab models ----------------------------------------------------------------------

ModelFileArg = typer.Argument(
    ..., exists=True, dir_okay=False, help="ONNX model, or scikit-learn joblib/pickle file."
)
SchemaOpt = typer.Option(
    None,
    "--schema",
    exists=True,
    dir_okay=False,
    help="JSON Schema of the request body (default: from the estimator's features).",
)
MetricsOpt = typer.Option(
    None,
    "--metrics",
    exists=True,
    dir_okay=False,
    help="JSON object of what training measured (shown by list and GET /forecast).",
)
DataFileArg = typer.Argument(..., exists=True, dir_okay=False, help="Observations (CSV).")


def _registry(target: Target) -> Any:
    from scarab.models.registry import open_registry

    return open_registry(
        target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )


@aws_command(models_app, "push")
def models_push(
    target: Target,
    file: Path = ModelFileArg,
    name: str = typer.Option(..., "--name", help="Model name (what /predict/{name} serves)."),
    version: str = typer.Option(..., "--version", help="Version (never reused)."),
    kind: str = typer.Option(
        None,
        "--kind",
        help="tabular-classifier, tabular-regressor, image-classifier or"
        " forecaster (default: from the estimator or the ONNX outputs).",
    ),
    description: str = typer.Option("", "--description", help="What the model does."),
    schema: Path | None = SchemaOpt,
    labels: str = typer.Option(
        None, "--labels", help="Class labels a,b,... in output order (default: classes_)."
    ),
    metrics: Path | None = MetricsOpt,
    promote: bool = typer.Option(False, "--promote", help="Make this version live."),
    threshold: float = typer.Option(
        None,
        "--threshold",
        help="Binary classifiers: the positive label is answered from this probability on"
        " (default 0.5).",
    ),
    positive_label: str = typer.Option(
        None,
        "--positive-label",
        help="Binary classifiers: the label whose probability is answered (default: the"
        " second label, classes_[1]).",
    ),
    host: str = typer.Option(
        None,
        "--host",
        help="sagemaker:<endpoint>: the models function forwards /predict/<name> to that"
        " SageMaker endpoint (InvokeEndpoint); 'scarab deploy' grants the function it.",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Push a model: ONNX, or a scikit-learn estimator converted to ONNX and checked.

    A joblib or pickle FILE is unpickled here to convert it, and unpickling runs code
    from the file: push only files you trust. Only the ONNX model is uploaded; the
    pickle never leaves this machine, and nothing is ever unpickled from S3.
    """
    from scarab.models import options, use_function_code
    from scarab.models.convert import prepare
    from scarab.models.registry import push

    use_function_code(target.project_dir)
    options.check_name(name)
    options.check_version(version)
    hosted = options.check_host(host)
    prepared = prepare(
        file,
        kind=options.check_kind(kind),
        schema=options.read_json_object(schema, "--schema"),
        labels=options.parse_labels(labels),
    )
    options.check_decision(prepared.kind, prepared.labels, threshold, positive_label)
    measured = options.read_json_object(metrics, "--metrics") or {}
    reg = _registry(target)
    result = push(
        reg,
        prepared,
        name=name,
        version=version,
        description=description,
        metrics=measured,
        promote_it=promote,
        threshold=threshold,
        positive_label=positive_label,
        host=hosted,
    )
    if as_json:
        _print_json(
            {
                "name": name,
                "host": hosted,
                "version": version,
                "kind": prepared.kind,
                "sha256": result.sha256,
                "artifact_uri": result.artifact_uri,
                "pushed": result.pushed,
                "max_difference": prepared.max_difference,
                "promoted": result.promoted,
            }
        )
        return
    if prepared.check:
        out.print(f"Converted {prepared.origin} to ONNX: {prepared.check}.", markup=False)
    if result.pushed:
        out.print(
            f"Pushed {name} {version} ({prepared.kind}, sha256 {result.sha256[:12]}) to"
            f" {result.artifact_uri}.",
            markup=False,
        )
    else:
        out.print(
            f"{name} {version} is already pushed with these bytes; nothing changed.",
            markup=False,
        )
    if result.promoted:
        out.print(result.promoted, markup=False)
    if hosted and result.pushed:
        out.print(
            f"{name} {version} answers from the SageMaker endpoint {hosted.split(':', 1)[1]};"
            " run 'scarab deploy' so the models function may invoke it.",
            markup=False,
        )


def _metrics_text(metrics: dict[str, Any]) -> str:
    parts = [f"{k}={round(v, 4) if isinstance(v, float) else v}" for k, v in metrics.items()]
    text = " ".join(p for p in parts if len(p) <= 40)
    return text if len(text) <= 60 else text[:57] + "..."


@aws_command(models_app, "list")
def models_list(target: Target, as_json: bool = JsonOpt) -> None:
    """List every version: name, version, kind, aliases, sha256, created, metrics.

    Aliases: "live", and "candidate:W" while a split gives the version W percent.
    """
    from scarab.models.registry import list_versions

    rows = list_versions(_registry(target))
    if as_json:
        _print_json({"models": rows})
        return
    if not rows:
        out.print("No models yet: 'scarab models push FILE --name NAME --version V'.")
        return
    table = [
        [
            r["name"],
            r["version"],
            r["kind"],
            ",".join(r["aliases"]) or "-",
            r["sha256"][:12],
            r["created_at"],
            _metrics_text(r["metrics"]) or "-",
        ]
        for r in rows
    ]
    header = ["NAME", "VERSION", "KIND", "ALIASES", "SHA256", "CREATED", "METRICS"]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        out.print(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), markup=False
        )


@aws_command(models_app, "promote")
def models_promote(
    target: Target,
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="The version to make live."),
) -> None:
    """Make VERSION live (the previous live version can be restored with rollback)."""
    from scarab.models.registry import promote

    out.print(promote(_registry(target), name, version), markup=False)


@aws_command(models_app, "rollback")
def models_rollback(target: Target, name: str = typer.Argument(..., help="Model name.")) -> None:
    """Make the previous live version live again."""
    from scarab.models.registry import rollback

    out.print(rollback(_registry(target), name), markup=False)


@aws_command(models_app, "split")
def models_split(
    target: Target,
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="The candidate version."),
    weight: float = typer.Option(
        ..., "--weight", min=0, max=100, help="Percent of requests the candidate gets (0 ends)."
    ),
) -> None:
    """Send WEIGHT percent of unpinned requests to VERSION, the rest to live."""
    from scarab.models.registry import split

    out.print(split(_registry(target), name, version, weight), markup=False)


@aws_command(models_app, "rm")
def models_rm(
    target: Target,
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="The version to remove."),
) -> None:
    """Remove a version that is neither live nor a split's candidate.

    Its ONNX object is deleted too unless another version of the model has the same
    bytes (the versioned bucket keeps a noncurrent copy).
    """
    from scarab.models.registry import remove

    out.print(remove(_registry(target), name, version), markup=False)


@aws_command(models_app, "push-data")
def models_push_data(
    target: Target,
    name: str = typer.Argument(..., help="The forecaster's name."),
    file: Path = DataFileArg,
) -> None:
    """Upload a forecaster's recent observations; GET /forecast/NAME forecasts from them."""
    from scarab.models.registry import push_data

    out.print(push_data(_registry(target), name, file), markup=False)


@aws_command(secrets_app, "set")
def secrets_set(
    target: Target,
    name: str = typer.Argument(..., help="The secret: gemini-api-key or prediction-db-url."),
    from_env: str = typer.Option(None, "--from-env", help="Read the value from this variable."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the value from standard input."),
) -> None:
    """Store a secret (never on the command line) and point the function at it."""
    from scarab.secrets import set_secret

    if bool(from_env) == bool(stdin):
        raise _usage("Give exactly one of --from-env VAR or --stdin.")
    if from_env:
        value = os.environ.get(from_env)
        if not value:
            raise _usage(f"The environment variable {from_env} is not set or is empty.")
    else:
        value = sys.stdin.read()
    result = set_secret(
        target.config,
        value,
        name=name,
        project_dir=target.project_dir,
        endpoint_url=target.endpoint_url,
    )
    where = "SSM SecureString" if result.backend == "ssm" else "Secrets Manager secret"
    out.print(f"Stored {name} as {where} {result.name}.", markup=False)
    if result.log:
        if target.config.log.enabled:
            out.print(
                "Run 'scarab deploy' to turn the prediction log on (the functions get its"
                " packages and may read this URL).",
                markup=False,
            )
        else:
            out.print(
                "[log] enabled = false in scarab.toml: the prediction log stays off until"
                " it is true and you run 'scarab deploy'.",
                markup=False,
            )
    elif result.role_cannot_read:
        out.print(
            "The function still reads its previous key: its role may not read this one yet."
            " Run 'scarab deploy' to grant it and switch the function over.",
            markup=False,
        )
    elif result.function_wired:
        out.print("The function reads it through GOOGLE_API_KEY_PARAM and GOOGLE_API_KEY_BACKEND.")
    else:
        out.print("The function is not deployed yet; 'scarab deploy' wires it.")


@app.command()
def predictions(
    since: str = typer.Option("1h", "--since", help="How far back: 30s, 10m, 2h, 1d."),
    model: str = typer.Option(None, "--model", help="Only this model's rows."),
    route: str = typer.Option(
        None, "--route", help="Only this route's rows: analyze, predict or forecast."
    ),
    limit: int = typer.Option(50, "--limit", help="At most this many rows (newest first)."),
    as_json: bool = JsonOpt,
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (every column)."),
    local: bool = typer.Option(
        False, "--local", help="Read the SQLite log 'scarab serve' writes (.scarab/local)."
    ),
    stage: str | None = StageOpt,
    region: str | None = RegionOpt,
    profile: str | None = ProfileOpt,
    endpoint_url: str | None = EndpointOpt,
) -> None:
    """Print the stage's prediction log: one row per /analyze, /predict, /forecast answer.

    Without --local it is read by the stage's function (lambda:Invoke), which reaches
    its database wherever it is (inside a VPC too)."""

    def body() -> None:
        from scarab import predictions as lib
        from scarab.config import find_project_dir, load_config

        if as_json and as_csv:
            raise _usage("Give at most one of --json and --csv.")
        project_dir = find_project_dir()
        config = load_config(project_dir, {"stage": stage, "region": region})
        query = lib.make_query(config.stage, since, model, route, limit)
        if local:
            if endpoint_url or region or profile:
                raise _usage("--local reads the local file: it takes no --region, --profile"
                             " or --endpoint-url.")  # fmt: skip
            columns, rows = lib.read_local(project_dir, query)
        else:
            from scarab.deploy import make_aws
            from scarab.naming import Names

            aws = make_aws(
                config, endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
                profile=profile,
            )  # fmt: skip
            function = Names(config.app, config.stage).function(lib.REMOTE_FUNCTION).function
            columns, rows = lib.read_remote(aws, function, query)
        if as_json:
            out.print(lib.as_json(rows), markup=False, highlight=False)
        elif as_csv:
            sys.stdout.write(lib.as_csv(rows, columns))
        else:
            out.print(lib.as_text(rows), markup=False)

    _run(body)


@aws_command(app, targets=True)
def invoke(
    target: Target,
    image: Path | None = ImageOpt,
    speed: str = typer.Option(DEFAULT_SPEED, "--speed", help=f"{SPEEDS_SPOKEN}."),
    model: str | None = typer.Option(
        None, "--model", help="With --target sagemaker: the registry model to call."
    ),
    data: str | None = typer.Option(
        None, "--data", help="With --target sagemaker: the request body, as JSON."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Call the deployed API's /analyze with a key and print the analysis
    (with --target sagemaker: the endpoint's model, through InvokeEndpoint)."""
    from scarab.invoke import invoke as lib_invoke
    from scarab.invoke import running_serve

    if image is None:
        raise _usage("Missing option '--image': the image file to analyze.")
    if model is not None or data is not None:
        raise _usage("--model and --data go with --target sagemaker.")
    if speed not in SPEEDS:
        raise _usage(f"--speed {speed!r}: use {SPEEDS_SPOKEN}.")
    base = running_serve(target.project_dir) if target.local else None
    result = lib_invoke(
        target.config,
        image,
        project_dir=target.project_dir,
        speed=speed,
        endpoint_url=target.endpoint_url,
        base_url=base,
    )
    if as_json:
        _print_json({"url": result.url, "status": result.status, "body": result.body})
    else:
        out.print(f"HTTP {result.status} from {result.url}", markup=False)
        if isinstance(result.body, str):
            out.print(result.body, markup=False)
        else:
            out.print_json(json.dumps(result.body))
    if result.status >= 400:
        raise typer.Exit(1)


@aws_command(app)
def logs(
    target: Target,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events."),
    since: str = typer.Option("10m", "--since", help="How far back: 30s, 10m, 2h, 1d."),
    function: str = typer.Option("analyze", "--function", help="Whose logs: analyze or models."),
) -> None:
    """Print a function's log events."""
    from scarab.logs import parse_since, tail

    parse_since(since)
    for line in tail(
        target.config,
        project_dir=target.project_dir,
        since=since,
        follow=follow,
        endpoint_url=target.endpoint_url,
        function=function,
    ):
        out.print(line, markup=False)


@aws_command(app, targets=True)
def destroy(
    target: Target,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    include_images: bool = typer.Option(
        False, "--include-images", help="Also delete the ECR repository and its images."
    ),
    include_models: bool = typer.Option(
        False,
        "--include-models",
        help="Also delete the model registry: its table, and its bucket with every version.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the deletion plan; delete nothing."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Remove everything the stage created (the ECR repository and the model registry
    only if asked)."""
    from scarab.deploy.destroy import destroy as lib_destroy

    if dry_run:
        planned = lib_destroy(
            target.config,
            project_dir=target.project_dir,
            endpoint_url=target.endpoint_url,
            include_images=include_images,
            include_models=include_models,
            dry_run=True,
        )
        _print_plan(planned.stage, planned.region, planned.steps, as_json, "dry run of destroy")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise _usage("Refusing to destroy without --yes when not interactive.")
        typer.confirm(f"Delete every resource of stage {target.config.stage}?", abort=True)
    with _Progress(as_json) as progress:
        result = lib_destroy(
            target.config,
            project_dir=target.project_dir,
            endpoint_url=target.endpoint_url,
            include_images=include_images,
            include_models=include_models,
            progress=progress,
        )
    for kept in result.kept:
        err.print(f"kept {kept}", markup=False)
    if as_json:
        _print_plan(result.stage, result.region, result.steps, True, "destroy")
        return
    out.print(
        f"Destroyed stage {result.stage}: {len(result.removed)} resources removed."
        if result.removed
        else f"Nothing left to remove for stage {result.stage}."
    )


@aws_command(app)
def unlock(target: Target) -> None:
    """Remove the stage lock a crashed deploy (or destroy, keys, secrets) left behind."""
    from scarab.deploy.lock import lock_parameter
    from scarab.deploy.lock import unlock as lib_unlock
    from scarab.stage import open_stage

    st = open_stage(target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url)
    held = lib_unlock(st.aws, st.names)
    if held is None:
        out.print(f"Stage {st.names.stage} is not locked.", markup=False)
    else:
        out.print(f"Removed the lock {lock_parameter(st.names)}: {held}.", markup=False)


OutputOpt = typer.Option(None, "--output", "-o", help="Write here (default: stdout).")


@app.command()
def export(
    fmt: str = typer.Option(..., "--format", help="cloudformation or sam."),
    output: Path | None = OutputOpt,
    code_uri: str = typer.Option(
        None,
        "--code-uri",
        help="s3://BUCKET/KEY of the uploaded zip (default: the CodeBucket/CodeKey parameters).",
    ),
    stage: str | None = StageOpt,
) -> None:
    """Write a CloudFormation or SAM template of everything deploy creates for the stage.

    Needs no AWS credentials: account, region and partition are pseudo-parameters.
    """

    def body() -> None:
        from scarab.config import find_project_dir, load_config
        from scarab.deploy.export import render, write

        project_dir = find_project_dir()
        config = load_config(project_dir, {"stage": stage})
        template = render(
            config,
            project_dir=project_dir,
            fmt=fmt,  # type: ignore[arg-type]
            code_uri=code_uri,
        )
        write(template, output)
        if output is None:
            return
        count = len(template["Resources"])
        err.print(f"wrote {output} ({fmt} template, {count} resources)", markup=False)

    _run(body)


@aws_command(app, name="versions")
def versions_command(
    target: Target,
    function: str | None = typer.Option(
        None, "--function", help="Only this function (analyze or models)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """List each function's published versions, newest first, and where its aliases point."""
    from scarab.versions import list_versions, render_text

    data = list_versions(
        target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url,
        function=function,
    )  # fmt: skip
    if as_json:
        _print_json(data)
        return
    for line in render_text(data):
        out.print(line, markup=False)


FunctionOpt = typer.Option(
    None,
    "--function",
    help="The function: analyze or models (default: the stage's only one with a live alias).",
)


def _print_move(move: Any, as_json: bool) -> None:
    if as_json:
        _print_json(move.as_dict())
        return
    for line in move.lines():
        out.print(line, markup=False)


@aws_command(app, "rollback")
def rollback_command(
    target: Target,
    function: str = FunctionOpt,
    to: str = typer.Option(
        None, "--to", help="The version to move to (default: the one before live)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Move the `live` alias to the previous published version (or --to) in one call,
    ending any split; prints the version before and after."""
    from scarab.aws import aws_errors
    from scarab.release.alias import rollback
    from scarab.stage import open_stage

    st = open_stage(target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url)
    with st.lock("rollback"), aws_errors():
        moved = rollback(st.aws, st.names, function, to)
    _print_move(moved, as_json)


@aws_command(app, "split", context_settings={"ignore_unknown_options": True})
def split_command(
    target: Target,
    version: str = typer.Argument(None, help="The other version (a published number)."),
    percent: str = typer.Argument(None, help="Its share of the traffic, in (0, 100)."),
    function: str = FunctionOpt,
    off: bool = typer.Option(False, "--off", help="End the split: all traffic to live."),
    as_json: bool = JsonOpt,
) -> None:
    """Send PERCENT of the `live` alias's traffic to VERSION (an A/B split that lasts until
    --off); the live version keeps the rest."""
    from scarab.aws import aws_errors
    from scarab.deploy.weights import parse_percent
    from scarab.release.alias import split, split_off
    from scarab.stage import open_stage

    if off:
        if version is not None or percent is not None:
            raise _usage("--off ends the split: give no VERSION or PERCENT with it.")
    elif version is None or percent is None:
        raise _usage("Give VERSION and PERCENT (e.g. 'scarab split --function analyze 3 10'),"
                     " or --off.")  # fmt: skip
    elif version.startswith("--"):
        raise _usage(f"No such option: {version}.")
    share = None if off else parse_percent(percent)
    st = open_stage(target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url)
    with st.lock("split"), aws_errors():
        if share is None:
            moved = split_off(st.aws, st.names, function)
        else:
            moved = split(st.aws, st.names, function, version, share)
    _print_move(moved, as_json)


@aws_command(app, "alarms")
def alarms_command(target: Target, as_json: bool = JsonOpt) -> None:
    """Show the stage's alarms: each one's state (OK, ALARM, INSUFFICIENT_DATA), why, and
    what it compares."""
    from scarab.alarms import alarms as lib_alarms

    data = lib_alarms(
        target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )
    if as_json:
        _print_json(data)
        return
    if not data["alarms"]:
        out.print(
            f"Stage {data['stage']} has no alarms ([alarms] enabled = false, or not deployed).",
            markup=False,
        )
        return
    width = max(len(a["name"]) for a in data["alarms"])
    for a in data["alarms"]:
        out.print(f"{a['name']:<{width}}  {a['state']:<17}  {a['condition']}", markup=False)
        if a["state"] != "OK" and a["reason"]:
            out.print(f"{'':<{width}}  {a['reason']}", markup=False)


def _register_serve() -> None:
    try:
        from scarab.serve.command import serve_command
    except Exception as exc:  # a broken serve package must not take the other commands down
        reason = f"{type(exc).__name__}: {exc}"

        def serve_unavailable() -> None:
            """Run the whole stack locally (unavailable in this installation)."""
            err.print(f"error: scarab serve cannot start ({reason}).", markup=False)
            raise typer.Exit(1)

        app.command("serve")(serve_unavailable)
        return
    app.command("serve")(serve_command)


_register_serve()


def main() -> None:
    app()
