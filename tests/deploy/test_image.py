"""The image path: docker commands checked with a fake docker CLI (no engine needed),
and the real docker CLI with no engine gives a clear error."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from scarab.cli import app
from scarab.config import load_config
from scarab.deploy import deploy
from typer.testing import CliRunner

from tests.deploy.conftest import REPO, Recorder, client, counted_session

FAKE_DOCKER = """\
#!{python}
# A stand-in for the docker CLI: records argv; `push` registers the image in the
# emulator's ECR the way a real push would, so Lambda can find it.
import json, os, sys
args = sys.argv[1:]
record = {{"argv": args}}
if args and args[0] == "login":
    record["stdin_bytes"] = len(sys.stdin.read())
with open(os.environ["FAKE_DOCKER_LOG"], "a") as fh:
    fh.write(json.dumps(record) + "\\n")
if os.environ.get("FAKE_DOCKER_DOWN"):
    sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\\n")
    sys.exit(1)
if args[0] == "info":
    print("27.0.0")
elif args[0] == "push":
    import boto3
    ref = args[1]
    repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
    ecr = boto3.client("ecr", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    manifest = {{"schemaVersion": 2, "mediaType":
        "application/vnd.docker.distribution.manifest.v2+json",
        "config": {{"digest": "sha256:" + "0" * 64, "size": 1,
                   "mediaType": "application/vnd.docker.container.image.v1+json"}},
        "layers": []}}
    ecr.put_image(repositoryName=repo, imageManifest=json.dumps(manifest), imageTag=tag)
    print(f"{{tag}}: digest: sha256:{{'0' * 64}} size: 1")
"""

DOCKERFILE = """\
FROM public.ecr.aws/lambda/python:3.12
COPY requirements.txt ${LAMBDA_TASK_ROOT}/
RUN pip install --no-cache-dir -r requirements.txt
COPY lens ${LAMBDA_TASK_ROOT}/lens
CMD ["lens.handler.lambda_handler"]
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    exe = bindir / "docker"
    exe.write_text(FAKE_DOCKER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return log


def commands(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def image_project(project: Path) -> Path:
    dockerfile = project / "lambda" / "Dockerfile"
    if not dockerfile.exists():
        dockerfile.write_text(DOCKERFILE)
    return project


@pytest.mark.emulator
def test_image_deploy_builds_pushes_once_then_skips(
    aws, image_project: Path, fake_docker: Path
) -> None:
    config = load_config(image_project, {"function.package": "image"})
    result = deploy(config, project_dir=image_project, endpoint_url=aws.url)
    cmds = [c["argv"] for c in commands(fake_docker)]
    verbs = [c[0] for c in cmds]
    assert verbs == ["info", "build", "login", "tag", "push"]
    build = cmds[1]
    tag = result.image_uri.rsplit(":", 1)[1]
    assert build[1:5] == ["--platform", "linux/amd64", "--provenance=false", "--tag"]
    assert build[5] == f"scarab-function:{tag}"
    assert build[6] == str(image_project / "lambda")
    registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert cmds[2] == ["login", "--username", "AWS", "--password-stdin", registry]
    assert commands(fake_docker)[2]["stdin_bytes"] > 0  # the password came on stdin
    assert cmds[3] == ["tag", f"scarab-function:{tag}", f"{registry}/scarab-test:{tag}"]
    assert cmds[4] == ["push", f"{registry}/scarab-test:{tag}"]

    ecr = client("ecr", aws)
    repo = ecr.describe_repositories(repositoryNames=["scarab-test"])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    rules = json.loads(
        ecr.get_lifecycle_policy(repositoryName="scarab-test")["lifecyclePolicyText"]
    )
    assert rules["rules"][0]["selection"]["countNumber"] == 10
    fn = client("lambda", aws).get_function(FunctionName="scarab-test-analyze")
    assert fn["Configuration"]["PackageType"] == "Image"
    assert fn["Code"]["ImageUri"] == f"{registry}/scarab-test:{tag}"

    fake_docker.unlink()
    recorder = Recorder()
    again = deploy(
        config, project_dir=image_project, endpoint_url=aws.url, session=counted_session(recorder)
    )
    assert again.up_to_date and recorder.mutating == []
    assert commands(fake_docker) == []  # the digest is in ECR: no build, no push


def test_arm64_builds_for_linux_arm64(image_project: Path, fake_docker: Path) -> None:
    from scarab.artifacts import build_image

    built = build_image(image_project, "arm64")
    assert built.platform == "linux/arm64"
    assert commands(fake_docker)[1]["argv"][1:3] == ["--platform", "linux/arm64"]


def test_image_tag_follows_content(image_project: Path) -> None:
    from scarab.artifacts import image_tag

    before = image_tag(image_project, "x86_64")
    assert image_tag(image_project, "x86_64") == before
    assert image_tag(image_project, "arm64") != before
    (image_project / "lambda" / "lens" / "extra.py").write_text("X = 1\n")
    assert image_tag(image_project, "x86_64") != before


def test_stopped_engine_reads_as_advice(
    image_project: Path, fake_docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_DOWN", "1")
    monkeypatch.chdir(image_project)
    result = CliRunner().invoke(app, ["build", "--package", "image"])
    assert result.exit_code == 1
    assert "Docker is not running" in result.output and "--package zip" in result.output


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_real_docker_cli_without_engine(
    image_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(image_project)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = CliRunner().invoke(app, ["build", "--package", "image"])
    assert result.exit_code == 1, result.output
    assert "Docker is not running" in result.output
    assert "Traceback" not in result.output


def test_missing_dockerfile_is_explained(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "lambda" / "Dockerfile").unlink(missing_ok=True)
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["build", "--package", "image"])
    assert result.exit_code == 1 and "No Dockerfile" in result.output


def test_repo_dockerfile_runs_the_handler() -> None:
    dockerfile = REPO / "lambda" / "Dockerfile"
    if not dockerfile.exists():
        pytest.skip("lambda/Dockerfile is not written yet (owned by the function engineer)")
    text = dockerfile.read_text()
    assert "public.ecr.aws/lambda/python" in text
    assert '"lens.handler.lambda_handler"' in text
