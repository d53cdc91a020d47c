"""Image preparation: format by content, limits, orientation, metadata, downscaling."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from lens.errors import ApiError
from lens.images import (
    _SCAN_DATA,
    MAX_JPEG_SCANS,
    _jpeg_parts,
    decode_fitted,
    png_for_decoding,
    prepare_image,
    sniff_format,
    strip_jpeg_metadata,
    strip_png_metadata,
    strip_webp_metadata,
)
from PIL import Image, ImageCms

from tests.function.events import _png_chunk, gps_exif, jpeg, png

GPS_TAG = 0x8825


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _has_no_metadata(data: bytes) -> None:
    img = _open(data)
    assert len(img.getexif()) == 0
    assert b"Exif\x00\x00" not in data
    assert b"PhoneModel" not in data
    assert "comment" not in img.info
    assert "exif" not in img.info


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"\xff\xd8\xff\xe0rest", "jpeg"),
        (b"\x89PNG\r\n\x1a\nrest", "png"),
        (b"GIF89a...", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"<html>", None),
        (b"", None),
        (b"\x00\x00\x00\x18ftypheic", None),
    ],
)
def test_sniff_format_by_content(data: bytes, fmt: str | None) -> None:
    assert sniff_format(data) == fmt


def test_large_jpeg_is_downscaled_and_stripped_of_gps() -> None:
    original = jpeg((3000, 2000), exif=gps_exif(), comment=b"shot at home")
    assert b"PhoneModel" in original and b"shot at home" in original
    out = prepare_image(original, max_side=1000)
    assert (out.width, out.height) == (1000, 667)  # decoded at 1/2, then resized
    assert out.mime_type == "image/jpeg" and out.reencoded
    assert out.bytes_in == len(original)
    assert _open(out.data).size == (1000, 667)
    _has_no_metadata(out.data)
    assert b"shot at home" not in out.data


def test_dct_scaling_close_to_max_side_skips_resampling() -> None:
    # 4032x3024 (a 12 MP phone photo) at 1/4 scale is 1008x756: within max_side 1024.
    out = prepare_image(jpeg((4032, 3024)), max_side=1024)
    assert (out.width, out.height) == (1008, 756)
    # Never above max_side, never below DRAFT_UNDERSHOOT of it.
    out = prepare_image(jpeg((3000, 2000)), max_side=1536)
    assert 0.8 * 1536 <= max(out.width, out.height) <= 1536
    assert abs(out.width / out.height - 1.5) < 0.01


def test_small_jpeg_keeps_its_pixels_and_loses_its_metadata() -> None:
    original = jpeg((200, 100), exif=gps_exif(), comment=b"secret note")
    out = prepare_image(original, max_side=1536)
    assert not out.reencoded
    assert (out.width, out.height) == (200, 100)
    _has_no_metadata(out.data)
    assert b"secret note" not in out.data
    # Same entropy-coded data: identical pixels, not a recompression.
    assert _open(out.data).tobytes() == _open(original).tobytes()
    assert len(out.data) < len(original)


@pytest.mark.parametrize(
    ("orientation", "size", "dark_corner"),
    [
        (1, (80, 40), (0, 0)),
        (3, (80, 40), (79, 39)),  # rotated 180: the dark left half is now on the right
        (6, (40, 80), (0, 0)),  # rotate 90 cw: dark left half goes to the top
        (8, (40, 80), (39, 79)),  # rotate 90 ccw: dark left half goes to the bottom
    ],
)
def test_exif_orientation_is_applied_to_pixels(
    orientation: int, size: tuple[int, int], dark_corner: tuple[int, int]
) -> None:
    out = prepare_image(jpeg((80, 40), orientation=orientation), max_side=1536)
    img = _open(out.data).convert("L")
    assert img.size == size
    assert img.getpixel(dark_corner) < 60  # type: ignore[operator]
    assert len(img.getexif()) == 0


def test_rotated_large_photo_fits_max_side_after_rotation() -> None:
    out = prepare_image(jpeg((2000, 1000), orientation=6), max_side=500)
    assert (out.width, out.height) == (250, 500)


def test_pixel_limit_is_checked_before_decoding() -> None:
    # A 10000x10000 PNG of one colour is tiny on disk: the classic decompression bomb.
    buf = io.BytesIO()
    Image.new("L", (10000, 10000)).save(buf, "PNG")
    bomb = buf.getvalue()
    assert len(bomb) < 200_000
    with pytest.raises(ApiError) as info:
        prepare_image(bomb, max_pixels=50_000_000 // 2)
    assert info.value.status == 413 and info.value.code == "image_too_many_pixels"
    assert "25.0 megapixels" in info.value.message


def test_byte_limit_says_the_limit() -> None:
    with pytest.raises(ApiError) as info:
        prepare_image(jpeg((300, 200), quality=95), max_bytes=2000)
    assert info.value.status == 413 and "the limit is 2 KB" in info.value.message
    assert info.value.code == "image_too_large"


@pytest.mark.parametrize(
    "data",
    [b"plain text, not an image", b"%PDF-1.7\n...", b"\x00\x00\x00\x18ftypheic\x00\x00"],
)
def test_non_images_are_415(data: bytes) -> None:
    with pytest.raises(ApiError) as info:
        prepare_image(data)
    assert info.value.status == 415 and info.value.code == "unsupported_image"


def test_truncated_jpeg_is_415_not_500() -> None:
    data = jpeg((300, 200))
    with pytest.raises(ApiError) as info:
        prepare_image(data[: len(data) // 2])
    assert info.value.status == 415 and info.value.code == "unreadable_image"


def test_truncated_large_jpeg_is_415() -> None:
    data = jpeg((3000, 2000))
    with pytest.raises(ApiError) as info:
        prepare_image(data[: len(data) // 3])
    assert info.value.status == 415


def test_png_with_transparency_stays_png_when_resized() -> None:
    out = prepare_image(png((3000, 1500), alpha=True), max_side=1000)
    assert out.mime_type == "image/png" and (out.width, out.height) == (1000, 500)
    assert _open(out.data).mode == "RGBA"


def test_opaque_large_png_becomes_jpeg() -> None:
    out = prepare_image(png((3000, 1500)), max_side=1000)
    assert out.mime_type == "image/jpeg" and (out.width, out.height) == (1000, 500)


def test_small_png_is_stripped_losslessly() -> None:
    original = png((40, 30), text="GPS 25.7N 32.6E")
    out = prepare_image(original)
    assert not out.reencoded and out.mime_type == "image/png"
    assert b"GPS 25.7N" not in out.data and b"tEXt" not in out.data
    assert _open(out.data).tobytes() == _open(original).tobytes()


def test_gif_is_converted_because_gemini_does_not_take_it() -> None:
    buf = io.BytesIO()
    frames = [Image.new("P", (30, 20), i) for i in (1, 2)]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = prepare_image(buf.getvalue())
    assert out.mime_type in ("image/jpeg", "image/png") and out.source_format == "gif"
    assert (out.width, out.height) == (30, 20)


def test_webp_exif_is_removed_losslessly() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (50, 40), (1, 2, 3)).save(buf, "WEBP", exif=gps_exif(), lossless=True)
    original = buf.getvalue()
    assert b"PhoneModel" in original
    out = prepare_image(original)
    assert out.mime_type == "image/webp" and not out.reencoded
    assert b"PhoneModel" not in out.data and b"EXIF" not in out.data
    assert _open(out.data).tobytes() == _open(original).tobytes()


def test_jpeg_stripper_drops_data_after_the_main_image() -> None:
    # Phones append MPF side images (depth maps, gain maps) after EOI, with their own EXIF.
    main = jpeg((32, 32))
    trailer = jpeg((16, 16), exif=gps_exif())
    stripped = strip_jpeg_metadata(main + trailer)
    assert stripped.endswith(b"\xff\xd9") and b"PhoneModel" not in stripped
    assert _open(stripped).size == (32, 32)


def test_jpeg_stripper_handles_progressive_scans() -> None:
    img = Image.new("RGB", (120, 90), (90, 10, 200))
    buf = io.BytesIO()
    img.save(buf, "JPEG", progressive=True, exif=gps_exif())
    stripped = strip_jpeg_metadata(buf.getvalue())
    assert b"PhoneModel" not in stripped
    assert _open(stripped).tobytes() == _open(buf.getvalue()).tobytes()


def test_strippers_reject_garbage() -> None:
    with pytest.raises(ValueError):
        strip_jpeg_metadata(b"\xff\xd8\xff\xe1\x00")
    with pytest.raises(ValueError):
        strip_png_metadata(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
    with pytest.raises(ValueError):
        strip_webp_metadata(b"RIFF\x20\x00\x00\x00WEBPVP8X\xff\x00\x00\x00")


def _many_scans(repeats: int, size: int = 1000) -> bytes:
    """A progressive JPEG with its smallest AC scan repeated `repeats` more times."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (120, 80, 40)).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    parts = list(_jpeg_parts(data))
    scans = [
        b"\xff\xda" + segment + parts[i + 1][1]
        for i, (marker, segment) in enumerate(parts)
        if marker == 0xDA and parts[i + 1][0] == _SCAN_DATA and segment[-3] > 0  # AC: Ss > 0
    ]
    return data[:-2] + min(scans, key=len) * repeats + b"\xff\xd9"


