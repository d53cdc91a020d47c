"""Reproducible, content-addressed zip artifacts of the function.

Two flavors:
- `lambda`: manylinux wheels for the configured runtime and architecture, installed
  with pip (no Docker), plus the function source. This is what AWS runs.
- `local`: the function source only; the local interpreter's venv supplies the
  dependencies. `--local` deploys and `scarab serve` use it.

Every zip lands at `.scarab/build/zip/<sha256hex>.zip`; Lambda's CodeSha256 is the
base64 of the same digest, which is how `scarab serve` finds the code it deployed.
Same inputs give the same bytes: sorted entries, fixed timestamps and permissions,
and no bytecode, RECORD files or console scripts (their shebangs embed local paths).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from scarab import layout
from scarab.errors import ScarabError

Flavor = Literal["lambda", "local"]

LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024  # direct upload limit; above it, go through S3
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
# Files pip writes that differ between installs or machines and Lambda never reads.
_SKIP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


@dataclass(frozen=True)
class ZipBuild:
    path: Path
    sha256: str  # hex digest of the zip bytes
    size: int
    unzipped_size: int
    flavor: Flavor
    reused: bool

    @property
    def code_sha256(self) -> str:
        """The digest as Lambda reports it (CodeSha256: base64 of the raw digest)."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()

    @property
    def needs_s3(self) -> bool:
        return self.size > LAMBDA_ZIP_LIMIT


def zip_dir(project_dir: Path) -> Path:
    return project_dir / layout.ZIP_DIR


def zip_path(project_dir: Path, sha256_hex: str) -> Path:
    """Where the zip with this content digest lives (contract with scarab serve)."""
    return zip_dir(project_dir) / f"{sha256_hex}.zip"


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(_SKIP_SUFFIXES):
                continue
            if name.startswith("test_") and name.endswith(".py"):
                continue
            yield Path(dirpath) / name


def source_entries(project_dir: Path) -> dict[str, Path]:
    """The function source (lambda/lens/**, model artifacts included), by archive name."""
    task_root = project_dir / "lambda"
    package = task_root / "lens"
    if not package.is_dir():
        raise ScarabError(
            f"No function source at {package}. Run scarab from the project root"
            " (the directory holding scarab.toml and lambda/)."
        )
    return {p.relative_to(task_root).as_posix(): p for p in _walk(package)}


def _dep_entries(deps: Path) -> dict[str, Path]:
    entries: dict[str, Path] = {}
    for path in _walk(deps):
        rel = path.relative_to(deps)
        if rel.parts[0] == "bin":
            continue
        if rel.parts[0].endswith(".dist-info") and rel.name in _SKIP_DIST_INFO:
            continue
        entries[rel.as_posix()] = path
    return entries


def pip_platforms(architecture: str) -> list[str]:
    """Wheel platform tags for Lambda.

    manylinux2014 (glibc 2.17) covers most wheels; onnxruntime 1.32 ships only
    manylinux_2_28 wheels, which run on Lambda's Amazon Linux 2023 (glibc 2.34).
    """
    arch = "aarch64" if architecture == "arm64" else "x86_64"
    return [f"manylinux2014_{arch}", f"manylinux_2_28_{arch}"]


def _deps_key(requirements: bytes, runtime: str, architecture: str) -> str:
    h = hashlib.sha256()
    for part in (requirements, runtime.encode(), architecture.encode(), b"v1"):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:32]


def install_deps(
    project_dir: Path,
    runtime: str,
    architecture: str,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """pip-install lambda/requirements.txt for Lambda into a cache keyed by its inputs."""
    requirements = project_dir / "lambda" / "requirements.txt"
    if not requirements.is_file():
        raise ScarabError(f"{requirements} is missing; it lists the function's dependencies.")
    key = _deps_key(requirements.read_bytes(), runtime, architecture)
    # SCARAB_CACHE_DIR lets several checkouts (or test projects) share one cache.
    root = os.environ.get("SCARAB_CACHE_DIR") or project_dir / layout.CACHE_DIR
    cache = Path(root) / "deps" / key
    if (cache / ".complete").is_file():
        return cache
    if progress:
        progress(f"installing dependencies for {runtime}/{architecture} (cached afterwards)")
    version = runtime.removeprefix("python")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache.parent))
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for platform in pip_platforms(architecture):
        cmd += ["--platform", platform]
    cmd += [
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        version,
        "--target",
        str(tmp),
        "--no-compile",
        "-r",
        str(requirements),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise ScarabError(
            f"Installing the function's dependencies for {runtime}/{architecture} failed."
            f" Check your network access to PyPI and that every package in"
            f" lambda/requirements.txt has a manylinux wheel.\n{tail}"
        )
    (tmp / ".complete").write_text(key)
    if (cache / ".complete").is_file():  # a concurrent build finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        return cache
    shutil.rmtree(cache, ignore_errors=True)  # an interrupted earlier attempt
    try:
        tmp.rename(cache)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (cache / ".complete").is_file():
            raise
    return cache


def _inputs_key(flavor: str, entries: dict[str, Path]) -> str:
    h = hashlib.sha256(flavor.encode())
    for name in sorted(entries):
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(entries[name].read_bytes()).digest())
    return h.hexdigest()


def _write_zip(entries: dict[str, Path], target: Path) -> int:
    unzipped = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = (0o100644 & 0xFFFF) << 16
            data = entries[name].read_bytes()
            unzipped += len(data)
            zf.writestr(info, data, compresslevel=6)
    return unzipped


def build_zip(
    project_dir: Path,
    *,
    flavor: Flavor = "lambda",
    runtime: str = "python3.12",
    architecture: str = "x86_64",
    progress: Callable[[str], None] | None = None,
) -> ZipBuild:
    """Build (or reuse) the zip for these inputs and return where it is."""
    entries = source_entries(project_dir)
    if flavor == "lambda":
        deps = install_deps(project_dir, runtime, architecture, progress)
        dep_entries = _dep_entries(deps)
        dep_entries.pop(".complete", None)
        clash = sorted(set(dep_entries) & set(entries))
        if clash:
            raise ScarabError(f"The function source and its dependencies both ship {clash[0]}.")
        entries = {**dep_entries, **entries}
    out_dir = zip_dir(project_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index" / _inputs_key(flavor, entries)
    if index.is_file():
        sha, _, unzipped_s = index.read_text().partition(" ")
        existing = zip_path(project_dir, sha)
        if existing.is_file() and unzipped_s.isdigit():
            return ZipBuild(
                existing, sha, existing.stat().st_size, int(unzipped_s), flavor, reused=True
            )
    if progress:
        progress(f"zipping {len(entries)} files ({flavor} flavor)")
    fd, tmp_name = tempfile.mkstemp(suffix=".zip.tmp", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        unzipped = _write_zip(entries, tmp)
        digest = hashlib.sha256()
        with tmp.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        final = zip_path(project_dir, sha)
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        raise ScarabError(
            f"The {flavor} package is {unzipped / 2**20:.0f} MB unzipped, over Lambda's"
            f" 250 MB limit. Drop dependencies from lambda/requirements.txt or deploy"
            f" with --package image (container images may be up to 10 GB)."
        )
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(f"{sha} {unzipped}")
    return ZipBuild(final, sha, final.stat().st_size, unzipped, flavor, reused=False)
