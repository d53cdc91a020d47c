"""Review of issue 15: `scarab keys ... --target fargate` against a key ring secret in the
moto server (made directly, so no deploy is needed), driven through the real CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fargate.conftest import Project

SECRET = "scarab-test/fargate-api-keys"


@pytest.fixture(scope="module")
def ring(fargate_project: Project) -> Project:
    """The stage's key ring with one key, as a deploy leaves it."""
    from lens.server.keys import KeyRing, ServerKey, dump_keys

    first = ServerKey(id="k-00000001", name="scarab-test-key-1", value="v" * 43)
    fargate_project.client("secretsmanager").create_secret(
        Name=SECRET, SecretString=dump_keys(KeyRing(keys=(first,)))
    )
    return fargate_project


def names(project: Project) -> list[str]:
    got: Any = json.loads(
        project.client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"]
    )
    return [k["name"] for k in got["keys"]]


@pytest.mark.parametrize(
    "name",
    ["a\nb", "tab\there", "x" * 129, " padded ", ""],
    ids=["newline", "tab", "too-long", "padded", "empty"],
)
def test_keys_create_refuses_a_name_that_breaks_the_listing(ring: Project, name: str) -> None:
    """A name with a control character (a newline splits `keys list`'s one line per key),
    padding, or over 128 characters is a usage error, and the ring is left as it was."""
    before = names(ring)
    got = ring.cli("keys", "create", "--target", "fargate", name)
    assert got.exit_code == 2, got.output
    assert "key name" in got.output
    assert names(ring) == before


def test_keys_create_takes_an_ordinary_name(ring: Project) -> None:
    got = ring.cli("keys", "create", "--target", "fargate", "mobile app 2.0_x@team")
    assert got.exit_code == 0, got.output
    assert "mobile app 2.0_x@team" in names(ring)


def test_a_key_named_like_another_keys_id_is_refused(ring: Project) -> None:
    """`keys revoke ID` takes an id or a name: a key named `k-00000001` (the first key's
    id) would make `keys revoke k-00000001` remove both keys."""
    got = ring.cli("keys", "create", "--target", "fargate", "k-00000001")
    assert got.exit_code == 2, got.output
    assert "k-00000001 is the id of the key scarab-test-key-1" in got.output
    assert "k-00000001" not in names(ring)
