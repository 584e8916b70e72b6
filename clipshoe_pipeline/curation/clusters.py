"""Near-duplicate pictures into clusters: which pairs are duplicates, then union-find.

Hashes find candidates, a thumbnail comparison decides. Candidates are the pairs
within `phash_radius` and `dhash_radius` (found by multi-index hashing, never all
pairs) and, for re-cropped copies, which move pHash too far for any safe radius, the
pairs where one picture's full hashes are near one of the other's crop windows'
hashes (curation.hashing.window_hashes). 64 bits cannot tell two photos of one shoe
kind on a light backdrop apart, and 81 windows per picture multiply such chance
matches, so each candidate is verified: the window (the whole picture for full
matches) is cut from one picture's grey thumbnail, its box nudged to undo the
window grid's misalignment, and compared with the other's thumbnail; it is kept if
their mean absolute difference is within `verify_distance`. The mean colours must
also be close (checked first, and inside the window search: it is cheap), which
keeps colour variants (the same shoe model in another colour, maybe in the same
pose: alike in grey) apart.

Clusters are the connected components of the kept pairs, labelled by their
smallest member index. The union-find is vectorised (hook each root onto the
smaller root, then compress paths by pointer jumping), so a million nodes take
well under a second.
"""

from __future__ import annotations

import numba
import numpy as np

from clipshoe_pipeline.curation.components import connected_components
from clipshoe_pipeline.curation.config import DedupConfig
from clipshoe_pipeline.curation.hashing import CROP_WINDOWS, THUMB_SIDE
from clipshoe_pipeline.curation.neardup import as_codes, near_pairs, near_pairs_between

_FULL_BOX = (0.0, 0.0, 1.0, 1.0)
# Thumbnails are compared at this side: coarse enough to ignore re-encoding noise
# and a small watermark, fine enough to see another pose's outline and backdrop.
COMPARE_SIDE = 16
# Box refinement: rounds of moving each box edge by one step either way. The window
# grid is 0.05, so a re-crop is up to 0.025 off per edge: two 0.0125 steps cover it.
REFINE_STEP = 0.0125
REFINE_ROUNDS = 2


def duplicate_pairs(phash: np.ndarray, dhash: np.ndarray, colour: np.ndarray | None,
                    config: DedupConfig = DedupConfig(), window_phash: np.ndarray | None = None,
                    window_dhash: np.ndarray | None = None, thumbnails: np.ndarray | None = None) -> np.ndarray:
    """Pairs (i, j), i < j, of near-duplicate pictures, shape (k, 2) int64. `phash`
    and `dhash` are 64-bit hashes (int64 or uint64), `colour` the mean RGB per picture,
    shape (n, 3) (unused when config.colour_distance is None). `window_phash` and
    `window_dhash`, shape (n, windows), are the crop windows' hashes; without them (or
    with config.crop_phash_radius None) re-cropped copies are not looked for.
    `thumbnails`, shape (n, THUMB_SIDE, THUMB_SIDE) uint8 (curation.hashing.thumbnail),
    verify the candidates; without them (or with config.verify_distance None) every
    candidate is a duplicate."""
    phash, dhash = as_codes(phash), as_codes(dhash)
    if len(dhash) != len(phash):
        raise ValueError(f"{len(phash)} pHashes but {len(dhash)} dHashes")
    colour = _colours(colour, len(phash)) if config.colour_distance is not None else None
    pairs = near_pairs(phash, config.phash_radius)
    i, j = pairs[:, 0], pairs[:, 1]
    close = np.bitwise_count(dhash[i] ^ dhash[j]) <= config.dhash_radius
    if colour is not None:
        # Checked before the (costly) verification: it is a condition on the pair, not on the box.
        close &= np.abs(colour[i] - colour[j]).max(axis=1) <= config.colour_distance
    pairs = pairs[close]
    # Candidates as (picture, picture whose box is cut, box) triples, the full box first.
    full, cut = pairs[:, 0], pairs[:, 1]
    window = np.full(len(pairs), -1)
    if window_phash is not None and window_dhash is not None and config.crop_phash_radius is not None:
        # The window search applies the colour rule itself, as it finds the pairs.
        crop_full, crop_cut, crop_window = _crop_candidates(phash, dhash, colour, window_phash, window_dhash,
                                                            config)
        full, cut = np.concatenate([full, crop_full]), np.concatenate([cut, crop_cut])
        window = np.concatenate([window, crop_window])
    left, right = np.minimum(full, cut), np.maximum(full, cut)
    if thumbnails is not None and config.verify_distance is not None:
        boxes = np.concatenate([[_FULL_BOX], np.asarray(CROP_WINDOWS)])[window + 1]
        left, right = _verified_pairs(_thumbnails(thumbnails, len(phash)), full, cut, boxes, config.verify_distance)
    return np.unique(np.stack([left, right], axis=1).astype(np.int64), axis=0).reshape(-1, 2)


