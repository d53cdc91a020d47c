"""Property tests: no generated body or event makes the handler raise, and client faults
never become 5xx. Gemini is reachable and healthy, so every 5xx would be our fault."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.function.events import EVENT_BUILDERS, FakeContext, jpeg, png, response_json
from tests.support.gemini_server import GeminiServer

pytestmark = pytest.mark.emulator
Invoke = Callable[..., dict[str, Any]]

GOOD_IMAGES = [jpeg((24, 16)), png((10, 10), alpha=True)]
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "image/jpeg",
    "image/png",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "garbage/\u00e9",
]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
image_values = st.one_of(
    json_values,
    st.sampled_from([base64.b64encode(i).decode() for i in GOOD_IMAGES]),
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from(GOOD_IMAGES).map(
        lambda b: f"data:image/jpeg;base64,{base64.urlsafe_b64encode(b).decode()}"
    ),
    st.sampled_from(GOOD_IMAGES).map(lambda b: base64.b64encode(b[: len(b) // 2]).decode()),
)
request_objects = st.fixed_dictionaries(
    {},
    optional={
        "image": image_values,
        "speed": st.one_of(st.sampled_from(["regular", "fast", "super-fast"]), json_values),
        "imageType": st.one_of(st.sampled_from(["tomb", "temple", "other"]), json_values),
        "extra": json_values,
    },
)
bodies = st.one_of(
    request_objects.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=80),
    st.sampled_from(GOOD_IMAGES),
    st.none(),
)


def _assert_answer(response: Any) -> int:
    assert isinstance(response, dict) and isinstance(response["statusCode"], int)
    status: int = response["statusCode"]
    if status >= 400 and response.get("body"):
        body = response_json(response)
        assert set(body) == {"error", "request_id"}
        assert "Traceback" not in response["body"]
    return status


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(sorted(EVENT_BUILDERS)),
    body=bodies,
    content_type=st.sampled_from(CONTENT_TYPES),
    b64=st.booleans(),
    query=st.dictionaries(st.sampled_from(["speed", "imageType", "x"]), st.text(max_size=10)),
)
def test_no_body_yields_a_5xx(
    gemini: GeminiServer,
    invoke: Invoke,
    kind: str,
    body: Any,
    content_type: str | None,
    b64: bool,
    query: dict[str, str],
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    event = EVENT_BUILDERS[kind](body=body, headers=headers, query=query or None, b64=b64)
    status = _assert_answer(invoke(event))
    assert status < 500, event


methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", "get"])
paths = st.one_of(
    st.sampled_from(["/analyze", "/health", "/openapi.json", "/", "//analyze", "/analyze/"]),
    st.text(max_size=20).map(lambda s: "/" + s),
)
headers_st = st.dictionaries(
    st.sampled_from(["Origin", "content-type", "X-Api-Key", "Accept", "origin", "\u00ff"]),
    st.text(max_size=30),
    max_size=4,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(sorted(EVENT_BUILDERS)),
    method=methods,
    path=paths,
    headers=headers_st,
)
def test_any_request_line_is_answered_without_a_5xx(
    gemini: GeminiServer, invoke: Invoke, kind: str, method: str, path: str, headers: dict[str, str]
) -> None:
    event = EVENT_BUILDERS[kind](method=method, path=path, headers=headers)
    assert _assert_answer(invoke(event)) < 500


mangled_events = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(
            [
                "httpMethod",
                "resource",
                "path",
                "version",
                "routeKey",
                "rawPath",
                "requestContext",
                "headers",
                "multiValueHeaders",
                "body",
                "isBase64Encoded",
                "queryStringParameters",
                "cookies",
            ]
        ),
        json_values,
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kind=st.sampled_from(sorted(EVENT_BUILDERS)), patch=mangled_events)
def test_mangled_events_never_raise(gemini: GeminiServer, kind: str, patch: Any) -> None:
    from lens.handler import lambda_handler

    event = EVENT_BUILDERS[kind](body={"image": "x"})
    if isinstance(patch, dict):
        event.update(patch)
    else:
        event = patch
    _assert_answer(lambda_handler(event, FakeContext()))


# --- hostile JSON: client faults on every route, never a 5xx or an ERROR log ---------

ROUTES = [
    ("POST", "/analyze"),
    ("POST", "/predict/digits"),
    ("POST", "/predict/tabular"),
    ("POST", "/predict/bikes-3h"),
    ("GET", "/forecast/bikes-1h"),
    ("POST", "/predict/nope"),
    ("GET", "/models"),
    ("GET", "/health"),
    ("POST", "/no/such/route"),
]
ODD_TEXT = [
    "\ud800",  # a lone high surrogate
    "\udfff",  # a lone low surrogate
    "\x00",
    "a\x00b",
    "\u202e",  # right-to-left override
    "\u200f\u200e",  # RTL and LTR marks
    "\ufeff",  # BOM
    "\U0001f600",
    "\u0301",  # a combining mark with nothing to combine with
]


def _nested(depth: int, kind: str, leaf: str) -> str:
    if kind == "list":
        return "[" * depth + leaf + "]" * depth
    return '{"a":' * depth + leaf + "}" * depth


hostile_values = st.one_of(
    # Nesting from harmless to far past the parser's recursion limit.
    st.builds(
        _nested,
        st.one_of(st.integers(1, 1200), st.integers(1200, 120_000)),
        st.sampled_from(["list", "dict"]),
        st.sampled_from(["1", '"x"', "null", "[]"]),
    ),
    # Integers past Python's 4300-digit int() limit, and long floats/exponents.
    st.integers(4000, 20_000).map(lambda n: "9" * n),
    st.integers(4000, 20_000).map(lambda n: "-" + "1" * n),
    st.integers(400, 5000).map(lambda n: "1" * n + "." + "5" * n + "e" + "9" * 10),
    st.sampled_from(["1e999", "-1e999", "1e-999", "NaN", "Infinity", "-Infinity"]),
    # Long strings (escaped or raw), and odd unicode both raw and as JSON escapes.
    st.integers(10_000, 2_000_000).map(lambda n: json.dumps("A" * n)),
    st.integers(1000, 200_000).map(lambda n: '"' + "\\u0000" * n + '"'),
    st.lists(st.sampled_from(ODD_TEXT), min_size=1, max_size=6).map(
        lambda parts: '"' + "".join(parts) + '"'
    ),
    st.lists(st.sampled_from(ODD_TEXT), min_size=1, max_size=6).map(
        lambda parts: json.dumps("".join(parts))
    ),
)
FIELDS = ["image", "speed", "imageType", "features", "mime_type", "extra", "\ud800"]


def _body(value: str, field: str | None, wrap_features: bool) -> str:
    if field is None:
        return value  # the value is the whole body
    if wrap_features:
        return '{"features": {' + json.dumps(field) + ": " + value + "}}"
    return "{" + json.dumps(field) + ": " + value + "}"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(sorted(EVENT_BUILDERS)),
    route=st.sampled_from(ROUTES),
    value=hostile_values,
    field=st.one_of(st.none(), st.sampled_from(FIELDS)),
    wrap_features=st.booleans(),
    b64=st.booleans(),
    content_type=st.sampled_from([None, "application/json", "text/plain"]),
)
def test_hostile_json_is_a_client_fault_on_every_route(
    gemini: GeminiServer,
    invoke: Invoke,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    route: tuple[str, str],
    value: str,
    field: str | None,
    wrap_features: bool,
    b64: bool,
    content_type: str | None,
) -> None:
    method, path = route
    body = _body(value, field, wrap_features)
    headers = {"Content-Type": content_type} if content_type else {}
    event = EVENT_BUILDERS[kind](method=method, path=path, body=body, headers=headers, b64=b64)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status = _assert_answer(invoke(event))
    assert status < 500, (kind, route, body[:200])
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], (kind, route, body[:200])


@pytest.mark.parametrize("kind", sorted(EVENT_BUILDERS))
@pytest.mark.parametrize("path", ["/analyze", "/predict/digits", "/predict/tabular"])
@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"image": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"features": ' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "}",
        '{"image": ' + "7" * 5000 + "}",
        '{"features": {"mean_radius": ' + "7" * 5000 + "}}",
    ],
    ids=["deep-list", "deep-image", "deep-features", "long-int-image", "long-int-feature"],
)
@pytest.mark.parametrize("b64", [False, True])
def test_too_deep_or_too_long_numbers_are_malformed_json(
    invoke: Invoke, caplog: pytest.LogCaptureFixture, kind: str, path: str, body: str, b64: bool
) -> None:
    with caplog.at_level(logging.INFO):
        response = invoke(EVENT_BUILDERS[kind](path=path, body=body, b64=b64))
    assert response["statusCode"] == 400, response["body"]
    assert response_json(response)["error"]["code"] == "malformed_json"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
