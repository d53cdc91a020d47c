"""Review 6: `[functions.<name>] architecture` with `package = "image"`.

The stage has one image (deploy._codes tags it for [function].architecture and
planner.plan_image pushes it for `d.functions[0].architecture`), but each function is
created with its own `Architectures` from function_config(). A models function set to
arm64 is then created on an x86_64 image: on AWS it fails at the first invoke
(exec format error / Runtime.InvalidEntrypoint), and nothing at config or plan time
says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.deploy.instructions import ApiCall, PushImage

pytestmark = pytest.mark.emulator


def test_an_arm64_models_function_gets_an_arm64_image(run_deploy, project: Path) -> None:
    """Either the config is refused with a clear error, or every function's
    architecture has an image pushed for it."""
    toml = project / "scarab.toml"
    toml.write_text(
        toml.read_text().replace("[function]\n", '[function]\npackage = "image"\n', 1)
        + '\n[functions.models]\narchitecture = "arm64"\n'
    )
    try:
        result, _ = run_deploy(dry_run=True)
    except Exception as exc:  # a clear refusal is an acceptable answer
        assert "architecture" in str(exc) and "image" in str(exc), exc
        return
    instructions = [i for s in result.plan for i in s.instructions]
    pushed = {i.architecture for i in instructions if isinstance(i, PushImage)}
    created = {
        i.params["FunctionName"]: i.params["Architectures"][0]
        for i in instructions
        if isinstance(i, ApiCall) and i.operation == "CreateFunction"
    }
    assert created["scarab-test-models"] == "arm64"
    assert set(created.values()) <= pushed, (created, pushed)
