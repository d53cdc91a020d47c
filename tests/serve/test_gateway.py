"""API Gateway's rules as `scarab serve` enforces them, one by one, over real HTTP.

One serve per module (see conftest.shared): the real function deployed by the deploy
tool into the embedded emulator, plus a probe function (tests/serve/probe/probe.py)
installed into the same REST API to show exactly what the gateway hands a function.
"""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import TEST_GEMINI_KEY
from tests.serve.conftest import SHARED_INTEGRATION_TIMEOUT, Shared
from tests.serve.support import clients, http, state, tiny_jpeg_b64
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer
from tests.support.ports import wait_until

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-headers",
    "access-control-allow-methods",
)


def _gateway_response_headers(shared: Shared, kind: str) -> dict[str, str]:
    """The headers the deployed gateway response `kind` declares (read from the emulator)."""
    apigw, _ = clients(shared.project)
    api_id = state(shared.project)["rest_api_id"]
    resp = apigw.get_gateway_response(restApiId=api_id, responseType=kind)
    out = {}
    for name, value in resp["responseParameters"].items():
        assert value.startswith("'"), "these tests expect static header values"
        out[name.removeprefix("gatewayresponse.header.").lower()] = value.strip("'")
    return out


# --- routes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/health"),
        ("GET", "/"),
        ("DELETE", "/analyze"),
        ("GET", "/predict"),
    ],
)
def test_unknown_route_is_missing_authentication_token(
    shared: Shared, method: str, path: str
) -> None:
    resp = http(f"{shared.api}{path}", method=method, headers={"x-api-key": shared.key})
    assert resp.status == 403
    assert resp.json() == {"message": "Missing Authentication Token"}
    assert resp.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    expected = _gateway_response_headers(shared, "DEFAULT_4XX")
    assert expected, "the deploy tool declares CORS headers on DEFAULT_4XX"
    for name, value in expected.items():
        assert resp.headers[name] == value


def test_health_needs_no_key_and_runs_the_function(shared: Shared) -> None:
    resp = http(f"{shared.api}/health")
    assert resp.status == 200, resp.body
    assert resp.json()["status"] == "ok"
    assert resp.headers["x-amzn-requestid"]


def test_path_parameters_and_greedy_paths_reach_the_function(shared: Shared) -> None:
    resp = http(f"{shared.api}/probe/echo?a=1&a=2&b=x", headers={"X-Custom": "v"})
    event = resp.json()["event"]
    assert event["resource"] == "/probe/{proxy+}"
    assert event["path"] == "/probe/echo"
    assert event["pathParameters"] == {"proxy": "echo"}
    assert event["queryStringParameters"] == {"a": "2", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}


# --- API keys ----------------------------------------------------------------


def test_key_required_method_refuses_missing_and_wrong_keys(shared: Shared) -> None:
    for headers in ({}, {"x-api-key": "not-a-key"}, {"x-api-key": ""}):
        resp = http(f"{shared.api}/models", headers=headers)
        assert resp.status == 403, headers
        assert resp.json() == {"message": "Forbidden"}
        assert resp.headers["x-amzn-errortype"] == "ForbiddenException"
        for name, value in _gateway_response_headers(shared, "DEFAULT_4XX").items():
            assert resp.headers[name] == value
    assert http(f"{shared.api}/models", headers={"x-api-key": shared.key}).status == 200


def test_disabled_key_is_refused_and_reenabled_key_works(shared: Shared) -> None:
    apigw, _ = clients(shared.project)
    plan_id = state(shared.project)["usage_plan_id"]
    key = apigw.create_api_key(name="to-disable", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
    url, headers = f"{shared.api}/models", {"x-api-key": key["value"]}
    wait_until(lambda: http(url, headers=headers).status == 200, what="new key accepted")
    apigw.update_api_key(
        apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
    )
    wait_until(lambda: http(url, headers=headers).status == 403, what="disabled key refused")
    assert http(url, headers=headers).json() == {"message": "Forbidden"}
    apigw.update_api_key(
        apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}]
    )
    wait_until(lambda: http(url, headers=headers).status == 200, what="re-enabled key accepted")


