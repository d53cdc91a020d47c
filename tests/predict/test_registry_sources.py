"""Registry sources without a network: version selection, item parsing, feature order."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest
from lens.predict import sources
from lens.predict.registry import ModelEntry, feature_order, registry, tabular_schema
from pydantic import ValidationError

SHA = "ab" * 32


def _entry(version: str) -> ModelEntry:
    return sources.entry_from_item(_item(version))


def _item(version: str, **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": "churn",
        "version": version,
        "kind": "tabular-classifier",
        "description": "d",
        "input_schema": json.dumps(tabular_schema(["a", "b"])),
        "labels": ["no", "yes"],
        "metrics": json.dumps({"auc": 0.9}),
        "artifact_uri": f"s3://bucket/models/churn/{SHA}.onnx",
        "sha256": SHA,
        "created_at": "2026-01-02T03:04:05Z",
        "source": "push",
    }
    item.update(changes)
    return item


def _model(weight: float, candidate: str | None = "2") -> sources.RegisteredModel:
    aliases = sources.Aliases(live="1", candidate=candidate, candidate_weight=weight)
    return sources.RegisteredModel("churn", {"1": _entry("1"), "2": _entry("2")}, aliases)


@pytest.mark.parametrize("weight", [10, 30, 50, 85])
def test_the_candidate_gets_its_weight_over_2000_draws(weight: int) -> None:
    rng = random.Random(weight)
    draws = [sources.choose(_model(weight), rng) for _ in range(2000)]
    share = sum(entry is not None and entry.version == "2" for entry in draws)
    # Binomial(2000, w): 4.5 standard deviations either side.
    mean, sd = 2000 * weight / 100, (2000 * weight / 100 * (1 - weight / 100)) ** 0.5
    assert mean - 4.5 * sd <= share <= mean + 4.5 * sd, share


def test_weights_0_and_100_and_no_candidate_are_exact() -> None:
    rng = random.Random(0)
    assert {sources.choose(_model(0), rng).version for _ in range(200)} == {"1"}  # type: ignore[union-attr]
    assert {sources.choose(_model(100), rng).version for _ in range(200)} == {"2"}  # type: ignore[union-attr]
    assert {sources.choose(_model(50, None), rng).version for _ in range(200)} == {"1"}  # type: ignore[union-attr]
    assert _model(0).summary() == {**_entry("1").summary(), "aliases": ["live"]}
    assert _model(40).summary()["candidate"] == {"version": "2", "weight": 40}  # type: ignore[index]


def test_an_item_becomes_an_entry_with_features_from_its_schema() -> None:
    entry = sources.entry_from_item(_item("1", threshold=Decimal("0.7"), positive_label="yes"))
    assert entry.features == ["a", "b"]
    assert (entry.threshold, entry.positive_label, entry.metrics) == (0.7, "yes", {"auc": 0.9})
    assert entry.artifact.path.startswith("s3://") and entry.source == "push"
    regressor = sources.entry_from_item(_item("1", kind="tabular-regressor", labels=[]))
    assert regressor.labels == [] and regressor.features == ["a", "b"]


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "bogus"},
        {"input_schema": "{not json"},
        {"input_schema": json.dumps({"type": "object"})},  # no features
        {"labels": ["only"]},  # a classifier needs two
        {"sha256": "xyz"},
        {"artifact_uri": "/etc/passwd"},
        {"positive_label": "maybe"},
    ],
)
def test_malformed_items_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises((ValueError, ValidationError)):
        sources.entry_from_item(_item("1", **changes))


def test_view_from_items_groups_versions_and_aliases() -> None:
    items = [
        _item("1"),
        _item("2"),
        {"name": "churn", "version": "~aliases", "live": "2", "history": ["1"], "revision": 3},
        _item("1", name="bad", kind="nope"),
    ]
    view = sources.view_from_items(items, "dynamodb:t", 0.0)
    assert view.names() == ["churn"]
    model = view.get("churn")
    assert model is not None and model.live() is not None
    assert model.live().version == "2"  # type: ignore[union-attr]
    assert model.aliases.history == ("1",) and model.aliases.revision == 3


def test_feature_order_from_x_feature_order_properties_or_a_ref() -> None:
    assert feature_order(tabular_schema(["z", "a", "m"])) == ["z", "a", "m"]
    nested = {"properties": {"features": {"properties": {"q": {}, "b": {}}}}}
    assert feature_order(nested) == ["q", "b"]
    packaged = registry().get("tabular")
    assert packaged is not None
    assert feature_order(packaged.input_schema) == packaged.features  # via $defs
    assert feature_order({"type": "object"}) == []


def test_the_packaged_registry_without_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sources.TABLE_ENV, raising=False)
    view = sources.current()
    assert view.origin == "package"
    assert view.names() == sorted(entry.name for entry in registry().models)
    for model in view.models.values():
        assert model.aliases.live == model.live().version  # type: ignore[union-attr]
