"""The issue's whole path in chromium: a 40-megapixel photo analysed at `regular` speed
through the real `scarab serve` stack, the Gemini test server answering after 31 s
(past API Gateway's 29 s), ends with a rendered result.

page → /api/uploads (serve's proxy, key added) → the analyze function's presigned POST →
the form posted to serve's /_s3 (policy checked, stored in the emulator) → /api/jobs →
the function invokes itself through serve's /_lambda → the worker reads the upload and
asks Gemini → the page polls /api/jobs/<id> until succeeded.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_GEMINI_KEY
from tests.support.gemini_server import GeminiServer
from tests.support.serve_process import ServeProcess, start_serve

from .conftest import ARTIFACTS, REGION, linked_project
from .helpers import phone_photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UPSTREAM_DELAY_S = 31.0  # past API Gateway's 29 s: only a job can wait that long


@pytest.fixture(scope="module")
def slow_serve(
    tmp_path_factory: pytest.TempPathFactory, gemini_session_server: GeminiServer
) -> Iterator[ServeProcess]:
    project = linked_project(tmp_path_factory.mktemp("jobs-serve-project"))
    with (project / "scarab.toml").open("a") as toml:
        # The job runs in the analyze function with its own timeout, not the gateway's.
        # (Not the session's serve: there a longer function deadline would change what
        # test_page.py's Retry-After test sees.)
        toml.write("\n[functions.analyze]\ntimeout = 90\n")
    proc = start_serve(
        project,
        env={
            "GOOGLE_GEMINI_BASE_URL": gemini_session_server.url,
            "GOOGLE_API_KEY": TEST_GEMINI_KEY,
            "GEMINI_API_KEY": None,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": None,
            "AWS_PROFILE": None,
            "ALLOWED_ORIGINS": None,
        },
    )
    try:
        assert proc.api_key, proc.output()
        yield proc
    finally:
        proc.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "serve-jobs.log").write_text(proc.output())
        proc.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def photo_40mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phone_photo(tmp_path_factory.mktemp("photos") / "40mp.jpg", size=(7296, 5472))


def test_a_40_megapixel_photo_at_regular_speed_with_a_slow_upstream_is_rendered(
    browser: Any,
    slow_serve: ServeProcess,
    gemini_session_server: GeminiServer,
    photo_40mp: Path,
    request: pytest.FixtureRequest,
) -> None:
    gemini_session_server.reset()
    gemini_session_server.reply_delay(UPSTREAM_DELAY_S)
    context = browser.new_context(base_url=slow_serve.url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    try:
        page.goto("/")
        page.wait_for_selector("html[data-ready=true]")
        page.select_option("#speed", "regular")
        page.set_input_files("#file-input", str(photo_40mp))
        page.wait_for_selector("#analyze-button:enabled", timeout=120_000)
        page.click("#analyze-button")
        page.wait_for_selector("#progress[data-phase=running]", timeout=60_000)
        page.wait_for_selector("#result:not([hidden])", timeout=150_000)
        assert page.inner_text("#result-location").startswith("Tomb of Nefertari")
        assert page.is_hidden("#error")
        assert "job done in" in page.inner_text("#status")
        assert errors == []
        posts = [url for method, url in requests if method == "POST"]
        assert any(url.endswith("/api/jobs") for url in posts)
        assert not any(url.endswith("/api/analyze") for url in posts)  # never the 29 s path
        # Too large for a direct request: granted, then posted to serve's /_s3 itself.
        assert any(url.endswith("/api/uploads") for url in posts)
        assert any("/_s3/" in url for url in posts)
        # Asked once (no retry), with the photo prepared by the function from the whole
        # original: upright (EXIF 6 applied), 3:4, the longest side within SCARAB_MAX_SIDE.
        (asked,) = gemini_session_server.requests
        ((mime, data),) = asked.images
        from PIL import Image

        with Image.open(io.BytesIO(data)) as sent:
            width, height = sent.size
        assert mime == "image/jpeg" and 512 < height <= 1024, sent.size
        assert abs(width / height - 5472 / 7296) < 0.01, sent.size
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        raise
    finally:
        context.close()
