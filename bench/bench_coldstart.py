"""Cold start of each function's artifact against today's single all-routes function.

For each function (analyze, models) and for today's single function (lens.handler, every
route), in one run and interleaved: extract its lambda-flavor zip to a fresh directory,
start a fresh interpreter with only that directory and the standard library (`-S`, and
no bytecode written: Lambda's task root is read-only), import the handler, and answer
the first request: POST /analyze against the Gemini-compatible test server at zero
delay, or POST /predict/tabular. Today's function answers both, as the baseline of each.

Phases: extract (in this process), import and first request (timed inside the child),
and their total; medians of RUNS runs, ratios against today's function answering the
same request. The first rows are zips built for this interpreter's Python (their compiled
wheels must load here) with bytecode, run by it. Then, when an interpreter of the default
runtime's version is at hand (python3.12 on PATH or SCARAB_BYTECODE_PYTHON, as
scarab.artifacts.zip.bytecode_compiler finds it; its real executable, not a pyenv shim),
the default runtime's rows: its zips (cp312 wheels) with and without its bytecode, run by
that interpreter. Without one, those rows are skipped (the output says why) and this
version's zips built without bytecode stand in for the source-only rows. Today's function
built for a runtime with no interpreter of its version at hand ships source only, so the
goal lines also compare analyze with bytecode against the source-only all-routes zip.

Primed (SnapStart): the same zips with SCARAB_SNAPSTART=1, in the same run and
interleaved with the rest: a fresh interpreter imports the handler (init primes it: the
Gemini client, the packaged models' sessions) and runs the before-snapshot hooks; then a
fork of it stands for an environment restored from the snapshot: it runs the
after-restore hooks and answers the first request. Its time to first answer (hooks +
first request) is set against the plain cold start of the same function (extract +
import + first request). The restore of the snapshot itself (Lambda's, outside the
function) is not in it; nor is init, which Lambda runs once per published version.

Goals: analyze <= 45 MB unzipped; analyze extract + import + first request at least 2x
faster than today's function.

Run: .venv/bin/python -m bench bench_coldstart
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from tests.function.events import CONTEXT_SOURCE

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
MB = 1024 * 1024
SIZE_GOAL_MB = 45
SPEED_GOAL = 2.0

# The child: import the handler, answer one request, report both times (ms).
_CHILD = r"""
import time
started = time.perf_counter()
import importlib
module_name, _, attr = {handler!r}.rpartition(".")
handler = getattr(importlib.import_module(module_name), attr)
imported = time.perf_counter()
import json, sys
{context}
response = handler(json.loads(sys.argv[1]), Context())
answered = time.perf_counter()
assert response["statusCode"] == 200, response
print(json.dumps({{"import": (imported - started) * 1000, "first": (answered - imported) * 1000}}))
"""


# The primed child: init with SnapStart on, the before-snapshot hooks, then a fork (the
# restored copy) that runs the after-restore hooks and answers; times in ms.
_PRIMED_CHILD = r"""
import time
started = time.perf_counter()
import importlib
module_name, _, attr = {handler!r}.rpartition(".")
handler = getattr(importlib.import_module(module_name), attr)
from lens import snapstart
assert snapstart.enabled()
snapstart.run_before_snapshot()
initialized = time.perf_counter()
import json, os, sys
{context}
event = json.loads(sys.argv[1])
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    restored = time.perf_counter()
    snapstart.run_after_restore()
    hooked = time.perf_counter()
    response = handler(event, Context())
    answered = time.perf_counter()
    out = {{"hooks": (hooked - restored) * 1000, "first": (answered - hooked) * 1000,
           "status": response["statusCode"]}}
    os.write(write, json.dumps(out).encode())
    os._exit(0)
os.close(write)
with os.fdopen(read) as pipe:
    child = json.loads(pipe.read())
