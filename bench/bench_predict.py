"""Offline models through lens.handler.lambda_handler: warm p50/p99 per model, cold load.

Warm: REST v1 events in-process after one warm-up call. Cold: a fresh interpreter that
imports the handler, then times the first prediction (import of onnxruntime + session
load + inference) and the registry's own load time for each model.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WARM_CALLS = 300


def _digit_png() -> str:
    from PIL import Image, ImageDraw

    image = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(image).line([(50, 30), (150, 30), (90, 170)], fill=0, width=14)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _bodies() -> dict[str, dict[str, Any]]:
    from lens.predict.registry import registry

    tabular = registry().get("tabular")
    assert tabular is not None
    return {
        "digits": {"image": _digit_png()},
        "tabular": {"features": {name: 1.0 for name in tabular.features}},
    }


def _quiet() -> None:
    # Keep the numbers readable: EMF lines (printed to stdout) go to a sink during runs.
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _event(name: str) -> dict[str, Any]:
    from tests.function.events import rest_event

    return rest_event("POST", f"/predict/{name}", body=_bodies()[name])


def warm() -> dict[str, tuple[float, float]]:
    from lens.handler import lambda_handler

    from tests.function.events import FakeContext

    results = {}
    sink = io.StringIO()
    for name in _bodies():
        event = _event(name)
        with contextlib.redirect_stdout(sink):
            first = lambda_handler(event, FakeContext())
        assert first["statusCode"] == 200, first["body"]
        samples = []
        for _ in range(WARM_CALLS):
            with contextlib.redirect_stdout(sink):
                started = time.perf_counter()
                response = lambda_handler(event, FakeContext())
                samples.append((time.perf_counter() - started) * 1000)
            sink.seek(0)
            sink.truncate()
            assert response["statusCode"] == 200
        samples.sort()
        results[name] = (statistics.median(samples), samples[int(len(samples) * 0.99) - 1])
    return results


_COLD = """
import json, sys, time, io, contextlib
sys.path[:0] = ["lambda", "tooling", "."]
from tests.function.events import FakeContext  # a test helper: not timed
t0 = time.perf_counter()
from lens.handler import lambda_handler
from lens.predict import loader
from lens.predict.registry import registry
t1 = time.perf_counter()
name = sys.argv[1]
from bench.bench_predict import _event
event = _event(name)
with contextlib.redirect_stdout(io.StringIO()):
    response = lambda_handler(event, FakeContext())
t2 = time.perf_counter()
assert response["statusCode"] == 200, response
load_ms = loader.store().get(registry().get(name)).load_ms
print(json.dumps({"import_ms": (t1 - t0) * 1000, "first_ms": (t2 - t1) * 1000, "load_ms": load_ms}))
"""


def cold(name: str, runs: int = 3) -> dict[str, float]:
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "SCARAB_MODEL_CACHE_DIR": cache}
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", _COLD, name],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def main() -> None:
    _quiet()
    for path in ("lambda", "tooling", "."):
        if str(ROOT / path) not in sys.path:
            sys.path.insert(0, str(ROOT / path))
    for name, (p50, p99) in warm().items():
        print(f"warm  {name:8s} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({WARM_CALLS} calls)")
    for name in ("digits", "tabular"):
        c = cold(name)
        print(
            f"cold  {name:8s} handler import {c['import_ms']:6.0f} ms   first predict "
            f"{c['first_ms']:6.0f} ms (model load {c['load_ms']:5.1f} ms)   median of 3"
        )


if __name__ == "__main__":
    main()
