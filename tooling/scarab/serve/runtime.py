"""Run deployed Lambda code locally: one warm worker process per deployed version.

The code is found by content: Lambda reports CodeSha256 (base64 of the zip's sha256)
and the deploy tool keeps every zip it built at `.scarab/build/zip/<sha256hex>.zip`.
It is extracted once into `.scarab/local/functions/<hex>/` and run by
`scarab.serve.worker` with exactly the deployed environment variables, plus the
emulator's endpoint and fake credentials, plus (local only) GOOGLE_GEMINI_BASE_URL
passed through from serve's own environment. A redeploy (new code or environment)
starts a new worker; the old one finishes what it has in flight, then exits.
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

from scarab.serve.snapshot import FunctionConfig

log = logging.getLogger("scarab.serve")

ZIP_DIR = Path(".scarab") / "build" / "zip"
FUNCTIONS_DIR = Path(".scarab") / "local" / "functions"
PASSTHROUGH_ENV = ("GOOGLE_GEMINI_BASE_URL",)
_PIPE_LIMIT = 64 * 1024 * 1024  # one protocol line holds a whole event or result
_RETRY_INIT_AFTER_S = 2.0


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
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": emulator_url,
        "SCARAB_LOCAL_FUNCTION_ARN": fn.arn,
    }
    env.update(fn.environment)
    env.update(passthrough)
    return env


@dataclass(eq=False)
class Worker:
    """One warm container: a worker process and its pending invocations."""

    fn: FunctionConfig
    process: asyncio.subprocess.Process
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    alive: bool = True

    async def read_loop(self) -> None:
        assert self.process.stdout is not None
        while True:
            try:
                line = await self.process.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                log.error("function %s sent an oversized message; restarting it", self.fn.name)
                self.process.kill()
                break
            if not line:
                break
            try:
                message = json.loads(line)
            except ValueError:
                continue
            future = self.pending.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)
        self.alive = False
        for future in self.pending.values():
            if not future.done():
                future.set_exception(
                    InvokeError("Runtime.ExitError", "the function's process exited")
                )
        self.pending.clear()

    async def close(self, grace: float) -> None:
        """Stop taking work; let in-flight invocations finish for `grace` seconds."""
        self.alive = False
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self.reader is not None:
            await self.reader


class FunctionRuntime:
    """Invokes deployed functions; owns their worker processes. Lives on one event loop."""

    def __init__(
        self,
        project_dir: Path,
        emulator_url: str,
        region: str,
        log_file: IO[bytes] | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.emulator_url = emulator_url
        self.region = region
        self.log_file = log_file
        self.passthrough = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        self._workers: dict[tuple[Any, ...], Worker] = {}
        self._failed: dict[tuple[Any, ...], tuple[float, InvokeError]] = {}
        self._retiring: dict[Worker, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)

    async def warm(self, fn: FunctionConfig) -> None:
        """Start the worker for `fn` now (Lambda's INIT), raising its init error if any."""
        await self._worker(fn)

    async def _worker(self, fn: FunctionConfig) -> Worker:
        key = fn.version_key
        worker = self._workers.get(key)
        if worker is not None and worker.alive:
            return worker
        async with self._lock:
            worker = self._workers.get(key)
            if worker is not None and worker.alive:
                return worker
            failed = self._failed.get(key)
            if failed is not None and time.monotonic() - failed[0] < _RETRY_INIT_AFTER_S:
                raise failed[1]
            try:
                worker = await self._spawn(fn)
            except InvokeError as exc:
                self._failed[key] = (time.monotonic(), exc)
                log.error("function %s cannot start: %s", fn.name, exc.message)
                raise
            self._failed.pop(key, None)
            # A new version replaces older workers of the same function.
            for old_key, old in list(self._workers.items()):
                if old.fn.arn == fn.arn or not old.alive:
                    del self._workers[old_key]
                    self._retire(old)
            self._workers[key] = worker
            return worker

    def _retire(self, worker: Worker) -> None:
        task = asyncio.get_running_loop().create_task(worker.close(grace=60.0))
        self._retiring[worker] = task
        task.add_done_callback(lambda _: self._retiring.pop(worker, None))

    async def _spawn(self, fn: FunctionConfig) -> Worker:
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
        worker = Worker(fn=fn, process=process)
        worker.reader = asyncio.get_running_loop().create_task(worker.read_loop())
        return worker

    async def invoke(
        self, fn: FunctionConfig, event_json: bytes, request_id: str, wait_s: float
    ) -> Any:
        """Invoke `fn` with a serialized event; the result, or InvokeError / InvokeTimeout.

        The function's own timeout counts from now (its context's remaining time);
        `wait_s` is how long the caller waits (API Gateway's integration timeout).
        """
        worker = await self._worker(fn)
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        worker.pending[ident] = future
        remaining_ms = fn.timeout_s * 1000
        line = b'{"id":%d,"rid":%s,"ms":%d,"event":%s}\n' % (
            ident,
            json.dumps(request_id).encode(),
            remaining_ms,
            event_json,
        )
        assert worker.process.stdin is not None
        try:
            worker.process.stdin.write(line)
            await worker.process.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            worker.pending.pop(ident, None)
            raise InvokeError("Runtime.ExitError", "the function's process exited") from exc
        function_timeout = fn.timeout_s
        try:
            message = await asyncio.wait_for(future, min(wait_s, function_timeout))
        except TimeoutError:
            worker.pending.pop(ident, None)
            if function_timeout <= wait_s:
                self._log(f"{request_id} Task timed out after {function_timeout:.2f} seconds")
                raise InvokeError(
                    "Sandbox.Timedout", f"Task timed out after {function_timeout:.2f} seconds"
                ) from None
            raise InvokeTimeout() from None
        if message.get("ok"):
            return message.get("result")
        raise InvokeError(
            str(message.get("errorType") or "Error"), str(message.get("errorMessage") or "")
        )

    def _log(self, text: str) -> None:
        if self.log_file is not None:
            with contextlib.suppress(OSError, ValueError):
                self.log_file.write(f"{text}\n".encode())
                self.log_file.flush()

    async def close(self) -> None:
        workers = [*self._workers.values(), *self._retiring]
        self._workers.clear()
        await asyncio.gather(*(w.close(grace=2.0) for w in workers), return_exceptions=True)
        for worker in workers:  # anything still running after the grace period
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
