"""Image preparation: the pure, fast path from uploaded bytes to what Gemini receives.

- The format is judged by content (magic bytes), never by a claimed content type.
- Oversize input and decompression bombs are refused before any pixel is decoded.
- Nothing leaves with metadata: EXIF (GPS!), XMP, IPTC, comments and MPF side images
  are dropped. The ICC colour profile is kept: it is colour data, not data about the
  photo, and without it wide-gamut phone photos would render with the wrong colours.
- Large JPEGs decode through libjpeg's DCT scaling (`draft`), which reads a 12 MP photo at
  1/2, 1/4 or 1/8 size directly instead of decoding every pixel and then shrinking.
- EXIF orientation is applied to the pixels (the tag itself is stripped).
- Output is JPEG, or PNG when the image has real transparency. An image that already fits
  and needs no rotation keeps its encoded data; only metadata segments are removed.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import Image

from lens.errors import ApiError

# Pillow refuses images over 2x this while opening; our own limit is checked first.
Image.MAX_IMAGE_PIXELS = None

SUPPORTED = ("jpeg", "png", "webp", "gif")
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}

# Decoding JPEGs, accept a DCT-scaled size down to this fraction of max_side to skip resizing.
DRAFT_UNDERSHOOT = 0.8

# EXIF orientation -> the transpose that makes the pixels upright.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class PreparedImage:
    """What goes to the model, and what the response reports about it."""

    data: bytes
    mime_type: str
    width: int
    height: int
    bytes_in: int
    source_format: str
    reencoded: bool


def describe_bytes(n: float) -> str:
    """A size for people: '4.5 MB', '900 KB', '120 bytes' (decimal units)."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB"
    if n >= 1000:
        return f"{n / 1e3:.0f} KB"
    return f"{int(n)} bytes"


def sniff_format(data: bytes) -> str | None:
    """The image format from its first bytes: jpeg, png, webp, gif, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _unsupported() -> ApiError:
    return ApiError(
        415,
        "unsupported_image",
        "The upload is not a supported image; send a JPEG, PNG, WebP or GIF photo.",
    )


def _unreadable() -> ApiError:
    return ApiError(
        415,
        "unreadable_image",
        "The image could not be decoded; it may be truncated or corrupt.",
    )


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size that fits in max_side x max_side keeping the aspect ratio."""
    scale = max_side / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block must not sink the photo; treat as upright
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION else 1


def open_image(
    data: bytes, *, max_pixels: int = 50_000_000, max_bytes: int = 6 * 1024 * 1024
) -> tuple[str, Image.Image]:
    """(format, lazily opened image) for `data`; ApiError 413 past the limits, 415 if not
    a JPEG, PNG, WebP or GIF judged by content. Pixels are checked before any decoding."""
    if len(data) > max_bytes:
        raise ApiError(
            413,
            "image_too_large",
            f"The image is {describe_bytes(len(data))}; the limit is {describe_bytes(max_bytes)}.",
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise _unsupported()
    try:
        img = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])
    except Exception:
        raise _unreadable() from None
    width, height = img.size
    if width < 1 or height < 1:
        raise _unreadable()
    if width * height > max_pixels:
        raise ApiError(
            413,
            "image_too_many_pixels",
            f"The image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {max_pixels / 1e6:.1f} megapixels.",
        )
    return fmt, img


def load_image(img: Image.Image) -> Image.Image:
    """Decode all pixels now; 415 unreadable_image when the data is truncated or corrupt."""
    try:
        img.load()
    except Exception:  # Pillow raises many types (OSError, SyntaxError, struct.error...)
        raise _unreadable() from None
    return img


def prepare_image(
    data: bytes,
    *,
    max_side: int = 1024,
    max_pixels: int = 50_000_000,
    max_bytes: int = 6 * 1024 * 1024,
    jpeg_quality: int = 85,
) -> PreparedImage:
    """Validate, orient, strip and shrink `data`; raise ApiError 413/415 for bad input."""
    fmt, img = open_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
    width, height = img.size
    orientation = _orientation(img)
    try:
        if max(width, height) <= max_side and orientation == 1:
            stripped = _strip_losslessly(fmt, img, data)
            if stripped is not None:
                return PreparedImage(
                    stripped, MIME[fmt], width, height, len(data), fmt, reencoded=False
                )
        return _reencode(fmt, img, orientation, len(data), max_side, jpeg_quality)
    except ApiError:
        raise
    except Exception:  # Pillow raises many types (OSError, SyntaxError, struct.error...)
        raise _unreadable() from None


def _strip_losslessly(fmt: str, img: Image.Image, data: bytes) -> bytes | None:
    """`data` without metadata, after checking it decodes; None when it must be re-encoded."""
    if fmt == "jpeg":
        # Decoding at 1/8 scale proves the entropy data is complete, at a fraction of the cost.
        img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
        img.load()
        return strip_jpeg_metadata(data)
    if fmt == "png":
        img.load()
        return strip_png_metadata(data)
    if fmt == "webp" and not getattr(img, "is_animated", False):
        img.load()
        return strip_webp_metadata(data)
    return None  # GIF: Gemini does not take it; animated WebP: send one frame


