"""Image preparation: the pure, fast path from uploaded bytes to what Gemini receives.

- The format is judged by content (magic bytes), never by a claimed content type.
- Oversize input and decompression bombs are refused before any pixel is decoded.
- Nothing leaves with metadata: EXIF (GPS!), XMP, IPTC, comments and MPF side images
  are dropped. The ICC colour profile is kept: it is colour data, not data about the
  photo, and without it wide-gamut phone photos would render with the wrong colours.
- Large JPEGs decode through libjpeg's DCT scaling (`draft`), which reads a 12 MP photo at
  1/2, 1/4 or 1/8 size directly instead of decoding every pixel and then shrinking.
- Decoding stays within a memory budget (a share of the function's memory): what an
  image will cost is computed from its header before any pixel is decoded, and past the
  budget the answer is 413 image_too_large. PNG, GIF and WebP decode at full size (WebP
  with libwebp's own canvases), then are converted and box-reduced strip by strip: no
  second full-size copy for mode conversion, alpha premultiplication or rotation.
- EXIF orientation is applied to the pixels (the tag itself is stripped).
- Output is JPEG, or PNG when the image has real transparency. An image that already fits
  and needs no rotation keeps its encoded data; only metadata segments are removed.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, PngImagePlugin

from lens.errors import ApiError
from lens.settings import DEFAULT_FUNCTION_MEMORY_MB, DEFAULT_IMAGE_MEMORY_PERCENT, MIB
from lens.settings import memory_budget as _budget

# Pillow refuses images over 2x this while opening; our own limit is checked first.
Image.MAX_IMAGE_PIXELS = None
# Pillow inflates PNG text chunks while opening, before any budget can be consulted, and
# counts characters (up to 4 bytes each) against 64 MiB by default. open_image removes
# text chunks before Pillow sees them; this cap is the second line (decompressed
# characters of all text chunks of one image, so at most ~4 MiB of memory).
PngImagePlugin.MAX_TEXT_MEMORY = MIB

SUPPORTED = ("jpeg", "png", "webp", "gif")
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}

# Decoding budget when the caller gives none: the default function's, see lens.settings.
DEFAULT_MEMORY_BUDGET = _budget(DEFAULT_FUNCTION_MEMORY_MB, DEFAULT_IMAGE_MEMORY_PERCENT)

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
    if n >= 10**15:  # also a JSON integer too large for a float (n / 1e6 overflows)
        return "over 1,000 TB"
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
    data: bytes, *, max_pixels: int = 50_000_000, max_bytes: int = 6 * MIB
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
    if fmt == "jpeg":
        _check_jpeg_scans(data)
    elif fmt == "png":
        data = png_for_decoding(data)
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


# --- memory ---------------------------------------------------------------------------
#
# Pillow decodes PNG, GIF and WebP at full size (only JPEG can decode smaller, through
# DCT scaling), so the decoded pixels are the floor of what an image costs. Everything
# after that works on strips or on the reduced copy: no second full-size image (mode
# conversion, premultiplied alpha for resizing, EXIF rotation) is ever made.

# Source pixels converted and reduced at a time.
STRIP_PIXELS = 1 << 20
# Integer box reduction first while the image is at least this many times the target
# (as Pillow's resize(reducing_gap=...)), then one short resampling step.
REDUCING_GAP = 2.0
# libwebp's animation decoder (Pillow uses it for every WebP) keeps two canvases (the
# frame and the previous frame), Pillow copies the frame into bytes and then into the
# image: 16 bytes per pixel, measured; lossless (VP8L) decoding adds a 4-byte ARGB plane.
WEBP_BYTES_PER_PIXEL = 16
WEBP_LOSSLESS_BYTES_PER_PIXEL = 20
# Encoder buffers and allocator slack on top of the images themselves (measured).
ENCODER_SLACK = 8 * MIB
# libjpeg keeps every 8x8 block's 64 16-bit coefficients when a JPEG has several scans.
JPEG_BLOCK_BYTES = 64 * 2


def pixel_bytes(mode: str) -> int:
    """Bytes per pixel Pillow stores for `mode`: 1 for 1/L/P, 2 for I;16, else 4."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4  # RGB and LA are stored padded to four bytes, like RGBA, I and F


