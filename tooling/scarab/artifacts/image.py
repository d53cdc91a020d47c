"""Container images of the function, built and pushed with the docker CLI.

The tag is derived from the build context's content (lambda/: Dockerfile,
requirements, source, model artifacts) and the architecture, so an unchanged
function maps to an image ECR already has and the push is skipped. The server image's
tag hashes exactly what its build reads: its Dockerfile and the files lambda/.dockerignore
lets docker send.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scarab.artifacts.zip import _walk
from scarab.errors import ScarabError

LOCAL_REPOSITORY = "scarab-function"
# The two images built from lambda/: the function (Lambda's base image) and the server
# (lens.server on uvicorn, for SageMaker and Fargate).
FUNCTION_DOCKERFILE = "Dockerfile"
SERVER_DOCKERFILE = "server.Dockerfile"
SERVER_REPOSITORY = "scarab-server"


@dataclass(frozen=True)
class ImageBuild:
    local_ref: str  # repository:tag in the local docker engine
    tag: str
    platform: str


def docker_platform(architecture: str) -> str:
    return "linux/arm64" if architecture == "arm64" else "linux/amd64"


def image_tag(
    project_dir: Path, architecture: str, dockerfile_name: str = FUNCTION_DOCKERFILE
) -> str:
    """A tag that changes exactly when the build context, the Dockerfile's name or the
    architecture changes (the context holds both Dockerfiles)."""
    context = project_dir / "lambda"
    dockerfile = context / dockerfile_name
    if not dockerfile.is_file():
        raise ScarabError(f"No Dockerfile at {dockerfile}; the image build needs one.")
    h = hashlib.sha256(architecture.encode())
    if dockerfile_name == FUNCTION_DOCKERFILE:  # the function's tags stay what they were
        files: Iterator[Path] = _walk(context)
    else:
        # Exactly what the build reads: its Dockerfile and the files docker sends
        # (.dockerignore applied), so junk beside them makes no new image and a file
        # the image gets (lens/**/tests/) always does.
        h.update(b"dockerfile\0" + dockerfile_name.encode() + b"\0")
        h.update(hashlib.sha256(dockerfile.read_bytes()).digest())
        files = sent_files(context)
    for path in files:
        h.update(path.relative_to(context).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return f"c-{h.hexdigest()[:20]}"


def _glob(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as docker matches it (Go's filepath.Match, plus `**`)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def ignore_rules(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception `!...`, pattern) for each line of the context's .dockerignore."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    rules = []
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = (line[1:] if keep else line).strip().strip("/")
        if pattern:
            rules.append((keep, _glob(os.path.normpath(pattern))))
    return rules


def is_sent(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether docker sends the file `rel` (a path relative to the context): the last
    rule that matches it or one of its parent directories decides, as docker's does."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for keep, pattern in rules:
        if any(pattern.match(p) for p in prefixes):
            excluded = not keep
    return not excluded


def sent_files(context: Path) -> Iterator[Path]:
    """The files of the build context docker sends, in a fixed (sorted) order."""
    rules = ignore_rules(context)
    exceptions = any(keep for keep, _ in rules)
    for dirpath, dirnames, filenames in os.walk(context):
        here = Path(dirpath)
        rel_dir = here.relative_to(context).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        # A directory no rule can bring back is not walked (a venv, node_modules).
        dirnames[:] = sorted(d for d in dirnames if exceptions or is_sent(prefix + d, rules))
        for name in sorted(filenames):
            if is_sent(prefix + name, rules):
                yield here / name


def docker(*args: str, stdin: str | None = None) -> str:
    """Run the docker CLI; turn a missing binary or a stopped engine into advice."""
    exe = shutil.which("docker")
    if exe is None:
        raise ScarabError(
            "Docker is not installed (no 'docker' on PATH). Install Docker, or deploy"
            " with --package zip, which needs no Docker."
        )
    proc = subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.strip()
        if "Cannot connect to the Docker daemon" in err or "docker daemon" in err.lower():
            raise ScarabError(
                "Docker is not running: start Docker Desktop or the docker service, or"
                " deploy with --package zip, which needs no Docker."
            )
        last = "\n".join(err.splitlines()[-3:]) if err else f"exit status {proc.returncode}"
        raise ScarabError(f"'docker {args[0]}' failed: {last}")
    return proc.stdout


def ensure_docker() -> None:
    """Fail early, with advice, when the docker CLI or engine is missing."""
    docker("info", "--format", "{{.ServerVersion}}")


def build_image(
    project_dir: Path, architecture: str, dockerfile_name: str = FUNCTION_DOCKERFILE
) -> ImageBuild:
    """docker build lambda/ (with `dockerfile_name`) for `architecture`, tagged by content."""
    tag = image_tag(project_dir, architecture, dockerfile_name)  # checks the Dockerfile first
    ensure_docker()
    platform = docker_platform(architecture)
    repository = LOCAL_REPOSITORY if dockerfile_name == FUNCTION_DOCKERFILE else SERVER_REPOSITORY
    local_ref = f"{repository}:{tag}"
    docker(
        "build",
        "--platform",
        platform,
        "--provenance=false",
        *(
            ()
            if dockerfile_name == FUNCTION_DOCKERFILE
            else ("--file", str(project_dir / "lambda" / dockerfile_name))
        ),
        "--tag",
        local_ref,
        str(project_dir / "lambda"),
    )
    return ImageBuild(local_ref=local_ref, tag=tag, platform=platform)


def push_image(build: ImageBuild, repository_uri: str, registry: str, password: str) -> str:
    """Log in to the registry, tag and push; returns the pushed repository_uri:tag."""
    docker("login", "--username", "AWS", "--password-stdin", registry, stdin=password)
    remote = f"{repository_uri}:{build.tag}"
    docker("tag", build.local_ref, remote)
    docker("push", remote)
    return remote
