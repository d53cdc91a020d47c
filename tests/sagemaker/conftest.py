"""Fixtures for --target sagemaker: a throwaway project against the session moto server,
with a fake docker (records argv, registers pushed images in moto's ECR)."""

from __future__ import annotations

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
from scarab.config import load_config
from scarab.targets.sagemaker.pipeline import EndpointResult, deploy_endpoint
from typer.testing import CliRunner, Result

from tests.deploy.conftest import REPO, Recorder, counted_session
from tests.deploy.test_image import FAKE_DOCKER
from tests.support.moto_server import FAKE_CREDENTIALS, MotoServer

ACCOUNT = "123456789012"  # moto's
CONFIG = """\
app = "scarab"
stage = "smk"
"""
ENDPOINT = "scarab-smk"
BUCKET = f"scarab-artifacts-{ACCOUNT}-us-east-1"
ROLE = "scarab-smk-sagemaker-role"
REPOSITORY = "scarab-smk-server"


def make_project(root: Path, config: str = CONFIG) -> Path:
    shutil.copytree(
        REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    # The copy carries the real lambda/server.Dockerfile the tag is derived from.
    assert (root / "lambda" / "server.Dockerfile").is_file()
    (root / "scarab.toml").write_text(config)
    return root


def fake_docker_bin(root: Path) -> Path:
    bindir = root / "fakebin"
    bindir.mkdir()
    exe = bindir / "docker"
    exe.write_text(FAKE_DOCKER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return bindir


@dataclass
class Env:
    """The module's moto server, project and docker log, and the CLI on them."""

    moto: MotoServer
    project: Path
    docker_log: Path
    monkeypatch: pytest.MonkeyPatch

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name="us-east-1", endpoint_url=self.moto.url)

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(app, list(args))

    def set_config(self, extra: str) -> None:
        (self.project / "scarab.toml").write_text(CONFIG + extra)

    def deploy(
        self, recorder: Recorder | None = None, **kwargs: Any
    ) -> tuple[EndpointResult, Recorder]:
        recorder = recorder or Recorder()
        result = deploy_endpoint(
            load_config(self.project),
            project_dir=self.project,
            endpoint_url=self.moto.url,
            session=counted_session(recorder),
            **kwargs,
        )
        return result, recorder


@pytest.fixture(scope="module")
def env(moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A clean moto server for the whole module (one deploy shared by its tests)."""
    root = tmp_path_factory.mktemp("sagemaker")
    project = make_project(root / "proj")
    bindir = fake_docker_bin(root)
    moto_server.reset()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAKE_CREDENTIALS.items():
            mp.setenv(key, value)
        mp.setenv("AWS_ENDPOINT_URL", moto_server.url)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.setenv("FAKE_DOCKER_LOG", str(root / "docker.log"))
        mp.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        mp.chdir(project)
        yield Env(moto_server, project, root / "docker.log", mp)
