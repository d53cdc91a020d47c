"""Review of issue 15: a damaged model.tar.gz in the pack cache (.scarab/build/sagemaker/)
is never uploaded: it is packed again."""

from __future__ import annotations

from pathlib import Path

from scarab.targets.sagemaker.bundle import pack, pack_bytes
from scarab.targets.sagemaker.catalog import packaged_models

from tests.deploy.conftest import REPO


def test_a_truncated_cached_archive_is_packed_again(tmp_path: Path) -> None:
    models = packaged_models(REPO)
    first = pack(tmp_path, models)
    whole = first.path.read_bytes()
    first.path.write_bytes(whole[: len(whole) // 2])  # a crash, a full disk, a bad copy
    again = pack(tmp_path, models)
    assert again.path.read_bytes() == whole == pack_bytes(models)
    assert (again.sha256, again.size) == (first.sha256, first.size)


def test_an_edited_cached_archive_is_packed_again(tmp_path: Path) -> None:
    models = packaged_models(REPO)
    first = pack(tmp_path, models)
    whole = first.path.read_bytes()
    first.path.write_bytes(whole[:-1] + bytes([whole[-1] ^ 1]))
    assert pack(tmp_path, models).path.read_bytes() == whole
