"""Reproducible, content-addressed zip artifacts, one per function of the catalog.

Each function (scarab.functions: `analyze`, `models`, and the all-routes function a
stage deployed as one function runs) gets a zip of its own sources and requirements.
Two flavors:
- `lambda`: manylinux wheels for the configured runtime and architecture, installed
  with pip (no Docker) from the function's requirements, plus its source. This is what
  AWS runs. What a runtime never reads is left out of the wheels' files (see
  `runtime_needs`): tests, caches, type stubs, docs and examples, install records.
  Every module also ships compiled when an interpreter of the runtime's Python version
  is at hand (see `choose_compiler`: SCARAB_BYTECODE_PYTHON, the build interpreter, or
  `python3.12` on PATH for python3.12): Lambda's task root is read-only, so without
  bytecode each cold start compiles every module it imports again.
- `local`: the function's source only; the local interpreter's venv supplies the
  dependencies. `--local` deploys and `scarab serve` use it.

Dependencies are installed once per (requirements, runtime, architecture), into
`.scarab/cache/deps/<key>` (or SCARAB_CACHE_DIR), and reused by every build; the key
follows `-r` includes, so editing an included file reinstalls.
Every zip lands at `.scarab/build/zip/<sha256hex>.zip`; Lambda's CodeSha256 is the
base64 of the same digest, which is how `scarab serve` finds the code it deployed.
Same inputs give the same bytes: sorted entries, fixed timestamps and permissions,
no RECORD files or console scripts (their shebangs embed local paths), and bytecode
compiled by a fresh interpreter in a fixed order, with archive names as file names.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from platform import python_version
from typing import Literal

from scarab import layout
from scarab.errors import ScarabError
from scarab.functions import ALL_ROUTES, FUNCTIONS, LOG_REQUIREMENTS, TASK_ROOT, FunctionDef

Flavor = Literal["lambda", "local"]

LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024  # direct upload limit; above it, go through S3
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# lens.server (FastAPI on uvicorn, for the server image: lambda/server.Dockerfile) is in
# no Lambda function: its code and its requirements (requirements/server.txt) stay out.
SERVER_ONLY = "lens/server/*"
_SKIP_DIRS = {"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
# Files pip writes that differ between installs or machines and Lambda never reads.
# METADATA, entry_points.txt and top_level.txt stay: importlib.metadata reads them.
_SKIP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "WHEEL"}
# Inside installed wheels only: directories no import reaches.
_SKIP_DEP_DIRS = {"docs", "doc", "examples", "example", "benchmarks"}
# Type stubs, PEP 561 markers and C sources/headers: read by type checkers and
# compilers, not at run time.
_SKIP_DEP_SUFFIXES = (".pyi", "/py.typed", ".c", ".h", ".hpp", ".pxd", ".pyx")


@dataclass(frozen=True)
class ZipBuild:
    path: Path
    sha256: str  # hex digest of the zip bytes
    size: int
    unzipped_size: int
    flavor: Flavor
    reused: bool
    function: str = ALL_ROUTES.name  # the catalog function it is for
    handler: str = ALL_ROUTES.handler
    bytecode: str | None = None  # the cache tag of the .pyc it ships (cpython-312), if any

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


def source_entries(project_dir: Path, function: FunctionDef = ALL_ROUTES) -> dict[str, Path]:
    """The function's source under lambda/lens (model artifacts included where it
    ships them), by archive name."""
    task_root = project_dir / TASK_ROOT
    package = task_root / "lens"
    if not package.is_dir():
        raise ScarabError(
            f"No function source at {package}. Run scarab from the project root"
            " (the directory holding scarab.toml and lambda/)."
        )
    entries = {p.relative_to(task_root).as_posix(): p for p in _walk(package)}
    return {
        name: path
        for name, path in entries.items()
        if function.ships(name) and not fnmatch.fnmatchcase(name, SERVER_ONLY)
    }


def runtime_needs(relative: str) -> bool:
    """Whether a file of the installed dependencies (path relative to the install, posix)
    is one a running function may read.

    Left out: console scripts (bin/), pip's install records, type stubs and py.typed
    markers, C sources and headers, and docs/examples directories. Tests and caches are
    skipped while walking.
    Kept: every module and extension, package data, and the METADATA, entry points and
    licences of each .dist-info (importlib.metadata reads them; pydantic and
    google-genai ask for versions at import).
    """
    parts = relative.split("/")
    if parts[0] == "bin":
        return False
    if parts[0].endswith(".dist-info"):
        return parts[-1] not in _SKIP_DIST_INFO
    if any(part in _SKIP_DEP_DIRS for part in parts[1:-1]):
        return False
    return not f"/{relative}".endswith(_SKIP_DEP_SUFFIXES)


BYTECODE_PYTHON_ENV = "SCARAB_BYTECODE_PYTHON"


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter as it describes itself when run."""

    executable: str  # its own sys.executable: a pyenv shim resolves to the real binary
    implementation: str  # sys.implementation.name: "cpython"
    version: str  # "3.12.1"
    cache_tag: str | None  # "cpython-312"; None when it writes no bytecode

    @property
    def major_minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


