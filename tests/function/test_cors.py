"""Only well-formed origins are echoed in Access-Control-Allow-Origin, even with "*"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lens.cors import EchoCORSConfig, canonical_origin, echoable_origin

from tests.function.events import EVENT_BUILDERS, response_headers

Invoke = Callable[..., dict[str, Any]]

GOOD = [
    "https://lens.example",
    "http://localhost:3000",
    "https://LENS.Example",
    "HTTPS://lens.example",
    "https://a-b.c-d.example:8443",
    "https://xn--bcher-kva.example",
    "http://127.0.0.1:8080",
    "http://10.0.0.1",
    "http://[::1]:3000",
    "https://[2001:db8::1]",
    "http://localhost:1",
    "http://localhost:65535",
    "https://" + ".".join(["a" * 63] * 3),
]
BAD = [
    "",
    "https://lens.example\r\nSet-Cookie: a=b",
    "https://lens.example\n",
    "https://lens.example\r",
    "https://lens.example\x00",
    "https://lens.\x7fexample",
    "https://lens.example\t",
    " https://lens.example",
    "https://lens example",
    "https://lens.example/",
    "https://lens.example/path",
    "https://lens.example?q=1",
    "https://lens.example#f",
    "https://user:pw@lens.example",
    "https://user@lens.example",
    "https://lens.example\\evil",
    "ftp://lens.example",
    "javascript://lens.example",
    "file://",
    "https://",
    "https:lens.example",
    "lens.example",
    "https://lens.example:",
    "https://lens.example:0",
    "https://lens.example:65536",
    "https://lens.example:99999999999",
    "https://lens.example:+80",
    "https://lens.example:080",
    "https://lens.example:0443",
    "http://[::1]:03000",
    "https://lens.example:8a",
    "https://lens.example:80:80",
    "https://-lens.example",
    "https://lens-.example",
    "https://lens..example",
    "https://lens.example.",
    "https://lens_example.test",
    "https://" + "a" * 64 + ".example",
    "https://" + ".".join(["a" * 63] * 4 + ["b"]),
    "https://l\u00e9ns.example",
    "https://lens.example\u202e",
    "http://999.1.1.1",
    "http://1.2.3",
    "http://01.2.3.4",
    "http://[::1",
    "http://::1",
    "http://[::1]x",
    "http://[fe80::1%25eth0]",
    "http://[not:an:address]",
    "null\r\n",
    "Null",
]


@pytest.mark.parametrize("origin", GOOD)
def test_well_formed_origins_are_echoable(origin: str) -> None:
    assert echoable_origin(origin)


@pytest.mark.parametrize("origin", BAD)
def test_malformed_origins_are_not(origin: str) -> None:
    assert not echoable_origin(origin)


def test_null_origin_only_without_credentials() -> None:
    assert echoable_origin("null")
    assert not echoable_origin("null", credentials=True)
    assert echoable_origin("https://lens.example", credentials=True)


@pytest.mark.parametrize("origin", BAD)
def test_any_origin_config_never_echoes_a_malformed_one(origin: str) -> None:
    headers = EchoCORSConfig(["*"]).to_dict(origin)
    assert headers == {"Vary": "Origin"}


def test_an_allowed_list_needs_the_exact_origin() -> None:
    config = EchoCORSConfig(["https://lens.example"])
    assert config.to_dict("https://lens.example")["Access-Control-Allow-Origin"] == (
        "https://lens.example"
    )
    for origin in ("https://lens.example/", "https://lens.example\r\n", "null"):
        assert "Access-Control-Allow-Origin" not in config.to_dict(origin)


@pytest.mark.parametrize(
    ("origin", "canonical"),
    [
        ("HTTPS://LENS.Example", "https://lens.example"),
        ("Http://LocalHost:3000", "http://localhost:3000"),
        ("http://[2001:DB8::1]:8080", "http://[2001:db8::1]:8080"),
        ("https://lens.example", "https://lens.example"),
        ("null", "null"),
    ],
)
def test_origins_are_echoed_as_browsers_write_them(origin: str, canonical: str) -> None:
    # An echo in another spelling is a second cache entry for one origin, and one that
    # no browser compares equal to its own.
    assert canonical_origin(origin) == canonical
    headers = EchoCORSConfig(["*"]).to_dict(origin)
    assert headers["Access-Control-Allow-Origin"] == canonical
    listed = EchoCORSConfig(["https://LENS.example", "http://localhost:3000"])
    assert listed.to_dict("HTTPS://lens.EXAMPLE")["Access-Control-Allow-Origin"] == (
        "https://lens.example"
    )
    assert "Access-Control-Allow-Origin" not in listed.to_dict("http://localhost:03000")


@pytest.mark.parametrize("kind", sorted(EVENT_BUILDERS))
def test_a_mixed_case_origin_is_echoed_lowercase_through_the_handler(
    kind: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://lens.example")
    for method, path in (("GET", "/health"), ("OPTIONS", "/analyze")):
        headers = {"Origin": "HTTPS://Lens.Example", "Access-Control-Request-Method": "POST"}
        response = invoke(EVENT_BUILDERS[kind](method=method, path=path, headers=headers))
        out = response_headers(response)
        assert out["access-control-allow-origin"] == "https://lens.example", (method, out)


CRLF_ORIGIN = "https://lens.example\r\nSet-Cookie: session=stolen"


@pytest.mark.parametrize("kind", sorted(EVENT_BUILDERS))
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/health", None),
        ("OPTIONS", "/analyze", None),
        ("POST", "/analyze", "{not json"),  # an error answer through the resolver
        ("POST", "/predict/digits", "{}"),
        ("POST", "/analyze", "x" * (7 * 1024 * 1024)),  # a plain answer before the resolver
    ],
)
def test_a_crlf_origin_is_never_echoed_with_any_origin_allowed(
    kind: str,
    method: str,
    path: str,
    body: str | None,
    invoke: Invoke,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "*")
    headers = {"Origin": CRLF_ORIGIN, "Access-Control-Request-Method": "POST"}
    response = invoke(EVENT_BUILDERS[kind](method=method, path=path, body=body, headers=headers))
    out = response_headers(response)
    assert "access-control-allow-origin" not in out, out
    assert out["vary"] == "Origin"
    assert all("\r" not in v and "\n" not in v for v in out.values())
    # The same request from a well-formed origin is echoed.
    headers["Origin"] = "https://lens.example"
    response = invoke(EVENT_BUILDERS[kind](method=method, path=path, body=body, headers=headers))
    assert response_headers(response)["access-control-allow-origin"] == "https://lens.example"
