"""The versions part of the plan: publish a version when a function's code or
configuration changed, move the `live` alias to it, prune old versions. Pure, like
deploy/planner.py (which puts these steps after each function's own steps).

Whether to publish is decided against what the version `live` points to records in its
description (the code's sha256 and a digest of the configuration), never against what
this run changed: a run killed between UpdateFunctionCode and PublishVersion publishes
on the next run, and a change of configuration alone (memory, environment, ...)
publishes too, which SAM's AutoPublishAlias does not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from scarab.deploy.instructions import ApiCall, Ref, Step, WaitForFunction
from scarab.deploy.models import FunctionSpec
from scarab.deploy.planner_api import deleting
from scarab.deploy.reader import Observed, ObservedUnit
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.deploy.weights import percent_of
from scarab.deploy.weights import weight as canary_weight

# Lambda's limit on a version's description.
DESCRIPTION_LIMIT = 256
# The first word of the descriptions scarab writes (a version published by anyone else
# records nothing scarab can compare, so `live` on it means "publish").
DESCRIPTION_MARK = "scarab"


def version_var(key: str) -> str:
    """The plan variable holding the version number published for function `key`."""
    return f"version_{key}"


@dataclass(frozen=True)
class Provenance:
    """Where a deploy's code came from: the project's git commit (with "-dirty" when it
    has uncommitted changes; None: not a git checkout) and scarab's version."""

    commit: str | None
    scarab: str


def version_configuration(fn: FunctionSpec, environment: dict[str, str]) -> dict[str, Any]:
    """Everything of function `fn` a published version freezes other than its code:
    `environment` is the one $LATEST has after the plan (the config's variables and any
    someone else set)."""
    image = fn.code.package == "image"
    frozen: dict[str, Any] = {
        "package": fn.code.package,
        "memory": fn.memory,
        "timeout": fn.timeout,
        "role": fn.role_arn,
        "runtime": None if image else fn.runtime,
        "handler": None if image else fn.handler,
        "image_command": [fn.handler] if image else None,
        "architecture": fn.architecture,
        "environment": dict(sorted(environment.items())),
        "vpc": fn.vpc.as_params() if fn.vpc is not None else None,
        "description": fn.description,
        # A published version is snapshotted or not: switching SnapStart is a new version.
        "snapstart": fn.snapstart,
    }
    if fn.dead_letter_arn is not None:  # only then, so other functions' digests stay
        frozen["dead_letter"] = fn.dead_letter_arn
    return frozen


