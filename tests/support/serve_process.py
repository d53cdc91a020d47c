"""Start `scarab serve` as a subprocess on a free port, wait until it is ready, stop it.

Used by the serve tests and the web client's browser tests:

    from tests.support.serve_process import start_serve

    proc = start_serve(project_dir, env={"GOOGLE_GEMINI_BASE_URL": gemini.url})
    try:
        urllib.request.urlopen(f"{proc.api_url}/health")   # http://127.0.0.1:PORT/<stage>
        proc.api_key                                       # the key serve printed
        proc.url                                           # the web client's origin
    finally:
        proc.stop()

or, in a test, the `serve_factory` fixture (import it into a conftest.py or test module):
`serve = serve_factory(project_dir)`; every process it started is stopped at teardown.

The process runs in its own process group; `stop()` sends SIGINT to the group (what
Ctrl-C does in a terminal), waits, then kills whatever is left and records it in
`orphans` (a clean stop leaves that empty).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from scarab.serve.record import ServeRecord

from .ports import free_port

_KEY_LINE = re.compile(r"^\s*API key:\s+(\S+)\s*$", re.MULTILINE)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped (a killed serve's record names
    one; Linux hands pids out in order, so it is not reused within a test)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    return child.pid


def serve_argv() -> list[str]:
    """The command line that runs `scarab serve` with this interpreter's install."""
    try:
        from scarab.cli import app

        names = {
            c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
        }
    except Exception:  # the CLI does not import: fall back to the module entry point
        names = set()
    script = Path(sys.executable).with_name("scarab")
    if ("serve" in names or "serve_command" in names) and script.exists():
        return [str(script), "serve"]
    # Same command function, reached without the top-level CLI.
    return [sys.executable, "-m", "scarab.serve"]


@dataclass
class ServeProcess:
    """A running `scarab serve`."""

    project_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    api_url: str = ""
    api_key: str | None = None
    orphans: list[int] = field(default_factory=list)

    @property
    def stage(self) -> str:
        return self.api_url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def web_url(self) -> str:
        return f"{self.url}/"

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """Everything serve wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def group_pids(self) -> list[int]:
        """Live processes in serve's process group (serve itself and its workers)."""
        return _group_members(self.process.pid)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Ctrl-C the process group; kill leftovers after `timeout`. Returns serve's exit code."""
        pgid = self.process.pid
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                self.process.wait()
        # Children get a moment to notice their parent left, then count as orphans.
        deadline = time.monotonic() + 3.0
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _group_members(pgid)
        if left:
            self.orphans = left
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        return self.process.returncode

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces) start at ") ".
        fields = stat[stat.rfind(")") + 2 :].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def start_serve(
    project_dir: Path,
    env: Mapping[str, str | None] | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 120.0,
) -> ServeProcess:
    """Start `scarab serve --port PORT` in `project_dir` and wait until it serves.

    `env` is applied over this process's environment (a None value removes a name).
    Ready means serve wrote `.scarab/local/serve.json` with its pid and answers HTTP.
    Raises RuntimeError with serve's output if it exits or is not ready in `timeout`.
    """
    project_dir = Path(project_dir)
    port = port or free_port()
    child_env = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            child_env.pop(name, None)
        else:
            child_env[name] = value
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    fd, log_name = tempfile.mkstemp(prefix="scarab-serve-", suffix=".log")
    log_path = Path(log_name)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            [*serve_argv(), "--port", str(port), *extra_args],
            cwd=project_dir,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = ServeProcess(project_dir=project_dir, port=port, process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            proc.stop()
            raise RuntimeError(
                f"scarab serve exited with status {process.returncode} before it was ready:\n"
                f"{proc.output()}"
            )
        record = ServeRecord.read(project_dir)
        if record is not None and record.pid == process.pid:
            proc.url = record.url.rstrip("/")
            proc.api_url = record.api_url.rstrip("/")
            break
        if time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(
                f"scarab serve was not ready within {timeout:.0f}s:\n{proc.output()}"
            )
        time.sleep(0.05)
    match = _KEY_LINE.search(proc.output())
    proc.api_key = match.group(1) if match else None
    return proc


@pytest.fixture
def serve_factory() -> Iterator[Callable[..., ServeProcess]]:
    """`serve_factory(project_dir, env=None, port=None, extra_args=())` -> ServeProcess.

    Every process started through it is stopped at teardown, and its output is
    printed when the test failed (pytest shows captured stdout of failed tests).
    """
    started: list[ServeProcess] = []

    def factory(
        project_dir: Path,
        env: Mapping[str, str | None] | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        timeout: float = 120.0,
    ) -> ServeProcess:
        proc = start_serve(project_dir, env=env, port=port, extra_args=extra_args, timeout=timeout)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()
        print(f"--- scarab serve output ({proc.project_dir}) ---\n{proc.output()}")
        with contextlib.suppress(OSError):
            proc.log_path.unlink()


def scarab_cli(
    project: Path, *args: str, timeout: float = 120, check: bool = False, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the real `scarab` CLI in `project`, as a person would (with --local it reuses a
    running serve's emulator). `check`: fail the test, with the output, unless it exits 0.
    `stdin` is what the command reads from standard input (`secrets set --stdin`)."""
    script = Path(sys.executable).with_name("scarab")
    result = subprocess.run(
        [str(script), *args], cwd=project, capture_output=True, text=True, timeout=timeout,
        check=False, input=stdin,
    )  # fmt: skip
    if check:
        assert result.returncode == 0, f"scarab {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result
