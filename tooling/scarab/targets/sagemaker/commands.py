"""The CLI commands of --target sagemaker: one function per command name, each taking
the resolved Target and the command's own options (see scarab.targets)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from scarab.errors import EXIT_USAGE, ScarabError
from scarab.speeds import DEFAULT_SPEED
from scarab.targets.sagemaker import pipeline


def _usage(message: str) -> ScarabError:
    e = ScarabError(message)
    e.exit_code = EXIT_USAGE
    return e


def _refuse(**given: Any) -> None:
    """A usage error for the first option given that means nothing on this target."""
    for option, value in given.items():
        if value not in (None, False):
            flag = "--" + option.replace("_", "-")
            raise _usage(
                f"{flag} does not apply to --target sagemaker (it is a Lambda option; the"
                " endpoint always runs the server image)."
            )


def _where(target: Any) -> dict[str, Any]:
    return {"project_dir": target.project_dir, "endpoint_url": target.endpoint_url}


def _show_plan(result: pipeline.EndpointResult, as_json: bool, verb: str) -> None:
    from scarab.cli import _print_plan

    _print_plan(result.stage, result.region, result.steps, as_json, verb)


def plan_command(target: Any, package: str | None, flavor: str | None, as_json: bool) -> None:
    """Show the exact calls 'scarab deploy --target sagemaker' would make."""
    from scarab.cli import _Progress

    _refuse(package=package, flavor=flavor)
    with _Progress(as_json) as progress:
        result = pipeline.deploy_endpoint(
            target.config, dry_run=True, progress=progress, **_where(target)
        )
    _show_plan(result, as_json, "dry run")


def deploy(
    target: Any,
    package: str | None,
    flavor: str | None,
    dry_run: bool,
    show_key: bool,
    force_unlock: bool,
    as_json: bool,
    canary: str | None,
    bake_seconds: str | None,
) -> None:
    """Build and push the server image, pack model.tar.gz, and create or update the
    role, Model, EndpointConfig and serverless Endpoint."""
    from scarab.cli import _print_json, _Progress, out

    _refuse(package=package, flavor=flavor, show_key=show_key, canary=canary, bake=bake_seconds)
    if dry_run:
        plan_command(target, None, None, as_json)
        return
    with _Progress(as_json) as progress:
        result = pipeline.deploy_endpoint(
            target.config, force_unlock=force_unlock, progress=progress, **_where(target)
        )
    if as_json:
        _print_json(result.as_dict())
        return
    if result.up_to_date:
        out.print(
            f"Endpoint {result.endpoint} is up to date ({result.aws_calls} read calls,"
            " no changes).",
            markup=False,
        )
    else:
        out.print(
            f"Deployed endpoint {result.endpoint}: {len(result.steps)} changes.", markup=False
        )
    for key in ("endpoint_config", "model", "image_uri", "model_data_url"):
        out.print(f"  {key + ':':<16}{result.as_dict()[key]}", markup=False)
    out.print(f"  {'models:':<16}{', '.join(result.models)} ({result.models_from})", markup=False)


def status(target: Any, as_json: bool) -> None:
    """Show the endpoint: status, config, memory, concurrency, models, image."""
    from scarab.cli import _print_json, out

    data = pipeline.endpoint_status(target.config, **_where(target))
    if as_json:
        _print_json(data)
        return
    for key in (
        "stage", "endpoint", "status", "failure_reason", "endpoint_config", "memory_mb",
        "max_concurrency", "model", "image", "model_data_url", "role_arn",
    ):  # fmt: skip
        if data.get(key) is not None:
            out.print(f"{key + ':':<17}{data[key]}", markup=False)
    if data.get("models"):
        out.print(f"{'models:':<17}{', '.join(data['models'])}", markup=False)


def destroy(
    target: Any,
    yes: bool,
    include_images: bool,
    include_models: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Remove the endpoint, its configs and models, model.tar.gz, role and log group
    (the server image repository only with --include-images)."""
    from scarab.cli import _Progress, err, out

    if include_models:
        raise _usage(
            "--include-models does not apply to --target sagemaker: the endpoint has no"
            " registry of its own (it serves the stage's); run 'scarab destroy"
            " --include-models' for the Lambda stage's registry."
        )
    if dry_run:
        planned = pipeline.destroy_endpoint(
            target.config, include_images=include_images, dry_run=True, **_where(target)
        )
        _show_plan(planned, as_json, "dry run of destroy")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise _usage("Refusing to destroy without --yes when not interactive.")
        typer.confirm(f"Delete the SageMaker endpoint of stage {target.config.stage}?", abort=True)
    with _Progress(as_json) as progress:
        result = pipeline.destroy_endpoint(
            target.config, include_images=include_images, progress=progress, **_where(target)
        )
    for kept in result.kept:
        err.print(f"kept {kept}", markup=False)
    if as_json:
        _show_plan(result, True, "destroy")
        return
    out.print(
        f"Destroyed the SageMaker endpoint of stage {result.stage}: {len(result.steps)}"
        " resources removed."
        if result.steps
        else f"Nothing left to remove for the SageMaker endpoint of stage {result.stage}.",
        markup=False,
    )


def invoke(
    target: Any,
    image: Path | None,
    speed: str,
    model: str | None,
    data: str | None,
    as_json: bool,
) -> None:
    """InvokeEndpoint: --data JSON to --model NAME, and print the answer."""
    import json

    from scarab.cli import _print_json, out

    if image is not None:
        raise _usage("--image goes with the Lambda stage's /analyze; use --model and --data.")
    if speed != DEFAULT_SPEED:
        raise _usage("--speed goes with the Lambda stage's /analyze; use --model and --data.")
    body = pipeline.check_request(model, data)
    assert model is not None  # checked above
    got = pipeline.invoke_endpoint(target.config, model=model, body=body, **_where(target))
    if as_json:
        _print_json(vars(got))
        return
    out.print(f"{got.model} on endpoint {got.endpoint} ({got.content_type}):", markup=False)
    if isinstance(got.body, str):
        out.print(got.body, markup=False)
    else:
        out.print_json(json.dumps(got.body))
