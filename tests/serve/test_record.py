"""`.scarab/local/serve.json`: one ServeRecord type writes and reads it; a missing, corrupt
or stale (dead pid) record reads as no running serve, never as a crash."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from scarab.emulator import Emulator, served_api_url, start_embedded
from scarab.serve.record import ServeRecord

from tests.support.serve_process import dead_pid

RECORD = Path(".scarab") / "local" / "serve.json"


def _live(url: str = "http://127.0.0.1:3000") -> ServeRecord:
    return ServeRecord(url=url, api_url=f"{url}/test", pid=os.getpid())


def test_write_then_read_gives_the_record_back(tmp_path: Path) -> None:
    record = _live()
    record.write(tmp_path)
    assert json.loads((tmp_path / RECORD).read_text()) == {
        "url": "http://127.0.0.1:3000",
        "api_url": "http://127.0.0.1:3000/test",
        "pid": os.getpid(),
    }
    assert ServeRecord.read(tmp_path) == record
    assert not list((tmp_path / RECORD).parent.glob("*.tmp"))


def test_a_missing_record_is_no_serve(tmp_path: Path) -> None:
    assert ServeRecord.read(tmp_path) is None
    (tmp_path / RECORD).mkdir(parents=True)  # unreadable as a file
    assert ServeRecord.read(tmp_path) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        b"\xff\xfe{}",  # not UTF-8
        "[]",
        "null",
        '"http://127.0.0.1:3000"',
        json.dumps({"url": "http://127.0.0.1:3000", "api_url": "http://127.0.0.1:3000/test"}),
        json.dumps({"url": "http://127.0.0.1:3000", "pid": "PID"}),
        json.dumps({"url": 3000, "api_url": "http://127.0.0.1:3000/test", "pid": "PID"}),
        json.dumps({"url": "", "api_url": "http://127.0.0.1:3000/test", "pid": "PID"}),
        json.dumps({"url": "http://127.0.0.1:3000", "api_url": None, "pid": "PID"}),
        json.dumps({"url": "http://x", "api_url": "http://x/test", "pid": "PID-AS-STRING"}),
        json.dumps({"url": "http://x", "api_url": "http://x/test", "pid": "PID-AS-FLOAT"}),
        json.dumps({"url": "http://x", "api_url": "http://x/test", "pid": True}),
        json.dumps({"url": "http://x", "api_url": "http://x/test", "pid": 0}),
        json.dumps({"url": "http://x", "api_url": "http://x/test", "pid": -1}),
        json.dumps({"url": "http://x", "api_url": "http://x/test", "pid": 10**30}),
    ],
)
def test_a_corrupt_record_is_no_serve(tmp_path: Path, text: str | bytes) -> None:
    # "PID" stands for this (live) process, so only the broken field makes it corrupt;
    # "PID-AS-..." for its pid as a string or a float. (Filled in here, not in the ids:
    # test ids must be the same in every pytest-xdist worker.)
    path = tmp_path / RECORD
    path.parent.mkdir(parents=True)
    if isinstance(text, str):
        pid = os.getpid()
        text = text.replace('"PID-AS-STRING"', f'"{pid}"').replace('"PID-AS-FLOAT"', f"{pid}.0")
        text = text.replace('"PID"', str(pid)).encode()
    path.write_bytes(text)
    assert ServeRecord.read(tmp_path) is None


def test_the_record_of_a_killed_serve_is_no_serve(tmp_path: Path) -> None:
    stale = ServeRecord("http://127.0.0.1:3000", "http://127.0.0.1:3000/test", dead_pid())
    stale.write(tmp_path)
    assert (tmp_path / RECORD).exists()
    assert ServeRecord.read(tmp_path) is None


def test_remove_leaves_a_record_another_serve_wrote(tmp_path: Path) -> None:
    mine, theirs = _live("http://127.0.0.1:3000"), _live("http://127.0.0.1:3001")
    mine.write(tmp_path)
    theirs.write(tmp_path)  # a second serve of the project started since
    mine.remove(tmp_path)
    assert ServeRecord.read(tmp_path) == theirs
    theirs.remove(tmp_path)
    assert not (tmp_path / RECORD).exists()
    theirs.remove(tmp_path)  # already gone: nothing to do


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """The embedded emulator, recorded in the project as a running serve records it."""
    emu = start_embedded(tmp_path)
    try:
        yield emu
    finally:
        emu.stop()


def test_deploy_names_a_running_serves_url_only_while_it_runs(
    tmp_path: Path, emulator: Emulator
) -> None:
    assert served_api_url(tmp_path, emulator.url, "test") is None  # no record
    _live().write(tmp_path)
    assert served_api_url(tmp_path, emulator.url, "test") == "http://127.0.0.1:3000/test"
    assert served_api_url(tmp_path, emulator.url, "prod") is None  # serves another stage
    ServeRecord("http://127.0.0.1:3000", "http://127.0.0.1:3000/test", dead_pid()).write(tmp_path)
    assert served_api_url(tmp_path, emulator.url, "test") is None
    (tmp_path / RECORD).write_text("{corrupt")
    assert served_api_url(tmp_path, emulator.url, "test") is None
