"""Handles on a deployed stage for the commands that act on one (keys, status, ...)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3

from scarab.aws import Aws, aws_errors
from scarab.config import ScarabConfig
from scarab.deploy.guards import check_record
from scarab.deploy.lock import stage_lock
from scarab.deploy.reader import find_usage_plan
from scarab.deploy.state import StageState, load_state
from scarab.errors import ScarabError
from scarab.naming import Names


@dataclass
class Stage:
    config: ScarabConfig
    aws: Aws
    names: Names
    state: StageState
    project_dir: Path

    @contextlib.contextmanager
    def lock(
        self,
        command: str,
        *,
        force: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> Iterator[None]:
        """Hold the stage lock while a command changes the stage (see deploy/lock.py)."""
        with stage_lock(
            self.aws,
            self.names,
            self.project_dir,
            command=command,
            timeout_minutes=self.config.lock.timeout_minutes,
            force=force,
            progress=progress,
        ):
            yield

    def usage_plan_id(self) -> str:
        plan = find_usage_plan(self.aws, self.names, self.state.usage_plan_id)
        if plan is None:
            raise ScarabError(
                f"The stage {self.names.stage} has no usage plan {self.names.usage_plan}."
                " Run 'scarab deploy' first."
            )
        return str(plan["id"])


def open_stage(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
    session: boto3.Session | None = None,
) -> Stage:
    aws = aws or Aws(config.configured_region, endpoint_url=endpoint_url, session=session)
    state = load_state(project_dir.resolve(), config.stage, aws.endpoint_url)
    names = Names(config.app, config.stage)
    with aws_errors():
        check_record(aws, names, state)
    return Stage(config, aws, names, state, project_dir.resolve())
