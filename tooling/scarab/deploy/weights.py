"""Validation of canary and split percentages and of alias routing, before any AWS call.

Pure: no AWS, no I/O. A percent is what a person types (10 means 10 %); AWS's alias
weight is that divided by 100 and must lie in [0.0, 1.0). We ask for more: a finite
number strictly between 0 and 100, because 0 sends nothing (that is `split --off`) and
100 is a promotion (that is `rollback --to`), and moto would store 1.5 without a word.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from scarab.errors import ConfigError, ScarabError

# Lambda allows at most one additional version on an alias.
MAX_ADDITIONAL_VERSIONS = 1


def parse_percent(text: str | float, *, what: str = "PERCENT") -> float:
    """A percent from a command line ("10", "2.5", "10%") or a number, validated.

    ConfigError (exit 2) for anything that is not a finite number in (0, 100).
    """
    if isinstance(text, str):
        raw = text.strip().removesuffix("%").strip()
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(
                f"{what} must be a number of percent such as 10 or 2.5, not {text!r}."
            ) from None
    else:
        value = float(text)
    return check_percent(value, what=what)


def check_percent(value: float, *, what: str = "PERCENT") -> float:
    """`value` itself when it is a finite percent strictly between 0 and 100."""
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number between 0 and 100, not {value}.")
    if value <= 0:
        raise ConfigError(
            f"{what} must be more than 0 (got {value:g}): a version with 0 % gets no"
            " traffic; to end a split run 'scarab split --function NAME --off'."
        )
    if value >= 100:
        raise ConfigError(
            f"{what} must be less than 100 (got {value:g}): 100 % is not a split but a"
            " move; to send all traffic to a version run"
            " 'scarab rollback --function NAME --to VERSION'."
        )
    return value


def weight(percent: float) -> float:
    """AWS's alias weight for a validated percent: in (0.0, 1.0), never rounded (a
    rounded 99.9999999 is 1.0, which Lambda refuses; a rounded 1e-9 is 0.0)."""
    share = check_percent(percent) / 100
    if not 0.0 < share < 1.0:  # a percent so near 0 or 100 that the division reaches it
        raise ConfigError(f"PERCENT {percent!r} is too close to 0 or 100 for an alias weight.")
    return share


def percent_of(weight_value: float) -> float:
    """The percent a stored alias weight means (0.1 -> 10.0), rounded for display."""
    return round(weight_value * 100, 6)


def check_version(version: str, *, live: str, published: Collection[str], function: str) -> str:
    """`version` when it is a published version of `function` other than the live one.

    ScarabError (exit 1): the account decides, so it is not a usage error.
    """
    if version == "$LATEST" or not version.isdigit():
        raise ScarabError(
            f"{version!r} is not a published version of {function}: give a version"
            f" number ({_choices(published)}); 'scarab versions' lists them."
        )
    if version not in published:
        raise ScarabError(
            f"{function} has no published version {version} ({_choices(published)});"
            " 'scarab versions' lists them."
        )
    if version == live:
        raise ScarabError(
            f"Version {version} is {function}'s live version already: a split sends a share"
            " of the traffic to another version."
        )
    return version


def routing_config(
    weights: Mapping[str, float], *, live: str, published: Collection[str], function: str
) -> dict[str, dict[str, float]]:
    """The alias RoutingConfig for `weights` (version -> percent), validated: at most one
    additional version, each published and not live, each percent in (0, 100).

    An empty mapping is the config that ends any split.
    """
    if len(weights) > MAX_ADDITIONAL_VERSIONS:
        raise ConfigError(
            f"An alias routes to at most {MAX_ADDITIONAL_VERSIONS} version besides the live"
            f" one; got {len(weights)} ({', '.join(sorted(weights))})."
        )
    out: dict[str, float] = {}
    for version, percent in weights.items():
        check_version(version, live=live, published=published, function=function)
        out[version] = weight(percent)
    return {"AdditionalVersionWeights": out}


def _choices(published: Collection[str]) -> str:
    ordered = sorted(published, key=int)
    return f"published: {', '.join(ordered)}" if ordered else "none is published yet"
