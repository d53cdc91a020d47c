"""Reproducible, content-addressed zips: the local flavor (fast) and the lambda flavor
(manylinux wheels from PyPI, slow; built once per session and cached)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from scarab.artifacts import build_function_zips, build_zip, zip_path
from scarab.artifacts import zip as zipmod
from scarab.cli import app
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.errors import ScarabError
from typer.testing import CliRunner

from tests.deploy.conftest import REPO, Recorder, client, counted_session


def test_local_flavor_is_reproducible_and_content_addressed(project: Path, tmp_path: Path) -> None:
    first = build_zip(project, flavor="local")
    digest = hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert first.sha256 == digest
    assert first.path == zip_path(project, digest)
    assert first.path.parent == project / ".scarab" / "build" / "zip"
    assert first.code_sha256 == base64.b64encode(bytes.fromhex(digest)).decode()
    assert build_zip(project, flavor="local").reused
    # A second checkout of the same source gives the same bytes.
    other = tmp_path / "other"
    shutil.copytree(project / "lambda", other / "lambda")
    (other / "lambda" / "lens" / "__pycache__").mkdir(exist_ok=True)
    (other / "lambda" / "lens" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    assert build_zip(other, flavor="local").sha256 == first.sha256


def test_a_scarab_that_builds_differently_does_not_reuse_an_older_zip(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zip builder's own code is an input of the key: after an upgrade of scarab that
    changes how zips are built, the same sources are built again, not reused."""
    import scarab.artifacts.zip as zip_module

    build_zip(project, flavor="local")
    assert build_zip(project, flavor="local").reused
    monkeypatch.setattr(zip_module, "BUILDER_DIGEST", "another-builder")
    assert not build_zip(project, flavor="local").reused


def test_zip_entries_are_normalised(project: Path) -> None:
    built = build_zip(project, flavor="local")
    with zipfile.ZipFile(built.path) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert "lens/__init__.py" in names
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert all((i.external_attr >> 16) == 0o100644 for i in infos)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith(("lambda/", "tests/")) for n in names)


def test_source_change_changes_the_digest(project: Path) -> None:
    before = build_zip(project, flavor="local")
    (project / "lambda" / "lens" / "added.py").write_text("VALUE = 1\n")
    after = build_zip(project, flavor="local")
    assert after.sha256 != before.sha256 and not after.reused
    assert before.path.exists()  # content-addressed: older builds stay addressable


def test_over_the_unzipped_limit_is_a_clear_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zipmod, "LAMBDA_UNZIPPED_LIMIT", 10)
    with pytest.raises(ScarabError, match="over Lambda's 250 MB limit"):
        build_zip(project, flavor="local")


