"""The web client's origin: static files at `/` and the `/api/*` proxy with the key kept
server-side (the same contract as web-client/api/analyze.js on Vercel)."""

from __future__ import annotations

import json

import pytest

from tests.serve.conftest import Shared
from tests.serve.support import http, tiny_jpeg_b64
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer, Reply

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


def _analyze_body() -> bytes:
    return json.dumps({"image": tiny_jpeg_b64()}).encode()


def _assert_no_key(shared: Shared, resp_headers: dict[str, str], body: bytes) -> None:
    assert shared.key.encode() not in body
    assert all(shared.key not in v for v in resp_headers.values())
    assert "x-api-key" not in resp_headers


def test_api_analyze_forwards_with_the_key_added(shared: Shared, gemini: GeminiServer) -> None:
    resp = http(
        f"{shared.serve.url}/api/analyze",
        "POST",
        _analyze_body(),
        {"Content-Type": "application/json", "Origin": shared.serve.url},
    )
    assert resp.status == 200, resp.body
    assert SAMPLE_ANALYSIS["picture_location"] in json.dumps(resp.json())
    assert len(gemini.requests) == 1
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-amzn-requestid"]
    _assert_no_key(shared, resp.headers, resp.body)


def test_api_analyze_body_limit_is_vercels(shared: Shared, gemini: GeminiServer) -> None:
    resp = http(
        f"{shared.serve.url}/api/analyze",
        "POST",
        b"{" + b" " * 4_500_000 + b"}",
        {"Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert resp.json()["error"]["code"] == "payload_too_large"
    assert resp.json()["error"]["message"]
    assert gemini.requests == []
    # The gateway's own limit is higher: the same body straight to the stage is no 413.
    direct = http(
        f"{shared.api}/probe/echo", "POST", b"x" * 4_600_000, {"Content-Type": "text/plain"}
    )
    assert direct.status == 200


def test_api_passes_status_retry_after_and_body_through(
    shared: Shared, gemini: GeminiServer
) -> None:
    gemini.default = Reply("error", status=429, retry_after="120")
    headers = {"Content-Type": "application/json"}
    direct = http(
        f"{shared.api}/analyze", "POST", _analyze_body(), {**headers, "x-api-key": shared.key}
    )
    proxied = http(f"{shared.serve.url}/api/analyze", "POST", _analyze_body(), headers)
    assert direct.status == proxied.status
    assert direct.status >= 400
    assert proxied.json()["error"]["code"] == direct.json()["error"]["code"]
    assert proxied.headers.get("retry-after") == direct.headers.get("retry-after")
    _assert_no_key(shared, proxied.headers, proxied.body)


def test_api_health_is_forwarded(shared: Shared) -> None:
    resp = http(f"{shared.serve.url}/api/health")
    assert resp.status == 200
    assert resp.json()["status"] == "ok"


def test_api_models_and_predict_are_forwarded(shared: Shared) -> None:
    direct = http(f"{shared.api}/models", headers={"x-api-key": shared.key})
    proxied = http(f"{shared.serve.url}/api/models")
    assert proxied.status == direct.status == 200
    strip = lambda data: {k: v for k, v in data.items() if k != "request_id"}  # noqa: E731
    assert strip(proxied.json()) == strip(direct.json())
    body = json.dumps({"inputs": [[0.0]]}).encode()
    headers = {"Content-Type": "application/json"}
    direct_p = http(
        f"{shared.api}/predict/no-such-model", "POST", body, {**headers, "x-api-key": shared.key}
    )
    proxied_p = http(f"{shared.serve.url}/api/predict/no-such-model", "POST", body, headers)
    assert proxied_p.status == direct_p.status
    assert proxied_p.json()["error"]["code"] == direct_p.json()["error"]["code"]


def test_api_stats_is_forwarded_with_since_only(shared: Shared) -> None:
    # The key is required on the API itself, like /analyze; the proxy adds it.
    assert http(f"{shared.api}/stats?since=7d").status == 403
    direct = http(f"{shared.api}/stats?since=7d", headers={"x-api-key": shared.key})
    proxied = http(f"{shared.serve.url}/api/stats?since=7d&x-api-key=nope&other=1")
    assert proxied.status == direct.status == 200, proxied.body
    assert proxied.json()["since"] == direct.json()["since"] == "7d"
    assert proxied.json()["from"][:13] == direct.json()["from"][:13]
    bad = http(f"{shared.serve.url}/api/stats?since=forever")
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_since"
    _assert_no_key(shared, proxied.headers, proxied.body)


def test_api_preflight_and_foreign_origins(shared: Shared) -> None:
    pre = http(f"{shared.serve.url}/api/analyze", "OPTIONS", headers={"Origin": shared.serve.url})
    assert pre.status == 204
    assert "POST" in pre.headers["access-control-allow-methods"]
    foreign = http(
        f"{shared.serve.url}/api/analyze",
        "POST",
        b"{}",
        {"Content-Type": "application/json", "Origin": "https://evil.example"},
    )
    assert foreign.status == 403
    assert foreign.json()["error"]["code"] == "origin_not_allowed"
    wrong_method = http(f"{shared.serve.url}/api/analyze")
    assert wrong_method.status == 405
    unknown = http(f"{shared.serve.url}/api/nothing-here")
    assert unknown.status == 404


def test_web_client_is_served_at_the_root(shared: Shared) -> None:
    public = shared.project / "web-client" / "public"  # the copy serve was started with
    if not (public / "index.html").is_file():
        pytest.skip("the web client has no index.html yet")
    page = http(f"{shared.serve.url}/")
    assert page.status == 200
    assert page.body == (public / "index.html").read_bytes()
    assert page.headers["content-type"].startswith("text/html")
    script = http(f"{shared.serve.url}/app.js")
    assert script.status == 200
    assert script.body == (public / "app.js").read_bytes()
    assert http(f"{shared.serve.url}/no-such-file.txt").status == 404
