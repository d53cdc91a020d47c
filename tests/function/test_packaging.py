"""lambda/Dockerfile: the documented base image, cache-friendly order, exact CMD."""

from __future__ import annotations

import json
import re
from pathlib import Path

LAMBDA = Path(__file__).resolve().parents[2] / "lambda"


def _instructions() -> list[tuple[str, str]]:
    lines = (LAMBDA / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_base_image_is_a_current_lambda_python_runtime() -> None:
    steps = _instructions()
    args = {rest.split("=")[0]: rest.split("=")[1] for word, rest in steps if word == "ARG"}
    [base] = [rest for word, rest in steps if word == "FROM"]
    assert base.startswith("public.ecr.aws/lambda/python:")
    version = base.split(":")[1].replace("${PYTHON_VERSION}", args.get("PYTHON_VERSION", ""))
    major, minor = (int(x) for x in version.split("."))
    assert (major, minor) >= (3, 12)  # Amazon Linux 2023 runtimes


def test_cmd_is_exactly_the_handler() -> None:
    [cmd] = [rest for word, rest in _instructions() if word == "CMD"]
    assert json.loads(cmd) == ["lens.handler.lambda_handler"]


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    steps = [f"{w} {r}" for w, r in _instructions()]
    deps = next(i for i, s in enumerate(steps) if re.search(r"pip install .*requirements", s))
    code = next(i for i, s in enumerate(steps) if s.startswith("COPY lens/"))
    assert deps < code
    assert "--no-cache-dir" in steps[deps]
    # requirements.txt includes requirements/*.txt: both are in the image before pip runs.
    copied = [s for s in steps[:deps] if s.startswith("COPY requirements")]
    assert [s.split()[1] for s in copied] == ["requirements.txt", "requirements/"]


def test_build_context_ships_only_code_and_requirements() -> None:
    ignore = (LAMBDA / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :][:3] == ["!requirements.txt", "!requirements/", "!lens/"]
    assert "**/__pycache__" in ignore
