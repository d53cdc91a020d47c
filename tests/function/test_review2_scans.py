"""Review 2: a progressive JPEG may repeat a scan any number of times, and libjpeg
walks every block of the image for each one. A 2000x2000 photo with 10,000 copies of
a 14-byte AC scan is 187 KB and took 21 s to decode here (the 4.5 MB a request may
carry holds ~300,000 of them): the function hits its 30 s timeout instead of
answering. An image with far more scans than any encoder writes should be refused."""

from __future__ import annotations

import io

import pytest
from lens.errors import ApiError
from lens.images import _SCAN_DATA, _jpeg_parts, decode_fitted, prepare_image
from PIL import Image

REPEATS = 2000  # real progressive JPEGs have about 10 scans; libjpeg's own tools cap at 100


def _many_scans(repeats: int) -> bytes:
    """A progressive 1000x1000 JPEG with its smallest AC scan repeated `repeats` times."""
    buffer = io.BytesIO()
    Image.new("RGB", (1000, 1000), (120, 80, 40)).save(buffer, "JPEG", progressive=True)
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
    data = _many_scans(REPEATS)
    assert len(data) < 100_000
    with pytest.raises(ApiError) as info:
        if decode == "prepare_image":
            prepare_image(data)
        else:
            decode_fitted(data, max_side=512)
    assert info.value.status in (413, 415), info.value.code
