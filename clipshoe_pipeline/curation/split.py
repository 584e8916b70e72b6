"""Train/test split that cannot leak: grouped by product and by near-duplicate cluster.

A random row split would put one product's other photos, or the same photo listed
by another shop, on both sides, and test scores would measure memory. So pairs are
grouped first: two pairs belong together when they share a product or a
near-duplicate cluster, transitively (union-find over both). Each group goes to one
side as a whole.

A group's side is a hash of (seed, its smallest product key), not of its position
or of a shuffle, so the split is deterministic and a group keeps its side when a
recrawl adds unrelated groups. (A group that *merges* with new rows may change
side: its identity changed.) The test share of rows is then test_fraction only on
average; `achieved_test_fraction` reports what it came out as.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from clipshoe_pipeline.curation.clusters import connected_components

TRAIN = "train"
TEST = "test"
_HASH_SPAN = 2**64


def group_of_rows(product_keys: Sequence[str], cluster_ids: Sequence[int]) -> list[int]:
    """For each row, its group: products joined through shared clusters (the smallest node of the component)."""
    if len(product_keys) != len(cluster_ids):
        raise ValueError(f"{len(product_keys)} product keys but {len(cluster_ids)} cluster ids")
    product_node: dict[str, int] = {}
    cluster_node: dict[int, int] = {}
    edges = []
    for key, cluster in zip(product_keys, cluster_ids):
        product = product_node.setdefault(key, len(product_node))
        edges.append((product, cluster_node.setdefault(int(cluster), len(cluster_node))))
    offset = len(product_node)  # cluster nodes follow the product nodes
    pairs = np.array([(product, offset + cluster) for product, cluster in edges], dtype=np.int64).reshape(-1, 2)
    roots = connected_components(pairs, offset + len(cluster_node))
    return [int(roots[product]) for product, _ in edges]


def side_of(group_key: str, test_fraction: float, seed: int | str) -> str:
    """The side of a group, from its identity alone: uniform hash < test_fraction is test."""
    digest = hashlib.blake2b(f"{seed}:{group_key}".encode(), digest_size=8).digest()
    return TEST if int.from_bytes(digest, "big") < test_fraction * _HASH_SPAN else TRAIN


def grouped_split(product_keys: Sequence[str], cluster_ids: Sequence[int], test_fraction: float = 0.1,
                  seed: int | str = 0) -> list[str]:
    """"train"/"test" for each pair, given its product key ("site:product_id") and
    near-duplicate cluster id (every image has one; singletons their own). `seed`
    salts the hash: a second split of one side needs a salt of its own, or its
    "test" share would be exactly the rows the first split already sent to test."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be within [0, 1], got {test_fraction}")
    groups = group_of_rows(product_keys, cluster_ids)
    smallest_key: dict[int, str] = {}
    for group, key in zip(groups, product_keys):
        if group not in smallest_key or key < smallest_key[group]:
            smallest_key[group] = key
    sides = {group: side_of(key, test_fraction, seed) for group, key in smallest_key.items()}
    return [sides[group] for group in groups]


def achieved_test_fraction(splits: Sequence[str]) -> float:
    """The share of rows that went to test (0.0 for no rows)."""
    return sum(side == TEST for side in splits) / len(splits) if len(splits) else 0.0
