"""Fixtures for the server's tests: an API-key ring in the session moto server, the
server process that uses it (module-scoped: started once per module, stopped at its
end), and the Lambda handler in-process with the same settings."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from lens.server.keys import KeyRing, ServerKey, dump_keys

from tests.conftest import TEST_GEMINI_KEY
from tests.function.conftest import SCARAB_VARS, reset_lens
from tests.function.events import FakeContext
from tests.server.support import FAST_ENV, ServerProcess, aws_env, start_server
from tests.support.gemini_server import GeminiServer
from tests.support.moto_server import MotoServer

# Small, so an oversized body is cheap to send (the function's limit is configurable).
MAX_BODY = 65536
KEY = "server-key-one-0123456789abcdef"
# Settings both adapters get (the server in its environment, the handler through monkeypatch).
SHARED_ENV = {**FAST_ENV, "SCARAB_MAX_BODY_BYTES": str(MAX_BODY)}


def ring(*values: str, disabled: tuple[str, ...] = ()) -> str:
    keys = [
        ServerKey(id=f"k-{i}", name=f"scarab-test-key-{i}", value=v, enabled=v not in disabled)
        for i, v in enumerate(values, 1)
    ]
    return dump_keys(KeyRing(keys=tuple(keys)))


@dataclass
class KeySecret:
    name: str
    moto: MotoServer

    def put(self, text: str) -> None:
        self.client().put_secret_value(SecretId=self.name, SecretString=text)

    def client(self) -> Any:
        return boto3.client(
            "secretsmanager",
            region_name="us-east-1",
            endpoint_url=self.moto.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def key_secret(moto_server: MotoServer) -> KeySecret:
    secret = KeySecret(f"scarab-test/fargate-api-keys-{uuid.uuid4().hex[:8]}", moto_server)
    secret.client().create_secret(Name=secret.name, SecretString=ring(KEY))
    return secret


@pytest.fixture(scope="module")
def server(key_secret: KeySecret, gemini_session_server: GeminiServer) -> Iterator[ServerProcess]:
    """The server with keys (re-read on every request: TTL 0, so a test that changes the
    secret sees it at once), the endpoint model `tabular`, and Gemini at the test server."""
    process = start_server(
        {
            **aws_env(key_secret.moto),
            **SHARED_ENV,
            "SCARAB_API_KEYS_SECRET": key_secret.name,
            "SCARAB_API_KEYS_TTL_S": "0",
            "SCARAB_ENDPOINT_MODELS": "tabular",
            "GOOGLE_GEMINI_BASE_URL": gemini_session_server.url,
            "GOOGLE_API_KEY": TEST_GEMINI_KEY,
        }
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def handler(
    monkeypatch: pytest.MonkeyPatch, gemini: GeminiServer
) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """lens.handler.lambda_handler in this process, with the server's settings."""
    from lens.handler import lambda_handler

    for name in SCARAB_VARS:
        if name not in {"GOOGLE_API_KEY"}:
            monkeypatch.delenv(name, raising=False)
    for name, value in SHARED_ENV.items():
        monkeypatch.setenv(name, value)
    reset_lens()

    def call(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = lambda_handler(event, FakeContext())
        return result

    yield call
    reset_lens()


def json_body(data: bytes | str) -> Any:
    return json.loads(data)