def _has_transparency(img: Image.Image) -> bool:
    if img.mode == "P":
        return "transparency" in img.info
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        alpha = img.getchannel("A")
        extrema = alpha.getextrema()
        return isinstance(extrema[0], int) and extrema[0] < 255
    return False


def _reencode(
    fmt: str,
    img: Image.Image,
    orientation: int,
    bytes_in: int,
    max_side: int,
    jpeg_quality: int,
) -> PreparedImage:
    if fmt == "jpeg":
        # DCT scaling: libjpeg decodes straight at 1/2, 1/4 or 1/8 size. Asking for a bit
        # less than the target lets a scale that lands within DRAFT_UNDERSHOOT of max_side
        # be used as is (a 4032x3024 photo -> 1008x756 at max_side 1024): no resampling.
        wanted = _fit(img.width, img.height, round(max_side * DRAFT_UNDERSHOOT))
        img.draft("RGB", wanted)
    img.load()  # animated GIF/WebP: the first frame
    target = _fit(img.width, img.height, max_side)
    transparent = _has_transparency(img)
    if transparent:
        img = img.convert("RGBA")
    elif img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    if img.size != target:
        # Bicubic is antialiased in Pillow when shrinking; reducing_gap first box-reduces
        # big ratios by an integer factor (fast) and leaves a short bicubic step.
        img = img.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    if orientation in _ORIENTATION:
        img = img.transpose(_ORIENTATION[orientation])
    out = io.BytesIO()
    icc = img.info.get("icc_profile")
    # Pillow copies some of img.info (comment, XMP) into what it saves: start empty.
    img.info = {}
    if transparent:
        img.save(out, "PNG", compress_level=6, **({"icc_profile": icc} if icc else {}))
        mime = "image/png"
    else:
        img.save(out, "JPEG", quality=jpeg_quality, **({"icc_profile": icc} if icc else {}))
        mime = "image/jpeg"
    return PreparedImage(out.getvalue(), mime, img.width, img.height, bytes_in, fmt, reencoded=True)


# --- lossless metadata removal ------------------------------------------------------

_JPEG_KEEP_APP = {0xE0, 0xEE}  # APP0 JFIF, APP14 Adobe (colour transform)
_RST = range(0xD0, 0xD8)


def strip_jpeg_metadata(data: bytes) -> bytes:
    """The JPEG without EXIF/XMP/IPTC/comments and without anything after the main image.

    Keeps APP0, APP14 and the APP2 ICC profile; drops other APPn and COM segments, and
    truncates at the main image's EOI (phones append MPF depth/gain-map JPEGs there).
    """
    out = bytearray(b"\xff\xd8")
    pos = 2
    n = len(data)
    in_scan = False
    while pos < n:
        if in_scan:
            # Entropy-coded data: skip to the next marker that is not stuffing or RSTn.
            marker_at = data.find(b"\xff", pos)
            while marker_at != -1 and marker_at + 1 < n:
                nxt = data[marker_at + 1]
                if nxt != 0x00 and nxt not in _RST and nxt != 0xFF:
                    break
                marker_at = data.find(b"\xff", marker_at + 1)
            if marker_at == -1 or marker_at + 1 >= n:
                raise ValueError("JPEG scan data has no end marker")
            out += data[pos:marker_at]
            pos = marker_at
            in_scan = False
            continue
        if data[pos] != 0xFF:
            raise ValueError("JPEG marker expected")
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            raise ValueError("JPEG ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI: stop, whatever follows belongs to another image
            out += b"\xff\xd9"
            return bytes(out)
        if marker in _RST or marker == 0x01:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > n:
            raise ValueError("JPEG segment length missing")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        segment = data[pos : pos + length]
        if length < 2 or len(segment) != length:
            raise ValueError("JPEG segment truncated")
        pos += length
        drop = marker == 0xFE or (
            0xE0 <= marker <= 0xEF
            and marker not in _JPEG_KEEP_APP
            and not (marker == 0xE2 and segment[2:14] == b"ICC_PROFILE\x00")
        )
        if not drop:
            out += bytes((0xFF, marker)) + segment
        if marker == 0xDA:
            in_scan = True
    raise ValueError("JPEG has no end marker")


# Critical chunks, transparency and colour; everything else (tEXt, iTXt, zTXt, eXIf,
# tIME, pHYs, APNG frames...) is metadata or not needed for one still image.
_PNG_KEEP = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"iCCP"}
_PNG_KEEP |= {b"sBIT"}


def strip_png_metadata(data: bytes) -> bytes:
    """The PNG with only image, transparency and colour chunks."""
    out = bytearray(data[:8])
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("PNG chunk truncated")
        if kind in _PNG_KEEP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    raise ValueError("PNG has no IEND chunk")


_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def strip_webp_metadata(data: bytes) -> bytes:
    """The still WebP without EXIF and XMP chunks (flags in VP8X updated to match)."""
    chunks: list[bytes] = []
    pos = 12
    end_of_riff = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    while pos + 8 <= end_of_riff:
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > len(data):
            raise ValueError("WebP chunk truncated")
        chunk = data[pos : min(end, len(data))]
        if kind == b"VP8X":
            flags = chunk[8] & ~(_VP8X_EXIF | _VP8X_XMP)
            chunk = chunk[:8] + bytes((flags,)) + chunk[9:]
        if kind not in (b"EXIF", b"XMP "):
            chunks.append(chunk)
        pos = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body
