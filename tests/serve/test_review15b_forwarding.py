"""review15b: the forwarded request names the version the function resolved. A pinned
`?version=1` of a model hosted on the stage's endpoint was answered by the endpoint's
live version (2): InvokeEndpoint said only `model=<name>`. And the function never passes
on an answer of another version than the one it resolved (a stale endpoint)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.support import http, make_project
from tests.serve.test_sagemaker_forwarding import ARTIFACTS, TOML, Stage, features
from tests.support.ports import wait_until
from tests.support.serve_process import scarab_cli, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


def push(stage_dir: Path, version: str) -> None:
    entry = next(
        m
        for m in json.loads((ARTIFACTS / "registry.json").read_text())["models"]
        if m["name"] == "tabular"
    )
    schema = stage_dir / "tabular-schema.json"
    schema.write_text(json.dumps(entry["input_schema"]))
    pushed = scarab_cli(
        stage_dir, "models", "push", str(ARTIFACTS / "tabular.onnx"), "--name", "pinned",
        "--version", version, "--kind", "tabular-classifier", "--schema", str(schema),
        "--labels", ",".join(entry["labels"]), "--positive-label", entry["positive_label"],
        "--host", "sagemaker:scarab-dev", "--promote", "--local",
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    project = make_project(tmp_path_factory.mktemp("r15b-fwd"), toml=TOML, web=False)
    proc = start_serve(project, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    try:
        push(project, "1")
        push(project, "2")
        key = {"x-api-key": proc.api_key or ""}

        def live() -> bool:
            listed = http(f"{proc.api_url}/models", headers=key).json()["models"]
            return any(m["name"] == "pinned" and m["version"] == "2" for m in listed)

        wait_until(live, timeout=30, what="version 2 live")
        yield Stage(proc, project)
    finally:
        proc.stop()
        print(proc.output())


def test_a_pinned_version_is_answered_by_that_version(stage: Stage) -> None:
    for version in ("1", "2"):
        resp = http(
            f"{stage.serve.api_url}/predict/pinned?version={version}",
            "POST",
            features(4),
            {"x-api-key": stage.serve.api_key or "", "Content-Type": "application/json"},
        )
        assert resp.status == 200, resp.body
        assert resp.json()["model_version"] == version
    unpinned = stage.post("pinned", features(4))
    assert unpinned.status == 200 and unpinned.json()["model_version"] == "2"
