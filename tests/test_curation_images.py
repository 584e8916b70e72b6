"""curation.images: every rejection reason, every awkward-but-valid encoding, and the
replay shop's planted bad images, all made in the test (no fixture files)."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageDraw
from PIL.JpegImagePlugin import JpegImageFile

from clipshoe_pipeline.curation.config import NormaliseConfig
from clipshoe_pipeline.curation.images import Normalised, Reason, Rejected, normalise
from replay_shop.catalog import Catalog

CONFIG = NormaliseConfig()
SHOE_RED = (200, 32, 40)


def picture(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A light background with a red block in the middle and a dark bar: real contrast."""
    image = Image.new("RGB", (width, height), (240, 238, 236))
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=SHOE_RED)
    draw.rectangle((0, 0, width // 8, height), fill=(30, 30, 30))
    return image.convert(mode)


def encode(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds almost no pixel data: a bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def normalised(data: bytes) -> Normalised:
    result = normalise(data, CONFIG)
    assert isinstance(result, Normalised), result
    return result


def colour_at(image: Image.Image, x: float, y: float) -> tuple[int, ...]:
    return image.getpixel((round(x * (image.width - 1)), round(y * (image.height - 1))))


def close(colour: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected))


@pytest.mark.parametrize(("data", "reason"), [
    (b"", Reason.UNDECODABLE),
    (b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>", Reason.UNDECODABLE),
    (encode(picture(400, 300))[:3000], Reason.UNDECODABLE),  # truncated mid-scan
    (encode(picture(40, 40)), Reason.TOO_SMALL),
    (encode(picture(1000, 100)), Reason.EXTREME_ASPECT),
    (encode(Image.new("RGB", (400, 400), (128, 128, 128))), Reason.NEAR_BLANK),
    (png_header_only(100_000, 100_000), Reason.DECOMPRESSION_BOMB),  # Pillow's error, past 2x the limit
    (png_header_only(7_000, 7_000), Reason.DECOMPRESSION_BOMB),  # Pillow's warning, past the limit
], ids=["zero_byte", "html", "truncated", "40x40", "1000x100", "flat_grey", "bomb_error", "bomb_warning"])
def test_each_bad_image_is_rejected_with_its_reason(data, reason):
    result = normalise(data, CONFIG)
    assert isinstance(result, Rejected)
    assert result.reason == reason
    assert result.bytes == len(data)


def test_header_only_rejections_keep_the_original_size_and_format():
    result = normalise(encode(picture(1000, 100)), CONFIG)
    assert (result.width, result.height, result.format) == (1000, 100, "JPEG")


def test_rejection_thresholds_are_configurable():
    data = encode(picture(120, 120))
    assert isinstance(normalise(data, CONFIG), Normalised)
    assert normalise(data, NormaliseConfig(min_side=150)).reason == Reason.TOO_SMALL
    wide = encode(picture(500, 200))
    assert isinstance(normalise(wide, CONFIG), Normalised)
    assert normalise(wide, NormaliseConfig(max_aspect=2.0)).reason == Reason.EXTREME_ASPECT


@pytest.mark.parametrize("short_side", [255, 385])
def test_short_side_outside_256_384_is_refused(short_side):
    with pytest.raises(ValueError):
        NormaliseConfig(short_side=short_side)


def test_large_jpeg_is_draft_decoded_and_shrunk_to_the_short_side(monkeypatch):
    drafts = []
    real_draft = JpegImageFile.draft

    def spy(self, mode, size):
        drafts.append(size)
        return real_draft(self, mode, size)

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    data = encode(picture(1600, 1200))
    result = normalised(data)
    assert drafts, "a 1200 px JPEG normalised to 320 px should decode at reduced DCT scale"
    assert (result.width, result.height, result.bytes, result.format) == (1600, 1200, len(data), "JPEG")
    assert result.image.mode == "RGB"
    assert result.image.size == (427, 320)
    assert close(colour_at(result.image, 0.5, 0.5), SHOE_RED)
    assert result.grey.mode == "L" and result.grey.tobytes() == result.image.convert("L").tobytes()
    assert Image.open(io.BytesIO(result.jpeg)).size == (427, 320)


def test_small_images_are_not_upscaled():
    result = normalised(encode(picture(200, 150), "PNG"))
    assert result.image.size == (200, 150)
    assert result.format == "PNG"


def test_short_side_is_configurable():
    result = normalise(encode(picture(800, 600)), NormaliseConfig(short_side=256))
    assert result.image.size == (341, 256)


def test_exif_rotated_jpeg_is_stored_upright_with_width_and_height_swapped():
    image = picture(600, 400)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    result = normalised(encode(image, exif=exif))
    assert (result.width, result.height) == (400, 600)
    assert result.image.size == (320, 480)
    # The dark bar on the stored image's left edge is on top once upright.
    assert close(colour_at(result.image, 0.5, 0.02), (30, 30, 30), tolerance=20)


def test_cmyk_jpeg_becomes_rgb():
    result = normalised(encode(picture(400, 300, mode="CMYK")))
    assert result.image.mode == "RGB"
    assert close(colour_at(result.image, 0.5, 0.5), SHOE_RED, tolerance=20)


def test_alpha_is_composited_on_white():
    image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))  # transparent black: must not turn black
    ImageDraw.Draw(image).rectangle((75, 75, 225, 225), fill=SHOE_RED + (255,))
    result = normalised(encode(image, "PNG"))
    assert result.image.mode == "RGB"
    assert colour_at(result.image, 0.05, 0.05) == (255, 255, 255)
    assert colour_at(result.image, 0.5, 0.5) == SHOE_RED


def test_palette_image_becomes_rgb():
    result = normalised(encode(picture(300, 300).convert("P", palette=Image.Palette.ADAPTIVE), "PNG"))
    assert result.image.mode == "RGB"
    assert close(colour_at(result.image, 0.5, 0.5), SHOE_RED)


@pytest.mark.parametrize("frames", [1, 3])
def test_gif_uses_the_first_frame(frames):
    colours = [SHOE_RED, (34, 78, 186), (44, 150, 70)][:frames]
    images = []
    for colour in colours:
        frame = picture(300, 300)
        ImageDraw.Draw(frame).rectangle((75, 75, 225, 225), fill=colour)
        images.append(frame)
    data = encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == frames
    result = normalised(data)
    assert (result.format, result.image.mode) == ("GIF", "RGB")
    assert close(colour_at(result.image, 0.5, 0.5), SHOE_RED)


def test_replay_shop_planted_bad_images_are_rejected_and_good_ones_kept():
    catalog = Catalog(seed=1, products_per_site=30)
    expected = {"blank": Reason.NEAR_BLANK, "tiny": Reason.TOO_SMALL, "corrupt": Reason.UNDECODABLE,
                "zero_byte": Reason.UNDECODABLE, "not_image": Reason.UNDECODABLE}
    seen: dict[str, int] = {}
    for site in catalog.sites:
        for product in catalog.products(site):
            for image in product.images:
                if image.defect == "huge":  # over the crawler's byte cap: never stored, valid noise anyway
                    continue
                result = normalise(catalog.image_bytes(image), CONFIG)
                kind = image.defect or "good"
                seen[kind] = seen.get(kind, 0) + 1
                if image.defect:
                    assert isinstance(result, Rejected) and result.reason == expected[kind], (image, result)
                else:
                    assert isinstance(result, Normalised), (image, result)
    assert seen.get("blank", 0) >= 1 and seen["good"] > 100
