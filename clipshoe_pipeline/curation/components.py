"""Connected components of a graph given as node pairs, in numpy alone: the
near-duplicate clusters and the split's product groups both need them."""

from __future__ import annotations

import numpy as np


def connected_components(pairs: np.ndarray, n: int) -> np.ndarray:
    """For nodes 0..n-1 joined by `pairs` (shape (k, 2)), each node's component
    label: the smallest node of its component (int64)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= n):
        raise ValueError(f"pair indices must be in [0, {n})")
    parent = np.arange(n, dtype=np.int64)
    left, right = pairs[:, 0], pairs[:, 1]
    while len(left):
        # Every parent is a root here; hook the larger root of each pair onto the
        # smaller. Roots only ever point lower, so no cycle can form.
        a, b = parent[left], parent[right]
        joined = a != b
        left, right = left[joined], right[joined]  # pairs already inside one tree are done
        low, high = np.minimum(a[joined], b[joined]), np.maximum(a[joined], b[joined])
        np.minimum.at(parent, high, low)
        _compress(parent)
    return parent


def _compress(parent: np.ndarray) -> None:
    """Point every node at its root (pointer jumping: log of the depth rounds)."""
    while True:
        grandparent = parent[parent]
        if np.array_equal(grandparent, parent):
            return
        parent[:] = grandparent
