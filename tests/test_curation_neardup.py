"""Near-duplicate search (multi-index hashing against the all-pairs baseline),
union-find clusters, the combined duplicate decision and its quality on the replay shop."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.dedup_quality import planted_images, score, transform_recall
from clipshoe_pipeline.curation.clusters import aligned_distances, duplicate_clusters, duplicate_pairs
from clipshoe_pipeline.curation.components import connected_components
from clipshoe_pipeline.curation.config import DedupConfig
from clipshoe_pipeline.curation.hashing import THUMB_SIDE, thumbnail
from clipshoe_pipeline.curation.neardup import (exhaustive_pairs, exhaustive_pairs_between, near_pairs,
                                                near_pairs_between)
from replay_shop.pictures import PictureSpec, draw


def planted_codes(n: int, seed: int) -> np.ndarray:
    """Random codes, a third of them overwritten by copies of others with 0-6 bits flipped."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    for _ in range(n // 3):
        copy = codes[rng.integers(n)]
        for bit in rng.choice(64, size=rng.integers(0, 7), replace=False):
            copy ^= np.uint64(1) << np.uint64(bit)
        codes[rng.integers(n)] = copy
    return codes


def sizes(*small: int, slow: tuple[int, ...]) -> list:
    """Code counts to test with; the largest only in the full run (`make test`)."""
    return [*small, *(pytest.param(n, marks=pytest.mark.slow) for n in slow)]


@pytest.mark.parametrize("n", sizes(0, 1, 2, 7, 120, slow=(501, 2049)))
@pytest.mark.parametrize("radius", [0, 1, 3, 8, 12])
def test_near_pairs_equal_exhaustive(n, radius):
    codes = planted_codes(n, seed=n + radius)
    expected = exhaustive_pairs(codes, radius)
    assert np.array_equal(near_pairs(codes, radius), expected)
    # Tiny chunks and other table counts take the same answer through other paths.
    for tables in {3, 4, radius + 1}:
        assert np.array_equal(near_pairs(codes, radius, tables=tables, chunk_pairs=64), expected)


