"""Session-wide test servers: a moto server (AWS) and a Gemini-compatible server.

Both are real HTTP peers on 127.0.0.1 started by these fixtures and stopped at the
end of the session; tests get fresh state through the function-scoped fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gemini_server import GeminiServer
from tests.support.moto_server import FAKE_CREDENTIALS, MotoServer

TEST_GEMINI_KEY = "test-gemini-key-0123456789"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server_with_managed_policies() -> Iterator[MotoServer]:
    """A second moto server that knows AWS's managed policies (started on first use)."""
    server = MotoServer(managed_policies=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A clean moto server, with AWS_ENDPOINT_URL and fake credentials in the env; the
    one that knows AWS's managed policies for a test marked `managed_policies`."""
    wants_managed = request.node.get_closest_marker("managed_policies") is not None
    name = "moto_server_with_managed_policies" if wants_managed else "moto_server"
    moto_server: MotoServer = request.getfixturevalue(name)
    moto_server.reset()
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield moto_server


@pytest.fixture(scope="session")
def gemini_session_server() -> Iterator[GeminiServer]:
    server = GeminiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gemini(
    gemini_session_server: GeminiServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GeminiServer]:
    """The Gemini-compatible server with an empty script, and the env pointing at it."""
    gemini_session_server.reset()
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini_session_server.url)
    monkeypatch.setenv("GOOGLE_API_KEY", TEST_GEMINI_KEY)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY_PARAM", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY_BACKEND", raising=False)
    yield gemini_session_server
