"""Peak memory of one request with the worst images the limits admit, against the function.

Each row is a fresh interpreter (tests.function.memory.peak_of: the child's own VmHWM,
not inflated by this process) that imports lens.handler and sends one image through
lambda_handler: POST /analyze (no Gemini key here, so a prepared image answers 503
gemini_not_configured; the peak includes decoding and preparing it) and POST
/predict/digits (after a small prediction, so the digits model is loaded). Images stay
within the 6 MiB / 50 MP limits; most declare huge dimensions in a few hundred KB.

Columns: peak RSS in MB, % of the function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
default 512), lens's own estimate (lens.images.estimated_cost) and the answer. Goal:
every admitted image under 60% of the function's memory; the rest answer 413.

Run: .venv/bin/python -m bench bench_memory
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
GOAL_PERCENT = 60
# 7071 x 7071 is the largest square under the 50 MP limit.
SIDE = 7071


def _pillow(mode: str, fmt: str, size: tuple[int, int] = (SIDE, SIDE), **params: object) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new(mode, size, 0 if mode in ("L", "P", "1") else (40, 90, 160))
    ImageDraw.Draw(image).line([(0, 0), size], fill=255 if mode in ("L", "P") else "white")
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _animated(fmt: str, size: tuple[int, int], **params: object) -> bytes:
    from PIL import Image

    frames = [Image.new("RGB", size, colour) for colour in ((200, 40, 40), (40, 200, 40))]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], **params)
    return buffer.getvalue()


def images() -> dict[str, Callable[[], bytes]]:
    """name -> builder of the worst images the byte and pixel limits admit."""
    from tests.function.events import declared_png

    return {
        "png rgba 7200x6800 (issue)": lambda: declared_png(7200, 6800),
        "png rgba 50MP": lambda: declared_png(SIDE, SIDE),
        "png rgba 16-bit 50MP": lambda: declared_png(SIDE, SIDE, bit_depth=16),
        "png grey 16-bit 50MP": lambda: declared_png(SIDE, SIDE, color_type=0, bit_depth=16),
        "png palette+tRNS 50MP": lambda: declared_png(
            SIDE, SIDE, color_type=3, trns=bytes(range(256))
        ),
        "png 1-bit 50MP": lambda: declared_png(SIDE, SIDE, color_type=0, bit_depth=1),
        "png rgba 12MP": lambda: declared_png(4032, 3024),
        "gif animated 50MP": lambda: _animated("GIF", (SIDE, SIDE)),
        "webp lossy 50MP": lambda: _pillow("RGB", "WEBP", quality=20),
        "webp lossy 12MP": lambda: _pillow("RGB", "WEBP", (4032, 3024), quality=20),
        "webp lossless 12MP": lambda: _pillow("RGBA", "WEBP", (4032, 3024), lossless=True),
        "webp lossy 10MP": lambda: _pillow("RGB", "WEBP", (3648, 2736), quality=20),
        "webp animated 10MP": lambda: _animated("WEBP", (3648, 2736), quality=20),
        "jpeg baseline 4:4:4 50MP": lambda: _pillow("RGB", "JPEG", subsampling=0, quality=60),
        "jpeg progressive 4:2:0 50MP": lambda: _pillow(
            "RGB", "JPEG", subsampling=2, progressive=True, quality=60
        ),
        "jpeg progressive 4:4:4 50MP": lambda: _pillow(
            "RGB", "JPEG", subsampling=0, progressive=True, quality=60
        ),
    }


def main() -> None:
    for path in ("lambda", "."):
        if str(ROOT / path) not in sys.path:
            sys.path.insert(0, str(ROOT / path))
    from lens.images import estimated_cost
    from lens.settings import get_settings

    from tests.function.memory import HANDLER_CHILD, peak_of

    settings = get_settings()
    memory = settings.function_memory_mb
    print(
        f"function memory {memory} MB; image budget {settings.image_memory_bytes / MB:.0f} MB "
        f"({settings.image_memory_percent}%); goal: admitted images under {GOAL_PERCENT}%"
    )

    def row(name: str, peak_bytes: int, estimate: str, answer: str) -> None:
        peak = peak_bytes / MB
        print(f"{name:50s} {peak:8.0f} {peak / memory * 100:6.0f}% {estimate:>9s}  {answer}")

    print(f"{'image [route, size]':50s} {'peak MB':>8s} {'% mem':>7s} {'est. MB':>9s}  answer")
    base, _ = peak_of(HANDLER_CHILD, argv=["/analyze", "-"])
    row("baseline: import lens.handler", base, "", "")
    warm, answer = peak_of(HANDLER_CHILD, argv=["/predict/digits", "-"])
    row("baseline: + digits model loaded", warm, "", f"{answer[0]} {answer[1] or 'ok'}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in images().items():
            data = build()
            file = os.path.join(tmp, "image")
            Path(file).write_bytes(data)
            estimate = f"{estimated_cost(data, max_side=settings.max_side) / MB:.0f}"
            for route in ("/analyze", "/predict/digits"):
                peak, (status, code) = peak_of(HANDLER_CHILD, argv=[route, file])
                answer = f"{status} {code or 'ok'}"
                row(f"{name} [{route}, {len(data) / 1e3:.0f} KB]", peak, estimate, answer)
                if status != 413:
                    worst = max(worst, peak / MB / memory * 100)
    verdict = "met" if worst < GOAL_PERCENT else "MISSED"
    print(f"worst admitted image: {worst:.0f}% of the function's memory (goal {verdict})")


if __name__ == "__main__":
    main()
