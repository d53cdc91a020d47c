"""lambda/server.Dockerfile (no docker engine here: its text), the entrypoint script it
runs (executed for real, with a `python` on PATH that records its argv), and the Lambda
zips, which must not carry lens/server."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from scarab.artifacts.zip import build_function_zips, build_zip

from tests.deploy.conftest import project  # noqa: F401  (the fixture)
from tests.server.support import TASK_ROOT

DOCKERFILE = TASK_ROOT / "server.Dockerfile"
ENTRYPOINT = TASK_ROOT / "lens" / "server" / "entrypoint.sh"


def instructions() -> list[tuple[str, str]]:
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def only(word: str) -> str:
    [rest] = [r for w, r in instructions() if w == word]
    return rest


def test_slim_python_base_with_nothing_arch_specific() -> None:
    args = dict(r.split("=", 1) for w, r in instructions() if w == "ARG")
    base = only("FROM").replace("${PYTHON_VERSION}", args["PYTHON_VERSION"])
    assert re.fullmatch(r"python:3\.(1[2-9])-slim", base), base
    text = DOCKERFILE.read_text().lower()
    for arch in ("amd64", "arm64", "x86_64", "aarch64", "--platform"):
        assert arch not in "".join(f"{w} {r}".lower() for w, r in instructions()), arch
    assert "buildx" in text  # the header documents both platforms' builds


def test_requirements_before_code_and_the_server_list_installed() -> None:
    steps = [f"{w} {r}" for w, r in instructions()]
    pip = next(i for i, s in enumerate(steps) if s.startswith("RUN pip install"))
    code = next(i for i, s in enumerate(steps) if s.startswith("COPY lens/"))
    assert pip < code
    assert "--no-cache-dir" in steps[pip]
    installed = re.findall(r"--requirement (\S+)", steps[pip])
    assert [Path(p).name for p in installed] == ["requirements.txt", "server.txt"]
    copied = [s.split()[1] for s in steps[:pip] if s.startswith("COPY ")]
    assert copied == ["requirements.txt", "requirements/"]
    # What the server needs beyond the functions' lists is in server.txt.
    server_txt = (TASK_ROOT / "requirements" / "server.txt").read_text()
    for name in ("fastapi==", "uvicorn==", "boto3=="):
        assert name in server_txt


def test_non_root_user_port_healthcheck_and_serve() -> None:
    user = only("USER")
    assert user.split(":")[0] not in {"0", "root"}
    steps = [w for w, _ in instructions()]
    assert steps.index("USER") > max(i for i, w in enumerate(steps) if w == "RUN")
    assert only("EXPOSE") == "8080"
    health = only("HEALTHCHECK")
    assert "http://127.0.0.1:8080/health" in health and "--timeout=" in health
    entrypoint = json.loads(only("ENTRYPOINT"))
    assert entrypoint == ["/opt/scarab/lens/server/entrypoint.sh"]
    assert json.loads(only("CMD")) == ["serve"]
    assert only("WORKDIR") == "/opt/scarab"


@pytest.fixture
def fake_python(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose `python` writes its argv to a file (and nothing else runs)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "argv.json"
    exe = bindir / "python"
    exe.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    return env, record


@pytest.mark.parametrize("argv", [["serve"], [], ["serve", "--log-level", "debug"]])
def test_serve_runs_the_server_on_8080(
    fake_python: tuple[dict[str, str], Path], argv: list[str]
) -> None:
    env, record = fake_python
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR  # executable as committed
    done = subprocess.run([str(ENTRYPOINT), *argv], env=env, timeout=30, check=False)
    assert done.returncode == 0
    extra = argv[1:]
    assert record.read_text().split() == [
        "-m", "lens.server", "--host", "0.0.0.0", "--port", "8080", *extra,
    ]  # fmt: skip


def test_another_command_runs_as_given(fake_python: tuple[dict[str, str], Path]) -> None:
    env, record = fake_python
    done = subprocess.run(
        [str(ENTRYPOINT), "python", "-c", "pass"], env=env, timeout=30, check=False
    )
    assert done.returncode == 0
    assert record.read_text().split() == ["-c", "pass"]


def test_lambda_zips_carry_no_server(project: Path) -> None:  # noqa: F811
    assert (project / "lambda" / "lens" / "server" / "app.py").is_file()
    zips = {name: z.path for name, z in build_function_zips(project, flavor="local").items()}
    zips["all"] = build_zip(project, flavor="local").path
    import zipfile

    for name, path in zips.items():
        names = zipfile.ZipFile(path).namelist()
        assert "lens/__init__.py" in names, name
        assert not [n for n in names if n.startswith("lens/server/")], name
        assert not any("fastapi" in n or "uvicorn" in n for n in names), name
    requirements = (project / "lambda" / "requirements.txt").read_text()
    assert "server.txt" not in requirements  # no function installs the server's list
