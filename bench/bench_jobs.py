"""The job machinery's overhead: POST /jobs → succeeded against a direct POST /analyze.

Starts the Gemini test server (answering at once) and `scarab serve` on a throwaway copy
of the project (the deploy to the emulator included), then, in one run and on the same
tiny photo:
- the baseline: POST /{stage}/analyze, answered synchronously;
- jobs: POST /{stage}/jobs, then GET /{stage}/jobs/<id> every POLL_S until succeeded
  (the self-invocation through serve's /_lambda, the conditional writes, the polls).
Reports the medians, their ratio and difference, and the job's own timings_ms.

python -m bench bench_jobs    (about a minute)
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import TEST_GEMINI_KEY
from tests.support.gemini_server import GeminiServer
from tests.support.serve_process import ServeProcess, start_serve

REPO = Path(__file__).resolve().parents[1]
WARMUP = 5
ROUNDS = 30
POLL_S = 0.005  # tight, so the polling interval does not dominate what is measured
JOB_TIMEOUT_S = 60.0

TOML = """\
app = "scarab"
stage = "dev"

[api]
throttle_rate = 5000
throttle_burst = 5000
quota_limit = 100000000
"""


def _photo_b64(seed: int) -> str:
    """A small JPEG unique to `seed`, base64 (so the answer cache never short-cuts one)."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (seed % 256, seed // 256 % 256, 60)).save(buf, "JPEG")
    return base64.b64encode(buf.getvalue()).decode()


def _call(url: str, method: str = "GET", body: bytes | None = None, key: str = "") -> Any:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("x-api-key", key)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


def _direct(serve: ServeProcess, body: bytes) -> float:
    started = time.perf_counter()
    status, _ = _call(f"{serve.api_url}/analyze", "POST", body, serve.api_key or "")
    assert status == 200, status
    return time.perf_counter() - started


def _job(serve: ServeProcess, body: bytes) -> tuple[float, dict[str, Any]]:
    key = serve.api_key or ""
    started = time.perf_counter()
    status, created = _call(f"{serve.api_url}/jobs", "POST", body, key)
    assert status == 202, (status, created)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        _, job = _call(f"{serve.api_url}/jobs/{created['job_id']}", key=key)
        if job["status"] == "succeeded":
            return time.perf_counter() - started, job
        assert job["status"] in ("queued", "running"), job
        time.sleep(POLL_S)
    raise AssertionError(f"job {created['job_id']} did not finish in {JOB_TIMEOUT_S}s")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    (root / "scarab.toml").write_text(TOML)
    shutil.copytree(REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__"))
    gemini = GeminiServer()
    gemini.start()
    try:
        serve = start_serve(
            root,
            env={
                "GOOGLE_GEMINI_BASE_URL": gemini.url,
                "GOOGLE_API_KEY": TEST_GEMINI_KEY,
                "GEMINI_API_KEY": None,
                "AWS_ENDPOINT_URL": None,
            },
        )
        try:
            bodies = [
                json.dumps({"image": _photo_b64(i), "speed": "fast"}).encode()
                for i in range(2 * (WARMUP + ROUNDS))
            ]
            for _ in range(WARMUP):
                _direct(serve, bodies.pop())
                _job(serve, bodies.pop())
            direct, jobs, timings = [], [], []
            for _ in range(ROUNDS):  # interleaved, so drift hits both alike
                direct.append(_direct(serve, bodies.pop()))
                took, job = _job(serve, bodies.pop())
                jobs.append(took)
                timings.append(job.get("timings_ms", {}))
            d, j = statistics.median(direct), statistics.median(jobs)
            print(f"{ROUNDS} rounds, Gemini answering at once, poll every {POLL_S * 1000:.0f} ms")
            print(f"direct POST /analyze: median {d * 1000:.1f} ms")
            print(
                f"POST /jobs -> succeeded: median {j * 1000:.1f} ms "
                f"({j / d:.1f}x direct, +{(j - d) * 1000:.0f} ms)"
            )
            totals = [t["total"] for t in timings if "total" in t]
            queued = [t["queued"] for t in timings if "queued" in t]
            if totals:
                print(
                    f"job timings_ms: total median {statistics.median(totals):.0f}, "
                    f"queued median {statistics.median(queued or [0]):.0f}"
                )
        finally:
            serve.stop()
            shutil.rmtree(root, ignore_errors=True)
    finally:
        gemini.stop()


if __name__ == "__main__":
    main()
