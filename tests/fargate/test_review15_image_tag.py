"""Review of issue 15: the server image's tag (plan's, deploy's) follows exactly what
`docker build lambda/` sends, i.e. what lambda/.dockerignore lets through. Before, it
hashed every file under lambda/ but __pycache__/, tests/ and test_*.py: a file docker
never sends (lambda/.DS_Store, a notes file, a venv) made a new tag, a rebuild and a new
revision on a redeploy that changes nothing; and a file the image does get
(lens/**/tests/, test_*.py) left the tag as it was, so the changed image was never pushed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from scarab.artifacts.image import SERVER_DOCKERFILE, image_tag

from tests.fargate.conftest import REPO


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tag") / "proj"
    shutil.copytree(
        REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return root


def tag(root: Path) -> str:
    return image_tag(root, "x86_64", SERVER_DOCKERFILE)


@pytest.mark.parametrize(
    "outside",
    [".DS_Store", "notes.md", ".venv/lib/site.py", "lens/__pycache__/x.cpython-312.pyc",
     "lens/predict/y.pyc", "requirements/.mypy_cache/z.json"],
)  # fmt: skip
def test_a_file_docker_does_not_send_leaves_the_tag(context: Path, outside: str) -> None:
    before = tag(context)
    path = context / "lambda" / outside
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("junk\n")
    try:
        assert tag(context) == before
    finally:
        path.unlink()


@pytest.mark.parametrize(
    "inside", ["lens/predict/tests/helper.py", "lens/test_contract.py", "requirements/extra.txt"]
)
def test_a_file_the_image_gets_changes_the_tag(context: Path, inside: str) -> None:
    before = tag(context)
    path = context / "lambda" / inside
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("X = 1\n")
    try:
        assert tag(context) != before
    finally:
        path.unlink()


def test_the_server_tag_follows_its_own_dockerfile_only(context: Path) -> None:
    before = tag(context)
    function_dockerfile = context / "lambda" / "Dockerfile"
    original = function_dockerfile.read_text()
    function_dockerfile.write_text(original + "# the function's image only\n")
    try:
        assert tag(context) == before
    finally:
        function_dockerfile.write_text(original)
    server = context / "lambda" / SERVER_DOCKERFILE
    text = server.read_text()
    server.write_text(text + "# changed\n")
    try:
        assert tag(context) != before
    finally:
        server.write_text(text)
