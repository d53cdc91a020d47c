"""Turning what AWS delivers into what the routes expect (pure functions).

- `event_kind` tells REST v1, HTTP API v2 and Function URL events apart.
- `normalize_event` returns a sanitized copy of the event whose body is always JSON text:
  a raw image upload (`curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg'`) is
  wrapped as {"image": <base64>} with `speed`/`imageType` taken from the query string, and
  a base64-encoded JSON body is decoded. Powertools' validation then sees one shape.
- `decode_image_field` turns the `image` field (base64 or a data: URL) into bytes.
- `parse_json` is the one JSON parser for request bodies (Powertools' validation and the
  /predict routes): a body nested deeper than the parser recurses, or an integer longer
  than Python converts, is malformed JSON (400), not an internal error.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from lens.errors import ApiError
from lens.images import describe_bytes, sniff_format

EventKind = Literal["rest", "http", "url"]

_RAW_TYPES = ("image/", "application/octet-stream")
_QUERY_FIELDS = ("speed", "imageType")
# Whitespace the base64 decoding below skips (str.split() separators a client may send).
_BASE64_SPACE = ("\n", "\r", " ", "\t")


def event_kind(event: object) -> EventKind | None:
    """rest (API Gateway REST, payload 1.0), http (HTTP API, 2.0), url (Function URL), or None."""
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext")
    if event.get("version") == "2.0" and "routeKey" in event:
        domain = context.get("domainName") if isinstance(context, dict) else None
        if isinstance(domain, str) and ".lambda-url." in domain:
            return "url"
        return "http"
    if "httpMethod" in event and "resource" in event:
        return "rest"
    return None


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _list_map(value: object) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, list[str]] = {}
    for key, values in value.items():
        if isinstance(key, str) and isinstance(values, list):
            out[key] = [v for v in values if isinstance(v, str)]
    return out


def _without(headers: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in headers.items() if k.lower() != name}


def header(event: dict[str, Any], name: str) -> str:
    """A request header, case-insensitively ('' when absent)."""
    for key, value in _str_map(event.get("headers")).items():
        if key.lower() == name:
            return value
    for key, values in _list_map(event.get("multiValueHeaders")).items():
        if key.lower() == name and values:
            return values[0]
    return ""


def normalize_event(event: dict[str, Any], kind: EventKind) -> dict[str, Any] | None:
    """A sanitized copy of `event`; None when it is not a usable HTTP event of `kind`."""
    out = dict(event)
    context = out.get("requestContext")
    context = dict(context) if isinstance(context, dict) else {}
    if kind == "rest":
        if not isinstance(out.get("httpMethod"), str) or not isinstance(out.get("path"), str):
            return None
        out["multiValueHeaders"] = _list_map(out.get("multiValueHeaders"))
        out["multiValueQueryStringParameters"] = _list_map(
            out.get("multiValueQueryStringParameters")
        )
        if not isinstance(context.get("stage"), str):
            context.pop("stage", None)
    else:
        http = context.get("http")
        if not isinstance(http, dict) or not isinstance(http.get("method"), str):
            return None
        if not isinstance(out.get("rawPath"), str):
            return None
        context["http"] = {**http, "path": out["rawPath"]}
        if not isinstance(context.get("stage"), str):
            context["stage"] = "$default"
        cookies = out.get("cookies")
        out["cookies"] = (
            [c for c in cookies if isinstance(c, str)] if isinstance(cookies, list) else []
        )
    out["requestContext"] = context
    out["headers"] = _str_map(out.get("headers"))
    out["queryStringParameters"] = _str_map(out.get("queryStringParameters"))
    out["pathParameters"] = _str_map(out.get("pathParameters")) or None
    _normalize_body(out)
    return out


def _normalize_body(event: dict[str, Any]) -> None:
    body = event.get("body")
    encoded = event.get("isBase64Encoded") is True
    event["isBase64Encoded"] = False
    if not isinstance(body, str) or body == "":
        event["body"] = None
        _claim_json(event)
        return
    content_type = header(event, "content-type").split(";", 1)[0].strip().lower()
    raw: bytes | None = None
    if encoded:
        try:
            raw = base64.b64decode(body)
        except (binascii.Error, ValueError):
            raw = None
    declared_raw = content_type.startswith(_RAW_TYPES)
    sniffed = raw is not None and sniff_format(raw) is not None
    if declared_raw or (sniffed and content_type != "application/json"):
        if encoded and raw is not None:
            image_b64 = body  # already base64: no need to decode and re-encode
        else:
            data = raw if raw is not None else body.encode("utf-8", "surrogatepass")
            image_b64 = base64.b64encode(data).decode("ascii")
        wrapped: dict[str, str] = {"image": image_b64}
        query = event["queryStringParameters"]
        wrapped.update({k: query[k] for k in _QUERY_FIELDS if k in query})
        text = json.dumps(wrapped)
    elif encoded:
        try:
            text = (raw or b"").decode("utf-8")
        except UnicodeDecodeError:
            text = "\ufffd"  # not JSON, so validation answers 400 malformed_json
        if raw is None:
            text = "\ufffd"
    else:
        text = body
    event["body"] = text
    _claim_json(event)


def _claim_json(event: dict[str, Any]) -> None:
    # We speak JSON only; whatever was claimed, the body now is JSON text (or absent).
    event["headers"] = {
        **_without(event["headers"], "content-type"),
        "content-type": "application/json",
    }
    if isinstance(event.get("multiValueHeaders"), dict):
        event["multiValueHeaders"] = {
            **_without(event["multiValueHeaders"], "content-type"),
            "content-type": ["application/json"],
        }


def parse_json(text: str) -> Any:
    """The JSON value in a request body; json.JSONDecodeError for anything a client sent
    that is not one: bad syntax, nesting past the recursion limit (RecursionError), or an
    integer over Python's digit limit for int() (ValueError)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("JSON nested too deeply", text, 0) from None
    except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise json.JSONDecodeError("JSON number too long", text, 0) from None


def body_size(event: dict[str, Any]) -> int:
    """Size of the request body as received (base64 text counted as sent)."""
    body = event.get("body")
    return len(body) if isinstance(body, str) else 0


def decode_image_field(value: str, max_image_bytes: int) -> bytes:
    """Bytes of the `image` field: base64 (standard or URL-safe, padded or not) or a data: URL."""
    text = value.strip()
    if text[:5].lower() == "data:":
        head, sep, text = text.partition(",")
        if not sep or ";base64" not in head.lower():
            raise ApiError(
                400,
                "invalid_image_encoding",
                "The image data: URL must be base64-encoded (data:image/jpeg;base64,...).",
            )
    if not text:
        raise ApiError(400, "missing_image", "The image field is empty.")
    # Line breaks (MIME base64 wraps at 76) carry no data: they must not count.
    symbols = len(text) - sum(text.count(space) for space in _BASE64_SPACE)
    if symbols * 3 // 4 > max_image_bytes + 3:
        raise ApiError(
            413,
            "image_too_large",
            f"The image is about {describe_bytes(symbols * 3 / 4)}; "
            f"the limit is {describe_bytes(max_image_bytes)}.",
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    # Slow path: line breaks, URL-safe alphabet or missing padding.
    cleaned = "".join(text.split())
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        if "-" in cleaned or "_" in cleaned:
            return base64.b64decode(cleaned, altchars=b"-_", validate=True)
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            400,
            "invalid_image_encoding",
            "The image field is not valid base64; send base64 text or a data: URL.",
        ) from None
