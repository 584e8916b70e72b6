"""Decode a stored image once, safely, and either reject it or normalise it.

Crawled bytes are untrusted: empty or cut-short bodies, HTML error pages saved as
".jpg", decompression bombs, CMYK and palette images, transparency, EXIF rotation,
animations. `normalise` turns any of them into one of two answers:

- `Rejected` with a short, stable reason (`Reason`) that the rejections table keeps;
- `Normalised`: an upright RGB image (alpha composited on white, first frame of an
  animation) whose shorter side is `short_side` (never upscaled), its grey copy (which
  the blank check measures and the hashes start from), a JPEG copy of it, and the
  original's width, height, byte size and format.

Size and aspect checks read only the header, so a reject costs no decode. Large JPEGs
are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, `Image.draft`), which
is most of the time saved against a full decode followed by a resize.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from enum import StrEnum

from PIL import ExifTags, Image, ImageOps, ImageStat

from clipshoe_pipeline.curation.config import NormaliseConfig

# Pillow's bomb limit is a process-wide global with an implicit default (~89 Mpx);
# we state ours. Shop photos are at most a few thousand pixels a side, and 40 Mpx
# bounds a decode at ~120 MB of RGB. Pillow raises DecompressionBombError past twice
# this and warns past it; `normalise` treats both as a rejection.
MAX_IMAGE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

# EXIF orientations 5-8 rotate by 90 or 270 degrees: the upright image is the stored one transposed.
_QUARTER_TURNS = {5, 6, 7, 8}
_WHITE = (255, 255, 255, 255)


class Reason(StrEnum):
    """Why an image was rejected; the values are stored, so never rename one."""

    UNDECODABLE = "undecodable"
    DECOMPRESSION_BOMB = "decompression_bomb"
    TOO_SMALL = "too_small"
    EXTREME_ASPECT = "extreme_aspect"
    NEAR_BLANK = "near_blank"


@dataclass(frozen=True)
class Normalised:
    image: Image.Image  # RGB, upright, shorter side = min(short_side, original's)
    grey: Image.Image  # `image` converted to mode L
    jpeg: bytes  # `image` encoded as JPEG
    width: int  # the original, upright
    height: int
    bytes: int  # size of the original encoding
    format: str  # the original's format as Pillow names it: JPEG, PNG, GIF, WEBP, ...


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    bytes: int
    width: int | None = None  # known when the header could be read
    height: int | None = None
    format: str | None = None


def normalise(data: bytes, config: NormaliseConfig = NormaliseConfig()) -> Normalised | Rejected:
    """Decode `data` at most once and normalise it, or say why it is unusable."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return _normalise(data, config)


def _normalise(data: bytes, config: NormaliseConfig) -> Normalised | Rejected:
    size = len(data)
    try:
        source = Image.open(io.BytesIO(data))
        width, height = _upright_size(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Rejected(Reason.DECOMPRESSION_BOMB, size)
    except Exception:  # Pillow signals bad data with many exception types
        return Rejected(Reason.UNDECODABLE, size)

    def reject(reason: Reason) -> Rejected:
        return Rejected(reason, size, width, height, source.format)

    if min(width, height) < config.min_side:
        return reject(Reason.TOO_SMALL)
    if max(width, height) / min(width, height) > config.max_aspect:
        return reject(Reason.EXTREME_ASPECT)
    try:
        image = _decode_upright_rgb(source, config.short_side)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return reject(Reason.DECOMPRESSION_BOMB)
    except Exception:
        return reject(Reason.UNDECODABLE)
    image = _shrink(image, config.short_side)
    grey = image.convert("L")
    if ImageStat.Stat(grey).stddev[0] < config.blank_std:
        return reject(Reason.NEAR_BLANK)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=config.jpeg_quality)
    return Normalised(image, grey, buffer.getvalue(), width, height, size, source.format)


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """The size once EXIF orientation is applied, from the header alone."""
    width, height = image.size
    if image.getexif().get(ExifTags.Base.Orientation) in _QUARTER_TURNS:
        return height, width
    return width, height


def _decode_upright_rgb(image: Image.Image, short_side: int) -> Image.Image:
    """Decode (first frame only, JPEGs at the smallest DCT scale that keeps
    `short_side`), rotate upright and flatten to RGB."""
    width, height = image.size
    scale = short_side / min(width, height)
    if scale <= 0.5:  # draft scales by 1/2, 1/4 or 1/8, never below the requested size
        image.draft(image.mode, (max(1, round(width * scale)), max(1, round(height * scale))))
    image.load()  # an animation stays on frame 0, where open() leaves it
    # In place, and no convert to the mode it has: the copies they would make are
    # pixel-equal and cost as much as the blank check.
    ImageOps.exif_transpose(image, in_place=True)
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _shrink(image: Image.Image, short_side: int) -> Image.Image:
    width, height = image.size
    shorter = min(width, height)
    if shorter <= short_side:  # never upscale: it adds no information, only bytes
        return image
    size = (max(1, round(width * short_side / shorter)), max(1, round(height * short_side / shorter)))
    # Area averaging (Pillow's BOX), img2dataset's default for downscaling (cv2.INTER_AREA):
    # no ringing, and 2.5x cheaper than bicubic, which was the costliest step per image.
    return image.resize(size, Image.Resampling.BOX)

