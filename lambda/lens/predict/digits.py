"""The `digits` model: a handwritten digit image -> 0-9, via scikit-learn's digits form.

The dataset (optdigits) holds 32x32 binary bitmaps of digits scaled to fill the box,
counted in 4x4 blocks into 8x8 values of 0..16. Preprocessing reproduces that from any
image: ink from contrast with the background (light or dark, or from alpha on a
transparent canvas), crop to the ink, pad to a square keeping the aspect, area-resize
to 32x32, binarize, thicken thin strokes to the dataset's stroke width, count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter, ImageOps
from pydantic import BaseModel, ConfigDict, Field

from lens.errors import ApiError
from lens.predict.images import decode_image
from lens.predict.loader import LoadedModel

FloatArray = npt.NDArray[np.float32]

# Dataset strokes are 3-8 px wide in the 32x32 bitmap; a thin pen scaled down to 32x32
# leaves 1 px lines that read as other shapes, so strokes are thickened up to 3 px.
TARGET_STROKE_PX = 3.0
MAX_THICKEN_STEPS = 3
# Large images are reduced first: 8x8 is the goal, 512 keeps thin strokes visible.
WORKING_SIZE = 512
# Relative ink level that counts as "ink" when finding the digit's bounding box.
INK_LEVEL = 0.35
# Below this contrast between ink and background there is nothing to read.
MIN_CONTRAST = 0.15

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "DigitsRequest",
    "required": ["image"],
    "additionalProperties": False,
    "properties": {
        "image": {
            "type": "string",
            "description": (
                "A picture of one handwritten digit, any size: base64 (standard or URL-safe) "
                "or a data: URL; PNG, JPEG, WebP or GIF."
            ),
        },
        "mime_type": {
            "type": "string",
            "description": "Optional; the format is read from the image itself.",
        },
    },
}


class DigitsRequest(BaseModel):
    """Body of POST /predict/digits."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1)
    mime_type: str | None = None


def _ink(image: Image.Image) -> FloatArray:
    """Ink intensity per pixel in 0..1 (1 = the strongest ink), whatever the colours."""
    image = ImageOps.exif_transpose(image)
    if max(image.size) > WORKING_SIZE:
        image = image.copy()
        image.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BOX)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        alpha = np.asarray(image.convert("RGBA"), dtype=np.float32)[..., 3] / 255.0
        if float(alpha.min()) < 0.98:  # drawn on a transparent canvas: what is opaque is ink
            return _normalized(alpha)
    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    ink = background - gray if background > 0.5 else gray - background
    return _normalized(np.clip(ink, 0.0, None))


def _normalized(ink: FloatArray) -> FloatArray:
    peak = float(ink.max()) if ink.size else 0.0
    if peak < MIN_CONTRAST:
        raise ApiError(
            422, "no_digit_found", "The image shows no digit: it is blank or has no contrast."
        )
    return (ink / peak).astype(np.float32)


def stroke_width(bits: npt.NDArray[np.bool_]) -> float:
    """Mean stroke width in pixels: a stroke of width w and length L has area w*L and
    about 2*L boundary pixels, so w ~ 2 * area / boundary."""
    area = int(bits.sum())
    padded = np.pad(bits, 1)
    interior = (
        padded[1:-1, 1:-1]
        & padded[:-2, 1:-1]
        & padded[2:, 1:-1]
        & padded[1:-1, :-2]
        & padded[1:-1, 2:]
    )
    boundary = area - int(interior.sum())
    return 2.0 * area / max(boundary, 1)


def preprocess(image: Image.Image) -> FloatArray:
    """Any digit image -> the 64 dataset-style features (8x8 row-major, 0..16), float32."""
    ink = _ink(image)
    mask = ink > INK_LEVEL
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    side = max(height, width)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = crop
    small = np.asarray(Image.fromarray(square, mode="F").resize((32, 32), Image.Resampling.BOX))
    # Half coverage makes a pixel ink, except that a pen thinner than half a pixel at
    # this scale never gets there: then half of the strongest coverage counts.
    level = min(0.5, 0.5 * float(small.max()))
    bitmap = Image.fromarray(((small >= level) * 255).astype(np.uint8), mode="L")
    for _ in range(MAX_THICKEN_STEPS):
        if stroke_width(np.asarray(bitmap) > 0) >= TARGET_STROKE_PX:
            break
        bitmap = bitmap.filter(ImageFilter.MaxFilter(3))
    bits = (np.asarray(bitmap) > 0).astype(np.float32)
    counts: FloatArray = bits.reshape(8, 4, 8, 4).sum(axis=(1, 3)).reshape(64)
    return counts


def predict(model: LoadedModel, request: DigitsRequest) -> dict[str, Any]:
    """The digit in the request's image, with every class probability."""
    features = preprocess(decode_image(request.image, WORKING_SIZE))
    probabilities = model.probabilities(features.reshape(1, 64))[0]
    if not np.isfinite(probabilities).all():
        # The features are counts 0..16 whatever the image: this is the model's fault.
        raise ApiError(
            500, "model_misconfigured", f"Model '{model.entry.name}' gave no probabilities."
        )
    labels = model.entry.labels
    best = int(np.argmax(probabilities))
    return {
        "label": int(labels[best]),
        "probability": round(float(probabilities[best]), 6),
        "probabilities": {
            label: round(float(p), 6) for label, p in zip(labels, probabilities, strict=True)
        },
        "model": {"name": model.entry.name, "version": model.entry.version},
        "model_version": model.entry.version,
    }
