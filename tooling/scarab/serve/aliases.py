"""Qualified function references: an alias's weighted routing, resolved to versions.

An integration (or Function URL) that names `<function>:<alias>` runs the alias's
FunctionVersion, or one of its RoutingConfig.AdditionalVersionWeights, picked per
request by weight (`choose`, pure: the caller passes the random number). Each version
is its own FunctionConfig (its own code and environment), so it gets its own workers.
`routing_problem` checks a routing configuration the way Lambda should (the emulator
accepts weights such as 1.5): a bad one makes the route a configuration error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scarab.serve.snapshot import FunctionConfig

_REF = re.compile(
    r"^(?P<base>(?:arn:[^:]+:lambda:[^:]+:[^:]+:function:)?[A-Za-z0-9_-]+)(?::(?P<q>[^:]+))?$"
)
LATEST = "$LATEST"


def split_ref(ref: str) -> tuple[str, str | None]:
    """(function name or unqualified ARN, qualifier or None) of a function reference."""
    match = _REF.match(ref)
    if match is None:
        return ref, None
    return match.group("base"), match.group("q")


def function_name(base: str) -> str:
    """The function's name from a name or an unqualified ARN."""
    return base.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class FunctionTarget:
    """What one function reference runs: the primary version and the weighted others.

    `qualifier` is what the reference named (None when unqualified); `weighted` holds
    (config, weight) of the additional versions, weights in [0, 1) summing below 1."""

    function: str
    qualifier: str | None
    primary: FunctionConfig
    weighted: tuple[tuple[FunctionConfig, float], ...] = ()

    @property
    def configs(self) -> tuple[FunctionConfig, ...]:
        return (self.primary, *(fn for fn, _ in self.weighted))

    @property
    def is_alias(self) -> bool:
        return (
            self.qualifier is not None
            and self.qualifier != LATEST
            and not (self.qualifier.isdigit())
        )

    def choose(self, r: float) -> FunctionConfig:
        return choose(self.primary, self.weighted, r)


def choose(
    primary: FunctionConfig, weighted: tuple[tuple[FunctionConfig, float], ...], r: float
) -> FunctionConfig:
    """The version for a request whose random number is `r` (uniform in [0, 1)): the
    additional versions take the first slices of [0, 1) by weight, the primary the rest."""
    edge = 0.0
    for fn, weight in weighted:
        edge += weight
        if r < edge:
            return fn
    return primary


def routing_problem(
    primary_version: str, weights: Mapping[str, Any], known: set[str]
) -> str | None:
    """Why an alias's routing cannot be served (None when it can): weights must be
    numbers in [0, 1) summing below 1, on published versions other than the primary."""
    total = 0.0
    for version, raw in weights.items():
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return f"the weight of version {version} is not a number ({raw!r})"
        weight = float(raw)
        if not math.isfinite(weight) or not 0.0 <= weight < 1.0:
            return f"the weight of version {version} is {raw!r}, outside [0, 1)"
        if version == primary_version:
            return f"version {version} is both the alias's version and a weighted one"
        if version not in known:
            return f"the weighted version {version} does not exist"
        total += weight
    if total >= 1.0:
        return f"the additional weights add up to {total:g}, leaving nothing for the alias"
    return None
