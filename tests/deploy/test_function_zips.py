"""One zip per function: each carries its own sources and requirements, stripped of what
a runtime never reads, and runs from the extracted zip alone.

The lambda-flavor zips here are built for this interpreter's Python version (so their
compiled wheels load in the child interpreters) and cached like every zip build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lens.predict.registry import registry
from scarab.artifacts import build_function_zips, build_zip
from scarab.artifacts import zip as zipmod
from scarab.cli import app
from scarab.functions import ALL_ROUTES, ANALYZE, FUNCTIONS, LOG_REQUIREMENTS, MODELS
from typer.testing import CliRunner

from tests.deploy.conftest import REPO
from tests.function.events import CONTEXT_SOURCE
from tests.support.gemini_server import GeminiServer

# Every feature of the packaged tabular model (the values only need to be valid).
_TABULAR = {name: 1.0 for name in getattr(registry().get("tabular"), "features", [])}
RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
MB = 1024 * 1024
ANALYZE_GOAL = 45 * MB  # issue 11's goal: the default build, everything included
# The prediction log's packages (SQLAlchemy, alembic and their drivers), which a function
# ships only when its stage's log is on: measured at 16.0 MB with bytecode (tzdata comes
# with pg8000's python-dateutil).
LOG_PACKAGES = (
    "sqlalchemy", "alembic", "mako", "markupsafe", "pg8000", "pymysql", "scramp",
    "asn1crypto", "dateutil", "python_dateutil", "six", "tzdata",
)  # fmt: skip
LOG_GOAL = 18 * MB


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


# -- fast: sources per function (local flavor), the catalog's requirement files ---------


def test_each_function_zips_only_its_sources(project: Path) -> None:
    zips = build_function_zips(project, flavor="local")
    assert set(zips) == {fn.name for fn in FUNCTIONS}
    analyze, models = _names(zips["analyze"].path), _names(zips["models"].path)
    everything = _names(build_zip(project, flavor="local").path)
    assert "lens/entry/analyze.py" in analyze and "lens/routes.py" in analyze
    assert not any(n.startswith("lens/predict/artifacts/") for n in analyze)
    assert not {
        "lens/predict/digits.py",
        "lens/predict/tabular.py",
        "lens/predict/forecast.py",
    } & set(analyze)
    assert "lens/entry/models.py" in models and "lens/predict/digits.py" in models
    assert any(n.endswith(".onnx") for n in models)
    assert not {"lens/gemini.py", "lens/routes.py"} & set(models)
    # Uploads in both (/analyze and /predict read them); the jobs only where they run.
    assert "lens/uploads/__init__.py" in analyze and "lens/uploads/__init__.py" in models
    assert "lens/jobs/worker.py" in analyze
    assert not any(n.startswith("lens/jobs/") for n in models)
    # The all-routes zip is what today's deploy ships: the whole source, as before.
    assert set(analyze) | set(models) <= set(everything)
    assert "lens/handler.py" in everything and any(n.endswith(".onnx") for n in everything)
    assert zips["analyze"].handler == ANALYZE.handler
    assert build_zip(project, flavor="local").function == ALL_ROUTES.name


def test_function_zips_are_content_addressed_and_reused(project: Path) -> None:
    first = build_function_zips(project, flavor="local")
    again = build_function_zips(project, flavor="local")
    assert all(z.reused for z in again.values())
    assert {n: z.sha256 for n, z in first.items()} == {n: z.sha256 for n, z in again.items()}
    # A models-only file changes the models zip, not the analyze zip.
    (project / "lambda" / "lens" / "predict" / "tabular.py").write_text("# changed\n")
    changed = build_function_zips(project, flavor="local")
    assert changed["analyze"].sha256 == first["analyze"].sha256
    assert changed["models"].sha256 != first["models"].sha256


def test_requirements_follow_includes_and_pins_agree() -> None:
    analyze = zipmod.read_requirements(REPO / ANALYZE.requirements)
    models = zipmod.read_requirements(REPO / MODELS.requirements)
    everything = zipmod.read_requirements(REPO / ALL_ROUTES.requirements)
    assert "google-genai==3.4.0" in analyze and not any(r.startswith("numpy") for r in analyze)
    assert {"onnxruntime==1.32.0", "numpy==2.4.6"} <= set(models)
    assert not any(r.startswith("google-genai") for r in models)
    log = zipmod.read_requirements(REPO / LOG_REQUIREMENTS)
    assert {"sqlalchemy==2.1.9", "alembic==1.20.1", "pg8000==1.31.6", "pymysql==1.2.4"} == set(log)
    # The functions' own lists leave the log out (a build adds it when the log is on);
    # the all-routes list (the dev venv, the image) has it.
    assert not set(log) & (set(analyze) | set(models))
    assert set(everything) == set(analyze) | set(models) | set(log)
    # The install cache is keyed by the requirement set: one install per set.
    key = zipmod._deps_key
    assert key(analyze, RUNTIME, "x86_64") != key(models, RUNTIME, "x86_64")
    assert key(everything, RUNTIME, "x86_64") == key(list(reversed(everything)), RUNTIME, "x86_64")


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("numpy/core/tests/test_x.py", True),  # tests are skipped while walking, not here
        ("pydantic/main.py", True),
        ("pydantic/main.pyi", False),
        ("numpy/_core/include/numpy/ndarraytypes.h", False),
        ("google/genai/docs/index.html", False),
        ("foo/examples/demo.py", False),
        ("bin/normalizer", False),
        ("pydantic-2.14.3.dist-info/METADATA", True),
        ("pydantic-2.14.3.dist-info/entry_points.txt", True),
        ("pydantic-2.14.3.dist-info/RECORD", False),
        ("pydantic-2.14.3.dist-info/INSTALLER", False),
        ("docs/__init__.py", True),  # a top-level package that happens to be called docs
        ("pydantic/py.typed", False),
        ("py.typed", False),
        ("mypackage/not_py.typed", True),
    ],
)
def test_runtime_needs(path: str, kept: bool) -> None:
    assert zipmod.runtime_needs(path) is kept


def test_cli_build_reports_every_function(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["build", "--package", "zip", "--flavor", "local", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["functions"]) == {"analyze", "models"}
    for name, row in data["functions"].items():
        assert {"path", "sha256", "size", "unzipped_size"} <= set(row)
        assert row["function"] == name and Path(row["path"]).is_file()
        assert row["bytecode"] is None  # the local flavor is source only
    assert data["bytecode_note"] is None  # nothing to say: no lambda zip was built
    assert data["functions"]["analyze"]["handler"] == "lens.entry.analyze.lambda_handler"
    assert data["function"] == "all" and data["handler"] == "lens.handler.lambda_handler"
    text = CliRunner().invoke(app, ["build", "--package", "zip", "--flavor", "local"])
    assert text.exit_code == 0, text.output
    assert "analyze (lens.entry.analyze.lambda_handler)" in text.output
    assert "models (lens.entry.models.lambda_handler)" in text.output


# -- slow: the real lambda-flavor zips, extracted and run ------------------------------


@pytest.fixture(scope="session")
def function_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipmod.ZipBuild]:
    root = tmp_path_factory.mktemp("function-zips")
    shutil.copytree(
        REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("SCARAB_CACHE_DIR", str(REPO / ".scarab" / "cache"))
    try:
        zips = build_function_zips(root, flavor="lambda", runtime=RUNTIME)
        zips["all"] = build_zip(root, flavor="lambda", runtime=RUNTIME)
        # What a stage with its prediction log on ships.
        for name, built in build_function_zips(
            root, flavor="lambda", runtime=RUNTIME, log=True
        ).items():
            zips[f"{name}+log"] = built
        return zips
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def extracted(
    function_zips: dict[str, zipmod.ZipBuild], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    out = {}
    for name, built in function_zips.items():
        target = tmp_path_factory.mktemp(f"task-root-{name}")
        with zipfile.ZipFile(built.path) as zf:
            zf.extractall(target)
        out[name] = target
    return out


@pytest.mark.slow
def test_analyze_zip_is_slim(function_zips: dict[str, zipmod.ZipBuild]) -> None:
    analyze, models, everything = (function_zips[n] for n in ("analyze", "models", "all"))
    assert analyze.unzipped_size <= ANALYZE_GOAL, analyze.unzipped_size / MB
    # A stage without a log database ships none of the log's packages.
    assert _log_share(analyze.path) == 0 and _log_share(models.path) == 0
    assert analyze.unzipped_size * 3 < everything.unzipped_size
    assert models.unzipped_size < everything.unzipped_size
    names = _names(analyze.path)
    tops = {n.split("/")[0] for n in names}
    assert {"google", "pydantic", "pydantic_core", "PIL", "aws_lambda_powertools"} <= tops
    assert not {"numpy", "onnxruntime", "numpy.libs", "cryptography"} & tops
    assert not any(n.endswith(".onnx") for n in names)
    for junk in ("/tests/", "bin/"):
        assert not any(junk in f"/{n}" for n in names), junk
    assert not any(n.endswith((".pyi", "/py.typed", "/RECORD")) for n in names)
    # Never loaded on its routes: google-auth's RSA signing, google-genai's Interactions.
    assert not {"pyasn1", "pyasn1_modules"} & tops
    assert not any(
        n.startswith(("google/genai/_gaos/", "google/genai/_interactions/")) for n in names
    )
    # Built by this interpreter for its own version: every module also ships compiled.
    tag = sys.implementation.cache_tag
    assert analyze.bytecode == tag
    pycs = {n for n in names if n.endswith(".pyc")}
    assert pycs == {n for n in names if "/__pycache__/" in f"/{n}"}  # nothing else cached
    assert pycs and all("/__pycache__/" in f"/{n}" and n.endswith(f".{tag}.pyc") for n in pycs)
    assert f"google/genai/__pycache__/types.{tag}.pyc" in pycs
    assert f"lens/entry/__pycache__/analyze.{tag}.pyc" in pycs
    with zipfile.ZipFile(analyze.path) as zf:
        flags = {int.from_bytes(zf.read(n)[4:8], "little") for n in sorted(pycs)[:50]}
    assert flags == {0b01}  # hash-based, unchecked: a read-only task root never changes
    assert "pydantic-2.14.3.dist-info/METADATA" in names  # importlib.metadata reads it
    models_names = _names(models.path)
    models_tops = {n.split("/")[0] for n in models_names}
    assert {"numpy", "onnxruntime", "PIL", "pydantic"} <= models_tops
    # onnxruntime's protobuf installs google/protobuf; google-genai must not be there.
    assert not any(n.startswith("google/genai/") for n in models_names)


def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SCARAB_CACHE_DIR with the checkout's installed dependencies but none of its
    finished zips, so a build here really compiles and zips."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (REPO / ".scarab" / "cache" / "deps").mkdir(parents=True, exist_ok=True)
    (cache / "deps").symlink_to(REPO / ".scarab" / "cache" / "deps")
    monkeypatch.setenv("SCARAB_CACHE_DIR", str(cache))
    return cache


def _copy_lambda(root: Path) -> None:
    shutil.copytree(
        REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )


@pytest.mark.slow
def test_another_checkout_links_the_shared_zip(
    function_zips: dict[str, zipmod.ZipBuild], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixture built with the checkout's SCARAB_CACHE_DIR: the same inputs elsewhere
    # take the finished zip from there (byte for byte), without compiling.
    _copy_lambda(tmp_path)
    monkeypatch.setenv("SCARAB_CACHE_DIR", str(REPO / ".scarab" / "cache"))
    said: list[str] = []
    shared = build_zip(
        tmp_path, flavor="lambda", runtime=RUNTIME, function=ANALYZE, progress=said.append
    )
    assert shared.reused and shared.sha256 == function_zips["analyze"].sha256
    assert shared.path.parent == zipmod.zip_dir(tmp_path)
    assert zipmod._sha256_file(shared.path) == shared.sha256
    assert not [m for m in said if m.startswith(("compiling", "zipping"))], said


@pytest.mark.slow
def test_bytecode_zips_are_reproducible(
    function_zips: dict[str, zipmod.ZipBuild], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another checkout (other path, fresh interpreter compiling) gives the same bytes.
    _copy_lambda(tmp_path)
    cache = _private_cache(tmp_path, monkeypatch)
    # A shared zip cut short (a full disk, a killed copy) is never taken: built again.
    built = function_zips["analyze"]
    shared = REPO / ".scarab" / "cache" / "zips"
    (meta,) = [m for m in shared.glob("*.meta") if m.read_text().startswith(built.sha256 + " ")]
    (cache / "zips").mkdir()
    (cache / "zips" / meta.name).write_text(meta.read_text())
    cut = cache / "zips" / meta.with_suffix(".zip").name
    cut.write_bytes(built.path.read_bytes()[:1000])
    again = build_zip(tmp_path, flavor="lambda", runtime=RUNTIME, function=ANALYZE)
    assert not again.reused and again.bytecode is not None
    assert again.sha256 == function_zips["analyze"].sha256
    assert cut.stat().st_size == again.size  # and the whole one replaced it


@pytest.mark.slow
def test_a_named_interpreter_compiles_and_source_only_is_never_reused_as_bytecode(
    function_zips: dict[str, zipmod.ZipBuild], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_lambda(tmp_path)
    _private_cache(tmp_path, monkeypatch)
    source = build_zip(tmp_path, flavor="lambda", runtime=RUNTIME, function=ANALYZE, bytecode=False)
    assert source.bytecode is None and not any(n.endswith(".pyc") for n in _names(source.path))
    # SCARAB_BYTECODE_PYTHON names the interpreter that compiles (here this one, the only
    # one every machine has): same inputs as the source-only zip but for the bytecode,
    # so the index must not hand back the source-only zip.
    monkeypatch.setenv("SCARAB_BYTECODE_PYTHON", sys.executable)
    said: list[str] = []
    named = build_zip(
        tmp_path, flavor="lambda", runtime=RUNTIME, function=ANALYZE, progress=said.append
    )
    assert not named.reused and named.bytecode == sys.implementation.cache_tag
    probed = zipmod.probe_python(sys.executable)
    assert isinstance(probed, zipmod.Interpreter)
    assert f"compiling analyze's modules ({named.bytecode}, {probed.executable})" in said
    # Byte for byte what the build interpreter compiles for its own version.
    assert named.sha256 == function_zips["analyze"].sha256
    again = build_zip(tmp_path, flavor="lambda", runtime=RUNTIME, function=ANALYZE, bytecode=False)
    assert again.reused and again.sha256 == source.sha256


@pytest.mark.slow
def test_extracted_analyze_zip_imports_its_bytecode(extracted: dict[str, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    root = extracted["analyze"]
    result = subprocess.run(
        [sys.executable, "-S", "-v", "-c", "import lens.entry.analyze, google.genai"],
        env={**env, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    tag = sys.implementation.cache_tag
    # -v names the file each module's code object came from.
    for pyc in (f"google/genai/__pycache__/types.{tag}.pyc", f"lens/__pycache__/app.{tag}.pyc"):
        assert f"code object from '{root / pyc}'" in result.stderr, pyc


_CHILD = r"""
import base64, importlib.metadata, io, json, sys
from PIL import Image
from {module} import lambda_handler

