"""Helpers for the browser tests: test photos, the local stack's knobs, the wire."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_image

EXIF_ORIENTATION = 0x0112


def phone_photo(path: Path, size: tuple[int, int] = (4000, 3000), orientation: int = 6) -> Path:
    """A 12 MP JPEG like a phone's: a real photo (scikit-learn's china.jpg) scaled up,
    sensor-like noise so it does not compress unrealistically well, and an EXIF
    orientation (6: the camera was held upright; displays as 3000x4000)."""
    base = Image.fromarray(load_sample_image("china.jpg")).resize(size, Image.Resampling.BICUBIC)
    rng = np.random.default_rng(12)
    pixels = np.asarray(base, dtype=np.int16) + rng.normal(0, 5, (size[1], size[0], 3))
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    photo.save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


def noise_photo(path: Path, side: int = 2600) -> Path:
    """Pure noise: JPEG cannot compress it, so it stays megabytes at any quality."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=95)
    return path


def decode_upload(body: bytes) -> tuple[dict[str, Any], Image.Image]:
    """The JSON the page POSTed to /api/analyze, and the image inside it."""
    payload = json.loads(body)
    data = payload["image"]
    if data.startswith("data:"):
        data = data.split(",", 1)[1]
    return payload, Image.open(io.BytesIO(base64.b64decode(data)))


def proxy_post(base_url: str, path: str, body: bytes = b"{}") -> tuple[int, bytes]:
    """POST to serve's same-origin /api/... route (like the page, without a browser)."""
    request = urllib.request.Request(
        f"{base_url}{path}", data=body, method="POST", headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def proxy_get(base_url: str, path: str) -> int:
    try:
        with urllib.request.urlopen(f"{base_url}{path}", timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def usage_plan(apigateway: Any) -> dict[str, Any]:
    plans = apigateway.get_usage_plans()["items"]
    assert len(plans) == 1, plans
    return dict(plans[0])


@contextmanager
def plan_patched(apigateway: Any, **values: int) -> Iterator[None]:
    """Temporarily change the usage plan (paths like /throttle/rateLimit) in the emulator;
    serve picks changes up on its next snapshot refresh. Restored on exit."""
    plan = usage_plan(apigateway)
    names = {
        "rate": ("/throttle/rateLimit", plan["throttle"]["rateLimit"]),
        "burst": ("/throttle/burstLimit", plan["throttle"]["burstLimit"]),
        "quota": ("/quota/limit", plan["quota"]["limit"]),
    }

    def patch(pairs: dict[str, Any]) -> None:
        apigateway.update_usage_plan(
            usagePlanId=plan["id"],
            patchOperations=[
                {"op": "replace", "path": names[name][0], "value": str(int(value))}
                for name, value in pairs.items()
            ],
        )

    patch(values)
    try:
        yield
    finally:
        patch({name: names[name][1] for name in values})


def relative_luminance(css_color: str) -> float:
    """'rgb(r, g, b)' or 'rgba(...)' -> WCAG relative luminance."""
    inside = css_color[css_color.index("(") + 1 : css_color.index(")")]
    channels = [float(v) / 255 for v in inside.replace("/", ",").split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(fg: str, bg: str) -> float:
    a, b = sorted((relative_luminance(fg), relative_luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)