BUILD_PYTHON = Interpreter(
    sys.executable, sys.implementation.name, python_version(), sys.implementation.cache_tag
)


@dataclass(frozen=True)
class BytecodeCompiler:
    """Which interpreter compiles a runtime's bytecode, or why nothing does."""

    runtime: str
    interpreter: Interpreter | None  # None: the zips ship source only
    note: str = ""  # why source only (said once in the build's output)

    @property
    def tag(self) -> str | None:
        return self.interpreter.cache_tag if self.interpreter else None

    @property
    def key(self) -> str:
        """What a zip's inputs key records of its bytecode: the cache tag and the exact
        version (marshal's output may change between patch releases)."""
        it = self.interpreter
        return f"{it.cache_tag} {it.version}" if it else "source"


def runtime_python(runtime: str) -> str | None:
    """The Python version ("3.12") of a Lambda runtime name ("python3.12"), or None."""
    version = runtime.removeprefix("python")
    major, _, minor = version.partition(".")
    ok = runtime.startswith("python") and major.isdigit() and minor.isdigit()
    return version if ok else None


def unfit(interpreter: Interpreter, runtime: str) -> str | None:
    """Why `interpreter` cannot compile bytecode for `runtime`, or None when it can.

    A .pyc holds one version's bytecode (python3.12 ignores what 3.11 wrote), and Lambda
    runs CPython, so only CPython of the runtime's exact major.minor will do.
    """
    wanted = runtime_python(runtime)
    if wanted is None:
        return f"compiles nothing for {runtime}, which is not a Python runtime"
    if interpreter.implementation != "cpython" or not interpreter.cache_tag:
        return f"is {interpreter.implementation} {interpreter.version}, not CPython"
    if interpreter.major_minor != wanted:
        return f"is Python {interpreter.version}, not {wanted} (the {runtime} runtime)"
    return None


Probe = Callable[[str], "Interpreter | str"]


def _fit(found: Interpreter | str, runtime: str) -> Interpreter | str:
    """A probed interpreter if it can compile for `runtime`, else why not."""
    if isinstance(found, str):
        return found
    return unfit(found, runtime) or found


def choose_compiler(
    runtime: str, *, build: Interpreter, explicit: str | None, probe: Probe
) -> BytecodeCompiler:
    """The interpreter that compiles `runtime`'s bytecode (pure: `probe` runs a command
    and returns the interpreter it describes, or why it could not).

    In order: the one named by SCARAB_BYTECODE_PYTHON (`explicit`; one that is missing or
    of another version is an error: it was asked for), the build interpreter when it is
    the runtime's version, `python<version>` on PATH; else none, and the zips ship source.
    """
    if explicit:
        named = _fit(probe(explicit), runtime)
        if isinstance(named, str):
            raise ScarabError(
                f"{BYTECODE_PYTHON_ENV}={explicit} {named}, so it cannot compile the"
                f" bytecode of a {runtime} function. Name a CPython"
                f" {runtime_python(runtime) or ''} interpreter there, or unset"
                f" {BYTECODE_PYTHON_ENV}."
            )
        return BytecodeCompiler(runtime, named)
    if unfit(build, runtime) is None:
        return BytecodeCompiler(runtime, build)
    version = runtime_python(runtime)
    if version is None:
        return BytecodeCompiler(runtime, None, f"{runtime} is not a Python runtime")
    command = f"python{version}"
    found = _fit(probe(command), runtime)
    if not isinstance(found, str):
        return BytecodeCompiler(runtime, found)
    return BytecodeCompiler(
        runtime,
        None,
        f"no bytecode for {runtime}: this is Python {build.version} and {command} {found};"
        f" the lambda zips ship source only, so each cold start compiles what it imports."
        f" Put a CPython {version} on PATH as {command} or set {BYTECODE_PYTHON_ENV}",
    )


