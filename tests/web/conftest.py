"""Browser tests: one `scarab serve` per session (in a scratch project that links this
repository's lambda/ and web-client/), the Gemini-compatible test server behind it,
and Debian's chromium driven by Playwright. A failing test leaves a screenshot in
test-artifacts/web/.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import TEST_GEMINI_KEY
from tests.support.gemini_server import GeminiServer
from tests.support.serve_process import ServeProcess, start_serve

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "web"
REGION = "us-east-1"
# API Gateway's integration timeout for this session's serve (29 s by default): short,
# so the 504 test waits seconds, long enough for a loaded machine's normal answers.
INTEGRATION_TIMEOUT_S = 6.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def linked_project(project: Path) -> Path:
    """A project dir of its own (this repo's scarab.toml, lambda/ and web-client/), so a
    serve's state never meets another one's."""
    project.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "scarab.toml", project / "scarab.toml")
    with (project / "scarab.toml").open("a") as toml:
        # The page's tests script Gemini per request: a cached answer would skip the script.
        toml.write("\n[cache]\nttl_seconds = 0\n")
    (project / "lambda").symlink_to(REPO / "lambda", target_is_directory=True)
    (project / "web-client").symlink_to(REPO / "web-client", target_is_directory=True)
    return project


@pytest.fixture(scope="session")
def web_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linked_project(tmp_path_factory.mktemp("web-project"))


@pytest.fixture(scope="session")
def serve(web_project: Path, gemini_session_server: GeminiServer) -> Iterator[ServeProcess]:
    proc = start_serve(
        web_project,
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
        extra_args=["--integration-timeout", str(INTEGRATION_TIMEOUT_S)],
    )
    try:
        assert proc.api_key, proc.output()
        yield proc
    finally:
        proc.stop()
        output = proc.output()
        proc.log_path.unlink(missing_ok=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "serve.log").write_text(output)


@pytest.fixture(scope="session")
def apigateway(web_project: Path, serve: ServeProcess) -> Any:
    """boto3 API Gateway client on the emulator serve started (what the CLI talks to)."""
    record = json.loads((web_project / ".scarab" / "local" / "emulator.json").read_text())
    return boto3.client(
        "apigateway",
        endpoint_url=record["url"],
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def gemini_server(gemini_session_server: GeminiServer) -> GeminiServer:
    """The session's Gemini test server (serve's function talks to it), script cleared."""
    gemini_session_server.reset()
    return gemini_session_server


@pytest.fixture
def page_factory(
    browser: Any, serve: ServeProcess, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """`page_factory(**context_options)` -> a page on serve's web client, already loaded.

    Console errors are collected on `page.console_errors`; on failure every page
    opened gets a full-page screenshot in test-artifacts/web/.
    """
    opened: list[tuple[Any, Any]] = []

    def factory(**context_options: Any) -> Any:
        init_script = context_options.pop("init_script", None)
        context = browser.new_context(base_url=serve.url, **context_options)
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
            name = f"{request.node.name}-{index}.png".replace("/", "_")
            try:
                page.screenshot(path=str(ARTIFACTS / name), full_page=True)
            except Exception as exc:  # a crashed page still must not hide the failure
                print(f"screenshot failed: {exc}")
        context.close()


@pytest.fixture
def page(page_factory: Any) -> Any:
    return page_factory()
