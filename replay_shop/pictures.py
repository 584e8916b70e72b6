"""Procedural product pictures: cheap, deterministic stand-ins for shop photos.

A picture is a side view whose silhouette follows the item kind (sole line, toe,
heel height for high heels, shaft for boots, straps for sandals; simple shapes for
the planted non-shoe items) filled with the product colour on a light backdrop.
Like real shop photos, pictures of different products differ beyond kind and
colour: each picture (its `pose`, seeded from the picture id) has its own backdrop
(uneven light, a table edge, prop or wall corner), camera tilt, scale and position,
and shoes a brand mark and stitching at their own place.
That is enough for the image side of the pipeline to have real signal: colour and
shape can be learned and checked, and the planted near-duplicates (re-encoded,
resized, re-cropped, watermarked copies of one picture) really look alike.

Everything is drawn from `PictureSpec` alone, so one spec always gives the same
bytes. Drawing is at 2x and halved (cheap anti-aliasing); a 320 px JPEG takes a
few milliseconds.
"""

from __future__ import annotations

import io
import math
import random
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

COLOUR_RGB = {
    "đen": (28, 28, 30),
    "trắng": (246, 246, 244),
    "đỏ": (200, 32, 40),
    "xanh dương": (34, 78, 186),
    "xanh lá": (44, 150, 70),
    "be": (222, 202, 164),
    "nâu": (120, 74, 40),
    "hồng": (240, 150, 184),
    "xám": (128, 128, 132),
    "vàng": (236, 198, 40),
}

DEFAULT_SIZE = 320
TINY_SIZE = 40
HUGE_SIDE = 2100  # 2100² RGB noise stored uncompressed: ~13 MB, past the crawler's 10 MiB cap
_SUPERSAMPLE = 2

NOT_IMAGE_BODY = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>404 Not Found</title></head>"
    "<body><h1>404 Not Found</h1><p>Ảnh không tồn tại hoặc đã bị xoá.</p></body></html>"
).encode()

Point = tuple[float, float]


@dataclass(frozen=True)
class PictureSpec:
    """What a picture shows; `pose` varies viewpoint, framing and background so
    several pictures of one product differ while keeping kind and colour."""

    kind: str  # a key of vocab.ALL_KINDS
    colour: str  # a key of COLOUR_RGB
    pose: int


def render(spec: PictureSpec, transform: str = "original", defect: str | None = None,
           watermark: str = "") -> bytes:
    """The encoded bytes of one listed image: the picture, transformed as a
    duplicate copy or broken as a planted defect."""
    if defect is not None:
        return _DEFECTS[defect](spec)
    variation = random.Random(f"{spec.pose}:{transform}")
    image = draw(spec)
    quality = 90
    if transform == "reencode":
        quality = variation.randint(50, 70)
    elif transform == "resize":
        scale = variation.uniform(0.55, 0.8)
        side = round(DEFAULT_SIZE * scale)
        image = image.resize((side, side), Image.Resampling.BILINEAR)
    elif transform == "crop":
        image = _recrop(image, variation)
    elif transform == "watermark":
        _draw_watermark(image, watermark or "shop", variation)
    elif transform != "original":
        raise ValueError(f"unknown transform {transform!r}")
    return encode_jpeg(image, quality)


def encode_jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def draw(spec: PictureSpec, size: int = DEFAULT_SIZE) -> Image.Image:
    """The picture as an RGB image of `size` x `size`."""
    rng = random.Random(spec.pose)
    big = size * _SUPERSAMPLE
    image = _backdrop(rng, big)
    canvas = _Canvas(ImageDraw.Draw(image), big, rng)
    colour = COLOUR_RGB[spec.colour]
    canvas.shadow()
    _PAINTERS.get(spec.kind, _paint_low_shoe)(canvas, colour, spec.kind)
    _paint_mark(canvas, colour, spec.kind)
    return image.reduce(_SUPERSAMPLE)


