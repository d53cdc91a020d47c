"""The server's API keys: read from the secret on every request here (TTL 0), so a
rotation, a revocation or a broken secret applies without a restart; open routes stay open."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from lens.server import auth
from scarab.serve.responses import gateway_error

from tests.server.conftest import KEY, KeySecret, ring
from tests.server.support import ServerProcess, request

NEXT_KEY = "server-key-two-0123456789abcdef"


@pytest.fixture
def restore(key_secret: KeySecret) -> Iterator[KeySecret]:
    """The secret, put back to the one-key ring the module's server started with."""
    try:
        yield key_secret
    finally:
        key_secret.put(ring(KEY))


def status(server: ServerProcess, path: str, key: str | None) -> int:
    headers = {"x-api-key": key} if key else {}
    return request(server.url, "GET", path, headers=headers)[0]


def test_the_forbidden_answer_is_api_gateways(server: ServerProcess) -> None:
    got_status, headers, body = request(server.url, "GET", "/models")
    gateway = gateway_error("INVALID_API_KEY", {}, "rid")
    assert got_status == gateway.status == 403
    assert body == gateway.body == auth.FORBIDDEN_BODY
    assert headers["x-amzn-errortype"] == gateway.header("x-amzn-ErrorType")
    assert headers["content-type"] == "application/json"


def test_rotation_and_revocation_apply_without_a_restart(
    server: ServerProcess, restore: KeySecret
) -> None:
    assert status(server, "/models", NEXT_KEY) == 403
    restore.put(ring(KEY, NEXT_KEY))  # rotate: the next key beside the old one
    assert status(server, "/models", KEY) == 200
    assert status(server, "/models", NEXT_KEY) == 200
    restore.put(ring(KEY, NEXT_KEY, disabled=(KEY,)))  # the old key disabled
    assert status(server, "/models", KEY) == 403
    restore.put(ring(NEXT_KEY))  # revoked
    assert status(server, "/models", KEY) == 403
    assert status(server, "/models", NEXT_KEY) == 200


SECRETLY = "zq-secret-text-9f3"  # would be in the answer or the log if either leaked


@pytest.mark.parametrize(
    "text",
    [f'{{"keys": [{{"id": "k-1", "name": "n", "value": "{SECRETLY}"}}]}}', f"{SECRETLY} not json"],
    ids=["too-short-key", "not-json"],
)
def test_a_broken_secret_is_503_without_its_text(
    server: ServerProcess, restore: KeySecret, text: str
) -> None:
    restore.put(text)
    got_status, headers, body = request(server.url, "GET", "/models", headers={"x-api-key": KEY})
    assert got_status == 503
    answer = json.loads(body)
    assert answer["error"]["code"] == "keys_unavailable"
    assert answer["request_id"] == headers["x-request-id"]
    assert SECRETLY not in body.decode()
    assert SECRETLY not in server.output()
    # Health checks do not depend on the keys.
    assert status(server, "/health", None) == 200
    assert status(server, "/ping", None) == 200


def test_a_missing_secret_is_503(server: ServerProcess, restore: KeySecret) -> None:
    restore.client().delete_secret(SecretId=restore.name, ForceDeleteWithoutRecovery=True)
    try:
        got_status, _, body = request(server.url, "GET", "/models", headers={"x-api-key": KEY})
        assert got_status == 503
        assert json.loads(body)["error"]["code"] == "keys_unavailable"
        # The log says why (AWS's error code), for whoever runs the server.
        assert '"code":"ResourceNotFoundException"' in server.output()
    finally:
        restore.client().create_secret(Name=restore.name, SecretString=ring(KEY))


def test_every_route_but_health_and_ping_needs_the_key(server: ServerProcess) -> None:
    for path in ("/openapi.json", "/models", "/forecast/bikes-3h", "/stats", "/nowhere"):
        assert status(server, path, None) == 403, path
    for path in ("/health", "/ping"):
        assert status(server, path, None) == 200, path
    assert request(server.url, "POST", "/invocations", body=b"{}")[0] == 403
    assert not auth.needs_key("OPTIONS", "/models")  # preflights: tests/server/test_table.py


def test_the_key_ring_cache_follows_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(auth.TTL_ENV, raising=False)
    assert auth.ttl_seconds() == auth.DEFAULT_TTL_S == 60
    monkeypatch.setenv(auth.TTL_ENV, "5")
    assert auth.ttl_seconds() == 5
    monkeypatch.setenv(auth.TTL_ENV, "soon")
    assert auth.ttl_seconds() == 60
