"""The gateway's pure parts, without processes: routing, limits, templates, proxy results."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scarab.serve.guard import ReadLimits
from scarab.serve.limits import Limiter, TokenBucket, Verdict, period_start
from scarab.serve.proxy_event import (
    IncomingRequest,
    MalformedResult,
    is_binary,
    read_proxy_result,
    request_is_binary,
)
from scarab.serve.responses import HttpResponse, gateway_error
from scarab.serve.routing import Router
from scarab.serve.snapshot import (
    GatewayResponse,
    Method,
    Quota,
    Resource,
    Throttle,
    UsagePlan,
)
from scarab.serve.vtl import render
from scarab.serve.webproxy import check_origin, passed_on


def _resource(path: str, *verbs: str) -> Resource:
    methods = {v: Method(v, False, "NONE", None) for v in verbs}
    return Resource(id=path, path=path, methods=MappingProxyType(methods))


ROUTER = Router(
    [
        _resource("/"),
        _resource("/health", "GET"),
        _resource("/predict/{model_id}", "POST"),
        _resource("/predict/special", "POST"),
        _resource("/files/{proxy+}", "ANY"),
    ]
)


def test_literal_beats_parameter_beats_greedy() -> None:
    special = ROUTER.match("POST", "/predict/special")
    assert special is not None and special.resource.path == "/predict/special"
    other = ROUTER.match("POST", "/predict/digits")
    assert other is not None and other.path_parameters == {"model_id": "digits"}
    greedy = ROUTER.match("DELETE", "/files/a/b/c")
    assert greedy is not None and greedy.path_parameters == {"proxy": "a/b/c"}
    assert greedy.method.http_method == "ANY"


@pytest.mark.parametrize(
    ("verb", "path"),
    [("GET", "/"), ("POST", "/health"), ("GET", "/predict/x"), ("GET", "/nope"), ("GET", "/files")],
)
def test_no_route(verb: str, path: str) -> None:
    assert ROUTER.match(verb, path) is None


def test_token_bucket_refills_at_rate_up_to_burst() -> None:
    bucket = TokenBucket.full(Throttle(rate=10.0, burst=3), now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.1)  # one token after 0.1 s at 10/s
    assert not bucket.take(0.1)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped


@given(rate=st.floats(1, 100), burst=st.integers(1, 50), seconds=st.floats(1, 5))
def test_token_bucket_admits_burst_plus_rate_times_time(
    rate: float, burst: int, seconds: float
) -> None:
    # Clients far faster than the rate: one arrival per 1/20 of a token.
    bucket = TokenBucket.full(Throttle(rate=rate, burst=burst), now=0.0)
    steps = int(seconds * rate * 20)
    admitted = sum(bucket.take(seconds * i / steps) for i in range(steps + 1))
    expected = min(steps + 1, burst + rate * seconds)
    assert expected * 0.9 - 1 <= admitted <= expected + 1


def test_quota_counts_per_key_and_starts_from_the_offset() -> None:
    plan = UsagePlan("p", "p", None, Quota(limit=3, period="DAY", offset=1))
    limiter = Limiter()
    assert [limiter.check(plan, "k1", "/x/GET") for _ in range(3)] == [
        Verdict.OK,
        Verdict.OK,
        Verdict.QUOTA_EXCEEDED,
    ]
    assert limiter.check(plan, "k2", "/x/GET") is Verdict.OK
    assert limiter.remaining(plan, "k1") == 0


def test_method_throttle_applies_on_its_method_only() -> None:
    plan = UsagePlan(
        "p",
        "p",
        None,
        None,
        method_throttles=MappingProxyType({"/a/GET": Throttle(rate=0.001, burst=1)}),
    )
    limiter = Limiter()
    assert limiter.check(plan, "k", "/a/GET") is Verdict.OK
    assert limiter.check(plan, "k", "/a/GET") is Verdict.THROTTLED
    assert limiter.check(plan, "k", "/b/GET") is Verdict.OK


def test_quota_periods_start_on_utc_boundaries() -> None:
    now = datetime(2026, 11, 19, 15, 30, tzinfo=UTC)  # a Thursday
    assert period_start("DAY", now) == datetime(2026, 11, 19, tzinfo=UTC)
    assert period_start("WEEK", now) == datetime(2026, 11, 16, tzinfo=UTC)
    assert period_start("MONTH", now) == datetime(2026, 11, 1, tzinfo=UTC)


def test_gateway_error_uses_family_then_specific_response() -> None:
    responses = {
        "DEFAULT_4XX": GatewayResponse(
            "DEFAULT_4XX",
            None,
            MappingProxyType({"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}),
            MappingProxyType({}),
        ),
        "THROTTLED": GatewayResponse(
            "THROTTLED",
            503,
            MappingProxyType({"gatewayresponse.header.X-Why": "'slow down'"}),
            MappingProxyType({"application/json": '{"error":$context.error.messageString}'}),
        ),
    }
    forbidden = gateway_error("INVALID_API_KEY", responses, "rid")
    assert (forbidden.status, forbidden.body) == (403, b'{"message":"Forbidden"}')
    assert forbidden.header("Access-Control-Allow-Origin") == "*"
    throttled = gateway_error("THROTTLED", responses, "rid")
    assert throttled.status == 503
    assert throttled.body == b'{"error":"Too Many Requests"}'
    assert throttled.header("X-Why") == "slow down"
    assert throttled.header("Access-Control-Allow-Origin") == "*"


def test_vtl_preflight_echoes_an_allowed_origin_only() -> None:
    template = (
        '#set($origin = $input.params("Origin"))\n'
        '#if($origin == "")#set($origin = $input.params("origin"))#end\n'
        '#if($origin == "https://a.example" || $origin == "https://b.example")\n'
        "#set($context.responseOverride.header.Access-Control-Allow-Origin = $origin)\n"
        "#end"
    )

    def allow(origin: str) -> str | None:
        out = render(template, path_parameters={}, query={}, headers={"origin": origin}, context={})
        assert out.body.strip() == ""
        return out.headers.get("Access-Control-Allow-Origin")

    assert allow("https://b.example") == "https://b.example"
    assert allow("https://evil.example") is None


@pytest.mark.parametrize(
    "result",
    [
        "text",
        {"statusCode": "abc"},
        {"statusCode": 200, "body": {"a": 1}},
        {"statusCode": 200, "headers": {"x": {"nested": 1}}},
        {"statusCode": 200, "multiValueHeaders": {"x": "not-a-list"}},
        {"statusCode": 200, "isBase64Encoded": "yes"},
        {"statusCode": 200, "extra": 1},
        {"statusCode": 700},
    ],
)
def test_malformed_proxy_results(result: object) -> None:
    with pytest.raises(MalformedResult):
        read_proxy_result(result, accept=None, binary_media_types=())


def test_proxy_result_headers_merge_and_default_content_type() -> None:
    resp = read_proxy_result(
        {
            "statusCode": 200,
            "headers": {"A": "1", "B": "x"},
            "multiValueHeaders": {"A": ["1", "2"]},
        },
        accept=None,
        binary_media_types=(),
    )
    assert [v for k, v in resp.headers if k == "A"] == ["1", "2"]
    assert resp.header("content-type") == "application/json"
    assert resp.body == b""


def test_binary_result_decoded_only_for_an_accepted_binary_type() -> None:
    result = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    binary = read_proxy_result(result, accept="image/png", binary_media_types=("image/*",))
    assert binary.body == b"\x00\x01"
    text = read_proxy_result(result, accept="application/json", binary_media_types=("image/*",))
    assert text.body == result["body"].encode()  # type: ignore[union-attr]


def _request(headers: list[tuple[str, str]]) -> IncomingRequest:
    return IncomingRequest("POST", "/analyze", "", headers, b"x", "127.0.0.1", "h", 80)


def test_request_is_binary_by_content_type_or_first_accept() -> None:
    types = ("image/jpeg", "application/octet-stream")
    assert request_is_binary(_request([("content-type", "image/jpeg")]), types)
    assert request_is_binary(_request([("accept", "image/jpeg, text/html")]), types)
    # Only the first Accept type counts, and */* matches no concrete binary type.
    assert not request_is_binary(_request([("accept", "text/html, image/jpeg")]), types)
    assert not request_is_binary(_request([("accept", "*/*")]), types)
    json_request = _request([("content-type", "application/json"), ("accept", "*/*")])
    assert not request_is_binary(json_request, types)
    assert not request_is_binary(_request([("content-type", "image/jpeg")]), ())


def test_binary_media_type_matching() -> None:
    assert is_binary("image/png; charset=x", ("image/*",))
    assert is_binary("application/octet-stream", ("application~1octet-stream",))
    assert not is_binary("application/json", ("image/*",))
    assert not is_binary(None, ("*/*",))


def test_vtl_splits_and_balances_outside_quotes_and_parentheses() -> None:
    from scarab.serve.vtl import _balanced, _split_top

    expr = "$a == 'x||y' || ($b && $c) || \"(\""
    assert _split_top(expr, "||") == ["$a == 'x||y' ", " ($b && $c) ", ' "("']
    assert _split_top("$a && 'b && c'", "&&") == ["$a ", " 'b && c'"]
    text = "#if($a == ')' && ($b))rest"
    assert text[_balanced(text, 4) :] == "rest"
    with pytest.raises(Exception, match="unbalanced"):
        _balanced("#if($a == 1", 4)


# --- Read deadlines: the emulator's phases and cuts, serve's pace and proxy rules.


@pytest.fixture
def deadlines() -> Iterator[Any]:
    from scarab.emulator import _Deadlines

    watcher = _Deadlines(ReadLimits(header_timeout=0.3, body_timeout=0.5, min_body_bytes=1024))
    try:
        yield watcher
    finally:
        watcher.stop()


def _cut_seen(sock: socket.socket, within: float = 30.0) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_head_cut_for_lateness_is_refused_even_if_it_then_completes(deadlines: Any) -> None:
    # The race: the handler finishes reading the head just as its deadline passes. The
    # cut and the "head done" happen under one lock, so the request is either refused
    # or never cut, never acted on with its connection shut.
    ours, theirs = socket.socketpair()
    with ours, theirs:
        deadlines.await_head(ours)
        assert _cut_seen(theirs)
        assert deadlines.head_done(ours, False, None, 40) is False
        assert deadlines.body_done(ours) is False


def test_a_finished_head_is_not_cut_or_evicted(deadlines: Any) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        deadlines.await_head(ours)
        assert deadlines.head_done(ours, False, None, 40) is True
        assert deadlines.evict() is False  # in flight: not a candidate
        assert deadlines.body_done(ours) is True


def test_idle_first_then_slow_bodies_are_evicted_and_a_cut_body_is_not_processed(
    deadlines: Any,
) -> None:
    pairs = [socket.socketpair() for _ in range(2)]
    try:
        (body, body_peer), (idle, idle_peer) = pairs
        deadlines.await_head(body)
        assert deadlines.head_done(body, True, 1_000_000, 40)  # its body has not started
        deadlines.await_head(idle)  # waiting for a next request
        assert deadlines.evict() is True
        assert _cut_seen(idle_peer)
        assert deadlines.evict() is True  # then the body below the pace
        assert _cut_seen(body_peer)
        assert deadlines.body_done(body) is False
        assert deadlines.evict() is False
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()


def test_a_body_below_the_pace_is_cut_and_one_above_it_is_not(deadlines: Any) -> None:
    pairs = [socket.socketpair() for _ in range(2)]
    try:
        (slow, slow_peer), (steady, steady_peer) = pairs
        for sock in (slow, steady):
            deadlines.await_head(sock)
            assert deadlines.head_done(sock, True, 10_000_000, 40)
        # The steady body brings 4 KB each tenth of a second, the slow one a byte.
        cut = False
        deadline = time.monotonic() + 30.0
        while not cut and time.monotonic() < deadline:
            deadlines.progress(steady, 4096)
            deadlines.progress(slow, 1)
            cut = _cut_seen(slow_peer, 0.1)
        assert cut, "a body a byte at a time outlived its window"
        assert deadlines.body_done(slow) is False
        assert deadlines.body_done(steady) is True
        steady_peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            steady_peer.recv(1)  # still open: no EOF
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()


def test_body_pace() -> None:
    limits = ReadLimits(body_timeout=30.0, min_body_bytes=1024)
    assert limits.body_slow(0, 0.5)  # nothing yet: judged over a whole window
    assert not limits.body_slow(2 * 1024 * 1024, 17.5)  # 2 MB in 17.5 s
    assert limits.body_slow(30, 30.0)  # a byte a second
    assert not limits.body_slow(1024, 30.0)
    assert limits.body_slow(1024, 60.0)


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:3000", "127.0.0.1:3000", True),
        ("http://localhost", "localhost:80", True),  # default port written or not
        ("http://localhost:80", "localhost", True),
        ("HTTP://LocalHost:3000", "localhost:3000", True),
        ("https://localhost:3000", "localhost:3000", False),  # another scheme
        ("http://localhost:3001", "localhost:3000", False),
        ("null", "localhost:3000", False),
        ("http://[::1]:3000", "[::1]:3000", True),
    ],
)
def test_proxy_same_origin_normalises_default_ports(origin: str, host: str, allowed: bool) -> None:
    assert check_origin(origin, host)[0] is allowed


def test_proxy_allowed_origins_match_with_default_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://friend.example:443, HTTP://Other.Example:80/")
    for origin in ("https://friend.example", "http://other.example", "https://friend.example:443"):
        ok, cors = check_origin(origin, "127.0.0.1:3000")
        assert ok, origin
        assert ("access-control-allow-origin", origin) in cors
    assert not check_origin("https://friend.example:8443", "127.0.0.1:3000")[0]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_proxy_does_not_pass_a_redirect_on(status: int) -> None:
    upstream = HttpResponse(status, [("location", "https://elsewhere.example/")], b"")
    answer = passed_on(upstream, "the-key", [])
    assert answer.status == 502
    error = json.loads(answer.body)["error"]
    assert error["code"] == "upstream_unreachable"
    assert "redirect" in error["message"]
    assert all(name != "location" for name, _ in answer.headers)


def test_proxy_passes_other_answers_with_the_key_redacted() -> None:
    upstream = HttpResponse(
        429, [("retry-after", "3"), ("x-secret", "s")], b'{"message": "the-key"}'
    )
    answer = passed_on(upstream, "the-key", [("vary", "Origin")])
    assert answer.status == 429
    assert answer.body == b'{"message": "[redacted]"}'
    assert ("retry-after", "3") in answer.headers
    assert ("vary", "Origin") in answer.headers
    assert all(name != "x-secret" for name, _ in answer.headers)


def test_webproxy_maps_the_upload_and_job_routes_and_forwards_the_idempotency_key() -> None:
    from scarab.serve.webproxy import FORWARDED_REQUEST_HEADERS, target

    assert target("/api/uploads") == ("POST", "/uploads")
    assert target("/api/jobs") == ("POST", "/jobs")
    assert target("/api/jobs/" + "a" * 32) == ("GET", "/jobs/" + "a" * 32)
    assert target("/api/jobs/x/y") is None
    assert "idempotency-key" in FORWARDED_REQUEST_HEADERS
