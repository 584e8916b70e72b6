"""curation.hashing against imagehash, bit for bit, and curation.features' content-hash
cache: unchanged images are never decoded or hashed twice."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import imagehash
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from clipshoe_pipeline.curation.features import FEATURES_SCHEMA, LocalPool, run_counts
from clipshoe_pipeline.curation.hashing import (CROP_WINDOWS, THUMB_SIDE, WINDOW_SIDE, as_int64, as_uint64,
                                                bits_to_int64, dhash, hamming, hamming_distances, perceptual_hashes,
                                                phash, popcount, thumbnail, window_hashes)
from clipshoe_pipeline.curation.config import NormaliseConfig
from replay_shop.pictures import COLOUR_RGB, PictureSpec, draw
from tests.builders import Store

# -- hashes ---------------------------------------------------------------------------


def varied_images() -> list[Image.Image]:
    """Drawn shoes of every colour, noise, gradients, flat and tiny images, odd modes."""
    rng = random.Random(3)
    kinds = ("sneaker", "boot", "high_heel", "sandal", "loafer")
    images = [draw(PictureSpec(kinds[i % len(kinds)], colour, rng.getrandbits(32)), size=160 + 40 * (i % 5))
              for i, colour in enumerate(COLOUR_RGB)]
    images += [Image.effect_noise((w, h), sigma) for w, h, sigma in ((64, 64, 40), (500, 300, 80), (33, 97, 10))]
    images += [Image.linear_gradient("L").resize((300, 200)), Image.radial_gradient("L").rotate(30)]
    images += [Image.new("RGB", (100, 100), (128, 128, 128)), Image.new("L", (5, 5), 0)]
    shapes = Image.new("RGB", (640, 480), "white")
    ImageDraw.Draw(shapes).ellipse((100, 80, 500, 400), fill=(34, 78, 186), outline="black", width=9)
    images += [shapes, shapes.convert("RGBA"), shapes.convert("P"), shapes.convert("CMYK"), shapes.rotate(7)]
    return images


def test_phash_and_dhash_equal_imagehash_bit_for_bit():
    for index, image in enumerate(varied_images()):
        expected_p = as_int64(int(str(imagehash.phash(image)), 16))
        expected_d = as_int64(int(str(imagehash.dhash(image)), 16))
        assert phash(image) == expected_p, index
        assert dhash(image) == expected_d, index
        assert perceptual_hashes(image) == (expected_p, expected_d), index


def test_window_hashes_equal_pil_crops_hashed_like_whole_images():
    """window_hashes resamples with matrices that copy Pillow's integer Lanczos; it must
    stay equal to cropping the 96 px grey image and hashing each crop as imagehash would,
    so a re-cropped copy's window meets the other copy's whole-image hashes (a Pillow
    upgrade that changes its resampling would show here)."""
    for index, image in enumerate(varied_images()):
        grey = image.convert("L").resize((WINDOW_SIDE, WINDOW_SIDE), Image.Resampling.LANCZOS)
        crops = [grey.crop(tuple(round(edge * WINDOW_SIDE) for edge in window)) for window in CROP_WINDOWS]
        assert window_hashes(image) == ([phash(c) for c in crops], [dhash(c) for c in crops]), index


def test_window_hashes_in_threads_equal_serial():
    """window_hashes keeps its working arrays per thread; threads hashing at once must not share them."""
    images = varied_images()
    expected = [window_hashes(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(window_hashes, images * 4)) == expected * 4


def test_hamming_equals_imagehash_difference():
    images = varied_images()
    for a, b in zip(images, images[1:]):
        assert hamming(phash(a), phash(b)) == imagehash.phash(a) - imagehash.phash(b)
        assert hamming(dhash(a), dhash(b)) == imagehash.dhash(a) - imagehash.dhash(b)


def test_bit_layout_is_row_major_with_cell_0_0_most_significant():
    bits = np.zeros((8, 8), bool)
    bits[0, 0] = True
    assert bits_to_int64(bits) == -(1 << 63)  # the sign bit: stored as a negative int64
    assert as_uint64(bits_to_int64(bits)) == 1 << 63
    bits = np.zeros((8, 8), bool)
    bits[7, 7] = bits[0, 1] = True
    assert bits_to_int64(bits) == 1 | (1 << 62)
    with pytest.raises(ValueError):
        bits_to_int64(np.zeros(63, bool))


def test_int64_round_trip():
    for unsigned in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        signed = as_int64(unsigned)
        assert -(1 << 63) <= signed < 1 << 63
        assert as_uint64(signed) == unsigned


def test_thumbnail_is_the_grey_image_squashed_square_row_major():
    image = Image.new("RGB", (96, 40), (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, 48, 40))  # left half black
    pixels = np.frombuffer(thumbnail(image), dtype=np.uint8).reshape(THUMB_SIDE, THUMB_SIDE)
    half = THUMB_SIDE // 2
    assert (pixels[:, :half] == 0).all() and (pixels[:, half:] == 255).all()


def test_popcount_and_vectorised_hamming_agree_with_scalar_hamming():
    rng = np.random.default_rng(5)
    a = rng.integers(-(1 << 63), (1 << 63) - 1, size=1000, dtype=np.int64)
    b = rng.integers(-(1 << 63), (1 << 63) - 1, size=1000, dtype=np.int64)
    assert popcount(np.array([0, -1, 1, -(1 << 63)], np.int64)).tolist() == [0, 64, 1, 1]
    assert popcount(a.view(np.uint64)).tolist() == [as_uint64(int(x)).bit_count() for x in a]
    assert hamming_distances(a, b).tolist() == [hamming(int(x), int(y)) for x, y in zip(a, b)]
    assert hamming_distances(a, int(b[0])).tolist() == [hamming(int(x), int(b[0])) for x in a]
    assert hamming(0, -1) == 64 and hamming(-1, -1) == 0
    with pytest.raises(TypeError):
        popcount(np.zeros(3, np.float64))


# -- features and the cache -----------------------------------------------------------


def test_features_rows_hashes_and_normalised_store(tmp_path, catalog_images):
    store = Store(tmp_path)
    for data in catalog_images:
        store.add(data)
    table = store.features()
    assert table.schema.remove_metadata() == FEATURES_SCHEMA
    assert table.num_rows == len(catalog_images)
    assert table.column("sha256").to_pylist() == sorted(sha for sha, _ in store.pairs)
    rows = {row["sha256"]: row for row in table.to_pylist()}
    ok = [row for row in rows.values() if row["status"] == "ok"]
    assert len(ok) == 10
    assert sorted(r["reason"] for r in rows.values() if r["status"] == "rejected") == \
        ["near_blank", "too_small", "undecodable"]
    for row in ok:
        normalised = Image.open(store.normalised / row["norm_path"])
        assert normalised.size == (row["norm_width"], row["norm_height"])
        assert row["norm_path"] == f"{row['sha256'][:2]}/{row['sha256']}.jpg"
        original = Image.open(store.images / row["sha256"][:2] / f"{row['sha256']}.jpg").convert("RGB")
        assert row["phash"] == phash(original)  # 320 px originals: normalising changes nothing
        assert row["dhash"] == dhash(original)
        assert all(0 <= row[c] <= 255 for c in ("mean_r", "mean_g", "mean_b"))
        assert row["thumbnail"] == thumbnail(original)
        assert (row["width"], row["height"], row["format"]) == (320, 320, "JPEG")


def test_second_run_computes_nothing_and_new_images_only_are_computed(tmp_path, catalog_images):
    store = Store(tmp_path)
    for data in catalog_images[:8]:
        store.add(data)
    first = store.features()
    assert run_counts(first) == {"computed": 8, "cached": 0}
    again = store.features()
    assert run_counts(again) == {"computed": 0, "cached": 8}
    assert again.replace_schema_metadata(None).equals(first.replace_schema_metadata(None))
    for data in catalog_images[8:]:
        store.add(data)
    grown = store.features()
    assert run_counts(grown) == {"computed": len(catalog_images) - 8, "cached": 8}
    assert pq.read_table(store.cache).num_rows == len(catalog_images)


def test_cache_is_ignored_when_the_config_changes(tmp_path, catalog_images):
    store = Store(tmp_path)
    store.add(catalog_images[0])
    store.features()
    assert run_counts(store.features(NormaliseConfig(short_side=256))) == {"computed": 1, "cached": 0}


def test_lost_normalised_jpeg_is_recomputed(tmp_path, catalog_images):
    store = Store(tmp_path)
    sha = store.add(catalog_images[0])
    store.features()
    (store.normalised / sha[:2] / f"{sha}.jpg").unlink()
    assert run_counts(store.features()) == {"computed": 1, "cached": 0}
    assert (store.normalised / sha[:2] / f"{sha}.jpg").exists()


def test_missing_original_is_reported_and_not_cached(tmp_path, catalog_images):
    store = Store(tmp_path)
    store.pairs.append(("f" * 64, "ff/" + "f" * 64 + ".jpg"))
    row = store.features().to_pylist()[0]
    assert (row["status"], row["reason"]) == ("rejected", "missing_file")
    assert run_counts(store.features()) == {"computed": 1, "cached": 0}


def test_no_images_gives_an_empty_table(tmp_path):
    table = Store(tmp_path).features()
    assert table.num_rows == 0 and table.schema.remove_metadata() == FEATURES_SCHEMA


def test_process_pool_gives_the_same_rows(tmp_path, catalog_images):
    serial, pooled = Store(tmp_path / "serial"), Store(tmp_path / "pooled")
    for data in catalog_images:
        serial.add(data)
        pooled.add(data)
    expected = serial.features().replace_schema_metadata(None)
    table = pooled.features(engine=LocalPool(workers=2))
    assert run_counts(table) == {"computed": len(catalog_images), "cached": 0}
    assert table.replace_schema_metadata(None).equals(expected)