def test_cli_build_reports_size_and_digest(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["build", "--package", "zip", "--flavor", "local", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["size"] > 0 and data["unzipped_size"] >= data["size"]
    assert Path(data["path"]) == zip_path(project, data["sha256"])
    assert data["upload_via_s3"] is False


def test_pip_platforms_cover_manylinux_2_28() -> None:
    assert zipmod.pip_platforms("x86_64") == ["manylinux2014_x86_64", "manylinux_2_28_x86_64"]
    assert zipmod.pip_platforms("arm64") == ["manylinux2014_aarch64", "manylinux_2_28_aarch64"]


# -- which interpreter compiles a runtime's bytecode (pure: every input given) ----------

PY311 = zipmod.Interpreter("/opt/py311/bin/python3.11", "cpython", "3.11.7", "cpython-311")
PY312 = zipmod.Interpreter("/opt/py312/bin/python3.12", "cpython", "3.12.1", "cpython-312")
PY313 = zipmod.Interpreter("/opt/py313/bin/python3.13", "cpython", "3.13.0", "cpython-313")
PYPY312 = zipmod.Interpreter("/opt/pypy/bin/pypy3", "pypy", "3.12.9", "pypy312")


def _probe(**found: zipmod.Interpreter | str) -> zipmod.Probe:
    """A probe that knows these commands (keys spelled with _ for .) and nothing else."""
    known = {name.replace("_", "."): it for name, it in found.items()}

    def probe(command: str) -> zipmod.Interpreter | str:
        return known.get(command, "is not on PATH")

    return probe


def _never(command: str) -> zipmod.Interpreter | str:
    raise AssertionError(f"probed {command}")


def test_build_interpreter_of_the_runtimes_version_compiles_without_probing() -> None:
    chosen = zipmod.choose_compiler("python3.12", build=PY312, explicit=None, probe=_never)
    assert chosen.interpreter == PY312 and chosen.tag == "cpython-312" and not chosen.note


def test_another_version_builds_with_python_x_y_from_path() -> None:
    chosen = zipmod.choose_compiler(
        "python3.12", build=PY311, explicit=None, probe=_probe(python3_12=PY312)
    )
    assert chosen.interpreter == PY312 and chosen.tag == "cpython-312"
    chosen = zipmod.choose_compiler(
        "python3.13", build=PY311, explicit=None, probe=_probe(python3_12=PY312)
    )
    assert chosen.interpreter is None and chosen.tag is None
    assert "python3.13 is not on PATH" in chosen.note
    assert "source only" in chosen.note and zipmod.BYTECODE_PYTHON_ENV in chosen.note


@pytest.mark.parametrize(
    ("impostor", "why"),
    [
        (PY313, "is Python 3.13.0, not 3.12"),
        (PYPY312, "is pypy 3.12.9, not CPython"),
        ("exited with status 127 (pyenv: python3.12: command not found)", "exited with status"),
    ],
)
def test_a_python_x_y_on_path_of_another_kind_is_passed_over(
    impostor: zipmod.Interpreter | str, why: str
) -> None:
    chosen = zipmod.choose_compiler(
        "python3.12", build=PY311, explicit=None, probe=_probe(python3_12=impostor)
    )
    assert chosen.interpreter is None and why in chosen.note


def test_the_named_interpreter_wins_and_must_fit() -> None:
    # Named explicitly, it compiles even when the build interpreter could.
    probe = _probe(**{"/x/py312": PY312, "/x/py313": PY313})
    chosen = zipmod.choose_compiler("python3.12", build=PY312, explicit="/x/py312", probe=probe)
    assert chosen.interpreter == PY312
    # A named interpreter that does not fit was asked for: an error, not a quiet fallback.
    with pytest.raises(ScarabError) as refused:
        zipmod.choose_compiler("python3.12", build=PY312, explicit="/x/py313", probe=probe)
    message = str(refused.value)
    assert "SCARAB_BYTECODE_PYTHON=/x/py313 is Python 3.13.0, not 3.12" in message
    assert "Name a CPython 3.12 interpreter" in message
    with pytest.raises(ScarabError, match="/x/missing is not on PATH"):
        zipmod.choose_compiler("python3.12", build=PY311, explicit="/x/missing", probe=probe)


def test_the_zip_key_names_the_compilers_tag_and_version() -> None:
    source = zipmod.BytecodeCompiler("python3.12", None)
    assert source.key == "source"
    assert zipmod.BytecodeCompiler("python3.12", PY312).key == "cpython-312 3.12.1"
    patched = zipmod.Interpreter(PY312.executable, "cpython", "3.12.9", "cpython-312")
    assert zipmod.BytecodeCompiler("python3.12", patched).key != "cpython-312 3.12.1"


@pytest.mark.parametrize(
    ("runtime", "version"),
    [("python3.12", "3.12"), ("python3.9", "3.9"), ("nodejs20.x", None), ("python3", None)],
)
def test_runtime_python(runtime: str, version: str | None) -> None:
    assert zipmod.runtime_python(runtime) == version


def test_a_named_interpreter_of_another_version_is_refused_before_building(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    major, minor = sys.version_info[:2]
    other = "python3.13" if (major, minor) != (3, 13) else "python3.12"
    monkeypatch.setenv("SCARAB_BYTECODE_PYTHON", sys.executable)
    with pytest.raises(ScarabError, match=rf"is Python {major}\.{minor}\.\d+, not 3\.1[23]"):
        build_zip(project, flavor="lambda", runtime=other)
    assert not (project / ".scarab" / "build").exists()  # refused before pip ran
    # The CLI says the same, as an error without a traceback.
    config = project / "scarab.toml"
    config.write_text(config.read_text().replace("[function]", f'[function]\nruntime = "{other}"'))
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["build", "--package", "zip"])
    assert result.exit_code != 0
    assert f"SCARAB_BYTECODE_PYTHON={sys.executable} is Python" in result.output
    assert "Traceback" not in result.output
    monkeypatch.setenv("SCARAB_BYTECODE_PYTHON", str(project / "no-such-python"))
    with pytest.raises(ScarabError, match="no-such-python could not be run"):
        build_zip(project, flavor="lambda", runtime=other)


@pytest.fixture(scope="session")
def lambda_zip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, zipmod.ZipBuild]:
    """The real lambda-flavor zip, built once per session (wheels cached in .scarab/cache)."""
    root = tmp_path_factory.mktemp("lambda-project")
    shutil.copytree(
        REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("SCARAB_CACHE_DIR", str(REPO / ".scarab" / "cache"))
    try:
        return root, build_zip(root, flavor="lambda", runtime="python3.12", architecture="x86_64")
    finally:
        mp.undo()


@pytest.mark.slow
def test_lambda_flavor_ships_manylinux_wheels_and_the_source(lambda_zip) -> None:
    root, built = lambda_zip
    with zipfile.ZipFile(built.path) as zf:
        names = zf.namelist()
    assert "lens/__init__.py" in names
    assert any(n.startswith("onnxruntime/") for n in names)
    assert any(n.startswith("numpy/") for n in names)
    assert any(
        n.startswith("pydantic_core/") and "cpython-312-x86_64-linux-gnu" in n for n in names
    )
    assert not any(n.startswith("bin/") or n.endswith("/RECORD") for n in names)
    assert not any(n.startswith("boto3/") for n in names)  # the runtime provides it
    # Bytecode only when this interpreter is the runtime's version (3.12 ignores 3.11's).
    tag = zipmod.bytecode_tag("python3.12")
    assert built.bytecode == tag
    assert any(n.endswith(".pyc") for n in names) is (tag is not None)
    assert built.unzipped_size < zipmod.LAMBDA_UNZIPPED_LIMIT
    # Reproducible: the same inputs rebuilt from scratch give the same bytes.
    shutil.rmtree(root / ".scarab" / "build")
    mp = pytest.MonkeyPatch()
    # Dependencies from the checkout's cache, but not its finished zips (shared there).
    private = root / "private-cache"
    private.mkdir()
    (private / "deps").symlink_to(REPO / ".scarab" / "cache" / "deps")
    mp.setenv("SCARAB_CACHE_DIR", str(private))
    try:
        again = build_zip(root, flavor="lambda", runtime="python3.12", architecture="x86_64")
    finally:
        mp.undo()
    assert again.sha256 == built.sha256 and not again.reused


@pytest.mark.slow
@pytest.mark.emulator
def test_full_pipeline_on_the_lambda_flavor(lambda_zip, aws, monkeypatch) -> None:
    root, built = lambda_zip
    (root / "scarab.toml").write_text('app = "scarab"\nstage = "full"\n')
    monkeypatch.setenv("SCARAB_CACHE_DIR", str(REPO / ".scarab" / "cache"))
    config = load_config(root)
    result = deploy(config, project_dir=root, endpoint_url=aws.url, flavor="lambda")
    # Each function gets its own lambda-flavor zip (built the way `scarab build` builds it).
    mp = pytest.MonkeyPatch()
    mp.setenv("SCARAB_CACHE_DIR", str(REPO / ".scarab" / "cache"))
    try:
        built_fns = build_function_zips(root, flavor="lambda", runtime="python3.12")
    finally:
        mp.undo()
    via_s3 = []
    for key, one in built_fns.items():
        assert all(b.reused for b in built_fns.values())  # the deploy built these very zips
        assert result.functions[key]["code_sha256"] == one.code_sha256
        cfg = client("lambda", aws).get_function_configuration(FunctionName=f"scarab-full-{key}")
        assert cfg["CodeSha256"] == one.code_sha256
        if one.needs_s3:  # over 50 MB zipped: the upload went through S3
            via_s3.append(f"scarab-full-{key}/{one.sha256}.zip")
    assert built_fns["analyze"].sha256 != built.sha256  # not the all-routes zip
    if via_s3:
        objects = client("s3", aws).list_objects_v2(
            Bucket="scarab-artifacts-123456789012-us-east-1"
        )["Contents"]
        assert sorted(o["Key"] for o in objects) == sorted(via_s3)
    recorder = Recorder()
    again = deploy(
        config,
        project_dir=root,
        endpoint_url=aws.url,
        flavor="lambda",
        session=counted_session(recorder),
    )
    assert again.up_to_date and recorder.mutating == []
