"""Decode an image sent to a model as base64 or a data: URL.

The same decoding, limits and error codes as /analyze (lens.intake, lens.images and the
SCARAB_MAX_* settings), so a client sees one behaviour across routes.
"""

from __future__ import annotations

from PIL import Image

from lens.images import load_image, open_image
from lens.intake import decode_image_field
from lens.settings import get_settings


def decode_image(value: str) -> Image.Image:
    """base64 / data URL text -> fully decoded PIL image, or an ApiError (400/413/415)."""
    settings = get_settings()
    data = decode_image_field(value, settings.max_image_bytes)
    _, img = open_image(data, max_pixels=settings.max_pixels, max_bytes=settings.max_image_bytes)
    return load_image(img)
