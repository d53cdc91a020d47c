"""Run deployed Lambda code locally: warm worker processes ("containers") per version.

Like Lambda, a container runs one invocation at a time: concurrent requests go to
other containers of the same version, started on demand up to `max_containers`
(requests beyond that wait for a free one), and kept warm for the next requests.
A container whose invocation passes the function's timeout is killed, as Lambda
does. The code is found by content: Lambda reports CodeSha256 (base64 of the zip's sha256)
and the deploy tool keeps every zip it built at `.scarab/build/zip/<sha256hex>.zip`.
It is extracted once into `.scarab/local/functions/<hex>/` and run by
`scarab.serve.worker` with exactly the deployed environment variables, plus the
emulator's endpoint and fake credentials, plus (local only) GOOGLE_GEMINI_BASE_URL
passed through from serve's own environment. A redeploy (new code or environment)
starts new containers; the old ones finish what they have in flight, then exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from scarab import layout
from scarab.emulator import FAKE_CREDENTIALS
from scarab.serve.snapshot import FunctionConfig

log = logging.getLogger("scarab.serve")

ZIP_DIR = layout.ZIP_DIR
FUNCTIONS_DIR = layout.FUNCTIONS_DIR
PASSTHROUGH_ENV = ("GOOGLE_GEMINI_BASE_URL",)
_PIPE_LIMIT = 64 * 1024 * 1024  # one protocol line holds a whole event or result
_RETRY_INIT_AFTER_S = 2.0
DEFAULT_MAX_CONTAINERS = 8


class InvokeError(Exception):
    """The invocation failed the way a Lambda invocation fails (function error, timeout...)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class InvokeTimeout(Exception):
    """The caller's deadline passed before the function answered."""


def code_dir(project_dir: Path, fn: FunctionConfig) -> Path:
    """Extract the deployed zip (once) and return its directory."""
    hex_digest = fn.code_hex
    if not hex_digest:
        raise InvokeError("Runtime.CodeNotFound", f"function {fn.name} has no CodeSha256")
    target = project_dir / FUNCTIONS_DIR / hex_digest
    if target.is_dir():
        return target
    archive = project_dir / ZIP_DIR / f"{hex_digest}.zip"
    if not archive.is_file():
        raise InvokeError(
            "Runtime.CodeNotFound",
            f"the code deployed to {fn.name} ({hex_digest[:12]}) is not in {ZIP_DIR}; "
            "redeploy with `scarab deploy --local`",
        )
    data = archive.read_bytes()
    if hashlib.sha256(data).hexdigest() != hex_digest:
        raise InvokeError("Runtime.CodeNotFound", f"{archive.name} does not match its name")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{hex_digest[:12]}-", dir=target.parent))
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(staging)
    try:
        staging.rename(target)
    except OSError:  # another extraction won the race; use it
        shutil.rmtree(staging, ignore_errors=True)
    return target


