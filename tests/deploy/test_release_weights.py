"""Canary and split weights are validated before any AWS call (moto stores 1.5 happily)."""

from __future__ import annotations

import math

import pytest
from scarab.deploy import weights as w
from scarab.errors import ConfigError, ScarabError

PUBLISHED = ("1", "2", "3")


@pytest.mark.parametrize(
    ("text", "value"), [("10", 10.0), ("2.5", 2.5), (" 10% ", 10.0), ("99.9", 99.9), (0.01, 0.01)]
)
def test_a_percent_strictly_between_0_and_100_is_taken(text: str | float, value: float) -> None:
    assert w.parse_percent(text) == value


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("150", "less than 100"),
        ("100", "rollback --function NAME --to VERSION"),
        ("0", "split --function NAME --off"),
        ("-5", "more than 0"),
        ("nan", "finite number"),
        ("inf", "finite number"),
        ("-inf", "finite number"),
        ("ten", "not 'ten'"),
        ("", "not ''"),
        (math.nan, "finite number"),
        (1.5e308 * 10, "finite number"),
    ],
)
def test_nonsense_percents_are_refused_with_a_sentence(text: str | float, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        w.parse_percent(text, what="--canary")
    assert says in str(caught.value)
    assert caught.value.exit_code == 2


def test_the_aws_weight_is_the_percent_over_100_and_always_below_1() -> None:
    assert w.weight(10) == 0.1
    assert w.weight(99.99) < 1.0
    assert w.percent_of(w.weight(33.3)) == 33.3
    with pytest.raises(ConfigError):
        w.weight(150)  # the 1.5 moto would store


def test_a_routing_names_one_published_version_other_than_live() -> None:
    config = w.routing_config({"2": 25}, live="3", published=PUBLISHED, function="f")
    assert config == {"AdditionalVersionWeights": {"2": 0.25}}
    assert w.routing_config({}, live="3", published=PUBLISHED, function="f") == {
        "AdditionalVersionWeights": {}
    }


@pytest.mark.parametrize(
    ("weights", "error", "says"),
    [
        ({"1": 10, "2": 10}, ConfigError, "at most 1 version besides the live one"),
        ({"3": 10}, ScarabError, "is f's live version already"),
        ({"9": 10}, ScarabError, "f has no published version 9 (published: 1, 2, 3)"),
        ({"$LATEST": 10}, ScarabError, "is not a published version of f"),
        ({"live": 10}, ScarabError, "give a version number (published: 1, 2, 3)"),
        ({"2": 100}, ConfigError, "less than 100"),
        ({"2": 0}, ConfigError, "more than 0"),
    ],
)
def test_bad_routings_are_refused(
    weights: dict[str, float], error: type[Exception], says: str
) -> None:
    with pytest.raises(error) as caught:
        w.routing_config(weights, live="3", published=PUBLISHED, function="f")
    assert says in str(caught.value)


def test_no_published_version_is_said_so() -> None:
    with pytest.raises(ScarabError, match="none is published yet"):
        w.check_version("2", live="$LATEST", published=(), function="f")
