"""Review 9: interpreters named by SCARAB_BYTECODE_PYTHON (or found as python3.12) that
answer the describe probe with something other than what a Python prints."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from scarab.artifacts import zip as zipmod
from scarab.errors import ScarabError


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.parametrize(
    "prints",
    [
        "3.12",  # a wrapper that prints its version: valid JSON, not a list
        '"abcd"',  # a JSON string of four characters would unpack into four fields
        "[1, 2, 3, 4]",  # four values, none of them text
        '["/x", "cpython", 312, "cpython-312"]',  # a version that is not a string
        "[]",
    ],
)
def test_an_interpreter_printing_garbage_is_refused_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prints: str
) -> None:
    fake = _script(tmp_path, "python-fake", f"echo '{prints}'")
    assert zipmod.probe_python(str(fake)) == "did not describe itself"
    monkeypatch.setenv(zipmod.BYTECODE_PYTHON_ENV, str(fake))
    with pytest.raises(ScarabError, match="did not describe itself"):
        zipmod.bytecode_compiler("python3.12")
