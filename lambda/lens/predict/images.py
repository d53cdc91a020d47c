"""Decode an image sent as base64 or a data: URL, with size, pixel and format limits.

Error codes and statuses match /analyze's: 400 invalid_image_encoding / missing_image,
413 image_too_large, 415 unsupported_image / unreadable_image.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image, UnidentifiedImageError

from lens.errors import ApiError

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
_DATA_URL = re.compile(r"^data:(?P<mime>[^;,]*)(?P<params>(;[^;,]*)*),(?P<data>.*)$", re.DOTALL)
# 4 base64 characters carry 3 bytes; a little slack for padding and line breaks.
_MAX_BASE64_CHARS = (MAX_IMAGE_BYTES + 2) // 3 * 4 + 1024


def _too_large() -> ApiError:
    return ApiError(
        413, "image_too_large", f"The image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB."
    )


def decode_base64_image(value: str, field: str = "image") -> bytes:
    """The bytes of `value`: plain base64 (standard or URL-safe) or a base64 data: URL."""
    text = value.strip()
    match = _DATA_URL.match(text)
    if match:
        mime = match.group("mime").lower()
        if mime and not mime.startswith("image/"):
            raise ApiError(
                415,
                "unsupported_image",
                f"Field '{field}' is a data URL of type {mime[:60]!r}; send an image.",
            )
        if ";base64" not in match.group("params").lower():
            raise ApiError(
                400, "invalid_image_encoding", f"Field '{field}' must be a base64 data URL."
            )
        text = match.group("data")
    if len(text) > _MAX_BASE64_CHARS:
        raise _too_large()
    text = "".join(text.split())
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            data = base64.urlsafe_b64decode(padded)
        else:
            data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            400, "invalid_image_encoding", f"Field '{field}' is not valid base64."
        ) from None
    if not data:
        raise ApiError(400, "missing_image", f"Field '{field}' is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_large()
    return data


def open_image(data: bytes, field: str = "image") -> Image.Image:
    """A fully decoded PIL image; 415 for other formats, 413 past the pixel limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ApiError(
            413, "image_too_large", f"The image has more than {MAX_IMAGE_PIXELS:,} pixels."
        ) from None
    except UnidentifiedImageError:
        raise ApiError(
            415,
            "unsupported_image",
            f"Field '{field}' is not a PNG, JPEG, WebP, GIF or BMP image.",
        ) from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ApiError(
            413,
            "image_too_large",
            f"The image has {width}x{height} pixels; the limit is {MAX_IMAGE_PIXELS:,} pixels.",
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ApiError(
            415, "unreadable_image", f"Field '{field}' could not be decoded; it may be truncated."
        ) from None
    return image


def decode_image(value: str, field: str = "image") -> Image.Image:
    """base64 / data URL text -> decoded PIL image, or an ApiError naming `field`."""
    return open_image(decode_base64_image(value, field), field)
