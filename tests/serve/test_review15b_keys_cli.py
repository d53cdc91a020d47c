"""review15b: `scarab keys create|rotate|revoke --target fargate` as a person runs them (the
installed CLI, where the function's package is not on sys.path until the command puts it
there): they imported lens.server.keys first and died with ModuleNotFoundError. And revoke
says when a running server stops taking the key (it caches the ring for 60 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scarab.serve.stack import LocalStack
from scarab.serve.targets import ensure_keys

from tests.serve.support import DEFAULT_TOML, make_project
from tests.support.serve_process import scarab_cli

pytestmark = pytest.mark.emulator


def test_keys_create_and_revoke_run_from_the_cli(aws: Any, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", toml=DEFAULT_TOML, web=False)
    stack = LocalStack(
        project_dir=project, endpoint_url=aws.url, region="us-east-1", stage="r15bkeys",
        rest_api_id="", emulator=None, app="scarab",
    )  # fmt: skip
    ensure_keys(stack)
    where = ["--target", "fargate", "--stage", "r15bkeys", "--endpoint-url", aws.url]
    made = scarab_cli(project, "keys", "create", "second", *where)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Traceback" not in made.stderr
    gone = scarab_cli(project, "keys", "revoke", "second", *where)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "Revoked" in gone.stdout
    # A running server accepts a revoked key until it re-reads the ring: the output says so.
    assert "refuses it within 60 s" in " ".join(gone.stdout.split())