@pytest.mark.parametrize("decode", ["prepare_image", "decode_fitted"])
def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding(decode: str) -> None:
    # libjpeg walks every block for each scan: 10,000 repeated 14-byte scans of a
    # 2000x2000 photo (187 KB) decoded for 5-20 s, most of the function's timeout.
    data = _many_scans(2000)
    assert len(data) < 100_000
    with pytest.raises(ApiError) as info:
        if decode == "prepare_image":
            prepare_image(data)
        else:
            decode_fitted(data, max_side=512)
    assert (info.value.status, info.value.code) == (415, "unsupported_image")
    assert f"more than {MAX_JPEG_SCANS} scans" in info.value.message


def test_a_jpeg_with_a_few_repeated_scans_is_still_decoded() -> None:
    # At the cap (the 10 scans libjpeg writes plus repeats): accepted and decoded.
    data = _many_scans(MAX_JPEG_SCANS - 10, size=64)
    assert sum(marker == 0xDA for marker, _ in _jpeg_parts(data)) == MAX_JPEG_SCANS
    out = prepare_image(data)
    assert (out.width, out.height) == (64, 64)


def _png_segments(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


def test_png_text_and_extra_profiles_never_reach_the_decoder() -> None:
    base = png((40, 30))
    icc = _png_chunk(b"iCCP", b"p\x00\x00" + zlib.compress(b"\x00" * 1000))
    text = _png_chunk(b"zTXt", b"k\x00\x00" + zlib.compress(b"A" * (1 << 20)))
    itxt = _png_chunk(b"iTXt", b"k\x00\x00\x00\x00\x00GPS 25.7N")
    after_ihdr = 8 + 25
    data = base[:after_ihdr] + icc + icc + text + itxt + base[after_ihdr:-12] + text + base[-12:]
    cleaned = png_for_decoding(data)
    assert _png_segments(cleaned).count(b"iCCP") == 1
    assert not {b"tEXt", b"zTXt", b"iTXt"} & set(_png_segments(cleaned))
    assert _open(cleaned).tobytes() == _open(base).tobytes()
    # A broken tail is left for the decoder to judge (and prepare_image answers 415).
    assert png_for_decoding(base[:-6]) == base[:-6]
    with pytest.raises(ApiError) as info:
        prepare_image(data[:-20])
    assert info.value.status == 415


def test_png_orientation_survives_text_removal() -> None:
    # eXIf is kept for decoding: its orientation is applied (then stripped).
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (5, 6, 7)).save(buffer, "PNG", exif=exif.tobytes())
    out = prepare_image(buffer.getvalue())
    assert out.reencoded and (out.width, out.height) == (20, 40)


