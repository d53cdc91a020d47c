"""`scarab destroy`: read what the stage has, plan its deletion, run the plan.

The same pipeline as deploy: reader -> pure planner (deploy/teardown.py) -> the one
executor, under the stage lock; `dry_run` shows the plan through the display instead.
Pieces already gone are tolerated. The role is deleted only after the function, and
only when no function of that name uses it in any region.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scarab.aws import Aws, aws_errors
from scarab.config import ScarabConfig
from scarab.deploy.executor import Executor
from scarab.deploy.guards import check_record
from scarab.deploy.instructions import Step
from scarab.deploy.lock import stage_lock
from scarab.deploy.reader import Doomed, read_doomed
from scarab.deploy.state import delete_state, load_state
from scarab.deploy.teardown import plan_destroy
from scarab.errors import ScarabError
from scarab.functions import FUNCTIONS
from scarab.naming import FunctionNames, Names


@dataclass
class DestroyResult:
    stage: str
    region: str
    steps: list[Step]
    dry_run: bool = False
    removed: list[str] = field(default_factory=list)  # "<kind> <name>" of each step run
    kept: list[str] = field(default_factory=list)  # what stays, and why


def destroy(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    include_images: bool = False,
    aws: Aws | None = None,
    progress: Callable[[str], None] | None = None,
    dry_run: bool = False,
    include_models: bool = False,
) -> DestroyResult:
    """Delete the stage's resources (or, with `dry_run`, only plan it). The model
    registry (table and bucket: pushed models are data) stays unless `include_models`;
    `DestroyResult.kept` names it then."""
    project_dir = project_dir.resolve()
    aws = aws or Aws(config.configured_region, endpoint_url=endpoint_url)
    names = Names(config.app, config.stage)
    state = load_state(project_dir, config.stage, aws.endpoint_url)
    check_record(aws, names, state)

    def survey() -> tuple[Doomed, list[Step]]:
        with aws_errors():
            doomed = read_doomed(
                aws, names, state, include_images, stage_functions(names), include_models
            )
        return doomed, plan_destroy(names, doomed)

    doomed, steps = survey()
    result = DestroyResult(names.stage, aws.region, steps, dry_run=dry_run)
    if not include_models:
        result.kept = [
            f"{what} {name} (the model registry: pushed models are yours; --include-models"
            " deletes it)"
            for what, name in (
                ("dynamodb.table", doomed.registry_table),
                ("s3.bucket", doomed.models_bucket),
            )
            if name
        ]
    if dry_run:
        return result
    with stage_lock(
        aws, names, project_dir, command="destroy", timeout_minutes=config.lock.timeout_minutes,
        progress=progress,
    ):  # fmt: skip
        # Read again under the lock: another run may have changed the stage meanwhile.
        doomed, steps = survey()
        result.steps = steps
        executor = Executor(aws)
        executor.execute(steps, progress=progress)
        result.removed = [s.resource for s in steps]
    delete_state(project_dir, names.stage, aws.endpoint_url)
    kept = [(fn, found.role_users) for fn, found in doomed.functions if found.role_users]
    if kept:
        done = f"Removed {len(steps)} resources of stage {names.stage} in {aws.region}, but"
        users = [u for _, why in kept for u in why]
        roles = ", ".join(fn.role for fn, _ in kept)
        what = "IAM roles" if len(kept) > 1 else "IAM role"
        if doomed.budget_kept:  # per account, like the roles: it watches that stage too
            roles += f" and the budget {doomed.budget_kept}"
        raise ScarabError(
            f"{done} kept the {what} {roles}: {'; '.join(users)}." + _role_advice(aws.region, users)
        )
    return result


def stage_functions(names: Names) -> tuple[FunctionNames, ...]:
    """Every function a stage may have: the catalog's and the single function of a stage
    deployed before the split."""
    return (*(names.function(f.name) for f in FUNCTIONS), names.legacy)


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
