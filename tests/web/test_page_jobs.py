"""The page's upload and job flows in chromium, against web-client/test-support/stack.mjs.

The stack is node alone: the page and the real proxy functions (api/*.js through
dev-server.mjs's handler, the key added server-side) in front of a scriptable API
stand-in that answers /analyze, /uploads, /jobs and /jobs/<id>, and a presigned-POST
stand-in on the page's origin that checks each form against its grant. The whole
path through `scarab serve` is tests/web/test_page_jobs_serve.py's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import wait_until

from .conftest import ARTIFACTS
from .helpers import noise_photo, phone_photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WEB_CLIENT = Path(__file__).resolve().parents[2] / "web-client"
PROXY_LIMIT_BYTES = 4_500_000
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LOCATION = "Tomb of Nefertari, Valley of the Queens"  # stack.mjs's SAMPLE


class Stack:
    """The node stack's process, its URLs and its control routes."""

    def __init__(self) -> None:
        node = shutil.which("node")
        assert node, "node is required for the web client's tests"
        self.proc = subprocess.Popen(
            [node, "test-support/stack.mjs"],
            cwd=WEB_CLIENT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        info = json.loads(first)
        self.url: str = info["url"]
        self.api: str = info["api"]
        self.key: str = info["key"]
        self.output: list[str] = []
        # Drain the proxy's log lines so the pipe never fills.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def control(self, name: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(f"{self.api}/_control/{name}", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def log(self) -> dict[str, Any]:
        return dict(self.control("log"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = Stack()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def jobs_page(browser: Any, stack: Stack, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page on the node stack (reset, default script); screenshot on failure."""
    stack.control("reset")
    opened: list[tuple[Any, Any]] = []

    def factory(init_script: str | None = None) -> Any:
        context = browser.new_context(base_url=stack.url)
        context.set_default_timeout(20_000)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        page.console_errors = []
        page.on(
            "console",
            lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
        opened.append((context, page))
        page.goto("/")
        page.wait_for_selector("html[data-ready=true]")
        return page

    yield factory
    failed = any(
        getattr(request.node, f"rep_{when}", None) is not None
        and getattr(request.node, f"rep_{when}").failed
        for when in ("setup", "call")
    )
    for index, (context, page) in enumerate(opened):
        if failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(ARTIFACTS / f"{request.node.name}-{index}.png"), full_page=True
            )
            (ARTIFACTS / "stack.log").write_text("".join(stack.output))
        context.close()


@pytest.fixture(scope="module")
def small_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phone_photo(tmp_path_factory.mktemp("photos") / "small.jpg", size=(1600, 1200))


@pytest.fixture(scope="module")
def big_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return noise_photo(tmp_path_factory.mktemp("photos") / "noise.jpg")


def choose(page: Any, path: Path, speed: str) -> None:
    page.select_option("#speed", speed)
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#analyze-button:enabled", timeout=60_000)


def api_calls(stack: Stack, method: str, path_prefix: str) -> list[dict[str, Any]]:
    return [
        r
        for r in stack.log()["requests"]
        if r["method"] == method and r["path"].startswith(path_prefix)
    ]


def wait_for_result(page: Any) -> None:
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert page.inner_text("#result-location") == LOCATION
    assert page.is_hidden("#error")


def test_regular_tier_runs_as_a_job_showing_queued_running_done(
    jobs_page: Any, stack: Stack, small_photo: Path
) -> None:
    page = jobs_page()
    choose(page, small_photo, "regular")
    page.select_option("#image-type", "tomb")
    page.click("#analyze-button")
    page.wait_for_selector("#progress[data-phase=queued]")
    assert "Queued" in page.inner_text("#progress-label")
    page.wait_for_selector("#progress[data-phase=running]", timeout=10_000)
    assert "Running" in page.inner_text("#progress-label")
    assert float(page.inner_text("#elapsed").split()[0]) >= 1.0  # the clock runs
    wait_for_result(page)
    assert re.match(r"^Analysis ready \(job done in \d+\.\d s\)\.$", page.inner_text("#status"))
    assert "job " in page.inner_text("#result-meta")

    (start,) = api_calls(stack, "POST", "/jobs")
    assert start["has_key"]
    assert UUID.match(start["idempotency_key"] or "")
    assert start["body"]["speed"] == "regular" and start["body"]["imageType"] == "tomb"
    assert start["body"]["image"]["chars"] < PROXY_LIMIT_BYTES  # small enough to go inline
    assert api_calls(stack, "POST", "/analyze") == []
    assert api_calls(stack, "POST", "/uploads") == []
    (job,) = stack.log()["jobs"]
    assert job["polls"] == 3  # queued, running, succeeded: polling stopped when done
    assert page.console_errors == []
    # The key never reached the browser: not in the page's HTML or scripts.
    assert stack.key not in page.content()


def test_a_photo_too_large_for_a_direct_request_goes_by_presigned_upload(
    jobs_page: Any, stack: Stack, big_photo: Path
) -> None:
    # Fast tier, page budget lifted (upload allowed): a noise photo stays megabytes.
    page = jobs_page("window.scarabUploadLimits = {maxSide: 4096, maxBytes: 1e9, upload: true};")
    choose(page, big_photo, "fast")
    page.click("#analyze-button")
    wait_for_result(page)

    (grant,) = api_calls(stack, "POST", "/uploads")
    assert grant["has_key"]
    assert grant["body"]["content_type"] == "image/jpeg"
    size = grant["body"]["bytes"]
    assert 4 * size / 3 > PROXY_LIMIT_BYTES  # would not fit a direct request as base64
    (form,) = stack.log()["uploads"]
    assert form["status"] == 204 and form["bytes"] == size
    assert form["field_order"][-1] == "file"  # fields first, in order, then the file
    (analyze,) = api_calls(stack, "POST", "/analyze")
    assert analyze["body"] == {"upload": form["key"], "speed": "fast", "imageType": "unknown"}
    assert analyze["bytes"] < 1000  # the photo itself never went through the proxy
    assert stack.log()["objects"] == []  # used once, then gone
    assert page.console_errors == []


def test_regular_tier_keeps_a_large_photo_and_uploads_it_for_the_job(
    jobs_page: Any, stack: Stack, big_photo: Path
) -> None:
    page = jobs_page()
    choose(page, big_photo, "regular")
    info = page.inner_text("#image-info")
    assert "will upload 2600\N{MULTIPLICATION SIGN}2600" in info  # not shrunk to 2048 px
    page.click("#analyze-button")
    page.wait_for_selector("#progress[data-phase=uploading]", state="attached", timeout=10_000)
    wait_for_result(page)
    (form,) = stack.log()["uploads"]
    (start,) = api_calls(stack, "POST", "/jobs")
    assert start["body"] == {"upload": form["key"], "speed": "regular", "imageType": "unknown"}
    assert 4 * form["bytes"] / 3 > PROXY_LIMIT_BYTES


def test_a_direct_504_falls_back_to_a_job(jobs_page: Any, stack: Stack, small_photo: Path) -> None:
    stack.control(
        "script", {"analyze": [{"status": 504, "body": {"message": "Endpoint request timed out"}}]}
    )
    page = jobs_page()
    choose(page, small_photo, "fast")
    page.click("#analyze-button")
    page.wait_for_selector("#progress[data-phase=queued]", timeout=20_000)
    wait_for_result(page)
    (direct,) = api_calls(stack, "POST", "/analyze")
    (start,) = api_calls(stack, "POST", "/jobs")
    assert direct["body"] == start["body"]  # the same request, now as a job
    assert start["body"]["speed"] == "fast"


def test_cancel_stops_polling_and_says_the_job_may_still_finish(
    jobs_page: Any, stack: Stack, small_photo: Path
) -> None:
    stack.control("script", {"job": {"queued_polls": 10_000}})
    page = jobs_page()
    choose(page, small_photo, "regular")
    page.click("#analyze-button")
    page.wait_for_selector("#progress[data-phase=queued]")
    wait_until(lambda: stack.log()["jobs"] and stack.log()["jobs"][0]["polls"] >= 2, timeout=15)
    page.click("#cancel-button")
    page.wait_for_selector("#progress", state="hidden")
    status = page.inner_text("#status")
    assert "Cancelled" in status and "may still finish" in status
    assert page.is_hidden("#error") and page.is_hidden("#result")
    assert page.is_enabled("#analyze-button")
    polls = stack.log()["jobs"][0]["polls"]
    # Longer than the next poll's delay (2.25 s after the second): nothing more is asked.
    page.wait_for_timeout(3_500)
    assert stack.log()["jobs"][0]["polls"] == polls


def test_a_failed_job_is_told_in_words(jobs_page: Any, stack: Stack, small_photo: Path) -> None:
    stack.control(
        "script",
        {
            "job": {
                "queued_polls": 0,
                "running_polls": 1,
                "outcome": "failed",
                "error": {"code": "worker_failed", "message": "Gemini kept timing out."},
            }
        },
    )
    page = jobs_page()
    choose(page, small_photo, "regular")
    page.click("#analyze-button")
    page.wait_for_selector("#error:not([hidden])", timeout=20_000)
    assert page.get_attribute("#error", "data-kind") == "job_failed"
    text = page.inner_text("#error")
    assert "failed on the server" in text and "Gemini kept timing out." in text
    assert page.is_visible("#retry-button")


def test_without_job_routes_the_regular_tier_goes_direct(
    jobs_page: Any, stack: Stack, small_photo: Path
) -> None:
    stack.control("script", {"routes": {"jobs": False}})
    page = jobs_page()
    choose(page, small_photo, "regular")
    page.click("#analyze-button")
    wait_for_result(page)
    assert len(api_calls(stack, "POST", "/jobs")) == 1  # asked once, then fell back
    (direct,) = api_calls(stack, "POST", "/analyze")
    assert direct["body"]["speed"] == "regular"


def test_a_lost_job_answer_is_resent_with_the_same_idempotency_key(
    jobs_page: Any, stack: Stack, small_photo: Path
) -> None:
    # The API starts the job but its 202 never arrives (the proxy answers 502).
    stack.control("script", {"drop_jobs": 1})
    page = jobs_page()
    choose(page, small_photo, "regular")
    page.click("#analyze-button")
    wait_for_result(page)
    first, second = api_calls(stack, "POST", "/jobs")
    assert first["idempotency_key"] == second["idempotency_key"]
    assert UUID.match(first["idempotency_key"] or "")
    assert len(stack.log()["jobs"]) == 1  # the same job, not a second one


def test_try_again_after_going_offline_resends_the_same_submission(
    jobs_page: Any, stack: Stack, small_photo: Path
) -> None:
    page = jobs_page()
    keys: list[str] = []
    page.on(
        "request",
        lambda r: (
            keys.append(r.headers.get("idempotency-key", ""))
            if r.method == "POST" and r.url.endswith("/api/jobs")
            else None
        ),
    )
    choose(page, small_photo, "regular")
    page.context.set_offline(True)
    page.click("#analyze-button")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert page.get_attribute("#error", "data-kind") == "network"
    page.context.set_offline(False)
    page.click("#retry-button")
    wait_for_result(page)
    assert len(keys) >= 2 and len(set(keys)) == 1, keys  # every attempt, one key
    (start,) = api_calls(stack, "POST", "/jobs")
    assert start["idempotency_key"] == keys[0]
    # A new analysis of the same photo is a new submission with a new key.
    page.click("#analyze-button")
    wait_for_result(page)
    assert len(set(keys)) == 2
