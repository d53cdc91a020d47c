"""model.tar.gz: the endpoint's models as SageMaker extracts them into /opt/ml/model.

The layout is SCARAB_MODEL_DIR's (lens.server reads it): `registry.json` (the packaged
registry's format, lens.predict.registry) and, flat beside it, each model's ONNX file
`<name>-<sha256[:12]>.onnx` and a forecaster's observations `<name>-<sha256[:12]>.csv`,
named by relative path from the entries.

The archive is packed deterministically (entries sorted, mtime 0, uid/gid 0, no owner
names, mode 0644, gzip header mtime 0 and no file name), so the same models give the
same bytes on this machine. The S3 key is the digest of the contents (registry.json and
each file's hash), not of the gzip bytes, which differ between zlib builds: an unchanged
redeploy from any machine uploads nothing.
Packed archives are kept in .scarab/build/sagemaker/ by the digest of what goes in,
each with its own sha256 beside it (`<digest>.sha256`): one that no longer matches is
packed again.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scarab import layout
from scarab.errors import ScarabError

REGISTRY_NAME = "registry.json"
SHORT = 12


@dataclass(frozen=True)
class ModelFile:
    """One file of the archive, and where its bytes come from (read only when packing)."""

    arcname: str
    sha256: str
    read: Callable[[], bytes]
    origin: str  # a path or an s3:// URI, for the error when the bytes do not match


@dataclass(frozen=True)
class EndpointModel:
    """One model the endpoint serves: its registry.json entry and its files."""

    name: str
    version: str
    entry: dict[str, Any]
    files: tuple[ModelFile, ...]


@dataclass(frozen=True)
class Bundle:
    """A packed model.tar.gz."""

    path: Path
    sha256: str  # of this machine's .tar.gz (zlib builds deflate differently)
    size: int
    models: tuple[str, ...]  # the names, sorted
    # What is in it (registry.json, each file's name and sha256): the same on every
    # machine, so the S3 key and the Model named from it are too.
    content: str


def artifact_name(name: str, sha256: str, suffix: str) -> str:
    return f"{name}-{sha256[:SHORT]}{suffix}"


def registry_bytes(models: list[EndpointModel]) -> bytes:
    entries = [m.entry for m in sorted(models, key=lambda m: m.name)]
    return (json.dumps({"models": entries}, indent=2, sort_keys=True) + "\n").encode()


def _digest(registry: bytes, files: list[ModelFile]) -> str:
    """What determines the archive's bytes: registry.json and each file's name and hash."""
    h = hashlib.sha256(b"scarab-model-tar-v1\0" + registry)
    for f in files:
        h.update(f"\0{f.arcname}\0{f.sha256}".encode())
    return h.hexdigest()


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info, io.BytesIO(data)


def pack_bytes(models: list[EndpointModel]) -> bytes:
    """The archive's bytes (the files are read and checked against their sha256)."""
    registry = registry_bytes(models)
    members: dict[str, bytes] = {REGISTRY_NAME: registry}
    for model in models:
        for f in model.files:
            data = f.read()
            if hashlib.sha256(data).hexdigest() != f.sha256:
                raise ScarabError(
                    f"{f.origin} does not match the sha256 the registry names for model"
                    f" {model.name} ({f.sha256[:SHORT]}...); push the model again."
                )
            members[f.arcname] = data
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            tar.addfile(*_member(name, members[name]))
    out = io.BytesIO()
    # filename="" and mtime=0: gzip's header would otherwise carry a name and the time.
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def pack(project_dir: Path, models: list[EndpointModel]) -> Bundle:
    """model.tar.gz of `models`, from the cache when these exact contents were packed."""
    if not models:
        raise ScarabError("The endpoint would serve no model; push one or name one in [sagemaker].")
    files = sorted((f for m in models for f in m.files), key=lambda f: f.arcname)
    digest = _digest(registry_bytes(models), files)
    root = project_dir / layout.SAGEMAKER_DIR
    path = root / f"{digest[:40]}.tar.gz"
    names = tuple(sorted(m.name for m in models))
    # The archive's own sha256 beside it: a cached archive is used only when its bytes
    # still hash to it (a truncated or edited one would be uploaded under its new hash).
    check = path.with_suffix(".sha256")
    if path.is_file() and check.is_file():
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if check.read_text("ascii", errors="replace").strip() == sha:
            return Bundle(path, sha, len(data), names, digest)
    data = pack_bytes(models)
    sha = hashlib.sha256(data).hexdigest()
    root.mkdir(parents=True, exist_ok=True)
    _write_whole(root, path, data)  # whole or not at all: a crash never leaves half
    _write_whole(root, check, f"{sha}\n".encode())
    return Bundle(path, sha, len(data), names, digest)


def _write_whole(root: Path, path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".pack-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