{context}

def event(method, path, body=None):
    return {{"resource": path, "path": path, "httpMethod": method,
            "headers": {{"content-type": "application/json"}}, "multiValueHeaders": {{}},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": None, "stageVariables": None, "isBase64Encoded": False,
            "requestContext": {{"requestId": "r-1", "stage": "dev", "httpMethod": method,
                                "path": "/dev" + path, "resourcePath": path,
                                "identity": {{"sourceIp": "127.0.0.1"}}}},
            "body": None if body is None else json.dumps(body)}}

buffer = io.BytesIO()
Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "JPEG")
image = base64.b64encode(buffer.getvalue()).decode()
answers = []
for method, path, body in json.loads(sys.argv[1]):
    if body == "IMAGE":
        body = {{"image": image, "speed": "fast"}}
    response = lambda_handler(event(method, path, body), Context())
    answers.append([response["statusCode"], json.loads(response["body"])])
versions = {{d: importlib.metadata.version(d) for d in json.loads(sys.argv[2])}}
print(json.dumps({{"answers": answers, "versions": versions, "modules": sorted(sys.modules),
                  "lens": sys.modules["lens"].__file__}}))
"""


def _run_extracted(
    task_root: Path, module: str, requests: list[Any], dists: list[str], env: dict[str, str]
) -> dict[str, Any]:
    args = (requests, dists)
    """A fresh interpreter with only the extracted zip and the standard library (-S: no
    site-packages, so nothing can come from this venv)."""
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            _CHILD.format(module=module, context=CONTEXT_SOURCE),
            *map(json.dumps, args),
        ],
        env={**env, "PYTHONPATH": str(task_root), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert out["lens"].startswith(str(task_root))
    return out


@pytest.mark.slow
def test_extracted_analyze_zip_answers_alone(
    extracted: dict[str, Path], gemini: GeminiServer
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = _run_extracted(
        extracted["analyze"],
        "lens.entry.analyze",
        [["GET", "/health", None], ["POST", "/analyze", "IMAGE"], ["GET", "/openapi.json", None]],
        ["google-genai", "pydantic", "pydantic-core", "pillow", "aws-lambda-powertools"],
        env,
    )
    assert [a[0] for a in out["answers"]] == [200, 200, 200], out["answers"]
    assert out["answers"][1][1]["analysis"]["picture_location"]
    assert len(gemini.requests) == 1
    assert out["versions"]["google-genai"] == "3.4.0"
    modules = set(out["modules"])
    assert "google.genai" in modules
    assert not {"numpy", "onnxruntime", "cryptography", "boto3"} & modules


@pytest.mark.slow
def test_extracted_models_zip_answers_alone(extracted: dict[str, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and "API_KEY" not in k}
    out = _run_extracted(
        extracted["models"],
        "lens.entry.models",
        [
            ["GET", "/models", None],
            ["POST", "/predict/tabular", {"features": _TABULAR}],
            ["POST", "/predict/digits", "IMAGE"],
        ],
        ["numpy", "onnxruntime", "pillow", "pydantic"],
        env,
    )
    statuses = [a[0] for a in out["answers"]]
    assert statuses[:2] == [200, 200], out["answers"]
    assert out["answers"][1][1]["label"] in ("benign", "malignant")
    assert statuses[2] in (200, 422), out["answers"][2]  # a digit, or no_digit_found
    assert {"numpy", "onnxruntime"} <= set(out["modules"])
    assert "google.genai" not in out["modules"]


@pytest.mark.slow
def test_extracted_all_routes_zip_still_answers_every_route(
    extracted: dict[str, Path], gemini: GeminiServer
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = _run_extracted(
        extracted["all"],
        "lens.handler",
        [
            ["GET", "/health", None],
            ["POST", "/analyze", "IMAGE"],
            ["POST", "/predict/tabular", {"features": _TABULAR}],
        ],
        ["google-genai", "numpy", "onnxruntime"],
        env,
    )
    assert [a[0] for a in out["answers"]] == [200, 200, 200], out["answers"]


_LOG_CHILD = r"""
import datetime, json, sys
import sqlalchemy as sa
from lens.log import migrate
from lens.log.schema import predictions
from lens.log.writer import Writer
writer = Writer(sys.argv[1])
writer.write({"at": datetime.datetime(2026, 12, 1), "stage": "dev", "request_id": "r-1",
              "route": "/analyze", "latency_ms": 1.0, "status": 200})
