"""The response cache through a real `scarab serve`: the deploy creates the shared table
in the emulator's DynamoDB, a repeated /analyze is answered with no Gemini call, also by
a second worker (container) that never saw the first request, through the table;
Cache-Control: no-cache bypasses it; an error is never cached; answers expire after
[cache] ttl_seconds."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.function.events import b64, jpeg
from tests.serve.conftest import serve_env
from tests.serve.support import DEFAULT_TOML, Response, emulator_url, http, make_project
from tests.support.gemini_server import GeminiServer
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, start_serve

pytestmark = pytest.mark.emulator

CACHE_OFF = "[cache]\nttl_seconds = 0\n"
assert CACHE_OFF in DEFAULT_TOML  # the test stages' default, which these tests turn on


def _toml(ttl: int) -> str:
    # One Gemini attempt, so an error answer takes one scripted reply.
    extra = '\n[function.environment]\nSCARAB_MAX_ATTEMPTS = "1"\n'
    return DEFAULT_TOML.replace(CACHE_OFF, f"[cache]\nttl_seconds = {ttl}\n") + extra


def _serve(root: Path, ttl: int, gemini: GeminiServer) -> ServeProcess:
    project = make_project(root, toml=_toml(ttl), web=False)
    return start_serve(project, env=serve_env(gemini))


@pytest.fixture(scope="module")
def cached(
    tmp_path_factory: pytest.TempPathFactory, gemini_session_server: GeminiServer
) -> Iterator[ServeProcess]:
    proc = _serve(tmp_path_factory.mktemp("cache") / "p", 300, gemini_session_server)
    try:
        yield proc
    finally:
        proc.stop()
        print(proc.output())


_widths = iter(range(64, 1000))


def _image() -> bytes:
    """A JPEG no other request of this module sends: its own size, so its own key."""
    return jpeg(size=(next(_widths), 48))


def _analyze(proc: ServeProcess, image: bytes, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"image": b64(image), "speed": "fast", "imageType": "tomb"}).encode()
    sent = {"x-api-key": proc.api_key or "", "Content-Type": "application/json", **(headers or {})}
    return http(f"{proc.api_url}/analyze", "POST", body, sent)


def _table(proc: ServeProcess) -> Any:
    ddb = boto3.client(
        "dynamodb", endpoint_url=emulator_url(proc.project_dir), region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    return ddb


def test_a_repeat_is_a_hit_with_no_gemini_call_even_in_another_worker(
    cached: ServeProcess, gemini: GeminiServer
) -> None:
    ddb = _table(cached)
    ttl = ddb.describe_time_to_live(TableName="scarab-dev-cache")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    image = _image()
    first = _analyze(cached, image)
    assert first.status == 200, first.body
    assert first.headers["x-cache"] == "miss"
    assert len(gemini.requests) == 1
    again = _analyze(cached, image)  # the same (only) worker: its memory answers
    assert again.status == 200 and again.headers["x-cache"] == "hit"
    assert again.json()["analysis"] == first.json()["analysis"]
    assert len(gemini.requests) == 1

    # Keep that worker busy with a slow analysis of another image ...
    gemini.reply_delay(4.0)
    slow: list[Response] = []
    busy = threading.Thread(target=lambda: slow.append(_analyze(cached, _image())))
    workers = set(cached.group_pids())
    busy.start()
    try:
        wait_until(lambda: len(gemini.requests) >= 2, timeout=60, what="the slow request")
        # ... so the repeat goes to a new worker, whose memory is empty: the table answers.
        other = _analyze(cached, image)
        started = set(cached.group_pids()) - workers
    finally:
        busy.join(timeout=120)
    assert other.status == 200 and other.headers["x-cache"] == "hit", other.body
    assert started, "the repeat did not start a second worker"
    assert other.json()["analysis"] == first.json()["analysis"]
    assert slow and slow[0].status == 200 and slow[0].headers["x-cache"] == "miss"
    assert len(gemini.requests) == 2  # the slow one's only


def test_no_cache_asks_gemini_again(cached: ServeProcess, gemini: GeminiServer) -> None:
    image = _image()
    assert _analyze(cached, image).headers["x-cache"] == "miss"
    bypass = _analyze(cached, image, {"Cache-Control": "no-cache"})
    assert bypass.status == 200 and bypass.headers["x-cache"] == "bypass"
    assert len(gemini.requests) == 2
    assert _analyze(cached, image).headers["x-cache"] == "hit"
    assert len(gemini.requests) == 2


def test_an_error_answer_is_not_cached(cached: ServeProcess, gemini: GeminiServer) -> None:
    image = _image()
    gemini.reply_error(500)
    failed = _analyze(cached, image)
    assert failed.status == 502 and failed.json()["error"]["code"] == "upstream_error"
    assert "x-cache" not in failed.headers
    ok = _analyze(cached, image)
    assert ok.status == 200 and ok.headers["x-cache"] == "miss"
    assert len(gemini.requests) == 2


def test_an_answer_expires_after_ttl_seconds(
    tmp_path: Path, gemini: GeminiServer, gemini_session_server: GeminiServer
) -> None:
    proc = _serve(tmp_path / "p", 2, gemini_session_server)
    try:
        image = _image()
        first = _analyze(proc, image)
        assert first.status == 200 and first.headers["x-cache"] == "miss", first.body
        items = _table(proc).scan(TableName="scarab-dev-cache")["Items"]
        assert len(items) == 1
        expires_at = int(items[0]["expires_at"]["N"])
        assert expires_at - time.time() <= 2  # stored for ttl_seconds, never longer
        # Past the expiry (a wait for the clock, not for the server):
        while time.time() <= expires_at + 1:
            time.sleep(0.2)
        expired = _analyze(proc, image)
        assert expired.status == 200 and expired.headers["x-cache"] == "miss"
        assert len(gemini.requests) == 2
    finally:
        proc.stop()
        print(proc.output())
