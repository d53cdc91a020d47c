"""README's "SageMaker Serverless" section, run: its scarab.toml block in a project, and
each command of its command block run as written (bash, the real `scarab`) against the
moto server, with a fake docker; each line's comment is checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.deploy.conftest import REPO
from tests.sagemaker.conftest import CONFIG, ENDPOINT, REPOSITORY, fake_docker_bin, make_project
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## SageMaker Serverless")
    return text[start : text.index("\n## ", start + 1)]


def blocks(kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(section()) if lang == kind]


def test_readme_sagemaker_commands(aws: MotoServer, tmp_path: Path) -> None:
    [toml] = blocks("toml")
    [commands] = blocks("")
    project = make_project(tmp_path / "proj", CONFIG + toml)
    tabular = next(
        m
        for m in json.loads((project / "lambda/lens/predict/artifacts/registry.json").read_text())[
            "models"
        ]
        if m["name"] == "tabular"
    )
    (project / "request.json").write_text(json.dumps({"features": [1.0] * 30}))
    assert len(tabular["features"]) == 30
    bindir = fake_docker_bin(tmp_path)
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "FAKE_DOCKER_LOG": str(tmp_path / "docker.log"),
    }
    lines = [line for line in commands.splitlines() if line.strip()]
    assert len(lines) == 6
    sm = boto3.client("sagemaker")
    outputs = []
    for line in lines:
        got = subprocess.run(
            ["bash", "-c", line],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert got.returncode == 0, (line, got.stdout, got.stderr)
        outputs.append(got.stdout)
        if line.startswith("scarab deploy"):
            assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"
    plan, first, again, status, invoked, destroyed = outputs
    ops = [c["operation"] for s in json.loads(plan)["steps"] for c in s["calls"]]
    assert "CreateEndpoint" in ops and "Push" in ops  # the exact calls, made without docker
    assert "Deployed endpoint scarab-smk" in first
    assert "is up to date" in again and "no changes" in again
    assert "InService" in status and "3072" in status and "tabular" in status
    assert "tabular on endpoint scarab-smk" in invoked
    assert "Destroyed the SageMaker endpoint" in destroyed
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_models()["Models"] == []
    repos = boto3.client("ecr").describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in repos] == [REPOSITORY]  # kept without the flag
