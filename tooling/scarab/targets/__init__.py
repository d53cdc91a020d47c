"""Where a stage runs: the Lambda functions behind API Gateway (the default), a
SageMaker Serverless endpoint, or an ECS Fargate service.

The CLI's `--target NAME` hands a command to `scarab.targets.<NAME>.commands`, whose
function of the command's name (`deploy`, `plan`, `status`, `destroy`, `invoke`,
`keys_list`, ...) takes the resolved Target and the command's own options. A target
that has no such function does not offer the command, and says so.
"""

from __future__ import annotations

import importlib
from typing import Any

from scarab.errors import EXIT_USAGE, ScarabError

DEFAULT_TARGET = "lambda"
# The targets besides Lambda, each a package with a `commands` module.
OTHER_TARGETS = ("sagemaker", "fargate")
TARGETS = (DEFAULT_TARGET, *OTHER_TARGETS)


def _usage(message: str) -> ScarabError:
    e = ScarabError(message)
    e.exit_code = EXIT_USAGE
    return e


def check_target(name: str) -> str:
    """`name` if it is a target; a usage error naming the choices otherwise."""
    if name not in TARGETS:
        raise _usage(f"--target {name!r}: use {', '.join(TARGETS)}.")
    return name


def command_for(name: str, command: str, spoken: str) -> Any:
    """The function that runs `command` (a Python name: keys_list) on target `name`;
    `spoken` is the command as the user typed it (keys list), for the error."""
    check_target(name)
    module = importlib.import_module(f"scarab.targets.{name}.commands")
    fn = getattr(module, command, None)
    if fn is None:
        raise _usage(f"'scarab {spoken}' has no --target {name}; it works on the Lambda stage.")
    return fn
