"""Review 2: PNG text chunks are decompressed by Pillow while the image is opened, before
the memory budget is consulted, and are not in the cost model. iTXt values are UTF-8:
one astral character makes Python store a ~1 MB value in 4 bytes per character, and
Pillow's MAX_TEXT_MEMORY counts characters, so 64 such chunks (~69 KB on the wire) hold
~256 MB. A 4000x4000 RGBA PNG with them takes a 512 MB function to ~87%."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from lens.settings import MIB

from tests.function.events import _png_chunk, declared_png
from tests.function.memory import HANDLER_CHILD, peak_of

GOAL = 0.6  # every admitted image keeps the process under 60% of the function's memory
MEMORY_MB = 512


def _with_astral_itxt(png: bytes, chunks: int = 64) -> bytes:
    """`png` with `chunks` zlib-compressed iTXt chunks of ~1 MB that each start with an
    emoji, inserted after IHDR (so Pillow reads them while opening)."""
    text = "\U0001f600".encode() + b"A" * ((1 << 20) - 20)
    payload = zlib.compress(text, 9)
    itxt = b"".join(
        _png_chunk(b"iTXt", b"k%d\x00\x01\x00\x00\x00" % n + payload) for n in range(chunks)
    )
    after_ihdr = 8 + 25
    return png[:after_ihdr] + itxt + png[after_ihdr:]


@pytest.mark.parametrize(
    ("path", "size"), [("/predict/digits", (64, 64)), ("/analyze", (4000, 4000))]
)
def test_png_text_chunks_do_not_blow_the_memory_budget(
    path: str, size: tuple[int, int], tmp_path: Path
) -> None:
    file = tmp_path / "text-bomb.png"
    data = _with_astral_itxt(declared_png(*size))
    assert len(data) < 400_000  # well within every upload limit
    file.write_bytes(data)
    env = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB)}
    peak, (status, code) = peak_of(HANDLER_CHILD, argv=[path, str(file)], env=env)
    # Refusing it (413/415) is fine; what is not is the peak, whatever the answer.
    assert peak < GOAL * MEMORY_MB * MIB, (
        f"peak {peak / MIB:.0f} MB of {MEMORY_MB} MB, answered {status} {code}"
    )
