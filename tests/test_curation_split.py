"""The grouped train/test split: no product and no near-duplicate cluster on both
sides, deterministic, stable when unrelated rows arrive, close to the asked fraction."""

from __future__ import annotations

import random

import pytest

from clipshoe_pipeline.curation.split import achieved_test_fraction, grouped_split


def random_pairs(rng: random.Random, rows: int, products: int, clusters: int) -> tuple[list[str], list[int]]:
    """Rows with heavy overlap: products share images, clusters span products and sites."""
    keys = [f"{rng.choice(('tiki', 'shopee'))}:{rng.randrange(products)}" for _ in range(rows)]
    return keys, [rng.randrange(clusters) for _ in range(rows)]


def sides_of(values, splits) -> dict:
    seen: dict = {}
    for value, side in zip(values, splits):
        seen.setdefault(value, set()).add(side)
    return seen


@pytest.mark.parametrize("seed", range(20))
def test_no_product_and_no_cluster_crosses_the_split(seed):
    rng = random.Random(seed)
    keys, clusters = random_pairs(rng, rows=rng.randrange(50, 600), products=rng.randrange(20, 400),
                                  clusters=rng.randrange(20, 600))
    splits = grouped_split(keys, clusters, test_fraction=0.3, seed=seed)
    assert set(splits) <= {"train", "test"}
    assert all(len(sides) == 1 for sides in sides_of(keys, splits).values())
    assert all(len(sides) == 1 for sides in sides_of(clusters, splits).values())


def test_split_is_deterministic_and_independent_of_row_order():
    keys, clusters = random_pairs(random.Random(1), rows=2000, products=1500, clusters=3000)
    splits = grouped_split(keys, clusters, test_fraction=0.1, seed=7)
    assert grouped_split(keys, clusters, test_fraction=0.1, seed=7) == splits
    order = list(range(len(keys)))
    random.Random(2).shuffle(order)
    shuffled = grouped_split([keys[i] for i in order], [clusters[i] for i in order], test_fraction=0.1, seed=7)
    assert shuffled == [splits[i] for i in order]
    assert grouped_split(keys, clusters, test_fraction=0.1, seed=8) != splits  # the seed matters


def test_groups_keep_their_side_when_unrelated_rows_are_added():
    keys, clusters = random_pairs(random.Random(3), rows=3000, products=2000, clusters=5000)
    before = grouped_split(keys, clusters, test_fraction=0.1, seed=0)
    new_keys, new_clusters = random_pairs(random.Random(4), rows=3000, products=2000, clusters=5000)
    new_keys = [key.replace(":", ":new-") for key in new_keys]  # other products ...
    new_clusters = [cluster + 10_000 for cluster in new_clusters]  # ... with other pictures
    after = grouped_split(new_keys + keys, new_clusters + clusters, test_fraction=0.1, seed=0)
    assert after[len(new_keys):] == before


def test_achieved_fraction_is_close_to_the_asked_one():
    rng = random.Random(5)
    keys, clusters = [], []
    for row in range(60_000):  # ~3 images per product, 10% of them shared with another product
        keys.append(f"tiki:{row // 3}")
        clusters.append(rng.randrange(60_000) if rng.random() < 0.1 else 100_000 + row)
    for fraction in (0.1, 0.25):
        achieved = achieved_test_fraction(grouped_split(keys, clusters, test_fraction=fraction, seed=0))
        assert achieved == pytest.approx(fraction, abs=0.015)


def test_edge_cases():
    assert grouped_split([], [], test_fraction=0.1, seed=0) == []
    assert achieved_test_fraction([]) == 0.0
    one_group = grouped_split(["tiki:1", "tiki:1", "sendo:2"], [5, 6, 6], test_fraction=0.5, seed=0)
    assert len(set(one_group)) == 1
    assert set(grouped_split(["a", "b"], [1, 2], test_fraction=0.0, seed=0)) == {"train"}
    assert set(grouped_split(["a", "b"], [1, 2], test_fraction=1.0, seed=0)) == {"test"}
    with pytest.raises(ValueError):
        grouped_split(["a"], [1, 2], test_fraction=0.1, seed=0)
    with pytest.raises(ValueError):
        grouped_split(["a"], [1], test_fraction=1.5, seed=0)
