"""Review of issue 15: ECS's container health check (GET /health, 4 s timeout, 3 retries)
is answered while a slow POST /analyze holds the core's one thread; before, it queued
behind the analysis, so steady /analyze traffic got a healthy task replaced."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import TEST_GEMINI_KEY
from tests.function.events import jpeg
from tests.server.support import ServerProcess, request, start_server
from tests.support.gemini_server import GeminiServer

ANALYZE = json.dumps({"image": base64.b64encode(jpeg((64, 48))).decode(), "speed": "fast"})
SLOW_S = 4.0  # Gemini's delay: far longer than a health answer takes


@pytest.fixture(scope="module")
def slow(gemini_session_server: GeminiServer) -> Iterator[tuple[ServerProcess, GeminiServer]]:
    """A server without keys, Gemini at the test server."""
    process = start_server(
        {
            "GOOGLE_GEMINI_BASE_URL": gemini_session_server.url,
            "GOOGLE_API_KEY": TEST_GEMINI_KEY,
        }
    )
    try:
        yield process, gemini_session_server
    finally:
        process.stop()


def test_health_answers_while_an_analysis_is_in_flight(
    slow: tuple[ServerProcess, GeminiServer],
) -> None:
    server, gemini = slow
    gemini.reset()
    baseline = request(server.url, "GET", "/health")
    assert baseline[0] == 200
    gemini.reply_delay(SLOW_S)
    done = threading.Event()
    answers: list[int] = []

    def analyze() -> None:
        got = request(
            server.url, "POST", "/analyze", headers={"content-type": "application/json"},
            body=ANALYZE.encode(),
        )  # fmt: skip
        answers.append(got[0])
        done.set()

    worker = threading.Thread(target=analyze)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not gemini.requests and time.monotonic() < deadline:  # the core is in Gemini
            time.sleep(0.02)
        assert gemini.requests, "the analysis never reached Gemini"
        status, headers, body = request(server.url, "GET", "/health")
        in_flight = not done.is_set()
    finally:
        worker.join()
    assert in_flight, "GET /health waited for the analysis to finish"
    assert status == 200
    assert json.loads(body) == json.loads(baseline[2])  # the handler's own answer
    assert headers["x-request-id"] != baseline[1]["x-request-id"]
    assert answers == [200]


def test_a_wedged_core_is_not_hidden_by_the_health_answer() -> None:
    """The earlier answer stands in only while the thread makes progress: one that has
    finished nothing for longer than a request may take gets /health queued behind it
    (so ECS's check fails and the task is replaced), not answered from before."""
    import asyncio

    from lens.server.app import HEALTH, WEDGED_AFTER_S, Core
    from lens.server.events import HttpAnswer

    async def scenario() -> tuple[bytes, bytes]:
        core = Core()
        try:
            core._health = HttpAnswer(200, [("X-Request-Id", "earlier")], b"earlier")
            core._in_flight = 1  # a request holds the thread
            core._progress = time.monotonic()
            busy = (await core.answer(HEALTH)).body
            core._in_flight = 1
            core._progress = time.monotonic() - WEDGED_AFTER_S - 1
            wedged = (await core.answer(HEALTH)).body
        finally:
            core.shutdown()
        return busy, wedged

    busy, wedged = asyncio.run(scenario())
    assert busy == b"earlier"
    assert wedged != b"earlier" and json.loads(wedged)["status"] == "ok"  # the handler's