def test_key_outside_the_stages_plans_is_refused(shared: Shared) -> None:
    apigw, _ = clients(shared.project)
    key = apigw.create_api_key(name="no-plan", enabled=True)
    time.sleep(1.2)  # more than two refreshes: the key exists, but in no plan of this stage
    assert http(f"{shared.api}/models", headers={"x-api-key": key["value"]}).status == 403


def test_function_sees_the_api_key_and_identity(shared: Shared) -> None:
    apigw, _ = clients(shared.project)
    st = state(shared.project)
    # The probe's own route needs no key; put one on a second route that does.
    event = http(f"{shared.api}/probe/echo", headers={"x-api-key": shared.key}).json()["event"]
    identity = event["requestContext"]["identity"]
    assert identity["sourceIp"] == "127.0.0.1"
    assert identity["apiKey"] is None  # not a key-required method
    assert event["requestContext"]["stage"] == "dev"
    assert event["requestContext"]["apiId"] == st["rest_api_id"]
    assert apigw.get_rest_api(restApiId=st["rest_api_id"])["id"] == st["rest_api_id"]


# --- usage plans -------------------------------------------------------------


def _plan_with_key(shared: Shared, name: str, **limits: object) -> str:
    """A new usage plan on the stage with one key; returns the key's value."""
    apigw, _ = clients(shared.project)
    api_id = state(shared.project)["rest_api_id"]
    plan = apigw.create_usage_plan(
        name=name, apiStages=[{"apiId": api_id, "stage": "dev"}], **limits
    )
    key = apigw.create_api_key(name=f"{name}-key", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    # Let serve pick the plan up without spending any of its tokens or quota.
    time.sleep(1.2)
    return str(key["value"])


def test_throttle_is_a_token_bucket_with_rate_and_burst(shared: Shared) -> None:
    key = _plan_with_key(shared, "throttled", throttle={"rateLimit": 2.0, "burstLimit": 3})
    url, headers = f"{shared.api}/models", {"x-api-key": key}
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:  # 8 at once: far faster than 2/s can refill
        responses = list(pool.map(lambda _: http(url, headers=headers), range(8)))
    elapsed = time.monotonic() - started
    statuses = sorted(r.status for r in responses)
    # The burst of 3, plus what 2/s refilled while the requests were in flight.
    assert 3 <= statuses.count(200) <= 3 + int(2 * elapsed) + 1, (statuses, elapsed)
    assert 429 in statuses, (statuses, elapsed)
    refused = [r for r in responses if r.status == 429]
    assert len(refused) == 8 - statuses.count(200)
    for resp in refused:
        assert resp.json() == {"message": "Too Many Requests"}
        assert resp.headers["x-amzn-errortype"] == "TooManyRequestsException"
    time.sleep(1.1)  # two tokens back at 2/s
    assert http(url, headers=headers).status == 200


def test_quota_is_limit_exceeded(shared: Shared) -> None:
    key = _plan_with_key(shared, "quota", quota={"limit": 3, "period": "DAY"})
    url, headers = f"{shared.api}/models", {"x-api-key": key}
    statuses = [http(url, headers=headers).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    over = http(url, headers=headers)
    assert over.status == 429
    assert over.json() == {"message": "Limit Exceeded"}
    assert over.headers["x-amzn-errortype"] == "LimitExceededException"
    for name, value in _gateway_response_headers(shared, "DEFAULT_4XX").items():
        assert over.headers[name] == value


def test_plan_change_applies_without_restart(shared: Shared) -> None:
    apigw, _ = clients(shared.project)
    api_id = state(shared.project)["rest_api_id"]
    plan = apigw.create_usage_plan(
        name="changing",
        apiStages=[{"apiId": api_id, "stage": "dev"}],
        quota={"limit": 1, "period": "DAY"},
    )
    key = apigw.create_api_key(name="changing-key", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    url, headers = f"{shared.api}/models", {"x-api-key": key["value"]}
    wait_until(lambda: http(url, headers=headers).status == 429, what="quota of 1 used up")
    apigw.update_usage_plan(
        usagePlanId=plan["id"],
        patchOperations=[{"op": "replace", "path": "/quota/limit", "value": "100"}],
    )
    wait_until(lambda: http(url, headers=headers).status == 200, what="raised quota applied")


# --- sizes ---------------------------------------------------------------------


def test_body_over_10_mb_is_413(shared: Shared) -> None:
    body = b"x" * (10 * 1024 * 1024 + 1)
    resp = http(
        f"{shared.api}/analyze",
        "POST",
        body,
        {"x-api-key": shared.key, "Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert "message" in resp.json()
    for name, value in _gateway_response_headers(shared, "DEFAULT_4XX").items():
        assert resp.headers[name] == value


def test_event_over_lambda_limit_is_request_too_long(shared: Shared) -> None:
    # 6.3 MB of JSON fits API Gateway's 10 MB but not Lambda's 6,291,456-byte event.
    body = json.dumps({"image": "A" * 6_300_000}).encode()
    before = len(shared.gemini.requests)
    resp = http(
        f"{shared.api}/analyze",
        "POST",
        body,
        {"x-api-key": shared.key, "Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert resp.json() == {"message": "Request Too Long"}
    assert len(shared.gemini.requests) == before


def test_event_just_under_the_limit_reaches_the_function(shared: Shared) -> None:
    body = b"B" * 6_000_000
    resp = http(f"{shared.api}/probe/echo", "POST", body, {"Content-Type": "text/plain"})
    assert resp.status == 200
    assert len(resp.json()["event"]["body"]) == 6_000_000


# --- integration timeout --------------------------------------------------------


def test_integration_still_running_is_504(shared: Shared) -> None:
    started = time.monotonic()
    resp = http(f"{shared.api}/probe/sleep?s={SHARED_INTEGRATION_TIMEOUT + 3}")
    elapsed = time.monotonic() - started
    assert resp.status == 504
    assert resp.json() == {"message": "Endpoint request timed out"}
    assert SHARED_INTEGRATION_TIMEOUT - 0.2 <= elapsed < SHARED_INTEGRATION_TIMEOUT + 2
    for name, value in _gateway_response_headers(shared, "DEFAULT_5XX").items():
        assert resp.headers[name] == value


def test_analyze_slower_than_the_integration_timeout_is_504(
    shared: Shared, gemini: GeminiServer
) -> None:
    gemini.reply_delay(SHARED_INTEGRATION_TIMEOUT + 3)
    resp = http(
        f"{shared.api}/analyze",
        "POST",
        json.dumps({"image": tiny_jpeg_b64()}).encode(),
        {"x-api-key": shared.key, "Content-Type": "application/json"},
    )
    assert resp.status == 504, resp.body
    assert resp.json() == {"message": "Endpoint request timed out"}


def test_function_timeout_shorter_than_the_gateways_is_502(shared: Shared) -> None:
    resp = http(f"{shared.api}/probe-short/sleep?s=2.5")  # deployed timeout: 1 s
    assert resp.status == 502
    assert resp.json() == {"message": "Internal server error"}


# --- preflight -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/analyze", "/models", "/health", "/predict/digits"])
def test_options_is_the_deployed_mock_preflight(shared: Shared, path: str) -> None:
    apigw, _ = clients(shared.project)
    api_id = state(shared.project)["rest_api_id"]
    resource_path = "/predict/{model_id}" if path.startswith("/predict/") else path
    resource = next(
        r for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == resource_path
    )
    integration = apigw.get_integration(
        restApiId=api_id, resourceId=resource["id"], httpMethod="OPTIONS"
    )
    assert integration["type"] == "MOCK"
    declared = integration["integrationResponses"]["200"]["responseParameters"]
    resp = http(f"{shared.api}{path}", "OPTIONS", headers={"Origin": "http://localhost:3000"})
    assert resp.status == 200
    for name, value in declared.items():
        header = name.removeprefix("method.response.header.").lower()
        assert resp.headers[header] == value.strip("'")
    assert "access-control-allow-methods" in resp.headers


# --- the proxy event and result ------------------------------------------------


def test_proxy_event_has_the_rest_payload_fields(shared: Shared) -> None:
    resp = http(
        f"{shared.api}/probe/echo?q=1",
        "POST",
        b'{"hello": "world"}',
        {"Content-Type": "application/json", "X-Multi": "v", "User-Agent": "serve-test"},
    )
    data = resp.json()
    event, context = data["event"], data["context"]
    assert event["httpMethod"] == "POST"
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False
    assert event["headers"]["x-multi"] == "v"
    assert event["multiValueHeaders"]["x-multi"] == ["v"]
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    rc = event["requestContext"]
    for field in (
        "requestId",
        "stage",
        "identity",
        "resourcePath",
        "httpMethod",
        "path",
        "accountId",
    ):
        assert field in rc
    assert rc["path"] == "/dev/probe/echo"
    assert rc["identity"]["userAgent"] == "serve-test"
    assert rc["requestId"] == resp.headers["x-amzn-requestid"] == context["aws_request_id"]
    assert context["function_name"] == "scarab-dev-probe"
    assert context["memory_limit_in_mb"] == 256
    assert context["invoked_function_arn"].endswith(":function:scarab-dev-probe")


def test_binary_media_types_follow_api_gateways_rule(shared: Shared) -> None:
    apigw, _ = clients(shared.project)
    api_id = state(shared.project)["rest_api_id"]
    deployed = apigw.get_rest_api(restApiId=api_id)["binaryMediaTypes"]
    assert {"image/jpeg", "image/png", "application/octet-stream"} <= set(deployed)
    assert "application/json" not in deployed
    url = f"{shared.api}/probe/echo"

    def event(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        resp = http(url, "POST", body, headers)
        assert resp.status == 200, resp.body
        return dict(resp.json()["event"])

    # A binary Content-Type: the bytes arrive intact, base64-encoded.
    payload = bytes(range(256))
    got = event(payload, {"Content-Type": "image/png"})
    assert got["isBase64Encoded"] is True and base64.b64decode(got["body"]) == payload
    # So does any body whose (first) Accept type is binary, JSON included.
    got = event(b'{"a": 1}', {"Content-Type": "application/json", "Accept": "image/png, */*"})
    assert got["isBase64Encoded"] is True and base64.b64decode(got["body"]) == b'{"a": 1}'
    # JSON stays text.
    got = event(b'{"a": 1}', {"Content-Type": "application/json", "Accept": "*/*"})
    assert got["isBase64Encoded"] is False and got["body"] == '{"a": 1}'
    # Any other type is text: bytes that are not UTF-8 are mangled, as API Gateway does.
    got = event(b"ok\xff\xfe", {"Content-Type": "text/plain"})
    assert got["isBase64Encoded"] is False and got["body"] == "ok\ufffd\ufffd"
    # A binary result goes out as bytes when the client accepts the binary type.
    raw = http(f"{shared.api}/probe/binary", headers={"Accept": "image/png"})
    assert raw.body.startswith(b"\x89PNG")
    text = http(f"{shared.api}/probe/binary", headers={"Accept": "application/json"})
    assert base64.b64decode(text.body).startswith(b"\x89PNG")


def test_raw_jpeg_upload_reaches_the_function_intact(shared: Shared) -> None:
    jpeg = base64.b64decode(tiny_jpeg_b64())
    resp = http(
        f"{shared.api}/analyze?speed=super-fast",
        "POST",
        jpeg,
        {"x-api-key": shared.key, "Content-Type": "image/jpeg"},
    )
    assert resp.status == 200, resp.body
    assert resp.json()["image"]["bytes_in"] == len(jpeg)


def test_function_environment_is_the_deployed_one(shared: Shared) -> None:
    env = http(f"{shared.api}/probe/echo").json()["env"]
    assert env["PROBE_VAR"] == "one"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "scarab-dev-probe"
    assert env["GOOGLE_GEMINI_BASE_URL"] == shared.gemini.url  # local-only passthrough
    assert env["GOOGLE_API_KEY"] is None  # the key reaches the function through SSM only
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")


def test_redeployed_environment_applies_without_restart(shared: Shared) -> None:
    _, lam = clients(shared.project)
    before = http(f"{shared.api}/probe/echo").json()
    lam.update_function_configuration(
        FunctionName="scarab-dev-probe", Environment={"Variables": {"PROBE_VAR": "two"}}
    )
    try:
        wait_until(
            lambda: http(f"{shared.api}/probe/echo").json()["env"]["PROBE_VAR"] == "two",
            what="new environment in the function",
        )
        after = http(f"{shared.api}/probe/echo").json()
        assert after["pid"] != before["pid"]  # a fresh warm container
    finally:
        lam.update_function_configuration(
            FunctionName="scarab-dev-probe", Environment={"Variables": {"PROBE_VAR": "one"}}
        )
        wait_until(lambda: http(f"{shared.api}/probe/echo").json()["env"]["PROBE_VAR"] == "one")


def test_remaining_time_counts_down_from_the_deployed_timeout(shared: Shared) -> None:
    data = http(f"{shared.api}/probe/sleep?s=0.5").json()
    assert 29_000 < data["start_ms"] <= 30_000
    assert data["start_ms"] - data["end_ms"] >= 450


@pytest.mark.parametrize("action", ["body-not-string", "extra-field", "no-status", "not-an-object"])
def test_malformed_proxy_result_is_502(shared: Shared, action: str) -> None:
    resp = http(f"{shared.api}/probe/{action}")
    assert resp.status == 502
    assert resp.body == b'{"message": "Internal server error"}'
    for name, value in _gateway_response_headers(shared, "DEFAULT_5XX").items():
        assert resp.headers[name] == value


def test_function_error_and_oversized_result_are_502(shared: Shared) -> None:
    for action in ("raise", "big-response"):
        resp = http(f"{shared.api}/probe/{action}")
        assert resp.status == 502, action
        assert resp.json() == {"message": "Internal server error"}
    assert http(f"{shared.api}/probe/echo").status == 200  # the container survived


def test_function_prints_do_not_break_the_runtime(shared: Shared) -> None:
    resp = http(f"{shared.api}/probe/print")
    assert resp.json() == {"printed": True}
    log = (shared.project / ".scarab" / "local" / "logs" / "function.log").read_text()
    assert "printed by the probe" in log


def test_headers_and_multi_value_headers_are_merged(shared: Shared) -> None:
    resp = http(f"{shared.api}/probe/multi-headers")
    assert resp.status == 201
    assert resp.headers["x-one"] == "a"
    assert [v for k, v in resp.header_list if k == "x-many"] == ["1", "2"]


# --- concurrency ------------------------------------------------------------------


def test_concurrent_invocations_are_isolated(shared: Shared) -> None:
    def call(i: int) -> dict[str, object]:
        resp = http(f"{shared.api}/probe/sleep?s=0.5&id={i}")
        assert resp.status == 200
        return dict(resp.json(), header_id=resp.headers["x-amzn-requestid"])

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(16)))
    elapsed = time.monotonic() - started
    assert elapsed < 6.0, f"16 half-second invocations took {elapsed:.1f}s: not concurrent"
    assert [r["id"] for r in results] == [str(i) for i in range(16)]
    request_ids = {r["request_id"] for r in results}
    assert len(request_ids) == 16
    for r in results:
        assert r["request_id"] == r["event_request_id"] == r["header_id"]


# --- the real function, end to end ----------------------------------------------------


def test_analyze_end_to_end(shared: Shared, gemini: GeminiServer) -> None:
    resp = http(
        f"{shared.api}/analyze",
        "POST",
        json.dumps({"image": tiny_jpeg_b64()}).encode(),
        {"x-api-key": shared.key, "Content-Type": "application/json"},
    )
    assert resp.status == 200, resp.body
    body = resp.json()
    text = json.dumps(body)
    assert SAMPLE_ANALYSIS["picture_location"] in text
    assert len(gemini.requests) == 1
    # serve stored the key in the emulator's SSM; the function read it from there.
    assert gemini.requests[0].api_key == TEST_GEMINI_KEY
