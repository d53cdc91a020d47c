"""The web client in chromium, against `scarab serve` and the Gemini-compatible server.

Every answer the page shows here came from the real local path: page -> serve's
/api/analyze (key added server-side) -> the emulated API Gateway (keys, usage plan,
limits, integration timeout) -> the deployed function -> the Gemini test server.
Requests are only observed (bytes on the wire), never intercepted or faked.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import TEST_GEMINI_KEY
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, scarab_cli, start_serve

from .conftest import INTEGRATION_TIMEOUT_S, linked_project
from .helpers import (
    contrast,
    decode_upload,
    noise_photo,
    phone_photo,
    plan_patched,
    proxy_get,
    proxy_post,
)

pytestmark = [pytest.mark.browser, pytest.mark.emulator, pytest.mark.slow]

UPLOAD_BUDGET_BYTES = 1_500_000  # what the page promises for a 12 MP photo, base64 included
PROXY_LIMIT_BYTES = 4_500_000


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phone_photo(tmp_path_factory.mktemp("photos") / "phone-12mp.jpg")


def record_uploads(page: Any) -> list[bytes]:
    """Bodies the browser POSTed to /api/analyze (observed, not intercepted)."""
    bodies: list[bytes] = []

    def on_request(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/api/analyze"):
            bodies.append(request.post_data_buffer or b"")

    page.on("request", on_request)
    return bodies


def choose_photo(page: Any, path: Path) -> None:
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#analyze-button:enabled")


def analyze_and_wait_for(page: Any, selector: str) -> None:
    page.click("#analyze-button")
    page.wait_for_selector(selector, timeout=40_000)


def error_panel(page: Any) -> dict[str, str]:
    page.wait_for_selector("#error:not([hidden])", timeout=40_000)
    return {
        "kind": page.get_attribute("#error", "data-kind") or "",
        "status": page.get_attribute("#error", "data-status") or "",
        "text": page.inner_text("#error"),
        "retry": "visible" if page.is_visible("#retry-button") else "hidden",
    }


def assert_human(text: str) -> None:
    assert "{" not in text and '"message"' not in text, f"raw JSON shown: {text}"
    assert "failed to fetch" not in text.lower()


def assert_readable(page: Any) -> str:
    """Text on the result page meets WCAG AA contrast (4.5:1); returns body's background."""
    checked = (
        "body, #result-location, .character-card p, #result-meta, .drop-hint, #status,"
        " #error-title, #error-message"
    )
    colors = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((el) => {
            let bg = el;
            let color = getComputedStyle(bg).backgroundColor;
            while (color === "rgba(0, 0, 0, 0)" && bg.parentElement) {
              bg = bg.parentElement;
              color = getComputedStyle(bg).backgroundColor;
            }
            return [el.id || el.className || el.tagName, getComputedStyle(el).color, color];
        })""",
        checked,
    )
    for name, fg, bg in colors:
        assert contrast(fg, bg) >= 4.5, (name, fg, bg)
    return str(colors[0][2])


def test_a_12mp_photo_is_shrunk_upright_and_every_field_is_rendered(
    page: Any, photo: Path, serve: ServeProcess, gemini_server: GeminiServer
) -> None:
    uploads = record_uploads(page)
    choose_photo(page, photo)
    assert "3000\u00d74000" in page.inner_text("#image-info")  # EXIF orientation applied
    page.select_option("#speed", "fast")
    page.select_option("#image-type", "temple")
    analyze_and_wait_for(page, "#result:not([hidden])")

    # Bytes on the wire: one request, far under the limits, upright, longest side 2048.
    assert len(uploads) == 1
    body = uploads[0]
    assert len(body) < UPLOAD_BUDGET_BYTES, f"{len(body)} bytes uploaded"
    payload, image = decode_upload(body)
    assert payload["speed"] == "fast"
    assert payload["imageType"] == "temple"
    assert image.format == "JPEG"
    assert image.size == (1536, 2048)
    # ...and that is what reached the model.
    assert len(gemini_server.requests) == 1
    mime, sent = gemini_server.requests[0].images[0]
    assert mime.startswith("image/")
    model_image = Image.open(io.BytesIO(sent))
    assert model_image.height > model_image.width  # still upright (portrait)
    assert max(model_image.size) <= 2048

    # Every field, rendered for people.
    assert page.inner_text("#result-location") == SAMPLE_ANALYSIS["picture_location"]
    assert page.inner_text("#result-date") == SAMPLE_ANALYSIS["date"]
    assert page.inner_text("#result-translation") == SAMPLE_ANALYSIS["ancient_text_translation"]
    assert page.inner_text("#result-detail") == SAMPLE_ANALYSIS["interesting_detail"]
    cards = page.locator("#characters .character-card")
    assert cards.count() == len(SAMPLE_ANALYSIS["characters"])
    for index, character in enumerate(SAMPLE_ANALYSIS["characters"]):
        card = cards.nth(index)
        assert card.locator(".character-name").inner_text() == character["character_name"]
        text = card.inner_text()
        for field in ("reasoning", "description", "location"):
            assert character[field] in text, (field, text)
    assert page.is_hidden("#error")
    assert page.is_hidden("#progress")
    assert page.evaluate("document.activeElement.id") == "result"
    assert not page.console_errors
    body_bg = assert_readable(page)  # light mode by default
    assert contrast("rgb(255, 255, 255)", body_bg) < 1.5, f"background {body_bg} is not light"


def test_the_api_key_appears_nowhere_in_what_the_browser_received(
    page_factory: Any,
    photo: Path,
    serve: ServeProcess,
    apigateway: Any,
    gemini_server: GeminiServer,
) -> None:
    received: list[str] = []
    sent: list[str] = []
    page = page_factory()

    def on_response(response: Any) -> None:
        received.append(f"{response.url} {response.status} {json.dumps(response.headers)}")
        # Redirects and aborted responses have no body.
        with contextlib.suppress(Exception):
            received.append(response.body().decode("utf-8", "replace"))

    page.on("request", lambda r: sent.append(f"{r.url} {json.dumps(r.headers)}"))
    page.on("response", on_response)
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    choose_photo(page, photo)
    analyze_and_wait_for(page, "#result:not([hidden])")
    gemini_server.reply_blocked()  # an error answer too (422 content_blocked)
    page.click("#analyze-button")
    assert error_panel(page)["status"] == "422"

    keys = [k["value"] for k in apigateway.get_api_keys(includeValues=True)["items"]]
    assert serve.api_key in keys
    secrets = [*keys, TEST_GEMINI_KEY]
    page_state = page.evaluate(
        "JSON.stringify([document.documentElement.outerHTML, document.cookie,"
        " Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    assert len(received) > 8  # the page, its modules, the stylesheet, two answers
    for secret in secrets:
        for text in [*received, *sent, page_state]:
            assert secret not in text, f"a key leaked into: {text[:200]}"


def test_403_when_the_key_was_revoked(
    page: Any, photo: Path, serve: ServeProcess, web_project: Path
) -> None:
    listed = json.loads(
        scarab_cli(web_project, "keys", "list", "--local", "--json", check=True).stdout
    )
    key_ids = [k["id"] for k in (listed["keys"] if isinstance(listed, dict) else listed)]
    assert key_ids
    choose_photo(page, photo)
    try:
        for key_id in key_ids:
            scarab_cli(web_project, "keys", "revoke", key_id, "--local", check=True)
        wait_until(
            lambda: proxy_post(serve.url, "/api/analyze")[0] == 403, what="serve to drop the key"
        )
        page.click("#analyze-button")
        shown = error_panel(page)
    finally:
        scarab_cli(web_project, "keys", "rotate", "--local", check=True)
        wait_until(lambda: proxy_get(serve.url, "/api/health") == 200, what="a working key")
    assert shown["status"] == "403"
    assert shown["kind"] == "key"
    assert "key was rejected" in shown["text"]
    assert shown["retry"] == "hidden"  # retrying cannot fix a revoked key
    assert_human(shown["text"])


def test_413_when_the_upload_is_over_the_proxy_limit(
    page_factory: Any, tmp_path: Path, gemini_server: GeminiServer
) -> None:
    # Lift the page's own budget (the page never sends this much by itself) so the
    # upload meets the server's 4,500,000-byte limit.
    page = page_factory(init_script="window.scarabUploadLimits = {maxSide: 4096, maxBytes: 1e9};")
    uploads = record_uploads(page)
    choose_photo(page, noise_photo(tmp_path / "noise.jpg"))
    page.click("#analyze-button")
    shown = error_panel(page)
    assert len(uploads) == 1 and len(uploads[0]) > PROXY_LIMIT_BYTES
    assert shown["status"] == "413"
    assert shown["kind"] == "too_large"
    assert "too large" in shown["text"]
    assert_human(shown["text"])
    assert gemini_server.requests == []  # refused before the function ran


def test_429_throttled_then_quota_exceeded_are_told_apart(
    page: Any, photo: Path, serve: ServeProcess, apigateway: Any
) -> None:
    choose_photo(page, photo)

    # Throttled: a bucket of one token that never refills; use it up, then the page asks.
    with plan_patched(apigateway, rate=0, burst=1):
        wait_until(
            lambda: b"Too Many Requests" in proxy_post(serve.url, "/api/analyze")[1],
            what="the throttle to apply",
        )
        page.click("#analyze-button")
        throttled = error_panel(page)
    assert throttled["status"] == "429"
    assert throttled["kind"] == "throttled"
    assert "Too many requests" in throttled["text"]
    assert throttled["retry"] == "visible"
    assert_human(throttled["text"])

    # The restored bucket (rate 10/s, burst 20) starts empty; let it refill so the
    # next answer is about the quota, not the throttle.
    time.sleep(2.5)

    # Quota: a limit of one request per period, already used.
    with plan_patched(apigateway, quota=1):
        wait_until(
            lambda: b"Limit Exceeded" in proxy_post(serve.url, "/api/analyze")[1],
            what="the quota to apply",
        )
        page.click("#analyze-button")
        quota = error_panel(page)
    assert quota["status"] == "429"
    assert quota["kind"] == "quota"
    assert "quota" in quota["text"].lower()
    assert quota["retry"] == "hidden"
    assert quota["text"] != throttled["text"]
    assert_human(quota["text"])


def test_504_when_the_model_is_slower_than_the_gateway_falls_back_to_a_job(
    page: Any, photo: Path, gemini_server: GeminiServer
) -> None:
    # The direct request outlasts the gateway (504); the page sends the same request as a
    # job, which has no 29 s limit (the function's own timeout), and renders its result.
    gemini_server.reply_delay(INTEGRATION_TIMEOUT_S + 2)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    choose_photo(page, photo)
    page.click("#analyze-button")
    page.wait_for_selector("#progress:not([hidden])")
    page.wait_for_timeout(1200)
    assert float(page.inner_text("#elapsed").split()[0]) >= 1.0  # the clock runs
    page.wait_for_selector("#progress[data-phase=queued], #progress[data-phase=running]")
    page.wait_for_selector("#result:not([hidden])", timeout=40_000)
    assert page.inner_text("#result-location") == SAMPLE_ANALYSIS["picture_location"]
    assert page.is_hidden("#error")
    api = [url.rsplit("/api/", 1)[-1] for url in posts if "/api/" in url]
    assert api[:2] == ["analyze", "jobs"], api


def test_502_when_the_model_output_is_unusable_then_retry_works(
    page: Any, photo: Path, gemini_server: GeminiServer
) -> None:
    # Truncated JSON twice: the function's one output retry fails too -> 502.
    gemini_server.reply_truncated()
    gemini_server.reply_truncated()
    choose_photo(page, photo)
    page.click("#analyze-button")
    shown = error_panel(page)
    assert (shown["status"], shown["kind"]) == ("502", "model")
    assert "couldn't produce an analysis" in shown["text"]
    assert shown["retry"] == "visible"
    assert_human(shown["text"])
    page.click("#retry-button")
    page.wait_for_selector("#result:not([hidden])", timeout=40_000)
    assert page.inner_text("#result-location") == SAMPLE_ANALYSIS["picture_location"]


def test_503_when_the_model_quota_is_used_up_counts_down_retry_after(
    page: Any, photo: Path, gemini_server: GeminiServer
) -> None:
    # Gemini's 429 asks for 30 s, more than the deadline allows: the function answers
    # 503 with Retry-After at once, and the page waits that long before offering a retry.
    gemini_server.reply_error(429, retry_after="30")
    choose_photo(page, photo)
    page.click("#analyze-button")
    shown = error_panel(page)
    assert (shown["status"], shown["kind"]) == ("503", "unavailable")
    assert "Try again in 30 seconds" in shown["text"]
    assert_human(shown["text"])
    assert page.is_disabled("#retry-button")
    assert page.inner_text("#retry-button").startswith("Try again in ")


def test_503_without_a_gemini_key_says_so_and_offers_no_retry(
    browser: Any, photo: Path, tmp_path: Path
) -> None:
    """What `make demo` shows with no GOOGLE_API_KEY: not 'busy, try again'."""
    proc = start_serve(
        linked_project(tmp_path / "no-key"),
        env={"GOOGLE_API_KEY": None, "GEMINI_API_KEY": None, "AWS_ENDPOINT_URL": None},
    )
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(proc.url)
        choose_photo(page, photo)
        page.click("#analyze-button")
        shown = error_panel(page)
        assert (shown["status"], shown["kind"]) == ("503", "not_configured")
        assert "isn't switched on here" in shown["text"]
        assert shown["retry"] == "hidden"
        assert_human(shown["text"])
    finally:
        context.close()
        proc.stop()


def test_cancel_stops_waiting_and_the_photo_can_be_sent_again(
    page: Any, photo: Path, gemini_server: GeminiServer
) -> None:
    gemini_server.reply_delay(3)
    choose_photo(page, photo)
    page.click("#analyze-button")
    page.wait_for_selector("#progress:not([hidden])")
    page.click("#cancel-button")
    page.wait_for_selector("#progress", state="hidden")
    assert "Cancelled" in page.inner_text("#status")
    assert page.is_hidden("#error") and page.is_hidden("#result")
    assert page.is_enabled("#analyze-button")


def test_network_failure_has_words_and_a_retry(page: Any, photo: Path, browser: Any) -> None:
    choose_photo(page, photo)
    page.context.set_offline(True)
    page.click("#analyze-button")
    shown = error_panel(page)
    page.context.set_offline(False)
    assert shown["kind"] == "network"
    assert "Can't reach the server" in shown["text"]
    assert shown["retry"] == "visible"
    assert_human(shown["text"])
    page.click("#retry-button")
    page.wait_for_selector("#result:not([hidden])", timeout=40_000)


def test_keyboard_only_at_phone_width_in_dark_mode(page_factory: Any, photo: Path) -> None:
    page = page_factory(viewport={"width": 360, "height": 740}, color_scheme="dark", has_touch=True)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "file-input"
    choose_photo(page, photo)  # the file chooser itself is the browser's own dialog
    page.focus("#file-input")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "speed"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "image-type"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "analyze-button"
    page.keyboard.press("Enter")
    page.wait_for_selector("#result:not([hidden])", timeout=40_000)
    assert page.evaluate("document.activeElement.id") == "result"

    # No sideways scrolling at phone width.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    # Dark mode is actually dark, and text stays readable (WCAG AA: 4.5:1).
    body_bg = assert_readable(page)
    assert contrast("rgb(0, 0, 0)", body_bg) < 2, f"background {body_bg} is not dark"


MAKE_FILE_JS = """async ([name, type, width, height]) => {
    let blob;
    if (type.startsWith("image/")) {
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#c8902e";
      ctx.fillRect(0, 0, width, height);
      blob = await new Promise((resolve) => canvas.toBlob(resolve, type));
    } else {
      blob = new Blob(["not a picture"], { type });
    }
    const transfer = new DataTransfer();
    transfer.items.add(new File([blob], name, { type }));
    return transfer;
}"""


def test_drop_and_paste_load_a_photo_and_non_images_are_refused(page: Any, tmp_path: Path) -> None:
    dropped = page.evaluate_handle(MAKE_FILE_JS, ["wall.png", "image/png", 640, 480])
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": dropped})
    page.wait_for_selector("#analyze-button:enabled")
    assert "640\u00d7480" in page.inner_text("#image-info")

    pasted = page.evaluate_handle(MAKE_FILE_JS, ["clip.png", "image/png", 300, 500])
    page.evaluate(
        "(data) => document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data}))",
        pasted,
    )
    # A locator assertion polls without eval, which the page's CSP (no 'unsafe-eval') forbids.
    expect(page.locator("#image-info")).to_contain_text("300\u00d7500")

    text = page.evaluate_handle(MAKE_FILE_JS, ["notes.txt", "text/plain", 0, 0])
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": text})
    assert "wasn't an image" in page.inner_text("#status")

    not_an_image = tmp_path / "photo.jpg"
    not_an_image.write_bytes(b"this is not a JPEG at all")
    page.set_input_files("#file-input", str(not_an_image))
    shown = error_panel(page)
    assert shown["kind"] == "unreadable_image"
    assert "can't be opened" in shown["text"]
    assert page.is_disabled("#analyze-button")
    assert_human(shown["text"])


def test_offline_digit_model_reads_a_drawn_digit(page: Any) -> None:
    page.wait_for_selector("#digits:not([hidden])")  # serve offers /api/models with digits

    # Drawing with the pointer leaves ink on the pad.
    box = page.locator("#digit-pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 20, steps=8)
    page.mouse.up()
    ink = page.evaluate(
        """() => {
            const c = document.querySelector('#digit-pad');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let dark = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] < 128) dark++;
            return dark;
        }"""
    )
    assert ink > 500

    # The keyboard path: the page writes a digit, Recognise sends it.
    page.click("#digit-sample")
    written = page.inner_text("#digit-result")
    with page.expect_response(lambda r: r.url.endswith("/api/predict/digits")) as answer:
        page.click("#digit-recognise")
    response = answer.value
    assert response.status == 200
    body = response.json()
    assert body["model"]["name"] == "digits"
    page.wait_for_selector("#digit-result[data-label]")
    shown = page.inner_text("#digit-result")
    assert f"It reads {body['label']}" in shown
    assert f"{round(body['probability'] * 100)}% sure" in shown
    assert written.startswith("The page wrote a ")
    # The demo must be right about its own handwriting: it reads the digit it wrote.
    assert written == f"The page wrote a {body['label']}. Press Recognise."


def test_the_page_reads_every_digit_it_writes(page: Any, serve: ServeProcess) -> None:
    """Each of the ten digits the demo can write is recognised by the deployed model."""
    page.goto(serve.url)
    page.wait_for_selector("#digits:not([hidden])")
    misread = {}
    for digit in range(10):
        # Choose the digit the "write a digit for me" button picks (it uses Math.random).
        page.evaluate(f"() => {{ Math.random = () => {digit / 10 + 0.05}; }}")
        page.click("#digit-sample")
        assert page.inner_text("#digit-result").startswith(f"The page wrote a {digit}.")
        with page.expect_response(lambda r: r.url.endswith("/api/predict/digits")) as answer:
            page.click("#digit-recognise")
        label = answer.value.json()["label"]
        if label != digit:
            misread[digit] = label
    assert misread == {}, f"written digit -> what the model read: {misread}"
