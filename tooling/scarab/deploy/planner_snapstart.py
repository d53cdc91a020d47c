"""SnapStart in the function's configuration: the parameter, its drift, its refusal.

Lambda takes `SnapStart={"ApplyOn": "PublishedVersions"}` (or `"None"`) in CreateFunction
and UpdateFunctionConfiguration, and snapshots each version published after that. The
setting is part of the function's configuration, so turning it on or off is a
configuration change like any other (and publishes a version where versions are
published on configuration changes).

Moto (5.2) accepts the parameter and drops it: GetFunction always answers
`{"ApplyOn": "None", "OptimizationStatus": "Off"}`, so against moto a function with
SnapStart on shows this drift on every run.
"""

from __future__ import annotations

from typing import Any

from scarab.deploy.models import FunctionSpec
from scarab.deploy.reader import ObservedFunction
from scarab.errors import ScarabError

ON = "PublishedVersions"
OFF = "None"


def apply_on(fn: FunctionSpec) -> str:
    """The ApplyOn the config asks for."""
    return ON if fn.snapstart else OFF


def live_apply_on(config: dict[str, Any]) -> str:
    """The ApplyOn of a live function (GetFunction's Configuration); a runtime without
    SnapStart support reports none, which is off."""
    return str((config.get("SnapStart") or {}).get("ApplyOn") or OFF)


def snapstart_create_params(fn: FunctionSpec) -> dict[str, Any]:
    """What CreateFunction takes for SnapStart (nothing when off: Lambda's default)."""
    return {"SnapStart": {"ApplyOn": ON}} if fn.snapstart else {}


def snapstart_update_params(fn: FunctionSpec, config: dict[str, Any]) -> dict[str, Any]:
    """What UpdateFunctionConfiguration takes: the wanted setting when it is on or the
    live function has it on (to turn it off); nothing otherwise, so a function that
    never had SnapStart (or runs a runtime without it) is sent no SnapStart at all."""
    if fn.snapstart or live_apply_on(config) != OFF:
        return {"SnapStart": {"ApplyOn": apply_on(fn)}}
    return {}


def snapstart_drift(fn: FunctionSpec, config: dict[str, Any]) -> str | None:
    """The configuration difference to report, or None when the live setting matches."""
    have, want = live_apply_on(config), apply_on(fn)
    return None if have == want else f"SnapStart {have} -> {want}"


def check_snapstart(fn: FunctionSpec, live: ObservedFunction | None) -> None:
    """Stop before any change, saying what to do, where SnapStart cannot run: an image
    package (scarab.toml refuses it; a deploy asked for another package gets here), or
    provisioned concurrency on the function (Lambda does not run the two together)."""
    if not fn.snapstart:
        return
    if fn.code.package == "image":
        raise ScarabError(
            f"The function {fn.name} asks for SnapStart, which Lambda runs only for zip"
            ' packages, not container images: deploy it with package = "zip", or set'
            f" snapstart = false for {fn.key}."
        )
    if live is None or not live.provisioned:
        return
    qualifiers = ", ".join(live.provisioned)
    raise ScarabError(
        f"The function {fn.name} has provisioned concurrency configured (on {qualifiers}),"
        f" and [function] / [functions.{fn.key}] snapstart = true asks for SnapStart;"
        " Lambda does not run the two together. Either remove the provisioned"
        f" concurrency ('aws lambda delete-provisioned-concurrency-config --function-name"
        f" {fn.name} --qualifier {live.provisioned[0]}') and deploy again, or set"
        f" snapstart = false for {fn.key} and keep it."
    )
