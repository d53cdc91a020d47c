"""review15b: a cached /predict answer belongs to the registry entry that made it, not only
to its name, version and bytes. `scarab models rm` then `push` again makes the same
version with the same bytes but another host (a SageMaker endpoint, or back to the
function), threshold or positive label: the old answer (another label, another
endpoint's model) must not be served for the new entry."""

from __future__ import annotations

from typing import Any

import pytest
from lens.predict.registry import ModelEntry, registry
from lens.predict.routes import _key
from lens.predict.tabular import parse_request


def tabular(**update: Any) -> ModelEntry:
    entry = registry().get("tabular")
    assert entry is not None
    return entry.model_copy(update=update) if update else entry


@pytest.mark.parametrize(
    "update",
    [
        {"host": "sagemaker:big-ep"},
        {"threshold": 0.9},
        {"created_at": "2026-12-02T18:00:00+00:00"},
    ],
)
def test_the_key_follows_what_the_entry_decides(update: dict[str, Any]) -> None:
    entry = tabular()
    body = {"features": [1.0] * len(entry.features)}
    request = parse_request(entry, body)
    changed = tabular(**update)
    assert _key("predict", changed, parse_request(changed, body)) != _key("predict", entry, request)
    # The same entry and input is one key (the cache still hits).
    assert _key("predict", tabular(), parse_request(tabular(), body)) == _key(
        "predict", entry, request
    )


def test_hosted_elsewhere_is_another_key() -> None:
    one, other = tabular(host="sagemaker:ep-a"), tabular(host="sagemaker:ep-b")
    body = {"features": [1.0] * len(one.features)}
    assert _key("predict", one, parse_request(one, body)) != _key(
        "predict", other, parse_request(other, body)
    )
