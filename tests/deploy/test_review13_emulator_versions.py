"""Review 13 (adversarial): the embedded emulator (`scarab serve`, `--local`) numbered a
function's next version len(versions) + 1 (moto's rule), so once `keep_versions` pruned
old versions a new PublishVersion reused a number that had existed (or still existed),
and the alias on it ran old code. Lambda never reuses a version number. And a
PublishVersion sent again with nothing changed (botocore's retry of a call whose first
answer was lost) must return the same version, as Lambda does, not publish another.

The emulator runs in this process: moto's state is per process, not per emulator, so
each test uses a function name of its own."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from scarab.emulator import Emulator, emulator_session, start_embedded

pytestmark = pytest.mark.emulator

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
         "Action": "sts:AssumeRole"}
    ],
}  # fmt: skip


def _zip(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", f"def handler(event, context):\n    return {n}\n")
    return buf.getvalue()


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = start_embedded()
    try:
        yield emu
    finally:
        emu.stop()


def _lambda(emulator: Emulator) -> Any:
    return emulator_session("us-east-1").client("lambda", endpoint_url=emulator.url)


def _function(emulator: Emulator) -> str:
    """A new function of the test's own (a name no other test in the process uses)."""
    name = f"r13-{uuid.uuid4().hex[:12]}"
    iam = emulator_session("us-east-1").client("iam", endpoint_url=emulator.url)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    _lambda(emulator).create_function(
        FunctionName=name, Runtime="python3.12", Role=role["Role"]["Arn"],
        Handler="app.handler", Code={"ZipFile": _zip(0)},
    )  # fmt: skip
    return name


def _publish(lam: Any, name: str, n: int) -> str:
    lam.update_function_code(FunctionName=name, ZipFile=_zip(n))
    return str(lam.publish_version(FunctionName=name)["Version"])


def _versions(lam: Any, name: str) -> list[str]:
    got = lam.list_versions_by_function(FunctionName=name)["Versions"]
    return [v["Version"] for v in got if v["Version"] != "$LATEST"]


def test_a_version_number_is_never_reused_after_pruning(emulator: Emulator) -> None:
    lam, name = _lambda(emulator), _function(emulator)
    assert [_publish(lam, name, n) for n in (1, 2, 3)] == ["1", "2", "3"]
    for old in ("1", "2"):  # what keep_versions = 1 prunes
        lam.delete_function(FunctionName=name, Qualifier=old)
    assert _publish(lam, name, 4) == "4"
    lam.delete_function(FunctionName=name, Qualifier="4")  # the newest one too
    assert _publish(lam, name, 5) == "5"
    assert _versions(lam, name) == ["3", "5"]
    # Each number runs its own code: version 3 is still the third zip.
    sha = {v: lam.get_function(FunctionName=name, Qualifier=v)["Configuration"]["CodeSha256"]
           for v in ("3", "5")}  # fmt: skip
    assert sha["3"] != sha["5"]


def test_a_publish_sent_again_with_nothing_changed_returns_the_same_version(
    emulator: Emulator,
) -> None:
    lam, name = _lambda(emulator), _function(emulator)
    # The first version after a code update (moto forgot the change only from the second).
    lam.update_function_code(FunctionName=name, ZipFile=_zip(1))
    first = lam.publish_version(FunctionName=name)["Version"]
    again = lam.publish_version(FunctionName=name)["Version"]
    assert (first, again) == ("1", "1")
    assert _publish(lam, name, 2) == "2"
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    assert _versions(lam, name) == ["1", "2"]
