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


def test_the_s3_key_and_model_do_not_depend_on_this_machines_zlib(tmp_path: Path) -> None:
    """gzip's bytes depend on the zlib build (zlib, zlib-ng, a vendor's): two machines
    packing the same models get the same tar but maybe not the same .tar.gz. Keyed by the
    .tar.gz's sha256, a deploy from the other machine uploaded a new object and rolled
    the endpoint to a new Model for nothing. Here machine B's archive is the same tar
    deflated differently (as its zlib would)."""
    import gzip
    import hashlib

    from scarab.config import ScarabConfig
    from scarab.targets.sagemaker.desired import desired_endpoint

    models = packaged_models(REPO)
    a = pack(tmp_path / "a", models)
    tar = gzip.decompress(a.path.read_bytes())
    other = gzip.compress(tar, compresslevel=1, mtime=0)
    assert other != a.path.read_bytes()
    b_path = tmp_path / "b" / a.path.relative_to(tmp_path / "a")
    b_path.parent.mkdir(parents=True)
    b_path.write_bytes(other)
    b_path.with_suffix(".sha256").write_text(hashlib.sha256(other).hexdigest() + "\n")
    b = pack(tmp_path / "b", models)
    assert b.sha256 != a.sha256  # machine B's bytes are its own

    def desired(project: Path, bundle: object) -> tuple[str, str]:
        d = desired_endpoint(
            ScarabConfig(), account_id="123456789012", region="us-east-1", partition="aws",
            project_dir=project, image_tag="c-0", bundle=bundle,  # type: ignore[arg-type]
        )  # fmt: skip
        return d.key, d.model_name

    assert desired(tmp_path / "a", a) == desired(tmp_path / "b", b)
