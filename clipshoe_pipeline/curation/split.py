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
import pyarrow as pa
import pyarrow.compute as pc

from clipshoe_pipeline.curation.components import connected_components

TRAIN = "train"
TEST = "test"
_HASH_SPAN = 2**64


def group_of_rows(product_keys: Sequence[str] | pa.Array | pa.ChunkedArray,
                  cluster_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """For each row, its group (int64): products joined through shared clusters
    (the smallest node of the component; product nodes first, in order of appearance)."""
    product, products = _codes(product_keys)
    return _groups(product, len(products), cluster_ids)


def _groups(product: np.ndarray, products: int, cluster_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """group_of_rows, given each row's product index (of `products`)."""
    _, cluster = np.unique(np.asarray(cluster_ids, dtype=np.int64), return_inverse=True)
    if len(product) != len(cluster):
        raise ValueError(f"{len(product)} product keys but {len(cluster)} cluster ids")
    clusters = int(cluster.max()) + 1 if len(cluster) else 0
    # Cluster nodes follow the product nodes.
    roots = connected_components(np.stack([product, products + cluster], axis=1), products + clusters)
    return roots[product]


def side_of(group_key: str, test_fraction: float, seed: int | str) -> str:
    """The side of a group, from its identity alone: uniform hash < test_fraction is test."""
    digest = hashlib.blake2b(f"{seed}:{group_key}".encode(), digest_size=8).digest()
    return TEST if int.from_bytes(digest, "big") < test_fraction * _HASH_SPAN else TRAIN


def grouped_split(product_keys: Sequence[str] | pa.Array | pa.ChunkedArray, cluster_ids: Sequence[int] | np.ndarray,
                  test_fraction: float = 0.1, seed: int | str = 0) -> list[str]:
    """"train"/"test" for each pair, given its product key ("site:product_id") and
    near-duplicate cluster id (every image has one; singletons their own). `seed`
    salts the hash: a second split of one side needs a salt of its own, or its
    "test" share would be exactly the rows the first split already sent to test."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be within [0, 1], got {test_fraction}")
    product, products = _codes(product_keys)
    groups = _groups(product, len(products), cluster_ids)
    if not len(groups):
        return []
    # Each group's smallest product key: rows ordered by (group, key rank), first of each group.
    rank = np.empty(len(products), dtype=np.int64)
    rank[np.asarray(pc.sort_indices(products))] = np.arange(len(products))
    order = np.lexsort((rank[product], groups))
    firsts = order[np.r_[True, groups[order][1:] != groups[order][:-1]]]
    _, group_of_row = np.unique(groups, return_inverse=True)
    keys = products.take(pa.array(product[firsts])).to_pylist()
    sides = np.array([side_of(key, test_fraction, seed) for key in keys])  # firsts are in group order
    return sides[group_of_row].tolist()


def _codes(keys: Sequence[str] | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Each key's index into the distinct keys (in order of appearance), and those keys."""
    array = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else pa.array(keys, pa.string())
    encoded = pc.dictionary_encode(array)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def achieved_test_fraction(splits: Sequence[str]) -> float:
    """The share of rows that went to test (0.0 for no rows)."""
    return sum(side == TEST for side in splits) / len(splits) if len(splits) else 0.0
