"""The `live` alias of a stage's functions: read it, and move it in one UpdateAlias call.

`scarab rollback` and `scarab split` (and the canary bake's promote and roll back) all
end in `move()`: one UpdateAlias that sets the alias's version and its whole
RoutingConfig, so the alias is never left half-way between two states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scarab.aws import Aws, call, error_code
from scarab.deploy import weights as w
from scarab.deploy.planner_versions import parse_version_description
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.errors import ConfigError, ScarabError
from scarab.functions import FUNCTIONS
from scarab.naming import FunctionNames, Names


@dataclass(frozen=True)
class Version:
    """One published version of a function, as ListVersionsByFunction reports it."""

    number: str
    code_sha256: str
    description: str = ""

    @property
    def commit(self) -> str | None:
        return commit_of(self.description)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.number, "code_sha256": self.code_sha256, "commit": self.commit}

    def text(self) -> str:
        """'version 3 (code 1a2b3c4d5e6f, commit abc1234)'."""
        parts = [f"code {_short_sha(self.code_sha256)}"]
        if self.commit:
            parts.append(f"commit {self.commit}")
        return f"version {self.number} ({', '.join(parts)})"


def commit_of(description: str) -> str | None:
    """The git commit a version's description records, if deploy wrote it."""
    return parse_version_description(description).get("commit")


def _short_sha(code_sha256: str) -> str:
    """Lambda's CodeSha256 is base64; 12 characters tell versions apart."""
    return code_sha256[:12] if code_sha256 else "unknown"


@dataclass(frozen=True)
class Routing:
    """Where an alias sends traffic: `version`, plus `weights` (version -> AWS weight)."""

    version: str
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Function:
    """A stage function whose `live` alias was read, with its published versions."""

    names: FunctionNames
    routing: Routing
    versions: dict[str, Version]  # number -> Version, every published one

    @property
    def name(self) -> str:
        return self.names.function

    @property
    def key(self) -> str:
        return self.names.key

    def version(self, number: str) -> Version:
        # A version deleted under the alias still deserves a line: code unknown.
        return self.versions.get(number) or Version(number, "")

    def older(self) -> list[str]:
        """Published versions older than the live one, newest first."""
        live = self.routing.version
        ordered = sorted(self.versions, key=int, reverse=True)
        if not live.isdigit():  # an alias on $LATEST: every published version is older
            return ordered
        return [v for v in ordered if int(v) < int(live)]

    def newer(self) -> list[str]:
        live = self.routing.version
        if not live.isdigit():
            return []
        return sorted((v for v in self.versions if int(v) > int(live)), key=int)


@dataclass(frozen=True)
class Move:
    """What a command did to one alias: `before` and `after`, for printing and --json."""

    function: Function
    before: Routing
    after: Routing

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function.name,
            "key": self.function.key,
            "alias": LIVE_ALIAS,
            "before": self._side(self.before),
            "after": self._side(self.after),
        }

    def _side(self, routing: Routing) -> dict[str, Any]:
        return {
            **self.function.version(routing.version).as_dict(),
            "additional_versions": [
                {**self.function.version(v).as_dict(), "percent": w.percent_of(weight)}
                for v, weight in routing.weights.items()
            ],
        }

    def lines(self) -> list[str]:
        head = f"{self.function.key} ({self.function.name}) alias {LIVE_ALIAS}:"
        return [
            head,
            f"  before: {self.describe(self.before)}",
            f"  after:  {self.describe(self.after)}",
        ]

    def describe(self, routing: Routing) -> str:
        """'version 3 (code ..., commit ...)', with ' + version 4 (...) at 10%' per split."""
        text = self.function.version(routing.version).text()
        shares = [
            f"{self.function.version(v).text()} at {w.percent_of(weight):g}%"
            for v, weight in routing.weights.items()
        ]
        if not shares:
            return text
        main = 100 - sum(w.percent_of(x) for x in routing.weights.values())
        return f"{text} at {main:g}% + " + " + ".join(shares)


def stage_functions(names: Names) -> list[FunctionNames]:
    """The names of the stage's functions that carry a `live` alias (the catalog's)."""
    return [names.function(fn.name) for fn in FUNCTIONS]


def read_routing(aws: Aws, function: str) -> Routing | None:
    """Where `function`'s `live` alias points, or None when it (or the function) is absent."""
    try:
        alias = aws.client("lambda").get_alias(FunctionName=function, Name=LIVE_ALIAS)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    extra = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return Routing(str(alias["FunctionVersion"]), {str(k): float(v) for k, v in extra.items()})


def published_versions(aws: Aws, function: str) -> dict[str, Version]:
    """Every published version of `function` (not $LATEST), by number."""
    lam = aws.client("lambda")
    found: dict[str, Version] = {}
    marker: str | None = None
    while True:
        page = lam.list_versions_by_function(
            FunctionName=function, **({"Marker": marker} if marker else {})
        )
        for v in page.get("Versions", []):
            number = str(v["Version"])
            if number.isdigit():
                found[number] = Version(
                    number, str(v.get("CodeSha256", "")), str(v.get("Description", ""))
                )
        marker = page.get("NextMarker")
        if not marker:
            return found


