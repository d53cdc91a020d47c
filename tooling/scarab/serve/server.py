"""Run the local gateway on uvicorn: snapshot watcher, function runtime, ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from scarab import layout
from scarab.naming import Names
from scarab.serve.alarm_watcher import AlarmWatcher, alarm_prefix
from scarab.serve.app import ServeApp
from scarab.serve.endpoints import (
    ENDPOINT_ENV,
    INVOCATION_TIMEOUT_S,
    PREFIX,
    EndpointEmulator,
    emulated_endpoints,
)
from scarab.serve.gateway import Gateway, GatewayOptions
from scarab.serve.guard import ReadLimits, host_names
from scarab.serve.lambda_invoke import ENDPOINT_ENV as LAMBDA_ENDPOINT_ENV
from scarab.serve.lambda_invoke import PREFIX as LAMBDA_PREFIX
from scarab.serve.lambda_invoke import LambdaInvoker
from scarab.serve.metrics import MetricStore
from scarab.serve.protocol import guarded_protocol
from scarab.serve.runtime import DEFAULT_MAX_CONTAINERS, FunctionRuntime, InvokeError
from scarab.serve.s3_proxy import ENDPOINT_ENV as S3_ENDPOINT_ENV
from scarab.serve.s3_proxy import PREFIX as S3_PREFIX
from scarab.serve.s3_proxy import S3Proxy, uploads_max_bytes
from scarab.serve.snapshot import FunctionConfig, Snapshot
from scarab.serve.stack import LocalStack
from scarab.serve.watcher import SnapshotWatcher

log = logging.getLogger("scarab.serve")

LOG_DIR = layout.LOG_DIR
# Seeds the choice of an alias's version per request (tests check the split's statistics
# over a reproducible sequence); unset, each serve draws from fresh randomness.
SEED_ENV = "SCARAB_SERVE_SEED"


def version_rng() -> random.Random:
    seed = os.environ.get(SEED_ENV, "").strip()
    return random.Random(seed) if seed else random.Random()


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    integration_timeout: float = 29.0
    refresh_interval: float = 0.5
    web_root: Path | None = None
    max_containers: int = DEFAULT_MAX_CONTAINERS
    # SageMaker Serverless's time per invocation, for the emulated endpoints.
    sagemaker_timeout: float = INVOCATION_TIMEOUT_S


def function_log_path(project_dir: Path) -> Path:
    """Where the functions' output goes (Lambda's CloudWatch log stream, locally)."""
    return project_dir / LOG_DIR / "function.log"


def own_url(options: ServerOptions) -> str:
    """Where this serve answers on loopback (what its workers call)."""
    wildcard = options.host in ("0.0.0.0", "", "::")  # noqa: S104 - a comparison
    host = "127.0.0.1" if wildcard else options.host
    return f"http://{f'[{host}]' if ':' in host else host}:{options.port}"


def service_endpoints(options: ServerOptions) -> dict[str, str]:
    """The services whose calls the workers send to serve itself (boto3's per-service
    endpoint variables; everything else goes to the emulator): sagemaker-runtime, S3
    (presigned POST URLs then point here, where the policy is enforced) and Lambda (a
    function's invocations, asynchronous ones included, run in serve's workers). On
    serve's one port, the one the browser reaches too: a page posts its upload to the
    URL the function signed."""
    own = own_url(options)
    return {
        ENDPOINT_ENV: own + PREFIX,
        S3_ENDPOINT_ENV: own + S3_PREFIX,
        LAMBDA_ENDPOINT_ENV: own + LAMBDA_PREFIX,
    }


def _uploads_max(snapshot: Snapshot | None) -> int | None:
    """The largest upload the stage's functions sign forms for (None: not known yet)."""
    if snapshot is None:
        return None
    return uploads_max_bytes(fn.environment for fn in snapshot.functions.values())