def _crop_candidates(phash: np.ndarray, dhash: np.ndarray, colour: np.ndarray | None, window_phash: np.ndarray,
                     window_dhash: np.ndarray, config: DedupConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, k): picture i's full hashes are near those of picture j's crop window k
    and, with `colour`, the two pictures' mean colours within config.colour_distance
    (checked in the search: most hash matches are look-alikes in another colour).
    Full hashes query an index of the window hashes: windows are never compared with
    each other (look-alike shots would make that grow with the square of the catalog)."""
    n = len(phash)
    window_phash, window_dhash = np.asarray(window_phash), np.asarray(window_dhash)
    if window_phash.ndim != 2 or len(window_phash) != n or window_dhash.shape != window_phash.shape:
        raise ValueError(f"expected window hashes of shape ({n}, windows), got {window_phash.shape} "
                         f"and {window_dhash.shape}")
    windows = window_phash.shape[1]
    found = near_pairs_between(phash, as_codes(window_phash.ravel()), config.crop_phash_radius, own_rows=windows,
                               also_within=(dhash, as_codes(window_dhash.ravel()), config.crop_dhash_radius),
                               also_close=None if colour is None else (colour, config.colour_distance))
    picture, flat = found[:, 0], found[:, 1]
    return picture, flat // windows, flat % windows


def _verified_pairs(thumbnails: np.ndarray, full: np.ndarray, cut: np.ndarray, boxes: np.ndarray,
                    verify_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (min, max) of which at least one candidate box verifies. A pair's
    candidates are tried in order (the full box first, then windows), one per pair
    per round, so a pair stops costing work once one of its boxes has verified."""
    left, right = np.minimum(full, cut), np.maximum(full, cut)
    if not len(left):
        return left, right
    order = np.lexsort((np.arange(len(left)), right, left))
    left, right, full, cut, boxes = left[order], right[order], full[order], cut[order], boxes[order]
    first_of_pair = np.r_[True, (left[1:] != left[:-1]) | (right[1:] != right[:-1])]
    pair = np.cumsum(first_of_pair) - 1
    rank = np.arange(len(pair)) - np.flatnonzero(first_of_pair)[pair]
    verified = np.zeros(int(pair[-1]) + 1, dtype=bool)
    for step in range(int(rank.max()) + 1):
        todo = np.flatnonzero((rank == step) & ~verified[pair])
        if not len(todo):
            break
        close = aligned_distances(thumbnails, full[todo], cut[todo], boxes[todo]) <= verify_distance
        verified[pair[todo[close]]] = True
    return left[first_of_pair][verified], right[first_of_pair][verified]