with writer.engine.connect() as connection:
    count = connection.execute(sa.select(sa.func.count()).select_from(predictions)).scalar()
migrate.downgrade(writer.engine, "base")
print(json.dumps({"count": count, "sqlalchemy": sa.__file__}))
"""


def _log_share(path: Path) -> int:
    """Bytes (unzipped) of the prediction log's packages in the zip at `path`."""
    with zipfile.ZipFile(path) as zf:
        return sum(
            i.file_size
            for i in zf.infolist()
            if i.filename.split("/")[0].split("-")[0].removesuffix(".py").lower() in LOG_PACKAGES
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["analyze", "models"])
def test_a_log_enabled_build_carries_the_log_packages(
    function_zips: dict[str, zipmod.ZipBuild], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plain, logged = function_zips[name], function_zips[f"{name}+log"]
    tops = {n.split("/")[0] for n in _names(logged.path)}
    assert {"sqlalchemy", "alembic", "mako", "pg8000", "pymysql", "scramp"} <= tops
    share = _log_share(logged.path)
    assert 0 < share <= LOG_GOAL, share / MB
    # The same function plus the log's packages, nothing else.
    assert set(_names(logged.path)) > set(_names(plain.path))
    assert logged.unzipped_size - plain.unzipped_size == share
    with capsys.disabled():
        print(
            f"\n{name} zip: {plain.unzipped_size / MB:.1f} MB unzipped without the log,"
            f" {logged.unzipped_size / MB:.1f} MB with it ({share / MB:.1f} MB of log packages;"
            f" {logged.size / MB:.1f} MB zipped)"
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["analyze+log", "models+log"])
def test_extracted_zips_write_the_prediction_log(
    extracted: dict[str, Path], name: str, tmp_path: Path
) -> None:
    # What the catalog prunes from SQLAlchemy and alembic (the ORM, compiled extensions,
    # templates) is not needed to migrate a database up and down and write a row.
    root = extracted[name]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-S", "-c", _LOG_CHILD, f"sqlite:///{tmp_path / 'log.db'}"],
        env={**env, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["count"] == 1
    assert out["sqlalchemy"].startswith(str(root))
    assert not any(n.endswith(".so") for n in _names_under(root / "sqlalchemy"))


def _names_under(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*")]