def worker_environment(
    fn: FunctionConfig, code: Path, emulator_url: str, region: str, passthrough: dict[str, str]
) -> dict[str, str]:
    """Lambda's runtime variables, the deployed ones, and the local-only additions."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": str(code),
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": str(code),
        "_HANDLER": fn.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime or 'python3.11'}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_VERSION": fn.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": emulator_url,
        "SCARAB_LOCAL_FUNCTION_ARN": fn.arn,
    }
    env.update(fn.environment)
    env.update(passthrough)
    return env


@dataclass(eq=False)
class Container:
    """One worker process; runs one invocation at a time."""

    fn: FunctionConfig
    process: asyncio.subprocess.Process
    alive: bool = True

    async def run(self, line: bytes) -> dict[str, Any]:
        """Send one invocation and read its answer (InvokeError if the process dies)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(line)
            await self.process.stdin.drain()
            answer = await self.process.stdout.readline()
        except (ConnectionError, RuntimeError, ValueError, asyncio.LimitOverrunError) as exc:
            self.kill()
            raise InvokeError("Runtime.ExitError", "the function's process exited") from exc
        if not answer:
            self.alive = False
            raise InvokeError("Runtime.ExitError", "the function's process exited")
        try:
            return dict(json.loads(answer))
        except ValueError as exc:
            self.kill()
            raise InvokeError("Runtime.ExitError", "the function's process misbehaved") from exc

    def kill(self) -> None:
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def close(self, grace: float) -> None:
        """Stop after the current invocation (closing stdin); kill after `grace` seconds."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            self.kill()
            await self.process.wait()
        self.alive = False


@dataclass(eq=False)
class Pool:
    """The containers of one deployed version."""

    fn: FunctionConfig
    idle: list[Container] = field(default_factory=list)
    busy: set[Container] = field(default_factory=set)
    starting: int = 0
    retired: bool = False
    freed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.busy) + self.starting


class FunctionRuntime:
    """Invokes deployed functions; owns their containers. Lives on one event loop."""

    def __init__(
        self,
        project_dir: Path,
        emulator_url: str,
        region: str,
        log_file: IO[bytes] | None = None,
        max_containers: int = DEFAULT_MAX_CONTAINERS,
        local_env: dict[str, str] | None = None,
    ) -> None:
        """`local_env`: local-only variables every worker gets (scarab.serve.stack's
        worker_env: the prediction log's SQLite file)."""
        self.project_dir = project_dir
        self.emulator_url = emulator_url
        self.region = region
        self.log_file = log_file
        self.max_containers = max(1, max_containers)
        self.passthrough = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        self.passthrough.update(local_env or {})
        self._pools: dict[tuple[Any, ...], Pool] = {}
        self._failed: dict[tuple[Any, ...], tuple[float, InvokeError]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self._closing = False

    def _pool(self, fn: FunctionConfig) -> Pool:
        pool = self._pools.get(fn.version_key)
        if pool is None:
            pool = self._pools[fn.version_key] = Pool(fn)
            # A redeploy of a function version ($LATEST) replaces its older containers;
            # other published versions keep theirs (an alias may route to several).
            for key, old in list(self._pools.items()):
                if old is not pool and old.fn.identity == fn.identity:
                    del self._pools[key]
                    self._retire(old)
        return pool

    def retain(self, identities: set[tuple[str, str]]) -> None:
        """Retire the containers of every function version not in `identities` (see
        FunctionConfig.identity: the ones nothing routes to any more, such as a function a
        deploy deleted or a version an alias stopped weighting): Lambda reclaims those."""
        for key, pool in list(self._pools.items()):
            if pool.fn.identity not in identities:
                del self._pools[key]
                self._retire(pool)

    def _retire(self, pool: Pool) -> None:
        pool.retired = True
        for container in pool.idle:
            self._spawn_task(container.close(grace=5.0))
        pool.idle.clear()

    def _spawn_task(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def warm(self, fn: FunctionConfig) -> None:
        """Start one container for `fn` now (Lambda's INIT), raising its init error if any."""
        pool = self._pool(fn)
        if pool.size == 0:
            container = await self._start(pool)
            await self._release(pool, container)

    async def _acquire(self, pool: Pool) -> Container:
        while True:
            while pool.idle:
                container = pool.idle.pop()
                if container.alive:
                    pool.busy.add(container)
                    return container
            if pool.size < self.max_containers:
                container = await self._start(pool)
                pool.busy.add(container)
                return container
            async with pool.freed:
                await pool.freed.wait()

    async def _start(self, pool: Pool) -> Container:
        key = pool.fn.version_key
        failed = self._failed.get(key)
        if failed is not None and time.monotonic() - failed[0] < _RETRY_INIT_AFTER_S:
            raise failed[1]
        pool.starting += 1
        try:
            container = await self._spawn(pool.fn)
        except InvokeError as exc:
            self._failed[key] = (time.monotonic(), exc)
            log.error("function %s cannot start: %s", pool.fn.name, exc.message)
            raise
        finally:
            pool.starting -= 1
        self._failed.pop(key, None)
        return container

    async def _release(self, pool: Pool, container: Container) -> None:
        pool.busy.discard(container)
        if container.alive and not pool.retired and not self._closing:
            pool.idle.append(container)
        elif container.alive:
            self._spawn_task(container.close(grace=5.0))
        async with pool.freed:
            pool.freed.notify_all()

    async def _spawn(self, fn: FunctionConfig) -> Container:
        code = await asyncio.to_thread(code_dir, self.project_dir, fn)
        env = worker_environment(fn, code, self.emulator_url, self.region, self.passthrough)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scarab.serve.worker",
            fn.handler,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.log_file if self.log_file is not None else asyncio.subprocess.DEVNULL,
            cwd=str(code),
            env=env,
            limit=_PIPE_LIMIT,
        )
        assert process.stdout is not None
        line = await process.stdout.readline()
        try:
            hello = json.loads(line) if line else {}
        except ValueError:
            hello = {}
        if not hello.get("ready"):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise InvokeError(
                str(hello.get("errorType") or "Runtime.ExitError"),
                str(hello.get("errorMessage") or "the function's process exited during init"),
            )
        return Container(fn=fn, process=process)

    async def invoke(
        self,
        fn: FunctionConfig,
        event_json: bytes,
        request_id: str,
        wait_s: float,
        invoked_arn: str | None = None,
    ) -> Any:
        """Invoke `fn` with a serialized event; the result, or InvokeError / InvokeTimeout.

        `invoked_arn`: the ARN the caller named (an alias's, say), the handler's
        context.invoked_function_arn; else the function's own.

        The function's own timeout counts from the start of the invocation (its
        context's remaining time); `wait_s` is how long the caller waits (API
        Gateway's integration timeout). When the caller gives up first, the
        invocation still runs to its end, as in Lambda.
        """
        deadline = time.monotonic() + wait_s
        pool = self._pool(fn)
        # Shielded: a caller giving up must not cancel a container's start half-way.
        acquiring = self._spawn_task(self._acquire(pool))
        try:
            container = await asyncio.wait_for(asyncio.shield(acquiring), wait_s)
        except TimeoutError:
            acquiring.add_done_callback(lambda task: self._give_back(pool, task))
            raise InvokeTimeout() from None
        run = self._spawn_task(
            self._invoke_on(pool, container, event_json, request_id, invoked_arn)
        )
        try:
            message = await asyncio.wait_for(
                asyncio.shield(run), max(0.0, deadline - time.monotonic())
            )
        except TimeoutError:
            raise InvokeTimeout() from None
        if message.get("ok"):
            return message.get("result")
        raise InvokeError(
            str(message.get("errorType") or "Error"), str(message.get("errorMessage") or "")
        )

    def _give_back(self, pool: Pool, task: asyncio.Task[Any]) -> None:
        """Release a container whose caller stopped waiting for it."""
        if not task.cancelled() and task.exception() is None:
            self._spawn_task(self._release(pool, task.result()))

    async def _invoke_on(
        self,
        pool: Pool,
        container: Container,
        event_json: bytes,
        request_id: str,
        invoked_arn: str | None = None,
    ) -> dict[str, Any]:
        fn = pool.fn
        arn = b',"arn":%s' % json.dumps(invoked_arn).encode() if invoked_arn else b""
        line = b'{"id":%d,"rid":%s,"ms":%d%s,"event":%s}\n' % (
            next(self._ids),
            json.dumps(request_id).encode(),
            fn.timeout_s * 1000,
            arn,
            event_json,
        )
        try:
            return await asyncio.wait_for(container.run(line), fn.timeout_s)
        except TimeoutError:
            # Lambda stops a timed-out invocation by recycling its environment.
            container.kill()
            message = f"Task timed out after {fn.timeout_s:.2f} seconds"
            self._log(f"{request_id} {message}")
            return {"ok": False, "errorType": "Sandbox.Timedout", "errorMessage": message}
        except InvokeError as exc:
            return {"ok": False, "errorType": exc.error_type, "errorMessage": exc.message}
        finally:
            await self._release(pool, container)

    def _log(self, text: str) -> None:
        if self.log_file is not None:
            with contextlib.suppress(OSError, ValueError):
                self.log_file.write(f"{text}\n".encode())
                self.log_file.flush()

    def containers(self) -> int:
        """Live containers, all versions (for tests and the banner)."""
        return sum(p.size for p in self._pools.values())

    async def close(self) -> None:
        self._closing = True
        containers = [c for p in self._pools.values() for c in (*p.idle, *p.busy)]
        self._pools.clear()
        await asyncio.gather(*(c.close(grace=2.0) for c in containers), return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
