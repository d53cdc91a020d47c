"""Peak memory of POST /analyze with an upload: the largest objects `[uploads] max_mb`
admits (50 MB) against the function's 512 MB.

A moto server holds the uploads bucket; each row is a fresh interpreter
(tests.function.memory.peak_of: the child's own VmHWM) that sends one
`{"upload": key}` request through lens.handler.lambda_handler. With no Gemini key the
prepared image answers 503 gemini_not_configured, so the peak includes reading the
object and preparing it (and the object stays, as after any 5xx). The baseline row is
the same request for a tiny photo, in the same run.

Run: .venv/bin/python -m bench bench_memory_uploads
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
MAX_BYTES = 50 * MB
BUCKET = "bench-uploads"
GOAL_PERCENT = 60

CHILD = """
import contextlib, io, sys
from lens.handler import lambda_handler
from tests.function.events import FakeContext, rest_event, response_json

event = rest_event("POST", "/analyze", body={"upload": sys.argv[-1], "speed": "regular"})
with contextlib.redirect_stdout(io.StringIO()):
    response = lambda_handler(event, FakeContext())
RESULT = [response["statusCode"], response_json(response).get("error", {}).get("code")]
"""


def _jpeg(size: tuple[int, int], quality: int, noise: bool, progressive: bool = False) -> bytes:
    import numpy as np
    from PIL import Image

    if noise:  # a camera's sensor noise: compresses like a real photo, not a flat colour
        rng = np.random.default_rng(7)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
    else:
        image = Image.new("RGB", size, (40, 90, 160))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, progressive=progressive)
    return buffer.getvalue()


def objects() -> dict[str, bytes]:
    """name -> object bytes, each within 50 MB and the 50 MP pixel limit."""
    photo_40mp = _jpeg((7296, 5472), 75, noise=True)
    return {
        "tiny 64x48 (baseline)": _jpeg((64, 48), 90, noise=False),
        f"jpeg 40MP noise q75 ({len(photo_40mp) / MB:.0f} MB)": photo_40mp,
        # JPEG decoders stop at EOI: the rest of the 50 MB is read but never decoded.
        "jpeg 40MP padded to 50 MB": photo_40mp + b"\0" * (MAX_BYTES - len(photo_40mp)),
        "jpeg progressive 50MP flat": _jpeg((7071, 7071), 90, noise=False, progressive=True),
    }


def main() -> None:
    for path in ("lambda", "."):
        if str(ROOT / path) not in sys.path:
            sys.path.insert(0, str(ROOT / path))
    import boto3

    from tests.function.memory import peak_of
    from tests.support.moto_server import MotoServer

    memory = 512
    moto = MotoServer()
    moto.start()
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=moto.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        env = {
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "SCARAB_UPLOADS_BUCKET": BUCKET,
            "SCARAB_UPLOADS_MAX_BYTES": str(MAX_BYTES),
            "GOOGLE_API_KEY": "",
            "GEMINI_API_KEY": "",
        }
        print(f"function memory {memory} MB; goal: every admitted upload under {GOAL_PERCENT}%")
        print(f"{'object':40s} {'peak MB':>8s} {'% mem':>6s}  answer")
        worst = 0.0
        for index, (name, data) in enumerate(objects().items()):
            key = f"uploads/{index:032x}"
            s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/jpeg")
            peak, (status, code) = peak_of(CHILD, argv=[key], env=env)
            percent = peak / MB / memory * 100
            print(f"{name:40s} {peak / MB:8.0f} {percent:5.0f}%  {status} {code or 'ok'}")
            worst = max(worst, percent)
        verdict = "met" if worst < GOAL_PERCENT else "MISSED"
        print(f"worst upload: {worst:.0f}% of the function's memory (goal {verdict})")
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
