"""Cold start of each function's artifact against today's single all-routes function.

For each function (analyze, models) and for today's single function (lens.handler, every
route), in one run and interleaved: extract its lambda-flavor zip to a fresh directory,
start a fresh interpreter with only that directory and the standard library (`-S`, and
no bytecode written: Lambda's task root is read-only), import the handler, and answer
the first request: POST /analyze against the Gemini-compatible test server at zero
delay, or POST /predict/tabular. Today's function answers both, as the baseline of each.

Phases: extract (in this process), import and first request (timed inside the child),
and their total; medians of RUNS runs, ratios against today's function answering the
same request. The zips are built for this interpreter's Python (their compiled wheels
must load here), so they carry bytecode, as every zip built by the runtime's own Python
version does (scarab.artifacts.zip.bytecode_tag); the `source` rows are the same zips
built without it: what a build for another Python version ships (the default python3.12
runtime built by a 3.11 scarab). Each is compared with the all-routes zip built the
same way; the goal line also gives analyze against the source-only all-routes zip.

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
        (fn.name, bytecode): build_zip(
            ROOT, flavor="lambda", runtime=runtime, function=fn, bytecode=bytecode, progress=print
        )
        for fn in (ANALYZE, MODELS, ALL_ROUTES)
        for bytecode in (True, False)
        if bytecode or fn is not MODELS
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
    # (row, zip key, handler, request, baseline row)
    rows = [
        ("all /analyze", ("all", True), ALL_ROUTES.handler, "/analyze", None),
        ("analyze", ("analyze", True), ANALYZE.handler, "/analyze", "all /analyze"),
        ("all /analyze, source", ("all", False), ALL_ROUTES.handler, "/analyze", None),
        (
            "analyze, source",
            ("analyze", False),
            ANALYZE.handler,
            "/analyze",
            "all /analyze, source",
        ),
        ("all /predict", ("all", True), ALL_ROUTES.handler, "/predict/tabular", None),
        ("models", ("models", True), MODELS.handler, "/predict/tabular", "all /predict"),
    ]
    work = Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
    try:
        samples: dict[str, list[dict[str, float]]] = {row[0]: [] for row in rows}
        for _ in range(RUNS):  # interleaved, so drift hits every row alike
            for name, key, handler, request, _base in rows:
                samples[name].append(_one(zips[key].path, handler, requests[request], work))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"python {runtime}, {RUNS} runs each, medians; x = today's function / this one")
    print(f"{'artifact':20s} {'bytecode':>11s} {'files':>6s} {'zip MB':>7s} {'unzip MB':>9s}")
    for (name, _bytecode), z in zips.items():
        print(
            f"{name:20s} {z.bytecode or 'none':>11s} {_files(z.path):6d}"
            f" {z.size / MB:7.1f} {z.unzipped_size / MB:9.1f}"
        )
    print()
    header = f"{'function':20s}" + "".join(
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
        line = f"{name:20s}"
        for p, value in phases.items():
            ratio = medians[base][p] / value if base else 1.0
            line += f" {value:11.0f} {ratio:4.1f}x"
        print(line)
    size = zips["analyze", True].unzipped_size / MB
    print(
        f"analyze: {size:.1f} MB unzipped (goal <= {SIZE_GOAL_MB}: "
        f"{'met' if size <= SIZE_GOAL_MB else 'MISSED'})"
    )
    for label, row, base in (
        ("both with bytecode", "analyze", "all /analyze"),
        ("both source only", "analyze, source", "all /analyze, source"),
        ("analyze with bytecode, today's function source only", "analyze", "all /analyze, source"),
    ):
        speedup = medians[base]["total"] / medians[row]["total"]
        print(
            f"analyze extract+import+first request {speedup:.1f}x faster than today's"
            f" function, {label} (goal >= {SPEED_GOAL:.0f}x:"
            f" {'met' if speedup >= SPEED_GOAL else 'MISSED'})"
        )
