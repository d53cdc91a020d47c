"""Decode an image sent to a model as base64 or a data: URL.

The same decoding, limits and error codes as /analyze (lens.intake, lens.images and the
SCARAB_MAX_* settings), so a client sees one behaviour across routes. The image comes
back upright and already shrunk, decoded within the function's memory budget.
"""

from __future__ import annotations

from PIL import Image

from lens.images import decode_fitted
from lens.intake import decode_image_field
from lens.settings import get_settings


def decode_image(value: str, max_side: int) -> Image.Image:
    """base64 / data URL text -> upright PIL image (L, LA, RGB or RGBA) that fits
    max_side x max_side (box-filtered), or an ApiError (400/413/415)."""
    settings = get_settings()
    data = decode_image_field(value, settings.max_image_bytes)
    return decode_fitted(
        data,
        max_side=max_side,
        max_pixels=settings.max_pixels,
        max_bytes=settings.max_image_bytes,
        memory_budget=settings.image_memory_bytes,
        resample=Image.Resampling.BOX,
    )