@pytest.mark.parametrize("n", sizes(0, 1, 7, 40, slow=(501,)))
@pytest.mark.parametrize("radius", [0, 1, 6, 10])
def test_near_pairs_between_equal_exhaustive(n, radius):
    queries = planted_codes(n, seed=n + radius)
    # Database: other codes plus copies of some queries a few bits away, many per bucket.
    database = np.concatenate([planted_codes(3 * n + 1, seed=n + radius + 1), queries[: n // 2] ^ np.uint64(0b101),
                               np.repeat(queries[:3], 5)])
    expected = exhaustive_pairs_between(queries, database, radius)
    assert np.array_equal(near_pairs_between(queries, database, radius), expected)
    for tables in {2, 3, radius + 1}:
        assert np.array_equal(near_pairs_between(queries, database, radius, tables=tables, threads=1), expected)
    # Rows 2q and 2q + 1 are query q's own: never paired with it.
    others = expected[expected[:, 1] // 2 != expected[:, 0]]
    assert np.array_equal(near_pairs_between(queries, database, radius, own_rows=2), others)
    # A second signal: only the pairs also within its radius.
    second_q, second_d = queries[::-1].copy(), database[::-1].copy()
    both = expected[np.bitwise_count(second_q[expected[:, 0]] ^ second_d[expected[:, 1]]) <= 20]
    assert np.array_equal(near_pairs_between(queries, database, radius, also_within=(second_q, second_d, 20)), both)
    # Close values (the mean colours) of the query and of the query owning the database row.
    if n:
        owned = database[: 2 * n]  # two rows per query
        values = np.random.default_rng(n + radius).integers(90, 150, (n, 3))
        mine = exhaustive_pairs_between(queries, owned, radius)
        mine = mine[mine[:, 1] // 2 != mine[:, 0]]
        for distance in (0, 8, 30):
            close = mine[np.abs(values[mine[:, 0]] - values[mine[:, 1] // 2]).max(axis=1) <= distance]
            assert np.array_equal(near_pairs_between(queries, owned, radius, own_rows=2, also_close=(values, distance)),
                                  close)


def test_near_pairs_between_one_crowded_bucket():
    # Look-alike shots: thousands of equal database codes, more pairs than a thread's first output buffer.
    queries = planted_codes(40, seed=5)
    database = np.concatenate([np.repeat(queries[:2], 3000), planted_codes(500, seed=6)])
    # Keys found by binary search (one 64-bit table), through a bit per key (32 bits), by first position (21 bits).
    for radius, tables in ((1, 1), (6, 2), (6, 3)):
        expected = exhaustive_pairs_between(queries, database, radius)
        assert len(expected) >= 6000
        assert np.array_equal(near_pairs_between(queries, database, radius, tables=tables, threads=2), expected)


def test_pairs_are_ordered_unique_and_int64():
    codes = np.array([5, 5, 5, 4], dtype=np.uint64)
    pairs = near_pairs(codes, 1)
    assert pairs.dtype == np.int64
    assert pairs.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]


def test_signed_codes_are_read_bit_for_bit():
    codes = planted_codes(300, seed=3)
    assert np.array_equal(near_pairs(codes.view(np.int64), 6), near_pairs(codes, 6))
    assert len(near_pairs(np.array([-1, 2**63 - 1], dtype=np.int64), 1)) == 1  # they differ in the top bit only


def test_bad_input_is_refused():
    codes = np.zeros(3, dtype=np.uint64)
    with pytest.raises(ValueError, match="own_rows"):
        near_pairs_between(codes, codes, 2, also_close=(np.zeros((3, 3)), 8))
    with pytest.raises(ValueError):
        near_pairs(np.zeros(3, dtype=np.uint64), 64)
    with pytest.raises(ValueError):
        near_pairs(np.zeros(3, dtype=np.float64), 2)
    with pytest.raises(ValueError):
        near_pairs(np.zeros(3, dtype=np.uint64), 40, tables=1)  # hopeless probe count


def test_components_label_by_smallest_member():
    pairs = np.array([[3, 4], [4, 5], [5, 9], [1, 7], [7, 2]])
    assert connected_components(pairs, 10).tolist() == [0, 1, 1, 3, 3, 3, 6, 1, 8, 3]
    assert connected_components(np.empty((0, 2)), 3).tolist() == [0, 1, 2]


def test_long_chains_in_any_order_become_one_component():
    n = 10_000
    order = np.random.default_rng(0).permutation(n)
    for pairs in (np.column_stack([order[:-1], order[1:]]), np.column_stack([np.arange(1, n), np.arange(n - 1)])):
        assert (connected_components(pairs, n) == 0).all()


def test_component_indices_must_exist():
    with pytest.raises(ValueError):
        connected_components(np.array([[0, 3]]), 3)


def test_duplicates_need_every_signal_close():
    base = 0b1111_0000
    phash = np.array([base, base ^ 0b1, base ^ 0b11, base ^ (0xFF << 40), base], dtype=np.uint64)
    dhash = np.array([7, 7, 7, 7, 7 ^ 0xFFFF], dtype=np.uint64)
    colour = np.array([[200, 30, 30], [202, 31, 29], [40, 40, 200], [200, 30, 30], [200, 30, 30]])
    config = DedupConfig(phash_radius=2, dhash_radius=4, colour_distance=5)
    # 0-1: all close. 0-2, 1-2: another colour (a colour variant). 3: pHash far. 4: dHash far.
    assert duplicate_pairs(phash, dhash, colour, config).tolist() == [[0, 1]]
    assert duplicate_clusters(phash, dhash, colour, config).tolist() == [0, 0, 2, 3, 4]
    without_colour = DedupConfig(phash_radius=2, dhash_radius=4, colour_distance=None)
    assert duplicate_pairs(phash, dhash, None, without_colour).tolist() == [[0, 1], [0, 2], [1, 2]]


def thumbnails(*images) -> np.ndarray:
    return np.stack([np.frombuffer(thumbnail(image), dtype=np.uint8).reshape(THUMB_SIDE, THUMB_SIDE)
                     for image in images])


def test_verification_aligns_a_recrop_and_rejects_a_lookalike():
    original = draw(PictureSpec("sneaker", "đỏ", pose=1))
    recrop = original.crop((22, 9, 300, 294))  # 6.9% and 10.9% cut, unevenly: between grid windows
    lookalike = draw(PictureSpec("sneaker", "đỏ", pose=2))
    thumbs = thumbnails(recrop, original, lookalike)
    nearest_window = np.array([[0.05, 0.05, 0.95, 0.9]] * 2)  # on the 0.05 grid
    recrop_distance, lookalike_distance = aligned_distances(thumbs, np.array([0, 0]), np.array([1, 2]),
                                                            nearest_window)
    assert recrop_distance <= DedupConfig().verify_distance < lookalike_distance


def test_verification_drops_hash_matches_whose_thumbnails_differ():
    codes = np.zeros(3, dtype=np.uint64)  # all three collide on both hashes
    images = [draw(PictureSpec("boot", "đen", pose)) for pose in (1, 1, 2)]
    config = DedupConfig(colour_distance=None)
    assert duplicate_pairs(codes, codes, None, config, thumbnails=thumbnails(*images)).tolist() == [[0, 1]]
    assert len(duplicate_pairs(codes, codes, None, config)) == 3  # without thumbnails: unverified
    with pytest.raises(ValueError):
        duplicate_pairs(codes, codes, None, config, thumbnails=thumbnails(*images[:2]))
    far = np.array([0, -1, 0xFFFF_0000], dtype=np.int64)  # no candidate at all: nothing to verify
    assert duplicate_pairs(far, far, None, config, thumbnails=thumbnails(*images)).shape == (0, 2)


def test_colour_must_be_given_when_checked():
    codes = np.zeros(2, dtype=np.uint64)
    with pytest.raises(ValueError):
        duplicate_pairs(codes, codes, None, DedupConfig(colour_distance=3))


@pytest.fixture(scope="module")
def small_catalog():
    return planted_images(seed=0, products_per_site=40)


@pytest.mark.slow
def test_uncropped_copies_are_found(small_catalog):
    truth = small_catalog.truth()
    found = duplicate_pairs(small_catalog.phash, small_catalog.dhash, small_catalog.colour,
                            DedupConfig(phash_radius=8, dhash_radius=8, colour_distance=4))
    uncropped = {pair for pair in truth if "crop" not in small_catalog.transform[list(pair)]}
    assert score(found, uncropped).recall >= 0.95
    assert transform_recall(small_catalog, found, truth)["watermark"][1] > 0


@pytest.mark.slow
def test_default_meets_the_quality_bars(small_catalog):
    truth = small_catalog.truth()
    found = small_catalog.pairs()  # the default DedupConfig, crop windows included
    result = score(found, truth)
    assert result.precision >= 0.98 and result.recall >= 0.95
    crop_hit, crop_total = transform_recall(small_catalog, found, truth)["crop"]
    assert crop_total and crop_hit / crop_total >= 0.95