os.waitpid(pid, 0)
assert child["status"] == 200, child
child["init"] = (initialized - started) * 1000
print(json.dumps(child))
"""


def _primed(
    python: str, zip_file: Path, handler: str, event: dict[str, Any], work: Path
) -> dict[str, float]:
    """Init with SnapStart on, then the first answer of a simulated restored copy."""
    target = Path(tempfile.mkdtemp(dir=work))
    with zipfile.ZipFile(zip_file) as zf:
        zf.extractall(target)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), PYTHONDONTWRITEBYTECODE="1", SCARAB_SNAPSTART="1")
    proc = subprocess.run(
        [
            python,
            "-S",
            "-c",
            _PRIMED_CHILD.format(handler=handler, context=CONTEXT_SOURCE),
            json.dumps(event),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    shutil.rmtree(target, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"primed {handler} from {zip_file.name} failed:\n{proc.stderr[-2000:]}")
    child = json.loads(proc.stdout.splitlines()[-1])
    return {"init": child["init"], "hooks": child["hooks"], "first": child["first"]}


def _event(method: str, path: str, body: Any) -> dict[str, Any]:
    from tests.function.events import rest_event

    return rest_event(method=method, path=path, body=body)


def _requests() -> dict[str, dict[str, Any]]:
    from lens.predict.registry import registry

    from tests.function.events import b64, jpeg

    tabular = registry().get("tabular")
    assert tabular is not None
    return {
        "/analyze": _event("POST", "/analyze", {"image": b64(jpeg()), "speed": "fast"}),
        "/predict/tabular": _event(
            "POST", "/predict/tabular", {"features": {n: 1.0 for n in tabular.features}}
        ),
    }


def _files(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return len(zf.infolist())


def _one(
    python: str, zip_file: Path, handler: str, event: dict[str, Any], work: Path
) -> dict[str, float]:
    target = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    with zipfile.ZipFile(zip_file) as zf:
        zf.extractall(target)
    extract_ms = (time.perf_counter() - started) * 1000
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [
            python,
            "-S",
            "-c",
            _CHILD.format(handler=handler, context=CONTEXT_SOURCE),
            json.dumps(event),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    shutil.rmtree(target, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{handler} from {zip_file.name} failed:\n{proc.stderr[-2000:]}")
    child = json.loads(proc.stdout.splitlines()[-1])
    return {"extract": extract_ms, "import": child["import"], "first": child["first"]}


def _default_runtime_python(own: str) -> tuple[str | None, str]:
    """The interpreter that runs the default runtime's rows (its real executable, not a
    pyenv shim), or None and why those rows are skipped."""
    from scarab.artifacts.zip import bytecode_compiler
    from scarab.config import FunctionConfig

    default = FunctionConfig().runtime
    if default == own:
        return None, f"this interpreter is {own}, the default runtime: the rows above are it"
    compiler = bytecode_compiler(default)
    if compiler.interpreter is None:
        return None, compiler.note
    return compiler.interpreter.executable, default


# (row, zip key (runtime, function, bytecode), handler, request, baseline row)
Row = tuple[str, tuple[str, str, bool], str, str, str | None]


def main() -> None:
    sys.path[:0] = [str(ROOT / "lambda"), str(ROOT / "tooling"), str(ROOT)]
    from scarab.artifacts import build_zip
    from scarab.functions import ALL_ROUTES, ANALYZE, MODELS

    from tests.support.gemini_server import GeminiServer

    own = f"python{sys.version_info.major}.{sys.version_info.minor}"
    a, m, al = ANALYZE.handler, MODELS.handler, ALL_ROUTES.handler
    pythons = {own: sys.executable}
    default_python, default = _default_runtime_python(own)
    if default_python:
        pythons[default] = default_python

    def analyze_rows(runtime: str, prefix: str, bytecode: bool) -> list[Row]:
        suffix = "" if bytecode else ", source"
        base = f"{prefix}all /analyze{suffix}"
        return [
            (base, (runtime, "all", bytecode), al, "/analyze", None),
            (f"{prefix}analyze{suffix}", (runtime, "analyze", bytecode), a, "/analyze", base),
        ]

    rows: list[Row] = [
        *analyze_rows(own, "", True),
        ("all /predict", (own, "all", True), al, "/predict/tabular", None),
        ("models", (own, "models", True), m, "/predict/tabular", "all /predict"),
    ]
    # Source only: the default runtime's real zips when its interpreter is here; else
    # this version's zips built without bytecode stand in for them.
    short = f"{default.removeprefix('python')} " if default_python else ""
    if default_python:
        rows += analyze_rows(default, short, True)
    rows += analyze_rows(default if default_python else own, short, False)
    # SnapStart: each function primed, against its own plain cold start (the row named).
    primed_rows: list[Row] = [
        ("analyze primed", (own, "analyze", True), a, "/analyze", "analyze"),
        ("models primed", (own, "models", True), m, "/predict/tabular", "models"),
    ]
    functions = {fn.name: fn for fn in (ANALYZE, MODELS, ALL_ROUTES)}
    zips = {
        key: build_zip(
            ROOT,
            flavor="lambda",
            runtime=key[0],
            function=functions[key[1]],
            bytecode=key[2],
            progress=print,
        )
        for key in dict.fromkeys(row[1] for row in rows)
    }
    for key, z in zips.items():
        # The rows' labels say what each zip carries; a build that could not compile is
        # not the row it claims to be.
        assert (z.bytecode is not None) is key[2], (key, z.bytecode)
    requests = _requests()
    server = GeminiServer()
    server.start()
    os.environ.update(
        {
            "GOOGLE_GEMINI_BASE_URL": server.url,
            "GOOGLE_API_KEY": "bench-key",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    work = Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
    try:
        samples: dict[str, list[dict[str, float]]] = {row[0]: [] for row in rows}
        primed: dict[str, list[dict[str, float]]] = {row[0]: [] for row in primed_rows}
        for _ in range(RUNS):  # interleaved, so drift hits every row alike
            for name, key, handler, request, _base in rows:
                samples[name].append(
                    _one(pythons[key[0]], zips[key].path, handler, requests[request], work)
                )
            for name, key, handler, request, _base in primed_rows:
                primed[name].append(
                    _primed(pythons[key[0]], zips[key].path, handler, requests[request], work)
                )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"{RUNS} runs each, medians; x = today's function / this one")
    for runtime, python in pythons.items():
        print(f"  {runtime} rows run by {python}")
    if not default_python:
        print(f"  default-runtime rows skipped: {default}")
    print(
        f"{'artifact':24s} {'runtime':>10s} {'bytecode':>11s} {'files':>6s}"
        f" {'zip MB':>7s} {'unzip MB':>9s}"
    )
    for (runtime, name, _bytecode), z in zips.items():
        print(
            f"{name:24s} {runtime:>10s} {z.bytecode or 'none':>11s} {_files(z.path):6d}"
            f" {z.size / MB:7.1f} {z.unzipped_size / MB:9.1f}"
        )
    print()
    header = f"{'function':24s}" + "".join(
        f" {p + ' ms':>11s} {'x':>5s}" for p in ("extract", "import", "first", "total")
    )
    print(header)
    medians: dict[str, dict[str, float]] = {}
    for name, *_rest, base in rows:
        phases = {
            p: statistics.median(s[p] for s in samples[name])
            for p in ("extract", "import", "first")
        }
        phases["total"] = statistics.median(
            s["extract"] + s["import"] + s["first"] for s in samples[name]
        )
        medians[name] = phases
        line = f"{name:24s}"
        for p, value in phases.items():
            ratio = medians[base][p] / value if base else 1.0
            line += f" {value:11.0f} {ratio:4.1f}x"
        print(line)
    print()
    print(
        f"{'SnapStart (simulated)':24s} {'init ms':>9s} {'hooks ms':>9s} {'first ms':>9s}"
        f" {'to answer':>10s} {'cold':>7s} {'x':>6s} {'cold -x':>8s} {'x':>6s}"
    )
    for name, *_rest, base in primed_rows:
        assert base is not None
        init, hooks, first = (
            statistics.median(s[p] for s in primed[name]) for p in ("init", "hooks", "first")
        )
        answer = statistics.median(s["hooks"] + s["first"] for s in primed[name])
        cold = medians[base]["total"]
        unzipped = statistics.median(s["import"] + s["first"] for s in samples[base])
        print(
            f"{name:24s} {init:9.0f} {hooks:9.1f} {first:9.0f} {answer:10.0f}"
            f" {cold:7.0f} {cold / answer:5.1f}x {unzipped:8.0f} {unzipped / answer:5.1f}x"
        )
    print(
        "  to answer = after-restore hooks + first request in a fork of the primed process;"
        " cold = extract + import + first request of the same function (its row above);"
        " cold -x = import + first request (no extract)"
    )
    size = zips[own, "analyze", True].unzipped_size / MB
    print(
        f"analyze: {size:.1f} MB unzipped (goal <= {SIZE_GOAL_MB}: "
        f"{'met' if size <= SIZE_GOAL_MB else 'MISSED'})"
    )
    source_runtime = default if default_python else own
    goals = [
        (own, "both with bytecode", "analyze", "all /analyze"),
        (
            source_runtime,
            "both source only",
            f"{short}analyze, source",
            f"{short}all /analyze, source",
        ),
    ]
    if default_python:
        goals.append((default, "both with bytecode", f"{short}analyze", f"{short}all /analyze"))
    goals.append(
        (
            source_runtime,
            "analyze with bytecode, today's function source only (what a build for"
            f" {source_runtime} ships without a {source_runtime} to compile with)",
            f"{short}analyze",
            f"{short}all /analyze, source",
        )
    )
    for runtime, label, row, base in goals:
        speedup = medians[base]["total"] / medians[row]["total"]
        print(
            f"{runtime}: analyze extract+import+first request {speedup:.1f}x faster than"
            f" today's function, {label} (goal >= {SPEED_GOAL:.0f}x:"
            f" {'met' if speedup >= SPEED_GOAL else 'MISSED'})"
        )
