"""The server's key ring: what it accepts, and what a broken secret says."""

from __future__ import annotations

import pytest
from lens.server.keys import KeyRing, KeyRingError, ServerKey, dump_keys, parse_keys

A = ServerKey(id="k-1", name="scarab-test-key-1", value="a" * 40, created="2026-12-02")
B = ServerKey(id="k-2", name="scarab-test-key-2", value="b" * 40, enabled=False)


def test_only_enabled_keys_are_accepted() -> None:
    ring = KeyRing(keys=(A, B))
    assert ring.accepts("a" * 40)
    assert not ring.accepts("b" * 40)  # disabled
    assert not ring.accepts("a" * 39) and not ring.accepts("") and not ring.accepts(None)
    assert not KeyRing().accepts("a" * 40)


def test_the_format_round_trips() -> None:
    ring = KeyRing(keys=(A, B))
    assert parse_keys(dump_keys(ring)) == ring


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"keys": [{"id": "k"}]}',
        '{"keys": [{"id": "k", "name": "n", "value": "short-secret-value"}]}',
    ],
)
def test_a_broken_secret_is_explained_without_its_text(text: str) -> None:
    with pytest.raises(KeyRingError) as e:
        parse_keys(text)
    assert "short-secret-value" not in str(e.value)
    assert '"keys"' in str(e.value)
