"""Cold start of each function's artifact against today's single all-routes function.

For each function (analyze, models) and for today's single function (lens.handler, every
route), in one run and interleaved: extract its lambda-flavor zip to a fresh directory,
start a fresh interpreter with only that directory and the standard library (`-S`, and
no bytecode written: Lambda's task root is read-only), import the handler, and answer
the first request: POST /analyze against the Gemini-compatible test server at zero
delay, or POST /predict/tabular. Today's function answers both, as the baseline of each.

Phases: extract (in this process), import and first request (timed inside the child),
and their total; medians of RUNS runs, ratios against today's function answering the
same request. One more row, analyze+pyc, is the analyze zip with bytecode compiled in
(unchecked-hash .pyc for this interpreter), to show what shipping bytecode would buy.

The zips are built for this interpreter's Python (their compiled wheels must load here)
and cached like any build. Goals: analyze <= 45 MB unzipped; analyze extract + import +
first request at least 2x faster than today's function.

Run: .venv/bin/python -m bench bench_coldstart
"""

from __future__ import annotations

import compileall
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


def _with_bytecode(source: Path, work: Path) -> Path:
    """The same zip with every module compiled (unchecked-hash .pyc, this interpreter)."""
    tree = work / "pyc-tree"
    with zipfile.ZipFile(source) as zf:
        zf.extractall(tree)
    compileall.compile_dir(
        tree,
        quiet=2,
        invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    target = work / "analyze-pyc.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(tree).as_posix())
    shutil.rmtree(tree)
    return target


def _unzipped(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(i.file_size for i in zf.infolist())


def _one(zip_file: Path, handler: str, event: dict[str, Any], work: Path) -> dict[str, float]:
    target = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    with zipfile.ZipFile(zip_file) as zf:
        zf.extractall(target)
    extract_ms = (time.perf_counter() - started) * 1000
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [
            sys.executable,
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


def main() -> None:
    sys.path[:0] = [str(ROOT / "lambda"), str(ROOT / "tooling"), str(ROOT)]
    from scarab.artifacts import build_zip
    from scarab.functions import ALL_ROUTES, ANALYZE, MODELS

    from tests.support.gemini_server import GeminiServer

    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    zips = {
        fn.name: build_zip(ROOT, flavor="lambda", runtime=runtime, function=fn, progress=print)
        for fn in (ANALYZE, MODELS, ALL_ROUTES)
    }
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
        pyc_zip = _with_bytecode(zips["analyze"].path, work)
        pyc_sizes = (pyc_zip.stat().st_size, _unzipped(pyc_zip))
        # (row, zip, handler, request, baseline row)
        rows = [
            ("all /analyze", zips["all"].path, ALL_ROUTES.handler, "/analyze", None),
            ("analyze", zips["analyze"].path, ANALYZE.handler, "/analyze", "all /analyze"),
            ("analyze+pyc", pyc_zip, ANALYZE.handler, "/analyze", "all /analyze"),
            ("all /predict", zips["all"].path, ALL_ROUTES.handler, "/predict/tabular", None),
            ("models", zips["models"].path, MODELS.handler, "/predict/tabular", "all /predict"),
        ]
        samples: dict[str, list[dict[str, float]]] = {row[0]: [] for row in rows}
        for _ in range(RUNS):  # interleaved, so drift hits every row alike
            for name, path, handler, request, _base in rows:
                samples[name].append(_one(path, handler, requests[request], work))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"python {runtime}, {RUNS} runs each, medians; ratio = today's function / this one")
    print(f"{'artifact':14s} {'zip MB':>7s} {'unzip MB':>9s}")
    for name in ("all", "analyze", "models"):
        z = zips[name]
        print(f"{name:14s} {z.size / MB:7.1f} {z.unzipped_size / MB:9.1f}")
    print(f"{'analyze+pyc':14s} {pyc_sizes[0] / MB:7.1f} {pyc_sizes[1] / MB:9.1f}")
    print()
    header = f"{'function':14s}" + "".join(
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
        line = f"{name:14s}"
        for p, value in phases.items():
            ratio = medians[base][p] / value if base else 1.0
            line += f" {value:11.0f} {ratio:4.1f}x"
        print(line)
    speedup = medians["all /analyze"]["total"] / medians["analyze"]["total"]
    size = zips["analyze"].unzipped_size / MB
    print(
        f"analyze: {size:.1f} MB unzipped (goal <= {SIZE_GOAL_MB}: "
        f"{'met' if size <= SIZE_GOAL_MB else 'MISSED'}); extract+import+first request "
        f"{speedup:.1f}x faster than today's function (goal >= {SPEED_GOAL:.0f}x: "
        f"{'met' if speedup >= SPEED_GOAL else 'MISSED'})"
    )
