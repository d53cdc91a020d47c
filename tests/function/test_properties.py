"""Property tests: no generated body or event makes the handler raise, and client faults
never become 5xx. Gemini is reachable and healthy, so every 5xx would be our fault."""

from __future__ import annotations

import base64
import json
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