def _reduce_factors(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    return (
        max(1, int(size[0] / target[0] / REDUCING_GAP)),
        max(1, int(size[1] / target[1] / REDUCING_GAP)),
    )


def jpeg_coefficient_bytes(size: tuple[int, int], sampling: list[tuple[int, int]]) -> int:
    """Bytes libjpeg holds for a whole-image coefficient buffer (progressive or multi-scan
    JPEG) of `size` with per-component (h, v) sampling factors, whatever the output scale."""
    if not sampling:
        return 0
    h_max = max(h for h, _ in sampling)
    v_max = max(v for _, v in sampling)
    total = 0
    for h, v in sampling:
        blocks_w = -(-size[0] * h // (8 * h_max))
        blocks_h = -(-size[1] * v // (8 * v_max))
        # Arrays are allocated in whole MCUs: round up to the sampling factor.
        total += (-(-blocks_w // h) * h) * (-(-blocks_h // v) * v)
    return total * JPEG_BLOCK_BYTES


def working_mode(mode: str, transparency: bool = False) -> str:
    """The mode an image is shrunk in: L, LA, RGB or RGBA (a P image with a transparent
    colour, `transparency`, becomes RGBA)."""
    if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
        return "L"
    if mode in ("LA", "La"):
        return "LA"
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and transparency):
        return "RGBA"
    return "RGB"


def decode_cost(
    fmt: str,
    decoded_size: tuple[int, int],
    mode: str,
    max_side: int,
    *,
    decoder_bytes: int = 0,
    webp_lossless: bool = False,
) -> int:
    """Peak bytes held while an image decoded at `decoded_size` (after JPEG DCT scaling)
    in `mode` is shrunk to fit `max_side`: the decoded pixels (WebP: with the decoder's
    own copies) and `decoder_bytes` more that the decoder holds; the reduced copy and the
    strip being converted when one is made, resizing's intermediate and premultiplied
    copies, the fitted image with its rotated copy, and ENCODER_SLACK."""
    width, height = decoded_size
    pixels = width * height
    if fmt == "webp":
        per_pixel = WEBP_LOSSLESS_BYTES_PER_PIXEL if webp_lossless else WEBP_BYTES_PER_PIXEL
        decoded = pixels * per_pixel
    else:
        decoded = pixels * pixel_bytes(mode)
    target = _fit(width, height, max_side)
    fx, fy = _reduce_factors(decoded_size, target)
    # A P image may turn RGBA (a transparent colour); count the alpha copies it would need.
    shrunk_mode = working_mode(mode, transparency=True)
    reduced_w, reduced_h = -(-width // fx), -(-height // fy)
    shrunk_bytes = pixel_bytes(shrunk_mode)
    reduced = reduced_w * reduced_h * shrunk_bytes
    held = 0
    if (fx, fy) != (1, 1) or shrunk_mode != mode:
        # The reduced copy, and a strip cropped, converted (I;16 via 4-byte I), reduced.
        held += reduced + min(pixels, max(STRIP_PIXELS, width * fy)) * 4 * 3
    if (reduced_w, reduced_h) != target:
        held += target[0] * reduced_h * shrunk_bytes  # resizing's horizontal pass
        if shrunk_mode in ("RGBA", "LA"):
            held += reduced  # resizing premultiplies alpha in a copy of what it resizes
    final = target[0] * target[1] * 4 * 2  # the fitted image and its rotated copy
    return decoded + decoder_bytes + held + final + ENCODER_SLACK


def memory_limit_error(cost: int, budget: int, size: tuple[int, int]) -> ApiError:
    """413 image_too_large for a `size` image that needs `cost` bytes, over `budget`."""
    width, height = size
    return ApiError(
        413,
        "image_too_large",
        f"The image is {width}x{height} pixels and would need about {describe_bytes(cost)} "
        f"of memory to decode; the limit for one image is {describe_bytes(budget)}. "
        "Send an image with fewer pixels.",
    )


def _jpeg_decoder_bytes(img: Image.Image, data: bytes) -> int:
    """Whole-image coefficient buffers libjpeg needs for this JPEG (0 for one scan)."""
    layers = getattr(img, "layer", [])
    sampling = [(h, v) for _, h, v, _ in layers]
    if img.info.get("progressive") or _jpeg_first_scan_components(data) < len(sampling):
        return jpeg_coefficient_bytes(img.size, sampling)
    return 0


def _plan(fmt: str, img: Image.Image, data: bytes, max_side: int, *, draft: bool) -> int:
    """decode_cost of the opened `img`; with `draft`, a JPEG is first set to decode at the
    DCT scale that suits max_side (which changes img.size)."""
    decoder_bytes = 0
    if fmt == "jpeg":
        decoder_bytes = _jpeg_decoder_bytes(img, data)
        if draft:
            # DCT scaling: libjpeg decodes straight at 1/2, 1/4 or 1/8 size. Asking for a
            # bit less than the target lets a scale within DRAFT_UNDERSHOOT of max_side be
            # used as is (a 4032x3024 photo -> 1008x756 at max_side 1024): no resampling.
            wanted = _fit(img.width, img.height, round(max_side * DRAFT_UNDERSHOOT))
            img.draft("RGB", wanted)
    return decode_cost(
        fmt,
        img.size,
        img.mode,
        max_side,
        decoder_bytes=decoder_bytes,
        webp_lossless=fmt == "webp" and b"VP8L" in data,  # a stray match only overcounts
    )


def estimated_cost(data: bytes, *, max_side: int = 1024) -> int:
    """The bytes decode_fitted/prepare_image budget for `data`, without decoding it."""
    fmt, img = open_image(data, max_pixels=1 << 62, max_bytes=len(data))
    return _plan(fmt, img, data, max_side, draft=True)


# 16-bit grey to 8-bit by its high byte (Pillow's own I;16 -> L conversion clips at 255).
_HIGH_BYTE = [value >> 8 for value in range(65536)]


def _as_mode(strip: Image.Image, mode: str) -> Image.Image:
    if strip.mode == mode:
        return strip
    if strip.mode.startswith("I;16"):
        return strip.convert("I").point(_HIGH_BYTE, "L")
    return strip.convert(mode)


def _reduce_in_strips(img: Image.Image, mode: str, factors: tuple[int, int]) -> Image.Image:
    """`img` converted to `mode` and box-reduced by `factors`, a strip at a time: the
    same pixels as converting and reducing the whole image, without a full-size copy."""
    fx, fy = factors
    width, height = img.size
    out = Image.new(mode, (-(-width // fx), -(-height // fy)))
    rows = max(fy, STRIP_PIXELS // width // fy * fy)  # a whole number of reduction boxes
    for top in range(0, height, rows):
        strip = _as_mode(img.crop((0, top, width, min(height, top + rows))), mode)
        if factors != (1, 1):
            strip = strip.reduce(factors)
        out.paste(strip, (0, top // fy))
    return out


def _shrink(img: Image.Image, max_side: int, resample: Image.Resampling) -> Image.Image:
    """A loaded image in L, LA, RGB or RGBA that fits max_side (the image itself when it
    already does and has such a mode)."""
    target = _fit(img.width, img.height, max_side)
    mode = working_mode(img.mode, "transparency" in img.info)
    factors = _reduce_factors(img.size, target)
    small = img
    if factors != (1, 1) or mode != img.mode:
        small = _reduce_in_strips(img, mode, factors)
    if small.size != target:
        small = small.resize(target, resample)
    return small


def _decode_fitted(
    fmt: str,
    img: Image.Image,
    data: bytes,
    *,
    max_side: int,
    memory_budget: int,
    resample: Image.Resampling,
) -> Image.Image:
    """The opened `img` decoded, upright and shrunk to fit max_side within the budget."""
    declared = img.size
    # A JPEG is not loaded yet here (reading its EXIF decodes nothing): draft applies.
    cost = _plan(fmt, img, data, max_side, draft=True)
    if cost > memory_budget:
        raise memory_limit_error(cost, memory_budget, declared)
    load_image(img)  # animated GIF/WebP: the first frame
    orientation = _orientation(img)
    icc = img.info.get("icc_profile")
    small = _shrink(img, max_side, resample)
    if orientation in _ORIENTATION:
        small = small.transpose(_ORIENTATION[orientation])
    small.info = {"icc_profile": icc} if icc else {}  # colour data, no metadata
    return small


def decode_fitted(
    data: bytes,
    *,
    max_side: int,
    max_pixels: int = 50_000_000,
    max_bytes: int = 6 * MIB,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
) -> Image.Image:
    """`data` decoded upright in L, LA, RGB or RGBA, fitting max_side x max_side, never
    holding more than `memory_budget` bytes; ApiError 413/415 as open_image, and 413
    image_too_large when decoding would need more memory than the budget."""
    fmt, img = open_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
    try:
        return _decode_fitted(
            fmt, img, data, max_side=max_side, memory_budget=memory_budget, resample=resample
        )
    except ApiError:
        raise
    except Exception:  # Pillow raises many types (OSError, SyntaxError, struct.error...)
        raise _unreadable() from None


def prepare_image(
    data: bytes,
    *,
    max_side: int = 1024,
    max_pixels: int = 50_000_000,
    max_bytes: int = 6 * MIB,
    jpeg_quality: int = 85,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> PreparedImage:
    """Validate, orient, strip and shrink `data`; raise ApiError 413/415 for bad input."""
    fmt, img = open_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
    width, height = img.size
    try:
        if max(width, height) <= max_side:
            # Before the orientation: reading a PNG's EXIF may decode the whole image.
            cost = _plan(fmt, img, data, max_side, draft=False)
            if cost > memory_budget:
                raise memory_limit_error(cost, memory_budget, img.size)
            if _orientation(img) == 1:
                stripped = _strip_losslessly(fmt, img, data)
                if stripped is not None:
                    return PreparedImage(
                        stripped, MIME[fmt], width, height, len(data), fmt, reencoded=False
                    )
        small = _decode_fitted(
            fmt,
            img,
            data,
            max_side=max_side,
            memory_budget=memory_budget,
            resample=Image.Resampling.BICUBIC,
        )
        return _encode(small, fmt, len(data), jpeg_quality)
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
    if img.mode in ("RGBA", "LA"):
        extrema = img.getchannel("A").getextrema()
        return isinstance(extrema[0], int) and extrema[0] < 255
    return False


def _encode(img: Image.Image, fmt: str, bytes_in: int, jpeg_quality: int) -> PreparedImage:
    """The shrunk, upright image as JPEG, or PNG when it has real transparency."""
    icc = img.info.get("icc_profile")
    transparent = _has_transparency(img)
    if transparent:
        img = img.convert("RGBA")
    elif img.mode not in ("RGB", "L"):
        img = img.convert("L" if img.mode == "LA" else "RGB")
    out = io.BytesIO()
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

_RST = range(0xD0, 0xD8)


_SCAN_DATA = -1  # the "marker" of entropy-coded data in _jpeg_parts
# The 0xFF that starts a marker ending entropy-coded data: not stuffing (FF00), not a
# restart marker (FFD0-FFD7), not a fill byte (FFFF, the next FF is the one).
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

# Progressive JPEGs from libjpeg have 10 scans (mozjpeg's optimised ones a few more), but
# nothing stops a file from repeating scans, and libjpeg walks every block of the image
# for each: 10,000 repeated 14-byte scans of a 2000x2000 photo decode for ~20 s. Past
# this many the image is refused before decoding, the cap libjpeg-turbo's djpeg and
# jpegtran apply with `-maxscans` (and TurboJPEG's TJPARAM_SCANLIMIT) for the same reason.
MAX_JPEG_SCANS = 100


def _jpeg_parts(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, segment) for each part of the main JPEG image after SOI, up to its EOI:
    segment is the length-prefixed payload ('' for standalone markers), and entropy-coded
    data comes as (_SCAN_DATA, bytes). ValueError when the structure is broken."""
    pos = 2
    n = len(data)
    in_scan = False
    while pos < n:
        if in_scan:
            # Entropy-coded data: skip to the next marker that is not stuffing or RSTn
            # (one C-speed search, however much FF00 stuffing the data holds).
            found = _SCAN_END.search(data, pos)
            if found is None:
                raise ValueError("JPEG scan data has no end marker")
            marker_at = found.start()
            yield _SCAN_DATA, data[pos:marker_at]
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
            yield marker, b""
            return
        if marker in _RST or marker == 0x01:
            yield marker, b""
            continue
        if pos + 2 > n:
            raise ValueError("JPEG segment length missing")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        segment = data[pos : pos + length]
        if length < 2 or len(segment) != length:
            raise ValueError("JPEG segment truncated")
        pos += length
        yield marker, segment
        if marker == 0xDA:
            in_scan = True
    raise ValueError("JPEG has no end marker")


def _check_jpeg_scans(data: bytes) -> None:
    """415 unsupported_image when the JPEG has more than MAX_JPEG_SCANS scans (counting
    stops there); a broken structure is left for the decoder to judge."""
    scans = 0
    try:
        for marker, _ in _jpeg_parts(data):
            if marker == 0xDA:
                scans += 1
                if scans > MAX_JPEG_SCANS:
                    raise ApiError(
                        415,
                        "unsupported_image",
                        f"The JPEG has more than {MAX_JPEG_SCANS} scans (progressive JPEGs "
                        "normally have about 10); re-save it as a standard JPEG.",
                    )
    except ValueError:
        pass


def _jpeg_first_scan_components(data: bytes) -> int:
    """How many components the first scan codes (0 when it cannot be told): fewer than
    the frame has means several scans, which libjpeg buffers for the whole image."""
    try:
        for marker, segment in _jpeg_parts(data):
            if marker == 0xDA:
                return segment[2] if len(segment) > 2 else 0
    except ValueError:
        pass
    return 0


def strip_jpeg_metadata(data: bytes) -> bytes:
    """The JPEG without EXIF/XMP/IPTC/comments and without anything after the main image.

    Keeps the APP0 JFIF header (without thumbnail), APP14 Adobe and the APP2 ICC profile;
    drops other APPn and COM segments, and truncates at the main image's EOI (phones
    append MPF depth/gain-map JPEGs there).
    """
    out = bytearray(b"\xff\xd8")
    for marker, segment in _jpeg_parts(data):
        if marker == _SCAN_DATA:
            out += segment
            continue
        if 0xE0 <= marker <= 0xEF:
            kept = _kept_app_segment(marker, segment)
            if kept is not None:
                out += bytes((0xFF, marker)) + kept
        elif marker != 0xFE:  # COM: a comment
            out += bytes((0xFF, marker)) + segment
    return bytes(out)


# APP0 JFIF header: length (2), "JFIF\0" (5), version (2), units (1), densities (4),
# thumbnail width and height (1 + 1); the thumbnail's RGB pixels follow.
_JFIF_HEADER = 2 + 5 + 2 + 1 + 4 + 2
# APP14 Adobe: length (2), "Adobe" (5), version (2), flags (2 + 2), colour transform (1).
_ADOBE_SEGMENT = 2 + 5 + 2 + 4 + 1


def _kept_app_segment(marker: int, segment: bytes) -> bytes | None:
    """What of an APPn segment (length-prefixed) stays: the JFIF header without its
    thumbnail, the Adobe colour transform, an ICC profile chunk; None for the rest (EXIF,
    XMP, IPTC, MPF, JFXX thumbnails: an editor's crop can leave the original in them)."""
    if marker == 0xE0 and segment[2:7] == b"JFIF\x00" and len(segment) >= _JFIF_HEADER:
        header = segment[2 : _JFIF_HEADER - 2] + b"\x00\x00"  # no thumbnail
        return struct.pack(">H", _JFIF_HEADER) + header
    if marker == 0xEE and segment[2:7] == b"Adobe" and len(segment) >= _ADOBE_SEGMENT:
        return struct.pack(">H", _ADOBE_SEGMENT) + segment[2:_ADOBE_SEGMENT]
    if marker == 0xE2 and segment[2:14] == b"ICC_PROFILE\x00":
        return segment
    return None


# Critical chunks, transparency and colour; everything else (tEXt, iTXt, zTXt, eXIf,
# tIME, pHYs, APNG frames...) is metadata or not needed for one still image.
_PNG_KEEP = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"iCCP"}
_PNG_KEEP |= {b"sBIT"}


# Text chunks Pillow inflates (zTXt, iTXt) or copies (tEXt) into img.info while opening.
_PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt"}


def png_for_decoding(data: bytes) -> bytes:
    """The PNG as Pillow may open it: without text chunks, whose decompressed values no
    budget sees (64 1 MB iTXt values ~ 256 MB from ~70 KB), and with only the first iCCP
    (the one the spec allows; each one is inflated up to 1 MB). Everything else, eXIf
    (orientation) included, is kept; a broken tail is passed on for Pillow to judge."""
    out = bytearray(data[:8])
    pos = 8
    seen_icc = False
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            break
        if kind not in _PNG_TEXT and not (kind == b"iCCP" and seen_icc):
            out += data[pos:end]
        seen_icc = seen_icc or kind == b"iCCP"
        pos = end
        if kind == b"IEND":
            return bytes(out)
    return bytes(out + data[pos:])


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
# A still image's chunks: the header, colour profile, alpha plane and bitstream. EXIF,
# XMP and anything unknown (which could carry any data, an uncropped original too) go.
_WEBP_KEEP = {b"VP8X", b"ICCP", b"ALPH", b"VP8 ", b"VP8L"}


def strip_webp_metadata(data: bytes) -> bytes:
    """The still WebP with only _WEBP_KEEP chunks (EXIF/XMP flags in VP8X cleared)."""
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
        if kind in _WEBP_KEEP:
            chunks.append(chunk)
        pos = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body
