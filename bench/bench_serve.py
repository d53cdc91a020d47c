"""`scarab serve` under load: GET /{stage}/health through the gateway and the function.

Starts `scarab serve` on a throwaway copy of the project (the deploy included), then:
- 32 concurrent keep-alive clients on GET /{stage}/health: requests per second, p50/p99;
- throttle accuracy: a usage plan with a known rate, hammered by 32 clients; the
  accepted rate (burst removed) against the configured one.

python -m bench serve    (about a minute)
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import boto3

from tests.support.serve_process import ServeProcess, start_serve

REPO = Path(__file__).resolve().parents[1]
CLIENTS = 32
WARMUP_S = 3.0
MEASURE_S = 8.0
THROTTLE_RATE = 50.0
THROTTLE_BURST = 20
THROTTLE_S = 10.0

TOML = """\
app = "scarab"
stage = "dev"

[api]
throttle_rate = 5000
throttle_burst = 5000
quota_limit = 100000000
"""


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive request; the status. (A load generator, not a server: Content-Length only.)"""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _load(
    port: int, path: str, headers: dict[str, str], seconds: float, clients: int
) -> tuple[list[float], dict[int, int]]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                status = await _get(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def _throttled_key(serve: ServeProcess, project: Path) -> str:
    import json

    emulator = json.loads((project / ".scarab/local/emulator.json").read_text())["url"]
    state = json.loads((project / ".scarab/local/state/dev.json").read_text())
    apigw = boto3.client(
        "apigateway",
        endpoint_url=emulator,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    plan = apigw.create_usage_plan(
        name="bench-throttle",
        apiStages=[{"apiId": state["rest_api_id"], "stage": "dev"}],
        throttle={"rateLimit": THROTTLE_RATE, "burstLimit": THROTTLE_BURST},
    )
    key = apigw.create_api_key(name="bench-throttle", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    time.sleep(1.5)  # serve re-reads the emulator twice a second
    return str(key["value"])


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    (root / "scarab.toml").write_text(TOML)
    shutil.copytree(REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__"))
    started = time.monotonic()
    serve = start_serve(root, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    try:
        print(f"serve ready in {time.monotonic() - started:.1f}s (deploy included)")
        path = f"/{serve.stage}/health"
        asyncio.run(_load(serve.port, path, {}, WARMUP_S, CLIENTS))  # containers start warm
        latencies, statuses = asyncio.run(_load(serve.port, path, {}, MEASURE_S, CLIENTS))
        rps = len(latencies) / MEASURE_S
        print(
            f"GET {path}, {CLIENTS} clients, {MEASURE_S:.0f}s: {rps:.0f} req/s, "
            f"p50 {_percentile(latencies, 50) * 1000:.1f} ms, "
            f"p99 {_percentile(latencies, 99) * 1000:.1f} ms, statuses {statuses}"
        )
        key = _throttled_key(serve, root)
        models = f"/{serve.stage}/models"
        _, statuses = asyncio.run(
            _load(serve.port, models, {"x-api-key": key}, THROTTLE_S, CLIENTS)
        )
        accepted = statuses.get(200, 0)
        measured = (accepted - THROTTLE_BURST) / THROTTLE_S
        error = abs(measured - THROTTLE_RATE) / THROTTLE_RATE
        print(
            f"throttle rate {THROTTLE_RATE:.0f}/s burst {THROTTLE_BURST}, {CLIENTS} clients, "
            f"{THROTTLE_S:.0f}s: accepted {accepted} -> {measured:.1f}/s "
            f"({error:.1%} off), statuses {statuses}"
        )
    finally:
        serve.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