# Prints what choose_compiler checks; -I: no user site, no PYTHON* variables.
_DESCRIBE = (
    "import json, platform, sys; print(json.dumps([sys.executable, sys.implementation.name,"
    " platform.python_version(), sys.implementation.cache_tag]))"
)


def _describe(executable: str, env: dict[str, str] | None = None) -> Interpreter | str:
    try:
        proc = subprocess.run(
            [executable, "-I", "-c", _DESCRIBE],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not be run ({e})"
    if proc.returncode != 0:
        said = " ".join(proc.stderr.split())[-300:]  # pyenv's advice spans lines
        return f"exited with status {proc.returncode} ({said})"
    try:
        said_json = json.loads(proc.stdout.splitlines()[-1])
    except (ValueError, IndexError):
        return "did not describe itself"
    # A wrapper or another program may print any JSON: only [str, str, str, str | None]
    # is a Python describing itself.
    if (
        not isinstance(said_json, list)
        or len(said_json) != 4
        or not all(isinstance(v, str) for v in said_json[:3])
        or not isinstance(said_json[3], str | None)
    ):
        return "did not describe itself"
    exe, impl, version, tag = said_json
    return Interpreter(exe, impl, version, tag)


@functools.cache
def _probe_path(executable: str, pyenv: str | None) -> Interpreter | str:
    found = _describe(executable)
    if not isinstance(found, str) or pyenv is None:
        return found
    # A pyenv shim fails unless a selected version has the command; ask pyenv which
    # installed versions do and run the shim under each (it then reports the real binary).
    name = Path(executable).name
    try:
        whence = subprocess.run(
            [pyenv, "whence", name], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return found
    for version in whence.stdout.split():
        other = _describe(executable, {**os.environ, "PYENV_VERSION": version})
        if not isinstance(other, str):
            return other
    return found


def probe_python(command: str) -> Interpreter | str:
    """Run `command` (a path, or a name looked up on PATH) and return the interpreter it
    is, or why not; once per process for each executable."""
    executable = command if "/" in command else shutil.which(command)
    if executable is None:
        return "is not on PATH"
    pyenv = shutil.which("pyenv")
    is_shim = pyenv is not None and Path(executable).parent.name == "shims"
    return _probe_path(str(Path(executable).absolute()), pyenv if is_shim else None)


def bytecode_compiler(runtime: str) -> BytecodeCompiler:
    """Which interpreter on this machine compiles `runtime`'s bytecode (choose_compiler
    with this interpreter, SCARAB_BYTECODE_PYTHON and PATH)."""
    return choose_compiler(
        runtime,
        build=BUILD_PYTHON,
        explicit=os.environ.get(BYTECODE_PYTHON_ENV) or None,
        probe=probe_python,
    )


def bytecode_tag(runtime: str) -> str | None:
    """The cache tag of the bytecode a lambda zip for `runtime` ships here, or None."""
    return bytecode_compiler(runtime).tag


# Run in a fresh interpreter (same state every build, so the same bytes: marshal's
# output depends on reference counts in the compiling process). Unchecked-hash .pyc:
# the task root is read-only, so importing never stats or hashes the source to
# validate them. A file this version cannot compile ships as source only, as pip does.
_COMPILE = """
import json, py_compile, sys
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for source, target, name in json.load(sys.stdin):
    try:
        py_compile.compile(source, cfile=target, dfile=name, doraise=True,
                           invalidation_mode=mode)
    except py_compile.PyCompileError:
        pass
"""


def _compile(entries: dict[str, Path], python: Interpreter, out: Path) -> dict[str, Path]:
    """Every module of `entries` compiled by `python` under `out`, by archive name
    (`pkg/__pycache__/mod.<tag>.pyc`, where the import system looks first)."""
    jobs = []
    for name in sorted(entries):
        if name.endswith(".py"):
            folder, _, stem = name[: -len(".py")].rpartition("/")
            pyc = f"{folder}/__pycache__/{stem}.{python.cache_tag}.pyc".lstrip("/")
            jobs.append((str(entries[name]), str(out / pyc), name, pyc))
    proc = subprocess.run(
        [python.executable, "-s", "-S", "-c", _COMPILE],
        input=json.dumps([job[:3] for job in jobs]),
        env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ScarabError(
            f"Compiling the function's bytecode with {python.executable} failed:\n"
            f"{proc.stderr[-2000:]}"
        )
    return {pyc: Path(target) for _s, target, _n, pyc in jobs if Path(target).is_file()}


def _dep_entries(deps: Path) -> dict[str, Path]:
    entries: dict[str, Path] = {}
    for path in _walk(deps):
        rel = path.relative_to(deps).as_posix()
        if rel != ".complete" and runtime_needs(rel):
            entries[rel] = path
    return entries


def pip_platforms(architecture: str) -> list[str]:
    """Wheel platform tags for Lambda.

    manylinux2014 (glibc 2.17) covers most wheels; onnxruntime 1.32 ships only
    manylinux_2_28 wheels, which run on Lambda's Amazon Linux 2023 (glibc 2.34).
    """
    arch = "aarch64" if architecture == "arm64" else "x86_64"
    return [f"manylinux2014_{arch}", f"manylinux_2_28_{arch}"]


def read_requirements(path: Path, _seen: frozenset[Path] = frozenset()) -> list[str]:
    """The requirement lines of `path`, following `-r` includes (relative to the file
    that names them), without comments or blanks, in order, each once."""
    path = path.resolve()
    if path in _seen:
        return []
    if not path.is_file():
        raise ScarabError(f"{path} is missing; it lists a function's dependencies.")
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith(("-r", "--requirement")):
            include = line.split(maxsplit=1)[1] if " " in line else line[2:]
            lines += read_requirements(path.parent / include.strip(), _seen | {path})
        elif line:
            lines.append(line)
    return list(dict.fromkeys(lines))


def _deps_key(requirements: list[str], runtime: str, architecture: str) -> str:
    # The requirement set, not the file's bytes: comments and include layout don't count.
    h = hashlib.sha256()
    for part in ("\n".join(sorted(requirements)), runtime, architecture, "v2"):
        h.update(hashlib.sha256(part.encode()).digest())
    return h.hexdigest()[:32]


def install_deps(
    project_dir: Path,
    runtime: str,
    architecture: str,
    progress: Callable[[str], None] | None = None,
    requirements_file: Path = ALL_ROUTES.requirements,
    extra_requirements: tuple[Path, ...] = (),
) -> Path:
    """pip-install a requirements file (relative to the project), plus `extra_requirements`
    (the prediction log's), for Lambda into a cache keyed by their requirement set,
    runtime and architecture."""
    files = [project_dir / f for f in (requirements_file, *extra_requirements)]
    wanted = list(dict.fromkeys(line for f in files for line in read_requirements(f)))
    key = _deps_key(wanted, runtime, architecture)
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
    ]
    for f in files:
        cmd += ["-r", str(f)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise ScarabError(
            f"Installing the function's dependencies for {runtime}/{architecture} failed."
            f" Check your network access to PyPI and that every package in"
            f" {', '.join(str(f) for f in (requirements_file, *extra_requirements))} has a"
            f" manylinux wheel.\n{tail}"
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


# How this module builds a zip (the compile script, what it prunes, how it writes) is an
# input too: a scarab that builds differently must not reuse a zip an older one built.
BUILDER_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _inputs_key(flavor: str, entries: dict[str, Path]) -> str:
    h = hashlib.sha256(f"{flavor} {BUILDER_DIGEST}".encode())
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
    function: FunctionDef = ALL_ROUTES,
    bytecode: bool = True,
    log: bool = False,
) -> ZipBuild:
    """Build (or reuse) `function`'s zip for these inputs and return where it is.

    The default is the all-routes function (lens.handler, every dependency): what a stage
    deployed as one function runs. A lambda zip carries bytecode when `bytecode` is set
    and an interpreter of `runtime`'s version is at hand (see `bytecode_compiler`); the
    zip's inputs key names that interpreter's cache tag and version, so a source-only
    zip is never reused as one with bytecode, nor the other way round. It carries the
    prediction log's packages (LOG_REQUIREMENTS) when `log` is set.
    """
    compiler = (
        bytecode_compiler(runtime)
        if bytecode and flavor == "lambda"
        else BytecodeCompiler(runtime, None)
    )
    tag = compiler.tag
    entries = source_entries(project_dir, function)
    if flavor == "lambda":
        extra = (LOG_REQUIREMENTS,) if log else ()
        deps = install_deps(
            project_dir, runtime, architecture, progress, function.requirements, extra
        )
        dep_entries = {n: p for n, p in _dep_entries(deps).items() if not function.prunes(n)}
        clash = sorted(set(dep_entries) & set(entries))
        if clash:
            raise ScarabError(f"The function source and its dependencies both ship {clash[0]}.")
        entries = {**dep_entries, **entries}
    out_dir = zip_dir(project_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index" / _inputs_key(f"{flavor} {compiler.key}", entries)
    if index.is_file():
        sha, _, unzipped_s = index.read_text().partition(" ")
        existing = zip_path(project_dir, sha)
        if existing.is_file() and unzipped_s.isdigit():
            return ZipBuild(
                existing,
                sha,
                existing.stat().st_size,
                int(unzipped_s),
                flavor,
                reused=True,
                function=function.name,
                handler=function.handler,
                bytecode=tag,
            )
    compiled_dir = Path(tempfile.mkdtemp(prefix=".pyc-", dir=out_dir))
    fd, tmp_name = tempfile.mkstemp(suffix=".zip.tmp", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if compiler.interpreter:
            if progress:
                progress(
                    f"compiling {function.name}'s modules ({tag},"
                    f" {compiler.interpreter.executable})"
                )
            entries = {**entries, **_compile(entries, compiler.interpreter, compiled_dir)}
        if progress:
            progress(f"zipping {len(entries)} files ({function.name}, {flavor} flavor)")
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
        shutil.rmtree(compiled_dir, ignore_errors=True)
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        raise ScarabError(
            f"The {function.name} function's {flavor} package is {unzipped / 2**20:.0f} MB"
            f" unzipped, over Lambda's 250 MB limit. Drop dependencies from"
            f" {function.requirements} or deploy with --package image (container images"
            f" may be up to 10 GB)."
        )
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(f"{sha} {unzipped}")
    return ZipBuild(
        final,
        sha,
        final.stat().st_size,
        unzipped,
        flavor,
        reused=False,
        function=function.name,
        handler=function.handler,
        bytecode=tag,
    )


def build_function_zips(
    project_dir: Path,
    *,
    flavor: Flavor = "lambda",
    runtime: str = "python3.12",
    architecture: str = "x86_64",
    progress: Callable[[str], None] | None = None,
    functions: tuple[FunctionDef, ...] = FUNCTIONS,
    log: bool = False,
) -> dict[str, ZipBuild]:
    """One zip per catalog function, by function name (each reused when unchanged);
    with the prediction log's packages when `log` is set."""
    return {
        fn.name: build_zip(
            project_dir,
            flavor=flavor,
            runtime=runtime,
            architecture=architecture,
            progress=progress,
            function=fn,
            log=log,
        )
        for fn in functions
    }