def config_digest(configuration: dict[str, Any]) -> str:
    """A short digest of `configuration` (version_configuration's): equal settings,
    equal digest, whatever the order of keys."""
    text = json.dumps(configuration, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def code_identity(fn: FunctionSpec) -> str:
    """The function's code as recorded in a version: a zip's CodeSha256 (base64, as
    Lambda reports it) or an image's content tag."""
    if fn.code.package == "image":
        return f"image:{fn.code.image_tag}"
    return str(fn.code.zip_sha256_b64)


def version_description(code: str, digest: str, commit: str | None, scarab: str) -> str:
    """A version's description: what it runs and where it came from, in at most
    Lambda's 256 characters (the code and the digest, which decide whether to publish,
    come first; only an absurdly long commit or version would be cut)."""
    words = [DESCRIPTION_MARK, f"code={code}", f"config={digest}"]
    if commit:
        words.append(f"commit={commit}")
    words.append(f"scarab={scarab}")
    return " ".join(words)[:DESCRIPTION_LIMIT]


def parse_version_description(text: str | None) -> dict[str, str]:
    """The fields of a description version_description wrote ({} for anyone else's):
    code, config, and commit and scarab when recorded."""
    words = (text or "").split()
    if not words or words[0] != DESCRIPTION_MARK:
        return {}
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    return fields if "code" in fields and "config" in fields else {}


@dataclass(frozen=True)
class PlannedRelease:
    """What the plan does to function `fn`'s `live` alias: from `previous` (None: no
    alias yet) to `target` (a version number, or None when the plan publishes one, kept
    under version_var), with `canary_weight` for the target when weighted."""

    previous: str | None
    target: str | None
    publish: bool
    reason: str
    canary_weight: float | None


def _versions(unit: ObservedUnit) -> list[dict[str, Any]]:
    """The function's published versions, newest first ($LATEST is not one)."""
    live = unit.function
    found = [v for v in (live.versions if live else []) if str(v.get("Version", "")).isdigit()]
    return sorted(found, key=lambda v: int(v["Version"]), reverse=True)


def live_alias(unit: ObservedUnit) -> dict[str, Any] | None:
    """The function's `live` alias as ListAliases gave it (None: it has none)."""
    return unit.function.aliases.get(LIVE_ALIAS) if unit.function else None


def planned_release(
    fn: FunctionSpec,
    unit: ObservedUnit,
    environment: dict[str, str],
    canary_percent: float | None = None,
) -> PlannedRelease | None:
    """Where `live` must go for function `fn` (None: it already serves this code and
    configuration). A version that already records them (published by a run killed
    before it moved the alias) is reused rather than published again."""
    digest = config_digest(version_configuration(fn, environment))
    want = {"code": code_identity(fn), "config": digest}
    alias = live_alias(unit)
    previous = str(alias["FunctionVersion"]) if alias else None
    versions = _versions(unit)
    recorded = {
        str(v["Version"]): parse_version_description(v.get("Description")) for v in versions
    }

    def same(fields: dict[str, str]) -> bool:
        return all(fields.get(k) == v for k, v in want.items())

    if previous is not None and same(recorded.get(previous, {})):
        return None
    if previous is None:
        reason = "no live alias yet"
    else:
        have = recorded.get(previous, {})
        if not have:
            reason = f"version {previous} records no code and configuration scarab can compare"
        elif have.get("code") != want["code"]:
            reason = f"version {previous} runs other code"
        else:
            reason = f"version {previous} has other configuration"
    reuse = next((str(v["Version"]) for v in versions if same(recorded[str(v["Version"])])), None)
    weight = None
    if canary_percent is not None and previous is not None:
        # Unrounded: rounding took 99.9999999 to 1.0 (Lambda refuses it) and 1e-9 to
        # 0.0 (a canary no request reaches, promoted after a quiet bake).
        weight = canary_weight(canary_percent)
    return PlannedRelease(previous, reuse, reuse is None, reason, weight)


def plan_release(
    fn: FunctionSpec,
    unit: ObservedUnit,
    environment: dict[str, str],
    provenance: Provenance,
    canary_percent: float | None = None,
) -> list[Step]:
    """Publish a version of function `fn` when `live` does not serve its code and
    configuration yet, then point `live` at it (with `canary_percent`: the new version
    gets that share through weighted routing, the previous one keeps serving the rest)."""
    release = planned_release(fn, unit, environment, canary_percent)
    if release is None:
        return []
    steps: list[Step] = []
    target: str | Ref
    if release.publish:
        digest = config_digest(version_configuration(fn, environment))
        params: dict[str, Any] = {
            "FunctionName": fn.name,
            "Description": version_description(
                code_identity(fn), digest, provenance.commit, provenance.scarab
            ),
        }
        if fn.code.package == "zip":
            # Lambda refuses to publish if $LATEST's code is not this zip (another run
            # updated it meanwhile). An image's digest is only known after the push.
            params["CodeSha256"] = fn.code.zip_sha256_b64
        publish = ApiCall(
            "lambda", "PublishVersion", params,
            output_var=version_var(fn.key), output_path="Version",
        )  # fmt: skip
        # The function settles first: Lambda refuses to publish while an update runs.
        wait = WaitForFunction(fn.name)
        steps.append(Step(f"lambda.version {fn.name}", "create", release.reason, (wait, publish)))
        target = Ref(version_var(fn.key))
    else:
        assert release.target is not None
        target = release.target
    alias_res = f"lambda.alias {fn.name}:{LIVE_ALIAS}"
    if release.previous is None:
        create = ApiCall(
            "lambda", "CreateAlias",
            {"FunctionName": fn.name, "Name": LIVE_ALIAS, "FunctionVersion": target,
             "Description": "What the API and the Function URL run (managed by scarab)"},
        )  # fmt: skip
        steps.append(Step(alias_res, "create", "missing", (create,)))
        return steps
    if release.canary_weight is not None:
        version: str | Ref = release.previous
        routing: dict[Any, Any] = {"AdditionalVersionWeights": {target: release.canary_weight}}
        why = f"canary: {release.canary_weight:.0%} of the traffic to the new version"
    else:
        version, routing = target, {"AdditionalVersionWeights": {}}
        shown = target if isinstance(target, str) else "the new version"
        why = f"{release.previous} -> {shown}"
    held = held_split(unit)
    if held:
        why += f" (ends the split: {held})"
    update = ApiCall(
        "lambda", "UpdateAlias",
        {"FunctionName": fn.name, "Name": LIVE_ALIAS, "FunctionVersion": version,
         "RoutingConfig": routing},
    )  # fmt: skip
    steps.append(Step(alias_res, "update", why, (update,)))
    return steps


def held_split(unit: ObservedUnit) -> str:
    """The split the function's `live` alias holds now ("version 2 at 10%"; "" for
    none): moving the alias replaces its whole RoutingConfig, so a release ends it."""
    alias = live_alias(unit) or {}
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return ", ".join(f"version {v} at {percent_of(float(x)):g}%" for v, x in weights.items())


def split_warnings(fns: list[FunctionSpec], observed: Observed) -> list[str]:
    """A warning for each function whose `live` alias held a split (`scarab split`, or a
    canary) that this deploy's release ended, with the command that restores it."""
    out = []
    for fn in fns:
        held = held_split(observed.unit(fn.key))
        if held:
            out.append(
                f"{fn.name}'s '{LIVE_ALIAS}' alias held a split ({held}); this deploy moved"
                " the alias to the new version, which ends it: 'scarab split --function"
                f" {fn.key} VERSION PERCENT' holds one again"
            )
    return out


def alias_versions(unit: ObservedUnit) -> set[str]:
    """Every version an alias of the function points to, weighted ones included."""
    used: set[str] = set()
    for alias in (unit.function.aliases if unit.function else {}).values():
        used.add(str(alias.get("FunctionVersion")))
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        used.update(str(v) for v in weights)
    return used


def plan_prune(fn: FunctionSpec, unit: ObservedUnit, release: PlannedRelease | None) -> list[Step]:
    """Delete versions older than the newest `fn.keep_versions` (a version this plan
    publishes counts) that no alias points to, weighted or not, before or after it."""
    versions = [str(v["Version"]) for v in _versions(unit)]
    slots = fn.keep_versions - (1 if release is not None and release.publish else 0)
    keep = set(versions[: max(slots, 0)]) | alias_versions(unit)
    if release is not None and release.target is not None:
        keep.add(release.target)
    doomed = [v for v in versions if v not in keep]
    if not doomed:
        return []
    calls = tuple(
        ApiCall("lambda", "DeleteFunction", {"FunctionName": fn.name, "Qualifier": v},
                missing_ok=True)
        for v in sorted(doomed, key=int)
    )  # fmt: skip
    listed = ", ".join(sorted(doomed, key=int))
    why = deleting(
        f"older than the newest {fn.keep_versions} (keep_versions); no alias uses {listed}"
    )
    return [Step(f"lambda.versions {fn.name}", "delete", why, calls)]
