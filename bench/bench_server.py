"""lens.server against the Lambda path, in the same run: POST /predict/tabular and
GET /forecast/bikes-3h with 32 concurrent keep-alive clients.

- server: `python -m lens.server` (one uvicorn process, the handler on one thread);
- Lambda: `scarab serve` on a throwaway copy of the project (the deploy included), i.e.
  the emulated API Gateway (key, usage plan) and the function in its worker processes.

Requests per second, p50/p99, and the server's ratio to the Lambda path. Both answer
from their models in memory (no response cache: [cache] is off in the TOML below).

python -m bench bench_server    (about a minute)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench.bench_serve import CLIENTS, REPO, _percentile
from tests.server.support import start_server
from tests.support.serve_process import start_serve

WARMUP_S = 2.0
MEASURE_S = 8.0
TOML = """\
app = "scarab"
stage = "dev"

[api]
throttle_rate = 5000
throttle_burst = 5000
quota_limit = 100000000
"""


def _features() -> bytes:
    from lens.predict.registry import registry

    entry = registry().get("tabular")
    assert entry is not None
    return json.dumps({"features": dict.fromkeys(entry.features, 1.0)}).encode()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """One keep-alive request; its status (Content-Length bodies only: a load generator)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return int(head[9:12])


async def _load(port: int, request: bytes, seconds: float) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return latencies, statuses


def _request(method: str, path: str, port: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _measure(label: str, port: int, request: bytes) -> tuple[float, float, float]:
    asyncio.run(_load(port, request, WARMUP_S))
    latencies, statuses = asyncio.run(_load(port, request, MEASURE_S))
    rps = len(latencies) / MEASURE_S
    p50, p99 = _percentile(latencies, 50) * 1000, _percentile(latencies, 99) * 1000
    print(
        f"{label}: {rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, statuses {statuses}",
        flush=True,
    )
    return rps, p50, p99


def main() -> None:
    features = _features()
    routes = (("POST", "/predict/tabular", features), ("GET", "/forecast/bikes-3h", b""))
    results: dict[tuple[str, str], tuple[float, float, float]] = {}
    server = start_server()
    try:
        for method, path, body in routes:
            request = _request(method, path, server.port, {}, body)
            label = f"server {method} {path}, {CLIENTS} clients"
            results[("server", path)] = _measure(label, server.port, request)
    finally:
        server.stop()
    root = Path(tempfile.mkdtemp(prefix="bench-server-"))
    (root / "scarab.toml").write_text(TOML)
    shutil.copytree(REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__"))
    serve = start_serve(root, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    try:
        headers = {"x-api-key": serve.api_key or ""}
        for method, path, body in routes:
            full = f"/{serve.stage}{path}"
            request = _request(method, full, serve.port, headers, body)
            label = f"lambda (scarab serve) {method} {full}, {CLIENTS} clients"
            results[("lambda", path)] = _measure(label, serve.port, request)
    finally:
        serve.stop()
        shutil.rmtree(root, ignore_errors=True)
    for _, path, _ in routes:
        (s_rps, s_p50, s_p99), (l_rps, l_p50, l_p99) = (
            results["server", path],
            results["lambda", path],
        )
        print(
            f"{path}: server/lambda req/s x{s_rps / l_rps:.2f}, "
            f"p50 x{s_p50 / l_p50:.2f}, p99 x{s_p99 / l_p99:.2f}"
        )


if __name__ == "__main__":
    main()
