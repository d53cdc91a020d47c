"""deploy and destroy of --target fargate: desired -> reader -> planner -> executor ->
record, the same pipeline as the Lambda stage's (scarab.deploy), with this target's
parts. A dry run stops after the plan; destroy swaps the planner's deletion part in.

Changes run under the stage lock; a run with nothing to change (or a dry run) makes no
mutating call at all, the lock's included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from scarab.artifacts.image import SERVER_DOCKERFILE, image_tag
from scarab.aws import Aws, aws_errors
from scarab.config import ScarabConfig
from scarab.deploy.executor import Executor
from scarab.deploy.guards import forced_unlock
from scarab.deploy.instructions import Step
from scarab.deploy.lock import stage_lock, stale_lock_notice
from scarab.errors import ScarabError
from scarab.models import use_function_code
from scarab.naming import Names
from scarab.targets.fargate import planner, reader
from scarab.targets.fargate.models import FargateDesired, desired_state, first_key
from scarab.targets.fargate.record import (
    FargateRecord,
    delete_record,
    record_path,
    recorded_region,
    save_record,
)
from scarab.targets.repository import kept_note, still_used_by

Progress = Callable[[str], None] | None


@dataclass
class FargateDeployResult:
    stage: str
    region: str
    cluster: str
    service: str
    image_uri: str
    plan: list[Step]
    up_to_date: bool
    dry_run: bool
    aws_calls: int
    mutating_calls: int
    calls: list[str] = field(default_factory=list)
    task_definition_arn: str | None = None
    security_group_id: str | None = None
    state_path: Path | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class FargateDestroyResult:
    stage: str
    region: str
    steps: list[Step]
    dry_run: bool = False
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def make_aws(
    config: ScarabConfig, endpoint_url: str | None, session: boto3.Session | None = None
) -> Aws:
    return Aws(config.configured_region, endpoint_url=endpoint_url, session=session)


def check_region(aws: Aws, project_dir: Path, stage: str) -> None:
    """Refuse to work on the service from another region than the one it was deployed in
    (a deploy would fork it; a destroy would find nothing and forget it)."""
    region = recorded_region(project_dir, stage, aws.endpoint_url)
    if region and region != aws.region:
        raise ScarabError(
            f"The Fargate service of stage {stage} is deployed in {region}, but this run"
            f" targets {aws.region}. Pass --region {region} to work on it, or run 'scarab"
            f" destroy --target fargate --region {region}' first to move it."
        )


def first_ring(project_dir: Path, names: Names) -> str:
    """A new key ring with one key, in the server's format (lens.server.keys)."""
    use_function_code(project_dir)
    from lens.server.keys import KeyRing, ServerKey, dump_keys

    return dump_keys(KeyRing(keys=(ServerKey(**first_key(names)),)))


