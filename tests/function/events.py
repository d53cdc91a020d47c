"""Events shaped as AWS documents them, a fake Lambda context, and small test images.

REST v1: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
HTTP API v2: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
Function URL: https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads
"""

from __future__ import annotations

import base64
import io
import json
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from PIL import Image


@dataclass
class FakeContext:
    """The attributes of the Lambda context object the handler and Powertools read."""

    remaining_ms: float = 30_000.0
    function_name: str = "scarab-analyze"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:scarab-analyze"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _start: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_ms - (time.monotonic() - self._start) * 1000)


# FakeContext as source, for child interpreters that run an extracted zip with `python -S`
# (nothing but the zip and the standard library on their path).
CONTEXT_SOURCE = """
class Context:  # what Powertools and lens read from Lambda's context object
    function_name = "scarab-dev"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:scarab-dev"
    aws_request_id = "r-1"
    function_version = "$LATEST"
    def get_remaining_time_in_millis(self):
        return 30000
"""


def _body(body: Any, b64: bool) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    if isinstance(body, bytes):
        return base64.b64encode(body).decode(), True
    text = body if isinstance(body, str) else json.dumps(body)
    if b64:  # surrogatepass: a lone surrogate goes as the bytes a sloppy client would send
        return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode(), True
    return text, False


def rest_event(
    method: str = "POST",
    path: str = "/analyze",
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    b64: bool = False,
    stage: str = "prod",
) -> dict[str, Any]:
    """API Gateway REST API proxy integration, payload format 1.0."""
    text, encoded = _body(body, b64)
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", **(headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0", "apiKey": "k"},
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": 1700000000000,
            "resourceId": "r1",
            "resourcePath": path,
            "stage": stage,
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def http_event(
    method: str = "POST",
    path: str = "/analyze",
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    b64: bool = False,
    domain: str = "abc123.execute-api.us-east-1.amazonaws.com",
) -> dict[str, Any]:
    """API Gateway HTTP API, payload format 2.0 (headers lower-cased, as AWS sends them)."""
    text, encoded = _body(body, b64)
    headers = {k.lower(): v for k, v in {"host": domain, **(headers or {})}.items()}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "12/Mar/2024:19:03:58 +0000",
            "timeEpoch": 1710270238000,
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = query
    if text is not None:
        event["body"] = text
    return event


def url_event(**kwargs: Any) -> dict[str, Any]:
    """Lambda Function URL: payload 2.0 from a *.lambda-url.<region>.on.aws domain."""
    event = http_event(domain="abcdefghijkl.lambda-url.us-east-1.on.aws", **kwargs)
    event["requestContext"]["authorizer"] = None
    event["requestContext"].pop("authorizer")
    return event


EVENT_BUILDERS = {"rest": rest_event, "http": http_event, "url": url_event}


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel X"  # Model
    exif[0x8825] = {1: "N", 2: (25.0, 44.0, 1.0), 3: "E", 4: (32.0, 36.0, 2.0)}  # GPS
    return exif


def jpeg(
    size: tuple[int, int] = (64, 48),
    *,
    exif: Image.Exif | None = None,
    orientation: int | None = None,
    color: tuple[int, int, int] = (200, 150, 90),
    quality: int = 90,
    comment: bytes | None = None,
) -> bytes:
    """A small JPEG; with a left half darker than the right, so orientation is testable."""
    img = Image.new("RGB", size, color)
    img.paste((20, 20, 20), (0, 0, size[0] // 2, size[1]))
    exif = exif if exif is not None else Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    kwargs: dict[str, Any] = {"exif": exif, "quality": quality}
    if comment is not None:
        kwargs["comment"] = comment
    img.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def png(size: tuple[int, int] = (40, 30), *, alpha: bool = False, text: str | None = None) -> bytes:
    from PIL import PngImagePlugin

    img = Image.new(
        "RGBA" if alpha else "RGB", size, (10, 120, 200, 128) if alpha else (10, 120, 200)
    )
    info = PngImagePlugin.PngInfo()
    if text is not None:
        info.add_text("Comment", text)
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _repeated_zlib(row: bytes, count: int) -> bytes:
    """zlib data of `row` * `count`, compressed once: a full flush makes the compressed
    block independent of what came before, so the same bytes can be repeated."""
    per_block = max(1, (1 << 20) // len(row))
    blocks, rest = divmod(count, per_block)
    block = row * per_block
    packer = zlib.compressobj(9)
    out = [packer.compress(block if blocks else b"") + packer.flush(zlib.Z_FULL_FLUSH)]
    if blocks > 1:
        out.append((packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)) * (blocks - 1))
    out.append(packer.compress(row * rest) + packer.flush())
    checksum = 1
    for _ in range(blocks):
        checksum = zlib.adler32(block, checksum)
    checksum = zlib.adler32(row * rest, checksum)
    data = b"".join(out)
    return data[:-4] + struct.pack(">I", checksum)  # the packer only saw a few blocks


def declared_png(
    width: int,
    height: int,
    *,
    color_type: int = 6,
    bit_depth: int = 8,
    trns: bytes | None = None,
) -> bytes:
    """A valid PNG of `width` x `height` (default RGBA 8-bit) built without its pixels
    ever being in memory: a 50 MP image costs its compressed size and milliseconds. Every
    row is the same ramp; palette images (colour type 3) get a 256-entry grey palette."""
    channels = _PNG_CHANNELS[color_type]
    row_bytes = -(-width * channels * bit_depth // 8)
    row = b"\x00" + bytes(i * 7 % 256 for i in range(row_bytes))  # filter 0, a ramp
    idat = _repeated_zlib(row, height)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    if color_type == 3:
        chunks.append(_png_chunk(b"PLTE", bytes(v for i in range(256) for v in (i, i, i))))
    if trns is not None:
        chunks.append(_png_chunk(b"tRNS", trns))
    chunks += [_png_chunk(b"IDAT", idat), _png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def response_json(response: dict[str, Any]) -> Any:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    """Response headers whatever the payload format (lower-cased names)."""
    out = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        out[key.lower()] = ", ".join(values)
    return out