def aligned_distances(thumbnails: np.ndarray, full: np.ndarray, cut: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """For each candidate, the mean absolute grey difference between picture full[k]'s
    thumbnail and the box boxes[k] (x0, y0, x1, y1, fractions) cut from picture
    cut[k]'s, after moving the box's edges to where the difference is least."""
    distances = np.empty(len(full), dtype=np.float32)
    _aligned_distances(np.ascontiguousarray(thumbnails, dtype=np.uint8), np.asarray(full, dtype=np.int64),
                       np.asarray(cut, dtype=np.int64), np.ascontiguousarray(boxes, dtype=np.float32), distances)
    return distances


# Compiled: each candidate is 17 box comparisons of 16x16 bilinear samples, and in
# numpy the temporaries of a batch cost 20x the arithmetic (440 us against 20 us a
# candidate). One candidate per iteration, spread over the CPUs.
@numba.njit(parallel=True, cache=True, nogil=True)
def _aligned_distances(thumbnails, full, cut, boxes, out):
    factor = THUMB_SIDE // COMPARE_SIDE
    for k in numba.prange(len(full)):
        reference = np.empty((COMPARE_SIDE, COMPARE_SIDE), dtype=np.float32)
        for y in range(COMPARE_SIDE):
            for x in range(COMPARE_SIDE):
                total = np.float32(0.0)
                for dy in range(factor):
                    for dx in range(factor):
                        total += np.float32(thumbnails[full[k], y * factor + dy, x * factor + dx])
                reference[y, x] = total / np.float32(factor * factor)
        source = thumbnails[cut[k]].astype(np.float32)  # once, not four times a sample
        box = boxes[k].copy()
        best = _box_distance(reference, source, box)
        for _ in range(REFINE_ROUNDS):
            for edge in range(4):
                for step in (-REFINE_STEP, REFINE_STEP):
                    trial = box.copy()
                    trial[edge] = min(max(trial[edge] + np.float32(step), np.float32(0.0)), np.float32(1.0))
                    distance = _box_distance(reference, source, trial)
                    if distance < best:
                        best = distance
                        box = trial
        out[k] = best


@numba.njit(cache=True, nogil=True, inline="always")
def _box_distance(reference, source, box):
    """Mean absolute difference of `reference` and the box of `source` resampled
    (bilinear) to COMPARE_SIDE x COMPARE_SIDE."""
    # Sample columns and rows: integer part and fraction, per box rather than per sample.
    x0s, fxs = np.empty(COMPARE_SIDE, dtype=np.int64), np.empty(COMPARE_SIDE, dtype=np.float32)
    y0s, fys = np.empty(COMPARE_SIDE, dtype=np.int64), np.empty(COMPARE_SIDE, dtype=np.float32)
    for t in range(COMPARE_SIDE):
        centre = (np.float32(t) + np.float32(0.5)) / np.float32(COMPARE_SIDE)
        x = _pixel_coordinate(box[0] + centre * (box[2] - box[0]))
        y = _pixel_coordinate(box[1] + centre * (box[3] - box[1]))
        x0s[t], y0s[t] = int(x), int(y)
        fxs[t], fys[t] = x - np.float32(x0s[t]), y - np.float32(y0s[t])
    total = np.float32(0.0)
    for a in range(COMPARE_SIDE):
        y0, fy = y0s[a], fys[a]
        for b in range(COMPARE_SIDE):
            x0, fx = x0s[b], fxs[b]
            top = source[y0, x0] * (np.float32(1.0) - fx) + source[y0, x0 + 1] * fx
            bottom = source[y0 + 1, x0] * (np.float32(1.0) - fx) + source[y0 + 1, x0 + 1] * fx
            total += abs(reference[a, b] - (top * (np.float32(1.0) - fy) + bottom * fy))
    return total / np.float32(COMPARE_SIDE * COMPARE_SIDE)


@numba.njit(cache=True, nogil=True, inline="always")
def _pixel_coordinate(fraction):
    # Pixel centres sit at half-integers; clamped so that x0 + 1 stays inside.
    return min(max(fraction * np.float32(THUMB_SIDE) - np.float32(0.5), np.float32(0.0)),
               np.float32(THUMB_SIDE - 1.001))


def duplicate_clusters(phash: np.ndarray, dhash: np.ndarray, colour: np.ndarray | None,
                       config: DedupConfig = DedupConfig(), window_phash: np.ndarray | None = None,
                       window_dhash: np.ndarray | None = None, thumbnails: np.ndarray | None = None) -> np.ndarray:
    """The cluster of each picture: the smallest index among its near-duplicates
    (transitively), so a picture without duplicates is its own cluster."""
    return connected_components(
        duplicate_pairs(phash, dhash, colour, config, window_phash, window_dhash, thumbnails), len(phash))


def _colours(colour: np.ndarray | None, n: int) -> np.ndarray:
    if colour is None:
        raise ValueError("colour is required when config.colour_distance is set")
    # int32: differences of uint8 or int16 inputs must not wrap around.
    colour = np.asarray(colour, dtype=np.int32)
    if colour.shape != (n, 3):
        raise ValueError(f"expected colour of shape ({n}, 3), got {colour.shape}")
    return colour


def _thumbnails(thumbnails: np.ndarray, n: int) -> np.ndarray:
    thumbnails = np.asarray(thumbnails)
    if thumbnails.shape != (n, THUMB_SIDE, THUMB_SIDE):
        raise ValueError(f"expected thumbnails of shape ({n}, {THUMB_SIDE}, {THUMB_SIDE}), got {thumbnails.shape}")
    return thumbnails
