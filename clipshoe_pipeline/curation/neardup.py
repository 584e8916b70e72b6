"""All pairs of 64-bit hashes within a Hamming radius, without comparing all pairs.

Multi-index hashing (Norouzi et al.): split the 64 bits into `m` substrings. Two
codes within distance r differ in at most r bits, so by pigeonhole at least one of
their substrings differs in at most floor(r/m) bits. Each substring is a table:
codes are sorted by that substring's value, so codes agreeing on it form one bucket,
and a code's candidates are its own bucket plus the buckets whose key differs in at
most floor(r/m) bits (bit-flip probes). Candidates are checked on all 64 bits.

More tables mean shorter keys, which are cheap to probe but share buckets with many
random codes; fewer, longer keys need many probes. `plan_tables` picks `m` with a
cost model of both (uniformly spread codes), checked against measurement in
benchmarks/neardup.py, which also compares faiss's binary multi-hash index.

Everything is vectorised numpy. Candidate pairs are enumerated in chunks of bounded
size, so memory stays flat however skewed the buckets are, and each pair is
reported by one table only, so no de-duplication of large arrays is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import combinations
from math import comb

import numpy as np

CODE_BITS = 64
CHUNK_PAIRS = 1 << 22  # candidate pairs verified at once: ~100 MB of temporaries
# A probe (a table lookup plus its bookkeeping) costs about this many candidate checks.
PROBE_COST = 2.0
DENSE_KEY_BITS = 24  # keys up to this width are looked up in a dense table (<= 64 MiB)
MAX_PROBES = 1 << 20  # probe keys per bucket beyond which a table plan is hopeless


def near_pairs(codes: np.ndarray, radius: int, *, tables: int | None = None,
               chunk_pairs: int = CHUNK_PAIRS) -> np.ndarray:
    """Every pair (i, j), i < j, with popcount(codes[i] ^ codes[j]) <= radius, as an
    int64 array of shape (k, 2) sorted by (i, j). `tables` overrides the planned
    number of substrings (benchmarks compare them)."""
    codes = as_codes(codes)
    _check_radius(radius)
    n = len(codes)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    m = tables or plan_tables(n, radius)
    if not 1 <= m <= CODE_BITS:
        raise ValueError(f"tables must be in [1, {CODE_BITS}], got {m}")
    flips = radius // m
    substrings = _substrings(m)
    probes = _neighbourhood(substrings[0][1], flips)
    if probes > MAX_PROBES:
        raise ValueError(f"{m} tables at radius {radius} need {probes} probes per key; use more tables")
    found = []
    for table, (shift, width) in enumerate(substrings):
        for left, right in _table_candidates(codes, shift, width, flips, chunk_pairs):
            left, right = _verified(codes, left, right, radius)
            # Report a pair in the first table where it is a candidate only.
            first_here = np.ones(len(left), dtype=bool)
            for earlier_shift, earlier_width in substrings[:table]:
                first_here &= _bits_apart(codes[left], codes[right], earlier_shift, earlier_width) > flips
            found.append((left[first_here], right[first_here]))
    return _sorted_pairs(found)


def exhaustive_pairs(codes: np.ndarray, radius: int, *, block: int = 2048) -> np.ndarray:
    """The all-pairs baseline of `near_pairs` (same result, O(n^2) work): for tests
    and for benchmarks on small samples."""
    codes = as_codes(codes)
    _check_radius(radius)
    found = []
    for start in range(0, len(codes), block):
        rows = codes[start:start + block]
        distances = np.bitwise_count(rows[:, None] ^ codes[None, start:])
        # Only j > i: the block's upper triangle and everything to its right.
        upper = np.triu(np.ones((len(rows), len(codes) - start), dtype=bool), k=1)
        i, j = np.nonzero((distances <= radius) & upper)
        found.append((i + start, j + start))
    return _sorted_pairs(found)


def as_codes(codes: np.ndarray) -> np.ndarray:
    """Hashes as a 1-D uint64 array; int64 input (as stored in Parquet/DuckDB) is
    reinterpreted bit for bit, not converted."""
    codes = np.ascontiguousarray(codes)
    if codes.ndim != 1 or codes.dtype not in (np.uint64, np.int64):
        raise ValueError(f"expected a 1-D uint64 or int64 array, got {codes.dtype} with shape {codes.shape}")
    return codes.view(np.uint64)


def plan_tables(n: int, radius: int) -> int:
    """The number of substrings with the least expected work for n uniformly spread
    codes: candidate checks plus probes, summed over the tables."""
    def cost(m: int) -> float:
        flips = radius // m
        total = 0.0
        for _, width in _substrings(m):
            neighbourhood = _neighbourhood(width, flips)
            keys = min(n, 2.0 ** width)
            candidates = n * n / 2 * neighbourhood / 2.0 ** width
            total += candidates + PROBE_COST * keys * (neighbourhood - 1) / 2
        return total

    return min(range(1, min(CODE_BITS, radius + 1) + 1), key=cost)


def _check_radius(radius: int) -> None:
    if not 0 <= radius < CODE_BITS:
        raise ValueError(f"radius must be in [0, {CODE_BITS - 1}], got {radius}")


def _substrings(m: int) -> list[tuple[int, int]]:
    """(shift, width) of m contiguous substrings covering the 64 bits, widths
    differing by at most one."""
    widths = [CODE_BITS // m + (k < CODE_BITS % m) for k in range(m)]
    shifts = np.cumsum([0] + widths[:-1])
    return [(int(s), w) for s, w in zip(shifts, widths)]


def _neighbourhood(width: int, flips: int) -> int:
    """How many keys lie within `flips` bits of a key of `width` bits (itself included)."""
    return sum(comb(width, k) for k in range(flips + 1))


def _key(codes: np.ndarray, shift: int, width: int) -> np.ndarray:
    mask = np.uint64((1 << width) - 1)
    return (codes >> np.uint64(shift)) & mask


def _bits_apart(a: np.ndarray, b: np.ndarray, shift: int, width: int) -> np.ndarray:
    return np.bitwise_count(_key(a ^ b, shift, width))


def _flip_masks(width: int, flips: int) -> np.ndarray:
    """Every nonzero key difference of at most `flips` bits."""
    masks = [sum(1 << bit for bit in bits) for k in range(1, flips + 1) for bits in combinations(range(width), k)]
    return np.array(masks, dtype=np.uint64)


def _table_candidates(codes: np.ndarray, shift: int, width: int, flips: int,
                      chunk_pairs: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Candidate pairs (original indices) of one table, in bounded chunks, each
    pair once: same bucket (i before j in bucket order), or buckets whose keys
    differ in 1..flips bits (probed from the smaller key only)."""
    keys = _key(codes, shift, width)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    bucket_keys = sorted_keys[starts]

    # Same bucket: position p pairs with every later position of its bucket.
    ends = np.repeat(starts + sizes, sizes)
    positions = np.arange(len(keys))
    yield from _expand(order, positions, positions + 1, ends - positions - 1, chunk_pairs)

    # Neighbouring buckets: each member of bucket a pairs with every member of bucket b.
    find_bucket = _bucket_finder(bucket_keys, width)
    for masks in _mask_batches(_flip_masks(width, flips), len(keys), chunk_pairs):
        targets = (bucket_keys[:, None] ^ masks[None, :]).ravel()
        sources = np.repeat(np.arange(len(bucket_keys)), len(masks))
        upward = targets > bucket_keys[sources]
        targets, sources = targets[upward], sources[upward]
        hit = find_bucket(targets)
        found = hit >= 0
        a, b = sources[found], hit[found]
        rows = _members(starts[a], sizes[a])
        member_of = np.repeat(np.arange(len(a)), sizes[a])
        yield from _expand(order, rows, starts[b][member_of], sizes[b][member_of], chunk_pairs)