def read_function(aws: Aws, names: FunctionNames) -> Function | None:
    """`names`'s alias and versions, or None when it has no `live` alias."""
    routing = read_routing(aws, names.function)
    if routing is None:
        return None
    return Function(names, routing, published_versions(aws, names.function))


def pick_function(aws: Aws, names: Names, wanted: str | None) -> Function:
    """The function a command acts on: `wanted` (its catalog key, e.g. analyze, or its
    full name), or, when None, the stage's only function with a `live` alias."""
    candidates = stage_functions(names)
    keys = ", ".join(c.key for c in candidates)
    if wanted is not None:
        match = [c for c in candidates if wanted in (c.key, c.function)]
        if not match:
            raise ConfigError(
                f"--function {wanted}: stage {names.stage} has no such function; give one"
                f" of {keys}."
            )
        found = read_function(aws, match[0])
        if found is None:
            raise ScarabError(
                f"{match[0].function} has no '{LIVE_ALIAS}' alias (or is not deployed):"
                " run 'scarab deploy', which publishes a version and points the alias at it."
            )
        return found
    aliased = [f for f in (read_function(aws, c) for c in candidates) if f is not None]
    if len(aliased) == 1:
        return aliased[0]
    if not aliased:
        raise ScarabError(
            f"No function of stage {names.stage} has a '{LIVE_ALIAS}' alias yet: run"
            " 'scarab deploy', which publishes a version of each and points the alias at it."
        )
    choices = " or ".join(f"--function {f.key}" for f in aliased)
    raise ConfigError(
        f"Stage {names.stage} has {len(aliased)} functions with a '{LIVE_ALIAS}' alias:"
        f" give {choices}."
    )


def move(aws: Aws, fn: Function, after: Routing) -> Move:
    """Point `fn`'s alias at `after` in one UpdateAlias call (its weights replace any)."""
    call(
        aws.client("lambda").update_alias,
        FunctionName=fn.name,
        Name=LIVE_ALIAS,
        FunctionVersion=after.version,
        RoutingConfig={"AdditionalVersionWeights": dict(after.weights)},
    )
    return Move(fn, fn.routing, after)


def rollback_target(fn: Function, to: str | None) -> str:
    """The version `scarab rollback` moves to: `to`, or the newest one older than live.

    ScarabError with advice when there is none (one version only, an unknown `to`, or
    `to` the live version already).
    """
    live = fn.routing.version
    published = ", ".join(sorted(fn.versions, key=int)) or "none"
    if to is not None:
        if to == live:
            raise ScarabError(
                f"{fn.name} is on version {live} already: nothing to roll back. "
                + (_end_split(fn) or f"Give another version with --to (published: {published}).")
            )
        if to not in fn.versions:
            raise ScarabError(
                f"{fn.name} has no published version {to!r} (published: {published})."
                " 'scarab versions' lists them with their commits."
            )
        return to
    older = fn.older()
    if older:
        return older[0]
    advice = f"{fn.name} has no version older than its live version {live} (published:"
    advice += f" {published}): nothing to roll back to."
    newer = fn.newer()
    if fn.routing.weights:
        # Moving forward would put all traffic on the version the split is testing.
        advice += " " + _end_split(fn)
    elif newer:
        advice += f" To move forward again: 'scarab rollback --function {fn.key} --to {newer[-1]}'."
    else:
        advice += " Deploy a fix with 'scarab deploy' instead."
    raise ScarabError(advice)


def _end_split(fn: Function) -> str:
    """The advice for an alias that holds a split: end it (empty when none)."""
    if not fn.routing.weights:
        return ""
    shares = ", ".join(
        f"version {v} at {w.percent_of(x):g}%" for v, x in fn.routing.weights.items()
    )
    return (
        f"It holds a split ({shares}): 'scarab split --function {fn.key} --off' ends it,"
        f" all traffic to version {fn.routing.version}."
    )


def rollback(aws: Aws, names: Names, function: str | None, to: str | None) -> Move:
    """Move `live` to the previous (or `to`) version, ending any split."""
    fn = pick_function(aws, names, function)
    return move(aws, fn, Routing(rollback_target(fn, to)))


def split(aws: Aws, names: Names, function: str | None, version: str, percent: float) -> Move:
    """Send `percent` of `live`'s traffic to `version`; the live version keeps the rest."""
    w.check_percent(percent)  # a usage error first, before reading the account
    fn = pick_function(aws, names, function)
    config = w.routing_config(
        {version: percent}, live=fn.routing.version, published=fn.versions, function=fn.name
    )
    return move(aws, fn, Routing(fn.routing.version, config["AdditionalVersionWeights"]))


def split_off(aws: Aws, names: Names, function: str | None) -> Move:
    """End `live`'s split: all traffic to its version."""
    fn = pick_function(aws, names, function)
    return move(aws, fn, Routing(fn.routing.version))
