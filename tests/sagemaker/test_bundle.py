"""model.tar.gz: packed deterministically, laid out as SCARAB_MODEL_DIR describes, and
readable by the function's own registry parser."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from lens.predict.registry import read_registry
from scarab.errors import ScarabError
from scarab.targets.sagemaker.bundle import EndpointModel, ModelFile, pack, pack_bytes
from scarab.targets.sagemaker.catalog import packaged_models

from tests.deploy.conftest import REPO

ARTIFACTS = REPO / "lambda" / "lens" / "predict" / "artifacts"


def test_two_packs_are_identical_bytes(tmp_path: Path) -> None:
    models = packaged_models(REPO)
    one = pack(tmp_path / "a", models)
    two = pack(tmp_path / "b", models)
    assert one.path != two.path
    assert one.path.read_bytes() == two.path.read_bytes()
    assert one.sha256 == two.sha256 == hashlib.sha256(one.path.read_bytes()).hexdigest()
    # Packed in memory again (no cache), still the same bytes.
    assert pack_bytes(models) == one.path.read_bytes()
    again = pack(tmp_path / "a", models)  # the cached archive
    assert again == one


def test_archive_headers_are_fixed(tmp_path: Path) -> None:
    data = pack(tmp_path, packaged_models(REPO)).path.read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip MTIME 0
    assert data[3] & 0x08 == 0  # no FNAME in the gzip header
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
        assert m.isfile()


def test_contents_are_a_model_dir(tmp_path: Path) -> None:
    """Extracted, it is a directory like artifacts/: registry.json (valid for lens) and
    the files it names, with the bytes the packaged entries' sha256 say."""
    bundle = pack(tmp_path / "cache", packaged_models(REPO))
    out = tmp_path / "opt-ml-model"
    with tarfile.open(bundle.path) as tar:
        tar.extractall(out, filter="data")
    registry = read_registry(out / "registry.json")
    packaged = json.loads((ARTIFACTS / "registry.json").read_text())["models"]
    assert sorted(registry.names()) == sorted(m["name"] for m in packaged) == list(bundle.models)
    files = sorted(p.name for p in out.iterdir())
    named = ["registry.json"]
    for entry in registry.models:
        original = next(m for m in packaged if m["name"] == entry.name)
        artifact = (out / entry.artifact.path).read_bytes()
        assert hashlib.sha256(artifact).hexdigest() == entry.sha256 == original["sha256"]
        assert artifact == (ARTIFACTS / original["artifact"]["path"]).read_bytes()
        named.append(entry.artifact.path)
        if entry.data is not None:
            csv = (out / entry.data.path).read_bytes()
            assert hashlib.sha256(csv).hexdigest() == entry.data.sha256
            assert csv == (ARTIFACTS / original["data"]["path"]).read_bytes()
            named.append(entry.data.path)
        # Everything else in the entry is the packaged registry's.
        assert entry.input_schema == original["input_schema"]
        assert entry.labels == original.get("labels", [])
    assert files == sorted(named)


def test_a_file_that_does_not_match_its_sha256_is_refused(tmp_path: Path) -> None:
    [model] = [m for m in packaged_models(REPO) if m.name == "tabular"]
    wrong = ModelFile(model.files[0].arcname, "0" * 64, model.files[0].read, "tabular.onnx")
    with pytest.raises(ScarabError, match="does not match the sha256"):
        pack(tmp_path, [EndpointModel(model.name, model.version, model.entry, (wrong,))])