def _jfif_with_thumbnails(data: bytes) -> bytes:
    """`data` (a JPEG starting with SOI + APP0 JFIF) with a 2x2 JFIF thumbnail and a
    JFXX APP0 extension holding another JPEG: where a crop can leave the original."""
    (length,) = struct.unpack(">H", data[4:6])
    assert data[6:11] == b"JFIF\x00"
    header = data[6:18] + b"\x02\x02" + b"\xff\x00\x00" * 4  # 2x2 RGB thumbnail
    jfif = b"\xff\xe0" + struct.pack(">H", len(header) + 2) + header
    original = jpeg((16, 16), color=(250, 0, 0))
    jfxx_body = b"JFXX\x00\x10" + original
    jfxx = b"\xff\xe0" + struct.pack(">H", len(jfxx_body) + 2) + jfxx_body
    return data[:2] + jfif + jfxx + data[4 + length :]


def test_jpeg_thumbnails_are_dropped_and_jfif_kept() -> None:
    base = jpeg((32, 32))
    data = _jfif_with_thumbnails(base)
    stripped = strip_jpeg_metadata(data)
    app0 = [segment for marker, segment in _jpeg_parts(stripped) if marker == 0xE0]
    assert app0 == [struct.pack(">H", 16) + base[6:18] + b"\x00\x00"]
    assert b"JFXX" not in stripped and stripped.count(b"\xff\xd8") == 1
    assert _open(stripped).tobytes() == _open(base).tobytes()
    out = prepare_image(data)
    assert not out.reencoded and out.data == stripped


def test_jpeg_with_restart_markers_strips_to_the_same_pixels() -> None:
    buffer = io.BytesIO()
    Image.effect_noise((96, 64), 60).convert("RGB").save(
        buffer, "JPEG", restart_marker_blocks=1, exif=gps_exif()
    )
    original = buffer.getvalue()
    assert b"\xff\xd0" in original
    stripped = strip_jpeg_metadata(original)
    assert b"PhoneModel" not in stripped
    assert _open(stripped).tobytes() == _open(original).tobytes()


def test_webp_unknown_chunks_are_dropped_and_the_profile_kept() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.new("RGB", (50, 40), (1, 2, 3)).save(buffer, "WEBP", icc_profile=icc, lossless=True)
    data = buffer.getvalue()
    extra = b"ORIG" + struct.pack("<I", 12) + b"uncropped!!!"
    body = data[8:] + extra
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    out = prepare_image(data)
    assert not out.reencoded and b"uncropped" not in out.data and b"ORIG" not in out.data
    assert _open(out.data).info.get("icc_profile") == icc
