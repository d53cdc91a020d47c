"""The CLI commands of --target fargate: one function per command name, each taking
the resolved Target and the command's own options (see scarab.targets)."""

from __future__ import annotations

import sys
from typing import Any

import typer

from scarab.errors import EXIT_USAGE, ScarabError


def _usage(message: str) -> ScarabError:
    e = ScarabError(message)
    e.exit_code = EXIT_USAGE
    return e


def _refuse(**given: Any) -> None:
    """Options of the Lambda command that mean nothing for the Fargate service."""
    for flag, value in given.items():
        if value not in (None, False):
            raise _usage(f"{flag} goes with the Lambda stage, not --target fargate.")


def _package(package: str | None) -> None:
    if package not in (None, "image"):
        raise _usage(f"--package {package}: --target fargate runs the server image only.")


def plan_command(
    target: Any, package: str | None = None, flavor: str | None = None, as_json: bool = False
) -> None:
    """Show the exact calls 'scarab deploy --target fargate' would make (no docker)."""
    _package(package)
    _refuse(**{"--flavor": flavor})
    _plan(target, as_json)


def _plan(target: Any, as_json: bool) -> None:
    from scarab.cli import _print_plan, _Progress
    from scarab.targets.fargate.pipeline import deploy as run

    with _Progress(as_json) as progress:
        result = run(
            target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url,
            dry_run=True, progress=progress,
        )  # fmt: skip
    _print_plan(result.stage, result.region, result.plan, as_json, "dry run, --target fargate")


def deploy(
    target: Any,
    package: str | None = None,
    flavor: str | None = None,
    dry_run: bool = False,
    show_key: bool = False,
    force_unlock: bool = False,
    as_json: bool = False,
    canary: str | None = None,
    bake_seconds: str | None = None,
) -> None:
    """Build and push the server image, then create or update the Fargate service."""
    from scarab.cli import _print_json, _Progress, err, out
    from scarab.targets.fargate.keyring import first_value
    from scarab.targets.fargate.pipeline import deploy as run

    _package(package)
    _refuse(**{"--flavor": flavor, "--canary": canary, "--bake": bake_seconds})
    if dry_run:
        _plan(target, as_json)
        return
    with _Progress(as_json) as progress:
        result = run(
            target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url,
            progress=progress, force_unlock=force_unlock,
        )  # fmt: skip
    key = None
    if show_key:
        key = first_value(
            target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url
        )
    data: dict[str, Any] = {
        "target": "fargate",
        "stage": result.stage,
        "region": result.region,
        "cluster": result.cluster,
        "service": result.service,
        "task_definition": result.task_definition_arn,
        "security_group_id": result.security_group_id,
        "image_uri": result.image_uri,
        "up_to_date": result.up_to_date,
        "dry_run": False,
        "plan": [s.as_dict() for s in result.plan],
        "aws_calls": result.aws_calls,
        "mutating_calls": result.mutating_calls,
        "warnings": result.warnings,
    }
    if key is not None:
        data["api_key"] = key.value
    if as_json:
        _print_json(data)
        return
    for warning in result.warnings:
        err.print(f"warning: {warning}.", markup=False)
    if result.up_to_date:
        out.print(f"Stage {result.stage} (fargate) is up to date ({result.aws_calls} read calls).")
    else:
        out.print(f"Deployed stage {result.stage} on Fargate: {len(result.plan)} changes.")
    for label, value in (
        ("cluster", result.cluster), ("service", result.service),
        ("task def", result.task_definition_arn), ("image", result.image_uri),
    ):  # fmt: skip
        out.print(f"  {label + ':':<10}{value}", markup=False)
    out.print(
        "  addresses: scarab status --target fargate; keys: scarab keys list --target fargate"
        " --show-values",
        markup=False,
    )
    if key is not None:
        out.print(f"  key:      {key.name} {key.value}", markup=False)


def status(target: Any, as_json: bool = False) -> None:
    """The cluster, the service and each running task's address."""
    from scarab.cli import _print_json, out
    from scarab.targets.fargate.status import status as read_status
    from scarab.targets.fargate.status import status_lines

    data = read_status(
        target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )
    if as_json:
        _print_json(data)
        return
    for line in status_lines(data):
        out.print(line, markup=False)