def run(
    stack: LocalStack,
    options: ServerOptions,
    on_ready: Callable[[Snapshot], None],
) -> None:
    """Serve until SIGINT/SIGTERM; `on_ready` runs once the port accepts connections."""
    watcher = SnapshotWatcher(
        stack.endpoint_url,
        stack.rest_api_id,
        stack.stage,
        stack.region,
        interval=options.refresh_interval,
    )
    first = watcher.refresh()
    log_path = function_log_path(stack.project_dir)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        runtime = FunctionRuntime(
            stack.project_dir,
            stack.endpoint_url,
            stack.region,
            log_file,
            max_containers=options.max_containers,
            local_env={**stack.worker_env, **service_endpoints(options)},
        )
        metrics = MetricStore()
        gateway = Gateway(
            runtime,
            GatewayOptions(integration_timeout=options.integration_timeout),
            metrics=metrics,
            rng=version_rng().random,
        )
        invoker = LambdaInvoker(runtime, stack.endpoint_url, stack.region, version_rng().random)
        alarms = AlarmWatcher(
            stack.endpoint_url,
            stack.region,
            alarm_prefix(stack.app or first.api_name.removesuffix(f"-{stack.stage}"), stack.stage),
            metrics,
            lambda: watcher.current,
        )
        warming: set[asyncio.Task[None]] = set()
        seen: set[tuple[Any, ...]] = set()

        async def warm(fn: FunctionConfig) -> None:
            try:
                await runtime.warm(fn)
            except InvokeError as exc:
                log.error("function %s failed to start: %s", fn.name, exc.message)

        async def startup() -> None:
            loop = asyncio.get_running_loop()
            for fn in first.configs():
                seen.add(fn.version_key)
                await warm(fn)

            def schedule(fn: FunctionConfig) -> None:
                task = loop.create_task(warm(fn))
                warming.add(task)
                task.add_done_callback(warming.discard)

            def on_snapshot(snapshot: Snapshot) -> None:
                # Runs on the watcher thread: a redeploy's new container starts warm.
                configs = snapshot.configs()
                for fn in configs:
                    if fn.version_key not in seen:
                        seen.add(fn.version_key)
                        loop.call_soon_threadsafe(schedule, fn)
                identities = {fn.identity for fn in configs}
                loop.call_soon_threadsafe(lambda: runtime.retain(identities | invoker.in_use()))

            watcher.listeners.append(on_snapshot)
            watcher.start()
            alarms.start()

        async def shutdown() -> None:
            await asyncio.to_thread(watcher.stop)
            await asyncio.to_thread(alarms.stop)
            for task in list(warming):
                task.cancel()
            await invoker.close()
            await runtime.close()

        web_root = options.web_root or stack.project_dir / "web-client" / "public"
        app = ServeApp(
            gateway,
            lambda: watcher.current,
            stack.stage,
            web_root,
            lifespan=startup,
            shutdown=shutdown,
            hosts=host_names(options.host),
            endpoints=EndpointEmulator(
                runtime,
                lambda: watcher.current,
                emulated_endpoints(
                    Names(stack.app, stack.stage).endpoint, stack.endpoint_url, stack.region
                ),
                timeout_s=options.sagemaker_timeout,
            ),
            s3=S3Proxy(
                stack.endpoint_url,
                stack.region,
                form_max=lambda: _uploads_max(watcher.current),
            ),
            invoker=invoker,
        )
        limits = ReadLimits.from_environment()
        config = uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            loop="asyncio",
            http=guarded_protocol(limits),
            lifespan="on",
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
            timeout_keep_alive=30,
            backlog=512,
        )
        server = uvicorn.Server(config)

        async def main() -> None:
            serving = asyncio.create_task(server.serve())
            while not server.started and not serving.done():
                await asyncio.sleep(0.02)
            if server.started and watcher.current is not None:
                on_ready(watcher.current)
            with contextlib.suppress(asyncio.CancelledError):
                await serving

        asyncio.run(main())
