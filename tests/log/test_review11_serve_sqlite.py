"""`scarab serve`'s SQLite log under stress (a real serve process): a zero-length
predictions.db left from before, another process holding the file's write lock, and
`scarab predictions --local` (the real CLI) reading while serve writes. Serve keeps
answering throughout; no row that could be written is lost; the reader gets its rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.log.test_serve_log import DB, rows
from tests.predict.drawing import b64 as digit_b64
from tests.predict.drawing import draw_digit
from tests.serve.conftest import serve_env
from tests.serve.support import http, make_project
from tests.support.gemini_server import GeminiServer
from tests.support.serve_process import ServeProcess, scarab_cli, serve_factory

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
__all__ = ["serve_factory"]


def _project_with_log(tmp_path: Path, content: bytes) -> tuple[Path, Path]:
    """A project whose serve log file already holds `content`; (project, the file)."""
    project = make_project(tmp_path / "proj", web=False)
    path = project / DB
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return project, path


def _predict(serve: ServeProcess, digit: int) -> int:
    headers = {"x-api-key": serve.api_key or "", "Content-Type": "application/json"}
    body = json.dumps({"image": digit_b64(draw_digit(digit))}).encode()
    resp = http(f"{serve.api_url}/predict/digits", "POST", body, headers)
    assert resp.status == 200, serve.output()
    return resp.status


def test_serve_logs_through_an_empty_file_a_held_lock_and_a_reader(
    tmp_path: Path,
    gemini_session_server: GeminiServer,
    serve_factory: Callable[..., ServeProcess],
) -> None:
    project, path = _project_with_log(tmp_path, b"")  # zero-length: an empty database
    serve = serve_factory(project, env=serve_env(gemini_session_server))
    _predict(serve, 1)
    _predict(serve, 2)
    assert len(rows(path)) == 2, serve.output()

    # Another process holds the write lock: serve still answers each request (its write
    # waits the busy timeout, fails and is counted); the reader is not blocked (WAL).
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        _predict(serve, 3)
        read = scarab_cli(project, "predictions", "--local", "--json", timeout=120)
        assert read.returncode == 0, read.stderr
        assert len(json.loads(read.stdout)) == 2
    finally:
        holder.rollback()
        holder.close()
    _predict(serve, 4)
    labels = [json.loads(r["output"])["label"] for r in rows(path)]
    assert labels == [1, 2, 4], serve.output()
    read = scarab_cli(project, "predictions", "--local", "--json", timeout=120)
    assert read.returncode == 0 and len(json.loads(read.stdout)) == 3, read.stderr


def test_a_corrupt_log_file_is_left_alone_and_serve_keeps_answering(
    tmp_path: Path,
    gemini_session_server: GeminiServer,
    serve_factory: Callable[..., ServeProcess],
) -> None:
    damaged = b"SQLite format 3\x00" + b"\xff" * 4080
    project, path = _project_with_log(tmp_path, damaged)
    serve = serve_factory(project, env=serve_env(gemini_session_server))
    _predict(serve, 5)
    _predict(serve, 6)
    assert path.read_bytes() == damaged  # never rewritten: whatever it held is still there
    read = scarab_cli(project, "predictions", "--local", timeout=120)
    assert read.returncode == 1 and "cannot be read" in read.stderr + read.stdout, read
    assert "Traceback" not in read.stderr + serve.output()