def deploy(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    dry_run: bool = False,
    progress: Progress = None,
    session: boto3.Session | None = None,
    aws: Aws | None = None,
    force_unlock: bool = False,
) -> FargateDeployResult:
    """Make the stage's Fargate service match scarab.toml; idempotent. The image tag is
    the server build context's content hash, so the plan is exact before any build."""
    project_dir = project_dir.resolve()
    aws = aws or make_aws(config, endpoint_url, session)
    names = Names(config.app, config.stage)
    tag = image_tag(project_dir, config.function.architecture, SERVER_DOCKERFILE)
    ring = first_ring(project_dir, names)

    def survey() -> tuple[FargateDesired, reader.FargateObserved, list[Step]]:
        with aws_errors():
            check_region(aws, project_dir, names.stage)
            if progress:
                progress("reading the stage's Fargate resources")
            network = reader.read_network(aws, list(config.fargate.subnets))
            desired = desired_state(
                config, account_id=aws.account_id, region=aws.region,
                partition=aws.partition, image_tag=tag, network=network,
            )  # fmt: skip
            observed = reader.read_all(aws, names, image_tag=tag, vpc_id=network.vpc_id)
            reader.check_group_vpc(observed, network, names)
            steps = planner.plan_deploy(desired, observed, project_dir=project_dir, key_ring=ring)
        return desired, observed, steps

    desired, observed, steps = survey()
    values: dict[str, Any] = {}
    notice = None
    if steps and not dry_run:
        with stage_lock(
            aws, names, project_dir, command="deploy --target fargate",
            timeout_minutes=config.lock.timeout_minutes, force=force_unlock, progress=progress,
        ):  # fmt: skip
            # Read again under the lock: another run may have changed the stage meanwhile.
            desired, observed, steps = survey()
            executor = Executor(aws)
            if steps:
                executor.execute(steps, progress=progress)
            values = executor.values
    elif not dry_run:
        with aws_errors():
            if force_unlock:
                forced_unlock(aws, names, progress)
            else:
                notice = stale_lock_notice(aws, names, project_dir, config.lock.timeout_minutes)
    task_definition = values.get(planner.TASK_DEFINITION_ARN) or observed.task_definition_arn
    group = values.get(planner.SECURITY_GROUP_ID) or (
        observed.security_group.id if observed.security_group else None
    )
    path = None
    if not dry_run:
        record = FargateRecord(
            app=names.app,
            stage=names.stage,
            region=aws.region,
            account_id=desired.account_id,
            endpoint_url=aws.endpoint_url if aws.local else None,
            cluster=names.cluster,
            service=names.service,
            task_definition_arn=task_definition,
            security_group_id=group,
            secret_arn=values.get(planner.SECRET_ARN) or observed.secret_arn,
            image_uri=desired.image_uri,
        )
        path = save_record(project_dir, record)
    with aws_errors():
        warnings = deploy_warnings(aws, desired)
    if notice:
        warnings.append(notice)
    return FargateDeployResult(
        stage=names.stage,
        region=aws.region,
        cluster=names.cluster,
        service=names.service,
        image_uri=desired.image_uri,
        plan=steps,
        up_to_date=not steps,
        dry_run=dry_run,
        aws_calls=len(aws.log.calls),
        mutating_calls=len(aws.log.mutating),
        calls=list(aws.log.calls),
        task_definition_arn=task_definition,
        security_group_id=group,
        state_path=path,
        warnings=warnings,
    )


def deploy_warnings(aws: Aws, d: FargateDesired) -> list[str]:
    """What to act on that does not stop the deploy (read-only calls)."""
    out = []
    if not d.allowed_cidrs:
        out.append(
            f"[fargate] allowed_cidrs is empty, so nobody can reach port {d.port}: list the"
            ' CIDR blocks of your clients (allowed_cidrs = ["203.0.113.0/24"]) and deploy'
            " again"
        )
    if not reader.read_registry_table(aws, d.names):
        out.append(
            f"the model registry table {d.names.registry_table} does not exist yet, so the"
            " server has no models to serve: 'scarab deploy' (the Lambda stage) creates the"
            " registry, 'scarab models push' fills it"
        )
    return out


def destroy(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    include_images: bool = False,
    dry_run: bool = False,
    progress: Progress = None,
    session: boto3.Session | None = None,
    aws: Aws | None = None,
) -> FargateDestroyResult:
    """Delete the stage's Fargate resources (with `dry_run`, only plan it)."""
    project_dir = project_dir.resolve()
    aws = aws or make_aws(config, endpoint_url, session)
    names = Names(config.app, config.stage)

    user: str | None = None

    def survey() -> tuple[reader.FargateObserved, list[Step]]:
        nonlocal user
        with aws_errors():
            check_region(aws, project_dir, names.stage)
            observed = reader.read_all(aws, names, image_tag=None, vpc_id=None)
            user = still_used_by(aws, names, "fargate") if include_images else None
        return observed, planner.plan_destroy(
            names, observed, include_images=include_images and user is None
        )

    observed, steps = survey()
    result = FargateDestroyResult(names.stage, aws.region, steps, dry_run=dry_run)
    if observed.repository_uri is not None and user is not None:
        result.kept = [kept_note(names, user)]
    elif not include_images and observed.repository_uri is not None:
        result.kept = [
            f"ecr.repository {names.server_repository} (its images; --include-images deletes it)"
        ]
    if dry_run:
        return result
    if steps:
        with stage_lock(
            aws, names, project_dir, command="destroy --target fargate",
            timeout_minutes=config.lock.timeout_minutes, progress=progress,
        ):  # fmt: skip
            _, steps = survey()
            result.steps = steps
            Executor(aws).execute(steps, progress=progress)
            result.removed = [s.resource for s in steps]
    delete_record(project_dir, names.stage, aws.endpoint_url)
    return result


__all__ = ["FargateDeployResult", "FargateDestroyResult", "deploy", "destroy", "record_path"]