def _backdrop(rng: random.Random, size: int) -> Image.Image:
    """A light studio backdrop that differs per picture, as real shop photos do:
    an uneven light falloff (a coarse grid of shades, smoothly upscaled) and a
    table edge or a prop at a seeded place."""
    base = _background(rng)
    cells = rng.choice((2, 3, 4))
    shades = Image.new("RGB", (cells, cells))
    shades.putdata([_shade(base, rng.randint(0, 70), rng) for _ in range(cells * cells)])
    # Smooth at a quarter of the size, then blocky up: the halving in draw() hides the steps.
    image = shades.resize((size // 4, size // 4), Image.Resampling.BILINEAR).resize((size, size),
                                                                                   Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    tint = _shade(base, rng.randint(20, 70), rng)
    style = rng.randrange(3)
    if style == 0:  # a table top, its edge at a seeded height and slope
        left, right = rng.uniform(0.55, 0.9) * size, rng.uniform(0.55, 0.9) * size
        draw.polygon([(0, left), (size, right), (size, size), (0, size)], fill=tint)
    elif style == 1:  # a prop behind the item: a box or a disc near a corner
        x, y = rng.choice((0.0, 0.6)) * size, rng.uniform(0.0, 0.35) * size
        w, h = rng.uniform(0.25, 0.4) * size, rng.uniform(0.2, 0.45) * size
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=tint)
    else:  # a wall corner: one side in shade
        x = rng.uniform(0.2, 0.8) * size
        draw.polygon([(0, 0), (x, 0), (x + rng.uniform(-0.1, 0.1) * size, size), (0, size)], fill=tint)
    return image


def _shade(base: tuple[int, int, int], darker: int, rng: random.Random) -> tuple[int, int, int]:
    return tuple(max(0, c - darker - rng.randint(0, 6)) for c in base)  # type: ignore[return-value]


def _paint_mark(canvas: _Canvas, colour, kind: str) -> None:
    """A brand mark at a seeded place on the side of a shoe, and a row of stitches."""
    if kind not in _LOW_SHOES and kind != "boot":
        return
    rng = canvas.rng
    detail = _contrast(colour)
    x, y = rng.uniform(0.35, 0.65), rng.uniform(0.52, 0.6)
    r = rng.uniform(0.025, 0.045)
    shape = rng.randrange(3)
    if shape == 0:
        canvas.ellipse(x - r, y - r, x + r, y + r, fill=detail)
    elif shape == 1:
        canvas.polygon([(x - r, y + r), (x + r, y + r), (x, y - r)], fill=detail)
    else:
        canvas.line([(x - r, y), (x, y + r * 0.6), (x + 1.6 * r, y - r)], fill=detail, width=0.012)
    stitch_y = rng.uniform(0.62, 0.66)
    for k in range(rng.randint(4, 9)):
        sx = 0.2 + k * 0.07
        canvas.line([(sx, stitch_y), (sx + 0.03, stitch_y)], fill=_darker(colour, 0.45), width=0.006)


# -- geometry -------------------------------------------------------------------


class _Canvas:
    """Draws in unit coordinates (x toward the toe, y down), with the pose's
    facing, scale and offset applied."""

    def __init__(self, draw: ImageDraw.ImageDraw, size: int, rng: random.Random):
        self.draw = draw
        self.size = size
        self.facing_left = rng.random() < 0.5
        self.scale = rng.uniform(0.82, 1.08)
        self.dx = rng.uniform(-0.07, 0.07)
        self.dy = rng.uniform(-0.06, 0.06) - 0.06  # shoes sit low in unit space: lift them to the centre
        angle = math.radians(rng.uniform(-12, 12))  # the camera's tilt
        self.cos, self.sin = math.cos(angle), math.sin(angle)
        self.rng = rng

    def at(self, x: float, y: float) -> Point:
        if self.facing_left:
            x = 1.0 - x
        x, y = (x - 0.5) * self.scale, (y - 0.5) * self.scale
        x, y = x * self.cos - y * self.sin, x * self.sin + y * self.cos
        return ((0.5 + x + self.dx) * self.size, (0.5 + y + self.dy) * self.size)

    def polygon(self, points: Sequence[Point], fill, outline=None) -> None:
        self.draw.polygon([self.at(x, y) for x, y in points], fill=fill,
                          outline=outline, width=max(1, self.size // 160))

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        """The axis-aligned box of that size around where its centre lands (tilt moves, never turns, it)."""
        cx, cy = self.at((x0 + x1) / 2, (y0 + y1) / 2)
        half_w, half_h = abs(x1 - x0) * self.scale * self.size / 2, abs(y1 - y0) * self.scale * self.size / 2
        return [cx - half_w, cy - half_h, cx + half_w, cy + half_h]

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill, outline=None) -> None:
        self.draw.ellipse(self.box(x0, y0, x1, y1), fill=fill, outline=outline, width=max(1, self.size // 160))

    def line(self, points: Sequence[Point], fill, width: float) -> None:
        self.draw.line([self.at(x, y) for x, y in points], fill=fill, width=max(1, round(width * self.size)))

    def shadow(self) -> None:
        self.ellipse(0.12, 0.74, 0.92, 0.82, fill=(205, 205, 205))


def _background(rng: random.Random) -> tuple[int, int, int]:
    base = rng.randint(232, 250)
    return (base - rng.randint(0, 8), base - rng.randint(0, 8), base - rng.randint(0, 8))


def _darker(colour: tuple[int, int, int], factor: float = 0.6) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in colour)  # type: ignore[return-value]


def _contrast(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """White details on dark uppers, dark details on light ones."""
    return (245, 245, 245) if sum(colour) < 380 else (35, 35, 40)


# -- shoes ------------------------------------------------------------------------

# (collar height, throat height, sole thickness, sole colour) per low shoe kind
_LOW_SHOES = {
    "sneaker": (0.40, 0.45, 0.06, (244, 244, 240)),
    "running": (0.43, 0.47, 0.08, (236, 236, 236)),
    "loafer": (0.49, 0.53, 0.035, (45, 38, 34)),
    "oxford": (0.46, 0.50, 0.03, (40, 34, 30)),
    "ballet_flat": (0.55, 0.60, 0.025, (60, 50, 45)),
}
_SOLE_TOP = 0.68
_LACED = ("sneaker", "running", "oxford", "boot")
_STRIPED = ("sneaker", "running")


def _paint_low_shoe(canvas: _Canvas, colour, kind: str) -> None:
    collar, throat, sole, sole_colour = _LOW_SHOES.get(kind, _LOW_SHOES["sneaker"])
    top = _SOLE_TOP
    canvas.polygon([(0.12, top), (0.91, top), (0.92, top + sole), (0.13, top + sole)],
                   fill=sole_colour, outline=_darker(sole_colour))
    upper = [(0.14, top), (0.13, collar + 0.05), (0.17, collar), (0.38, collar + 0.05), (0.50, throat),
             (0.72, top - 0.12), (0.86, top - 0.07), (0.91, top - 0.02), (0.90, top)]
    canvas.polygon(upper, fill=colour, outline=_darker(colour))
    _paint_details(canvas, colour, kind, lace_start=(0.50, throat + 0.04), lace_step=(0.05, 0.025))


def _paint_boot(canvas: _Canvas, colour, kind: str) -> None:
    top = _SOLE_TOP
    canvas.polygon([(0.12, top), (0.91, top), (0.92, top + 0.07), (0.13, top + 0.07)],
                   fill=(40, 34, 30), outline=(20, 20, 20))
    shaft = [(0.15, top), (0.15, 0.16), (0.45, 0.16), (0.47, 0.44), (0.72, top - 0.12), (0.86, top - 0.07),
             (0.91, top - 0.02), (0.90, top)]
    canvas.polygon(shaft, fill=colour, outline=_darker(colour))
    canvas.line([(0.15, 0.20), (0.45, 0.20)], fill=_darker(colour), width=0.012)
    _paint_details(canvas, colour, kind, lace_start=(0.40, 0.24), lace_step=(0.005, 0.05))


def _paint_details(canvas: _Canvas, colour, kind: str, lace_start: Point, lace_step: Point) -> None:
    """Laces along the throat, from `lace_start` toward the toe, and a side stripe."""
    detail = _contrast(colour)
    if kind in _LACED:
        dx, dy = lace_step
        norm = (dx * dx + dy * dy) ** 0.5 / 0.035
        across = (-dy / norm, dx / norm)  # each lace crosses the throat line at a right angle
        for step in range(4):
            x = lace_start[0] + step * dx
            y = lace_start[1] + step * dy
            canvas.line([(x - across[0], y - across[1]), (x + across[0], y + across[1])], fill=detail, width=0.012)
    if kind in _STRIPED:
        canvas.polygon([(0.30, 0.62), (0.58, 0.50), (0.62, 0.53), (0.36, 0.64)], fill=detail)


def _paint_high_heel(canvas: _Canvas, colour, kind: str) -> None:
    outline = _darker(colour)
    canvas.polygon([(0.18, 0.47), (0.25, 0.49), (0.23, 0.79), (0.205, 0.79)], fill=_darker(colour, 0.8),
                   outline=outline)
    upper = [(0.17, 0.46), (0.19, 0.36), (0.36, 0.45), (0.55, 0.57), (0.74, 0.62), (0.90, 0.70),
             (0.88, 0.75), (0.66, 0.72), (0.40, 0.58), (0.22, 0.49)]
    canvas.polygon(upper, fill=colour, outline=outline)
    canvas.line([(0.66, 0.74), (0.88, 0.77)], fill=(40, 34, 30), width=0.015)


def _paint_sandal(canvas: _Canvas, colour, kind: str) -> None:
    top = 0.70
    canvas.polygon([(0.12, top), (0.91, top), (0.92, top + 0.05), (0.13, top + 0.05)],
                   fill=(90, 70, 55), outline=(50, 40, 30))
    outline = _darker(colour)
    for x in (0.55, 0.70):  # forefoot straps
        canvas.polygon([(x - 0.06, top), (x - 0.02, top - 0.14), (x + 0.06, top - 0.14), (x + 0.06, top)],
                       fill=colour, outline=outline)
    canvas.polygon([(0.16, top), (0.17, 0.50), (0.22, 0.48), (0.24, top)], fill=colour, outline=outline)
    canvas.line([(0.18, 0.52), (0.44, 0.56)], fill=colour, width=0.03)  # ankle strap


def _paint_slipper(canvas: _Canvas, colour, kind: str) -> None:
    top = 0.69
    canvas.polygon([(0.12, top), (0.91, top), (0.92, top + 0.07), (0.13, top + 0.07)],
                   fill=_darker(colour, 0.75), outline=_darker(colour, 0.5))
    canvas.polygon([(0.46, top), (0.52, 0.52), (0.80, 0.52), (0.86, top)], fill=colour, outline=_darker(colour))


# -- non-shoe items (top or front views) ---------------------------------------------


def _paint_sock(canvas: _Canvas, colour, kind: str) -> None:
    outline = _darker(colour)
    canvas.polygon([(0.36, 0.14), (0.56, 0.14), (0.56, 0.52), (0.82, 0.56), (0.84, 0.72), (0.42, 0.72),
                    (0.36, 0.62)], fill=colour, outline=outline)
    canvas.polygon([(0.36, 0.14), (0.56, 0.14), (0.56, 0.22), (0.36, 0.22)], fill=_contrast(colour))


def _paint_shoelace(canvas: _Canvas, colour, kind: str) -> None:
    points = [(0.15 + i * 0.05, 0.45 + (0.08 if i % 2 else -0.08)) for i in range(15)]
    canvas.line(points, fill=colour, width=0.02)
    for x, y in (points[0], points[-1]):
        canvas.line([(x, y), (x - 0.03, y)], fill=(60, 60, 60), width=0.025)


def _paint_insole(canvas: _Canvas, colour, kind: str) -> None:
    outline = _darker(colour)
    canvas.ellipse(0.18, 0.38, 0.46, 0.62, fill=colour, outline=outline)
    canvas.ellipse(0.50, 0.32, 0.88, 0.66, fill=colour, outline=outline)
    canvas.polygon([(0.32, 0.39), (0.66, 0.33), (0.66, 0.65), (0.32, 0.61)], fill=colour)


def _paint_shoe_polish(canvas: _Canvas, colour, kind: str) -> None:
    canvas.polygon([(0.30, 0.45), (0.70, 0.45), (0.70, 0.66), (0.30, 0.66)], fill=(150, 150, 155))
    canvas.ellipse(0.30, 0.60, 0.70, 0.72, fill=(150, 150, 155))
    canvas.ellipse(0.30, 0.39, 0.70, 0.51, fill=colour, outline=_darker(colour))


def _paint_shoe_bag(canvas: _Canvas, colour, kind: str) -> None:
    canvas.polygon([(0.25, 0.25), (0.75, 0.25), (0.78, 0.76), (0.22, 0.76)], fill=colour, outline=_darker(colour))
    canvas.line([(0.30, 0.30), (0.50, 0.16), (0.70, 0.30)], fill=_contrast(colour), width=0.012)


def _paint_t_shirt(canvas: _Canvas, colour, kind: str) -> None:
    canvas.polygon([(0.35, 0.20), (0.44, 0.24), (0.56, 0.24), (0.65, 0.20), (0.86, 0.32), (0.78, 0.44),
                    (0.70, 0.40), (0.70, 0.78), (0.30, 0.78), (0.30, 0.40), (0.22, 0.44), (0.14, 0.32)],
                   fill=colour, outline=_darker(colour))


_PAINTERS: dict[str, Callable[[_Canvas, tuple[int, int, int], str], None]] = {
    "boot": _paint_boot,
    "high_heel": _paint_high_heel,
    "sandal": _paint_sandal,
    "slipper": _paint_slipper,
    "sock": _paint_sock,
    "shoelace": _paint_shoelace,
    "insole": _paint_insole,
    "shoe_polish": _paint_shoe_polish,
    "shoe_bag": _paint_shoe_bag,
    "t_shirt": _paint_t_shirt,
}


# -- duplicate transforms -------------------------------------------------------------


def _recrop(image: Image.Image, variation: random.Random) -> Image.Image:
    """Cut 5-15% of each side's length away, split unevenly between the edges."""
    width, height = image.size
    cut_x = round(width * variation.uniform(0.05, 0.15))
    cut_y = round(height * variation.uniform(0.05, 0.15))
    left = variation.randint(0, cut_x)
    top = variation.randint(0, cut_y)
    return image.crop((left, top, width - (cut_x - left), height - (cut_y - top)))


def _draw_watermark(image: Image.Image, text: str, variation: random.Random) -> None:
    font = _watermark_font()
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = 8
    x = margin if variation.random() < 0.5 else image.width - (right - left) - margin
    y = margin if variation.random() < 0.5 else image.height - (bottom - top) - margin
    draw.text((x + 1, y + 1), text, font=font, fill=(255, 255, 255))
    draw.text((x, y), text, font=font, fill=(110, 110, 110))


_FONT: list[ImageFont.FreeTypeFont | ImageFont.ImageFont] = []


def _watermark_font():
    if not _FONT:  # loading the font costs more than drawing a picture: once per process
        _FONT.append(ImageFont.load_default(size=22))
    return _FONT[0]


# -- planted defects ---------------------------------------------------------------------


def _tiny(spec: PictureSpec) -> bytes:
    return encode_jpeg(draw(spec, TINY_SIZE))


def _blank(spec: PictureSpec) -> bytes:
    return encode_jpeg(Image.new("RGB", (DEFAULT_SIZE, DEFAULT_SIZE), _background(random.Random(spec.pose))))


def _corrupt(spec: PictureSpec) -> bytes:
    full = encode_jpeg(draw(spec))
    return full[: len(full) * 6 // 10]


def _huge(spec: PictureSpec) -> bytes:
    """A valid PNG of RGB noise, stored uncompressed. Written by hand: Pillow's PNG
    encoder spends ~0.25 s filtering rows that are noise anyway."""
    row = HUGE_SIDE * 3
    noise = random.Random(spec.pose).randbytes(row * HUGE_SIDE)
    scanlines = b"".join(b"\0" + noise[i:i + row] for i in range(0, len(noise), row))  # filter byte 0: none
    header = struct.pack(">IIBBBBB", HUGE_SIDE, HUGE_SIDE, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(scanlines, 0)) + _png_chunk(b"IEND", b""))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_DEFECTS: dict[str, Callable[[PictureSpec], bytes]] = {
    "tiny": _tiny,
    "blank": _blank,
    "corrupt": _corrupt,
    "huge": _huge,
    "zero_byte": lambda spec: b"",
    "not_image": lambda spec: NOT_IMAGE_BODY,
}
DEFECT_KINDS = tuple(_DEFECTS)


def content_type(fmt: str, defect: str | None) -> str:
    """What the CDN claims: a broken image is still announced as the image it should be."""
    if defect in ("zero_byte", "not_image"):
        return "image/jpeg"
    return {"PNG": "image/png", "WEBP": "image/webp"}.get(fmt, "image/jpeg")
