"""Warm handler overhead on a 12-megapixel photo, against the seed's path; cold import time.

Overhead = everything the function does except the upstream round trip: parsing the
event, validation, base64 decoding, image preparation, building the answer. It is
measured through lens.handler.lambda_handler against the Gemini-compatible test server
with zero delay, as the handler's wall time minus its own `timings_ms.model`.

The seed's path is what the Egyptian AI Lens backend did with the legacy
google-generativeai SDK: decode the upload with PIL, then hand the PIL image to the SDK,
which re-encodes it at full resolution (`image.save(bytesio, format=...)`) into the
request blob, which is then base64-encoded for the JSON request. The PNG variant is the
comparison asked for; the legacy SDK's other branches are reported too: JPEG at Pillow's
default quality (<= 0.7, non-PNG inputs) and, with BENCH_LEGACY_WEBP=1, lossless WebP
(0.8, in-memory images), which takes tens of seconds per 12 MP photo.

Run: .venv/bin/python -m bench bench_handler
"""

from __future__ import annotations

import base64
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WARM_RUNS = 12
SEED_RUNS = 3
COLD_RUNS = 5


def make_photo() -> bytes:
    """A photo-like 4000x3000 JPEG with camera EXIF and GPS (about 3 MB)."""
    from sklearn.datasets import load_sample_image

    src = Image.fromarray(load_sample_image("china.jpg"))
    big = src.resize((4000, 3000), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(7)
    pixels = np.asarray(big, dtype=np.int16) + rng.normal(0, 6, (3000, 4000, 3)).astype(np.int16)
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "Phone"  # Make
    exif[0x0110] = "Phone 15 Pro"  # Model
    exif[0x0132] = "2025:03:14 10:21:07"  # DateTime
    exif[0x0112] = 1  # Orientation
    exif[0x8825] = {1: "N", 2: (25.0, 44.0, 27.0), 3: "E", 4: (32.0, 36.0, 18.0)}  # GPS
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, exif=exif)
    return buf.getvalue()


def seed_blob(upload_b64: str, fmt: str, **save: Any) -> int:
    """The seed: PIL decode, full-resolution re-encode like the legacy SDK, base64."""
    image = Image.open(io.BytesIO(base64.b64decode(upload_b64)))
    bytesio = io.BytesIO()
    image.save(bytesio, format=fmt, **save)
    blob = bytesio.getvalue()
    base64.b64encode(blob)  # the SDK sends inline data as base64 in JSON
    return len(blob)


def _median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def cold_import_ms() -> tuple[float, float]:
    """Median (import lens.handler, + first resolver build) in fresh interpreters."""
    code = (
        "import time; t = time.perf_counter(); import lens.handler; a = time.perf_counter();"
        "from lens.app import get_resolver; get_resolver('rest', lens.handler.function.routers);"
        "b = time.perf_counter();"
        "print((a - t) * 1000, (b - t) * 1000)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lambda")}
    imports, inits = [], []
    for _ in range(COLD_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        imports.append(float(out[0]))
        inits.append(float(out[1]))
    return statistics.median(imports), statistics.median(inits)


def main() -> None:
    sys.path[:0] = [str(ROOT / "lambda"), str(ROOT)]
    from tests.function.events import FakeContext, rest_event
    from tests.support.gemini_server import GeminiServer

    photo = make_photo()
    upload_b64 = base64.b64encode(photo).decode()
    print(f"photo: 4000x3000 JPEG, {len(photo) / 1e6:.2f} MB, EXIF with GPS")

    import_ms, init_ms = cold_import_ms()
    print(f"cold: import lens.handler {import_ms:.0f} ms; import + resolver init {init_ms:.0f} ms")

    server = GeminiServer()
    server.start()
    os.environ.update(
        {
            "GOOGLE_GEMINI_BASE_URL": server.url,
            "GOOGLE_API_KEY": "bench-key",
            # The bench measures overhead; raise the Lambda-sized body limit for big photos.
            "SCARAB_MAX_BODY_BYTES": str(64 * 1024 * 1024),
            "SCARAB_MAX_IMAGE_BYTES": str(64 * 1024 * 1024),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    try:
        from lens.handler import lambda_handler

        event = rest_event(body={"image": upload_b64, "speed": "fast", "imageType": "tomb"})
        overheads: list[float] = []
        walls: list[float] = []
        first_ms = 0.0
        sent = 0
        for i in range(WARM_RUNS + 2):
            started = time.perf_counter()
            response = lambda_handler(event, FakeContext())  # type: ignore[arg-type]
            wall = (time.perf_counter() - started) * 1000
            body = json.loads(response["body"])
            assert response["statusCode"] == 200, body
            if i == 0:
                first_ms = wall
            if i >= 2:  # the first calls import google-genai and build the client
                overheads.append(wall - body["timings_ms"]["model"])
                walls.append(wall)
            sent = body["image"]["bytes_sent"]
        ours = statistics.median(overheads)
        print(
            f"ours: overhead median {ours:.1f} ms (wall incl. local round trip "
            f"{statistics.median(walls):.1f} ms; first request {first_ms:.0f} ms), "
            f"bytes sent {sent / 1e3:.0f} KB = {100 * sent / len(photo):.1f}% of the photo"
        )

        variants: list[tuple[str, str, dict[str, Any]]] = [
            ("seed PNG (asked comparison)", "PNG", {}),
            ("seed JPEG q75 (legacy <= 0.7)", "JPEG", {}),
        ]
        if os.environ.get("BENCH_LEGACY_WEBP"):
            variants.append(("seed lossless WebP (legacy 0.8)", "WEBP", {"lossless": True}))
        for label, fmt, save in variants:
            runs = 1 if fmt == "WEBP" else SEED_RUNS
            seed_ms, seed_bytes = _median_ms(
                lambda fmt=fmt, save=save: seed_blob(upload_b64, fmt, **save), runs
            )
            print(
                f"{label}: median {seed_ms:.0f} ms, bytes sent {seed_bytes / 1e6:.2f} MB "
                f"({100 * seed_bytes / len(photo):.0f}% of the photo); "
                f"ours is {seed_ms / ours:.0f}x less overhead, "
                f"{seed_bytes / sent:.0f}x fewer bytes"
            )
    finally:
        server.stop()
