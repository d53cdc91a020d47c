"""One throwaway project deployed to the session moto server per test module, with a
fake docker CLI on PATH that records its argv (no docker engine here)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from scarab.cli import app
from typer.testing import CliRunner, Result

from tests.deploy.test_image import FAKE_DOCKER
from tests.support.moto_server import FAKE_CREDENTIALS, MotoServer

REPO = Path(__file__).resolve().parents[2]
CONFIG = """\
app = "scarab"
stage = "test"

[fargate]
cpu = 256
memory = 512
desired_count = 2
allowed_cidrs = ["203.0.113.0/24", "2001:db8::/32"]
"""


@dataclass
class Project:
    root: Path
    moto: MotoServer
    docker_log: Path

    def cli(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), input=input)

    def ok(self, *args: str) -> str:
        got = self.cli(*args)
        assert got.exit_code == 0, got.output
        return got.output

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name="us-east-1", endpoint_url=self.moto.url)

    def docker(self) -> list[list[str]]:
        if not self.docker_log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.docker_log.read_text().splitlines()]

    def set_config(self, text: str) -> None:
        (self.root / "scarab.toml").write_text(text)


def make_project(root: Path) -> None:
    shutil.copytree(
        REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    assert (root / "lambda" / "server.Dockerfile").is_file()  # the real one, copied
    (root / "scarab.toml").write_text(CONFIG)


@pytest.fixture(scope="module")
def fargate_project(
    moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """A fresh moto server state and a project for the whole module (one deploy)."""
    import scarab.aws

    base = tmp_path_factory.mktemp("fargate")
    root = base / "proj"
    make_project(root)
    bindir = base / "fakebin"
    bindir.mkdir()
    exe = bindir / "docker"
    exe.write_text(FAKE_DOCKER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = base / "docker.log"
    mp = pytest.MonkeyPatch()
    moto_server.reset()
    for key, value in FAKE_CREDENTIALS.items():
        mp.setenv(key, value)
    mp.setenv("AWS_ENDPOINT_URL", moto_server.url)
    mp.delenv("AWS_PROFILE", raising=False)
    mp.setenv("FAKE_DOCKER_LOG", str(log))
    mp.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    mp.setattr(scarab.aws, "RETRY_BASE_DELAY", 0.05)
    mp.chdir(root)
    try:
        yield Project(root, moto_server, log)
    finally:
        mp.undo()
