"""Review 13 (adversarial): `scarab rollback` while a split holds (live on version 1,
version 2 at 10%) with no version older than live advised moving forward onto the split's
version ('scarab rollback --to 2'), which sends all traffic to the version under test.
The advice is now to end the split ('scarab split --function KEY --off')."""

from __future__ import annotations

import pytest
from scarab.errors import ScarabError
from scarab.naming import Names
from scarab.release.alias import Function, Routing, Version, rollback_target

NAMES = Names("scarab", "test").function("analyze")


def _function(live: str, weights: dict[str, float], published: list[str]) -> Function:
    return Function(NAMES, Routing(live, weights), {v: Version(v, f"sha{v}") for v in published})


def test_rollback_during_a_split_advises_ending_it_not_moving_forward() -> None:
    fn = _function("1", {"2": 0.1}, ["1", "2"])
    with pytest.raises(ScarabError) as got:
        rollback_target(fn, None)
    advice = str(got.value)
    assert "'scarab split --function analyze --off'" in advice
    assert "--to 2" not in advice and "scarab rollback" not in advice


def test_rollback_to_the_live_version_during_a_split_advises_ending_it() -> None:
    fn = _function("1", {"2": 0.1}, ["1", "2"])
    with pytest.raises(ScarabError, match=r"'scarab split --function analyze --off'"):
        rollback_target(fn, "1")


def test_without_a_split_moving_forward_is_still_offered() -> None:
    # After a rollback from 2 to 1 (no split), going forward again is the right advice.
    with pytest.raises(ScarabError, match=r"'scarab rollback --function analyze --to 2'"):
        rollback_target(_function("1", {}, ["1", "2"]), None)
