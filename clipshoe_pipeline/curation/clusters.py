"""Near-duplicate pictures into clusters: which pairs are duplicates, then union-find.

The decision combines three cheap signals, because each alone confuses different
things: candidates are the pairs within `phash_radius` (found by multi-index
hashing, never all pairs), and a candidate is kept only if its dHash is within
`dhash_radius` too and, optionally, its mean colours are close, which keeps colour
variants (the same shoe model photographed in another colour: a different picture
with the same shape) apart. Re-cropped copies move pHash too far for any safe
radius, so pairs where one picture's full hashes are near one of the other's crop
windows' hashes (curation.hashing.window_hashes) are candidates as well.

Clusters are the connected components of the kept pairs, labelled by their
smallest member index. The union-find is vectorised (hook each root onto the
smaller root, then compress paths by pointer jumping), so a million nodes take
well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipshoe_pipeline.curation.neardup import as_codes, near_pairs


@dataclass(frozen=True)
class DedupConfig:
    """When two pictures are the same photo. Defaults and their measured precision
    and recall on the replay shop's planted duplicates: benchmarks/dedup_quality.py."""

    phash_radius: int = 4  # Hamming distance, of 64 bits
    dhash_radius: int = 8
    # Largest per-channel difference of the mean RGB colours (0-255); None: not checked.
    # A re-crop moves the mean colour by up to ~6.
    colour_distance: int | None = 6
    # Re-cropped copies: a picture's full-image hashes against the other's crop
    # windows (curation.hashing.window_hashes), within these radii; None: not checked.
    crop_phash_radius: int | None = 6
    crop_dhash_radius: int = 5

    def __post_init__(self):
        for name in ("phash_radius", "dhash_radius", "crop_phash_radius", "crop_dhash_radius"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 64:
                raise ValueError(f"{name} must be in [0, 63], got {value}")
        if self.colour_distance is not None and self.colour_distance < 0:
            raise ValueError(f"colour_distance must be >= 0 or None, got {self.colour_distance}")


def duplicate_pairs(phash: np.ndarray, dhash: np.ndarray, colour: np.ndarray | None,
                    config: DedupConfig = DedupConfig(), window_phash: np.ndarray | None = None,
                    window_dhash: np.ndarray | None = None) -> np.ndarray:
    """Pairs (i, j), i < j, of near-duplicate pictures, shape (k, 2) int64. `phash`
    and `dhash` are 64-bit hashes (int64 or uint64), `colour` the mean RGB per picture,
    shape (n, 3) (unused when config.colour_distance is None). `window_phash` and
    `window_dhash`, shape (n, windows), are the crop windows' hashes; without them (or
    with config.crop_phash_radius None) re-cropped copies are not looked for."""
    phash, dhash = as_codes(phash), as_codes(dhash)
    if len(dhash) != len(phash):
        raise ValueError(f"{len(phash)} pHashes but {len(dhash)} dHashes")
    pairs = near_pairs(phash, config.phash_radius)
    i, j = pairs[:, 0], pairs[:, 1]
    keep = np.bitwise_count(dhash[i] ^ dhash[j]) <= config.dhash_radius
    pairs = pairs[keep]
    if window_phash is not None and window_dhash is not None and config.crop_phash_radius is not None:
        pairs = np.unique(np.concatenate([pairs, _crop_pairs(phash, dhash, window_phash, window_dhash, config)]),
                          axis=0)
    if config.colour_distance is not None:
        colour = _colours(colour, len(phash))
        i, j = pairs[:, 0], pairs[:, 1]
        pairs = pairs[np.abs(colour[i] - colour[j]).max(axis=1) <= config.colour_distance]
    return pairs.reshape(-1, 2)


def _crop_pairs(phash: np.ndarray, dhash: np.ndarray, window_phash: np.ndarray, window_dhash: np.ndarray,
                config: DedupConfig) -> np.ndarray:
    """Pairs (i, j), i < j, where one picture's full hashes are near a crop window's of the other."""
    n = len(phash)
    window_phash, window_dhash = np.asarray(window_phash), np.asarray(window_dhash)
    if window_phash.ndim != 2 or len(window_phash) != n or window_dhash.shape != window_phash.shape:
        raise ValueError(f"expected window hashes of shape ({n}, windows), got {window_phash.shape} "
                         f"and {window_dhash.shape}")
    # One index over full and window pHashes; full hashes come first, so a pair
    # (a, b), a < b, is full-vs-window when a < n <= b.
    codes = np.concatenate([phash, as_codes(window_phash.ravel())])
    d_codes = np.concatenate([dhash, as_codes(window_dhash.ravel())])
    owner = np.concatenate([np.arange(n), np.repeat(np.arange(n), window_phash.shape[1])])
    found = near_pairs(codes, config.crop_phash_radius)
    a, b = found[:, 0], found[:, 1]
    keep = (a < n) & (b >= n) & (owner[a] != owner[b])
    a, b = a[keep], b[keep]
    near = np.bitwise_count(d_codes[a] ^ d_codes[b]) <= config.crop_dhash_radius
    i, j = owner[a[near]], owner[b[near]]
    return np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1).astype(np.int64)


def duplicate_clusters(phash: np.ndarray, dhash: np.ndarray, colour: np.ndarray | None,
                       config: DedupConfig = DedupConfig(), window_phash: np.ndarray | None = None,
                       window_dhash: np.ndarray | None = None) -> np.ndarray:
    """The cluster of each picture: the smallest index among its near-duplicates
    (transitively), so a picture without duplicates is its own cluster."""
    return connected_components(duplicate_pairs(phash, dhash, colour, config, window_phash, window_dhash),
                                len(phash))


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


def _colours(colour: np.ndarray | None, n: int) -> np.ndarray:
    if colour is None:
        raise ValueError("colour is required when config.colour_distance is set")
    # int32: differences of uint8 or int16 inputs must not wrap around.
    colour = np.asarray(colour, dtype=np.int32)
    if colour.shape != (n, 3):
        raise ValueError(f"expected colour of shape ({n}, 3), got {colour.shape}")
    return colour