def destroy(
    target: Any,
    yes: bool = False,
    include_images: bool = False,
    include_models: bool = False,
    dry_run: bool = False,
    as_json: bool = False,
) -> None:
    """Remove the stage's Fargate service and everything it uses."""
    from scarab.cli import _print_plan, _Progress, err, out
    from scarab.targets.fargate.pipeline import destroy as run

    if include_models:
        raise _usage(
            "--include-models: --target fargate made no model registry (the Lambda stage's"
            " 'scarab destroy --include-models' deletes it)."
        )
    where = {"project_dir": target.project_dir, "endpoint_url": target.endpoint_url}
    if dry_run:
        planned = run(target.config, include_images=include_images, dry_run=True, **where)
        verb = "dry run of destroy, --target fargate"
        _print_plan(planned.stage, planned.region, planned.steps, as_json, verb)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise _usage("Refusing to destroy without --yes when not interactive.")
        typer.confirm(
            f"Delete the Fargate service of stage {target.config.stage} and its resources?",
            abort=True,
        )
    with _Progress(as_json) as progress:
        result = run(target.config, include_images=include_images, progress=progress, **where)
    for kept in result.kept:
        err.print(f"kept {kept}", markup=False)
    if as_json:
        _print_plan(result.stage, result.region, result.steps, True, "destroy")
        return
    out.print(
        f"Destroyed the Fargate service of stage {result.stage}: {len(result.removed)}"
        " resources removed."
        if result.removed
        else f"Nothing left to remove for stage {result.stage} on Fargate."
    )


def keys_list(target: Any, show_values: bool = False, as_json: bool = False) -> None:
    """The server's keys (values only with --show-values)."""
    from scarab.cli import _print_json, out
    from scarab.targets.fargate.keyring import list_keys

    keys = list_keys(
        target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url,
        include_values=show_values,
    )  # fmt: skip
    if as_json:
        _print_json([k.as_dict() for k in keys])
        return
    for k in keys:
        line = f"{k.id}  {k.name}  {'enabled' if k.enabled else 'disabled'}  {k.created}"
        if k.value is not None:
            line += f"  {k.value}"
        out.print(line, markup=False)


def _print_new_key(info: Any, as_json: bool, verb: str) -> None:
    from scarab.cli import _print_json, out

    if as_json:
        _print_json(info.as_dict())
        return
    out.print(f"{verb} {info.name} ({info.id}) in the server's key ring.", markup=False)
    out.print(f"  value: {info.value}", markup=False)


def keys_create(target: Any, name: str, as_json: bool = False) -> None:
    from scarab.targets.fargate.keyring import create_key

    info = create_key(
        target.config, name, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )
    _print_new_key(info, as_json, "Created")


def keys_rotate(target: Any, as_json: bool = False) -> None:
    from scarab.cli import out
    from scarab.targets.fargate.keyring import rotate_key

    info = rotate_key(
        target.config, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )
    _print_new_key(info, as_json, "Rotated in")
    if not as_json:
        out.print(
            "  The previous keys still work; switch clients over, then run"
            " 'scarab keys revoke OLD_KEY_ID --target fargate'."
        )


def keys_revoke(target: Any, key_id: str) -> None:
    from scarab.cli import out
    from scarab.targets.fargate.keyring import revoke_key

    gone = revoke_key(
        target.config, key_id, project_dir=target.project_dir, endpoint_url=target.endpoint_url
    )
    from lens.server.auth import DEFAULT_TTL_S, TTL_ENV  # importable once revoke_key ran

    out.print(f"Revoked {gone.id} ({gone.name}).", markup=False)
    # The server caches the ring: the key keeps working until it reads it again.
    out.print(
        f"A running server refuses it within {DEFAULT_TTL_S} s (it re-reads its keys every"
        f" {TTL_ENV} seconds, {DEFAULT_TTL_S} by default).",
        markup=False,
    )
