"""Digits drawn like a person would: thick pen strokes on a large white canvas."""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageDraw, ImageFont

# One pen path per digit, in unit coordinates (x right, y down), as handwriting goes.
STROKES: dict[int, list[tuple[float, float]]] = {
    0: [(0.5, 0.05), (0.25, 0.15), (0.15, 0.5), (0.25, 0.85), (0.5, 0.95), (0.75, 0.85),
        (0.85, 0.5), (0.75, 0.15), (0.5, 0.05)],
    1: [(0.35, 0.2), (0.55, 0.05), (0.55, 0.95)],
    2: [(0.2, 0.25), (0.35, 0.08), (0.6, 0.05), (0.78, 0.2), (0.75, 0.42), (0.2, 0.95),
        (0.85, 0.95)],
    3: [(0.2, 0.12), (0.5, 0.05), (0.75, 0.15), (0.75, 0.35), (0.45, 0.5), (0.78, 0.62),
        (0.8, 0.85), (0.5, 0.95), (0.2, 0.88)],
    4: [(0.65, 0.95), (0.65, 0.05), (0.15, 0.65), (0.85, 0.65)],
    5: [(0.8, 0.05), (0.3, 0.05), (0.25, 0.45), (0.55, 0.4), (0.8, 0.55), (0.8, 0.8),
        (0.55, 0.95), (0.2, 0.9)],
    6: [(0.7, 0.05), (0.4, 0.25), (0.22, 0.6), (0.3, 0.9), (0.55, 0.95), (0.78, 0.8),
        (0.75, 0.58), (0.5, 0.5), (0.25, 0.65)],
    7: [(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)],
    8: [(0.5, 0.5), (0.25, 0.35), (0.3, 0.1), (0.5, 0.05), (0.7, 0.1), (0.75, 0.35),
        (0.5, 0.5), (0.2, 0.7), (0.3, 0.92), (0.5, 0.95), (0.7, 0.92), (0.8, 0.7), (0.5, 0.5)],
    9: [(0.75, 0.4), (0.5, 0.5), (0.25, 0.35), (0.3, 0.1), (0.55, 0.05), (0.75, 0.2),
        (0.75, 0.4), (0.7, 0.95)],
}  # fmt: skip


def draw_digit(
    digit: int,
    *,
    canvas: int = 200,
    width: int = 14,
    box: tuple[float, float, float, float] = (40, 20, 120, 160),
    ink: int | tuple[int, ...] = 0,
    paper: int | tuple[int, ...] = 255,
    mode: str = "L",
) -> Image.Image:
    """`digit` as one thick pen stroke inside `box` (x, y, w, h) on a canvas x canvas image."""
    image = Image.new(mode, (canvas, canvas), paper)
    pen = ImageDraw.Draw(image)
    x0, y0, bw, bh = box
    points = [(x0 + x * bw, y0 + y * bh) for x, y in STROKES[digit]]
    pen.line(points, fill=ink, width=width, joint="curve")
    radius = width / 2
    for px, py in points:  # round pen tip
        pen.ellipse((px - radius, py - radius, px + radius, py + radius), fill=ink)
    return image


def type_digit(digit: int, *, size: int = 160, stroke: int = 4, canvas: int = 200) -> Image.Image:
    """`digit` in Pillow's bundled font, black on white."""
    image = Image.new("L", (canvas, canvas), 255)
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(image).text(
        (canvas / 2, canvas / 2), str(digit), fill=0, font=font, anchor="mm",
        stroke_width=stroke, stroke_fill=0,
    )  # fmt: skip
    return image


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def b64(image: Image.Image, fmt: str = "PNG") -> str:
    return base64.b64encode(encode(image, fmt)).decode("ascii")
