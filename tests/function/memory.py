"""Peak memory of a fresh interpreter running lens code (for tests and bench_memory).

The child reports its own VmHWM (peak resident set of its address space) from
/proc/self/status: unlike ru_maxrss, it does not inherit the peak of the process that
forked it, so a big test runner or benchmark does not inflate the number.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024

# argv: <path> <image file>: one request through lens.handler.lambda_handler, preceded
# on /predict/digits by a small prediction (the model loaded, as in a warm container).
# An image file of "-" sends nothing more: the baseline. RESULT = [status, error code].
HANDLER_CHILD = """
import base64, contextlib, io, sys
from lens.handler import lambda_handler
from tests.function.events import FakeContext, rest_event, response_json
from tests.predict.drawing import draw_digit, encode

def call(path, data):
    event = rest_event("POST", path, body={"image": base64.b64encode(data).decode()})
    with contextlib.redirect_stdout(io.StringIO()):
        response = lambda_handler(event, FakeContext())
    return [response["statusCode"], response_json(response).get("error", {}).get("code")]

path, file = sys.argv[-2:]
if path == "/predict/digits":
    RESULT = call(path, encode(draw_digit(3)))
if file != "-":
    RESULT = call(path, open(file, "rb").read())
"""

_EPILOGUE = """
import json as _json
with open("/proc/self/status") as _status:
    _hwm = next(int(line.split()[1]) * 1024 for line in _status if line.startswith("VmHWM:"))
print("\\n" + _json.dumps({"peak_bytes": _hwm, "result": RESULT}))
"""


def peak_of(
    code: str,
    *,
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> tuple[int, Any]:
    """(peak RSS in bytes, RESULT) of a child that runs `code` (with `argv` as sys.argv[1:])
    with lambda/ and the repo root on sys.path; `code` sets RESULT to JSON-able data."""
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "lambda"), str(ROOT)]),
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_NAMESPACE": "ScarabTest",
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-c", "RESULT = None\n" + code + _EPILOGUE, *(argv or [])],
        capture_output=True,
        text=True,
        env=child_env,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return int(report["peak_bytes"]), report["result"]