def _bucket_finder(bucket_keys: np.ndarray, width: int) -> Callable[[np.ndarray], np.ndarray]:
    """A lookup from keys to bucket numbers (-1: no such bucket). Short keys index
    a dense table directly, several times faster than a binary search."""
    if width <= DENSE_KEY_BITS:
        table = np.full(1 << width, -1, dtype=np.int32)
        table[bucket_keys] = np.arange(len(bucket_keys), dtype=np.int32)
        return lambda keys: table[keys]

    def search(keys: np.ndarray) -> np.ndarray:
        hit = np.minimum(np.searchsorted(bucket_keys, keys), len(bucket_keys) - 1)
        return np.where(bucket_keys[hit] == keys, hit, -1)

    return search


def _mask_batches(masks: np.ndarray, n: int, chunk_pairs: int) -> Iterator[np.ndarray]:
    """Masks in batches whose probes (at most one per code and mask) fit in one chunk."""
    step = max(1, chunk_pairs // max(n, 1))
    for start in range(0, len(masks), step):
        yield masks[start:start + step]


def _members(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The sorted positions of several buckets, concatenated."""
    offsets = np.cumsum(sizes) - sizes
    return np.arange(sizes.sum()) - np.repeat(offsets - starts, sizes)


def _expand(order: np.ndarray, rows: np.ndarray, first: np.ndarray, lengths: np.ndarray,
            chunk_pairs: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs (rows[k], first[k] + t) for t < lengths[k], in sorted positions mapped
    to original indices through `order`, at most about chunk_pairs at a time."""
    keep = lengths > 0
    rows, first, lengths = rows[keep], first[keep], lengths[keep]
    bounds = np.cumsum(lengths)
    start = 0
    while start < len(rows):
        # Rows up to the chunk budget (always at least one: a row may exceed it alone).
        base = bounds[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(bounds, base + chunk_pairs, side="right")))
        counts = lengths[start:stop]
        row_of = np.repeat(np.arange(start, stop), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        yield order[rows[row_of]], order[first[row_of] + offsets]
        start = stop


def _verified(codes: np.ndarray, left: np.ndarray, right: np.ndarray,
              radius: int) -> tuple[np.ndarray, np.ndarray]:
    close = np.bitwise_count(codes[left] ^ codes[right]) <= radius
    return left[close], right[close]


def _sorted_pairs(found: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    left = np.concatenate([f[0] for f in found]).astype(np.int64)
    right = np.concatenate([f[1] for f in found]).astype(np.int64)
    pairs = np.column_stack([np.minimum(left, right), np.maximum(left, right)])
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
