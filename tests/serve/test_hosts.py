"""DNS rebinding: serve (static files, `/api/*`, the stage) and its embedded emulator
answer only for loopback's Host names; the proxy's same-origin rule includes the scheme."""

from __future__ import annotations

import json
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest

from tests.serve.conftest import Shared
from tests.serve.support import clients, emulator_url, http, tiny_jpeg_b64
from tests.support.gemini_server import GeminiServer

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

FOREIGN_HOSTS = ("attacker.example", "attacker.example:{port}", "127.0.0.1.nip.io:{port}")


def _raw(
    url: str, method: str, path: str, host: str, body: bytes | None = None
) -> tuple[int, bytes]:
    """One request with exactly this Host header (urllib would write its own)."""
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        if body is not None:
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _analyze_body() -> bytes:
    return json.dumps({"image": tiny_jpeg_b64()}).encode()


@pytest.mark.parametrize("template", FOREIGN_HOSTS)
def test_serve_refuses_foreign_hosts(shared: Shared, gemini: GeminiServer, template: str) -> None:
    url = shared.serve.url
    host = template.format(port=shared.serve.port)
    for method, path, body in [
        ("GET", "/", None),
        ("GET", "/app.js", None),
        ("POST", "/api/analyze", _analyze_body()),
        ("GET", "/api/models", None),
        ("GET", "/dev/health", None),
    ]:
        status, text = _raw(url, method, path, host, body)
        assert status == 421, (method, path, host, status, text[:200])
        assert b"Misdirected" in text
        assert shared.key.encode() not in text
    assert gemini.requests == [], "a refused request still reached the model"


def test_serve_answers_loopback_hosts(shared: Shared) -> None:
    port = shared.serve.port
    hosts = [f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"]
    for host in hosts:
        for path in ("/", "/dev/health", "/api/health"):
            status, text = _raw(shared.serve.url, "GET", path, host)
            assert status == 200, (host, path, status, text[:200])
    # A loopback name with another port is not this server.
    status, _ = _raw(shared.serve.url, "GET", "/dev/health", f"localhost:{port + 1}")
    assert status == 421


def test_emulator_refuses_foreign_hosts_and_serves_boto3(shared: Shared) -> None:
    url = emulator_url(shared.project)
    port = urlsplit(url).port
    for host in ("attacker.example", f"attacker.example:{port}"):
        for path in ("/moto-api/", "/moto-api/data.json"):
            status, text = _raw(url, "GET", path, host)
            assert status == 421, (host, path, status, text[:200])
        # The SSM call that would read the stored Gemini key, by a rebinding page.
        ssm_call = b'{"Name": "x", "WithDecryption": true}'
        status, text = _raw(url, "POST", "/", host, ssm_call)
        assert status == 421, (host, status, text[:200])
    status, _ = _raw(url, "GET", "/moto-api/", f"127.0.0.1:{port}")
    assert status == 200
    apigw, lam = clients(shared.project)  # boto3 sends Host: 127.0.0.1:PORT
    assert apigw.get_rest_apis()["items"]
    assert lam.list_functions()["Functions"]


def test_proxy_same_origin_includes_the_scheme(shared: Shared) -> None:
    base = shared.serve.url  # http://127.0.0.1:PORT
    same = http(f"{base}/api/health", headers={"Origin": base})
    assert same.status == 200, same.body
    https_twin = base.replace("http://", "https://", 1)
    other = http(f"{base}/api/health", headers={"Origin": https_twin})
    assert other.status == 403, other.body
    assert other.json()["error"]["code"] == "origin_not_allowed"
