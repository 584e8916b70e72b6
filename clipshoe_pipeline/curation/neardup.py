"""Pairs of 64-bit hashes within a Hamming radius, without comparing all pairs.

Multi-index hashing (Norouzi et al.): split the 64 bits into `m` substrings. Two
codes within distance r differ in at most r bits in all substrings together, so if
substring k is given a threshold t_k with sum(t_k + 1) > r, at least one substring
differs in at most its t_k bits (pigeonhole). Thresholds are spread as evenly as
that allows (r = 6 over three substrings: 2, 1, 1, where floor(r/m) for all would
probe 2, 2, 2). Each substring is a table: codes are sorted by that substring's
value, so codes agreeing on it form one bucket, and a code's candidates are the
buckets whose key differs from its own in at most t_k bits (bit-flip probes).
Candidates are checked on all 64 bits.

Two searches share the tables:
- `near_pairs`: every pair within one set (full-image hashes against each other);
- `near_pairs_between`: every (query, database) pair across two sets (full-image
  hashes against other pictures' crop windows). Only the database is indexed; the
  queries probe it, so the work grows with the pairs that can match, never with
  the pairs inside either set.

More tables mean shorter keys, which are cheap to probe but share buckets with many
random codes; fewer, longer keys need many probes. `plan_tables` picks `m` with a
cost model of both (uniformly spread codes), checked against measurement in
benchmarks/neardup.py, which also compares faiss's binary multi-hash index.

The self search is vectorised numpy: candidate pairs are enumerated in chunks of
bounded size, so memory stays flat however skewed the buckets are, and each pair is
reported by one table only, so no de-duplication of large arrays is needed. The
search between sets runs a compiled loop per span of queries (numba, threads
sharing the tables): look-alike product shots put thousands of crop windows in one
bucket, and a loop that reads a bucket's codes in order and keeps only the pairs
passing every condition costs about a nanosecond per code read, where chunked
numpy temporaries cost ~35 (98k pictures, 2.4G codes read: 7 s instead of 82 s).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from math import comb

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

CODE_BITS = 64
CHUNK_PAIRS = 1 << 22  # candidate pairs verified at once: ~100 MB of temporaries
# A probe (a table lookup plus its bookkeeping) costs about this many candidate checks.
PROBE_COST = 2.0
DENSE_KEY_BITS = 24  # keys up to this width are looked up in a dense table (<= 64 MiB)
BITMAP_KEY_BITS = 32  # keys up to this width are tested against a bit per key first (<= 512 MiB)
MAX_PROBES = 1 << 20  # probe keys per bucket beyond which a table plan is hopeless
QUERY_SPAN = 1 << 14  # queries a thread probes at a time


@dataclass(frozen=True)
class _Table:
    shift: int
    width: int
    threshold: int  # the most bits a candidate's key may differ in

    def key(self, codes: np.ndarray) -> np.ndarray:
        return (codes >> np.uint64(self.shift)) & np.uint64((1 << self.width) - 1)

    def apart(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Bits in which the keys of a and b differ."""
        return np.bitwise_count(self.key(a ^ b))

    @property
    def neighbourhood(self) -> int:
        """Keys within `threshold` bits of a key (itself included)."""
        return sum(comb(self.width, k) for k in range(self.threshold + 1))


def near_pairs(codes: np.ndarray, radius: int, *, tables: int | None = None,
               chunk_pairs: int = CHUNK_PAIRS) -> np.ndarray:
    """Every pair (i, j), i < j, with popcount(codes[i] ^ codes[j]) <= radius, as an
    int64 array of shape (k, 2) sorted by (i, j). `tables` overrides the planned
    number of substrings (benchmarks compare them)."""
    codes = as_codes(codes)
    _check_radius(radius)
    if len(codes) < 2:
        return np.empty((0, 2), dtype=np.int64)
    plan = _feasible(_plan(tables or plan_tables(len(codes), radius), radius), radius)
    found = [_verified(chunk, plan[:number], radius)
             for number, table in enumerate(plan) for chunk in _self_candidates(codes, table, chunk_pairs)]
    return _sorted_pairs(found, symmetric=True)


def near_pairs_between(queries: np.ndarray, database: np.ndarray, radius: int, *, own_rows: int | None = None,
                       also_within: tuple[np.ndarray, np.ndarray, int] | None = None,
                       also_close: tuple[np.ndarray, int] | None = None, tables: int | None = None,
                       threads: int | None = None) -> np.ndarray:
    """Every pair (q, d) with popcount(queries[q] ^ database[d]) <= radius, as an
    int64 array of shape (k, 2) sorted by (q, d). With `own_rows`, database rows
    q * own_rows .. (q + 1) * own_rows - 1 belong to query q and are not paired with
    it (a picture's own crop windows). With `also_within` = (query codes, database
    codes, radius), a pair must be within that radius on those codes too (the dHash
    of a pHash match). With `also_close` = (values, distance), values one row per
    query (n, channels), and own_rows given, a pair's query and the query owning its
    database row may differ by at most the distance in every channel (the mean
    colours of the two pictures): checked as pairs are found, which keeps the pairs
    held at 800k pictures to the few the caller would keep.

    The queries are probed by `threads` threads (default: one per CPU) sharing each
    table's index, in a compiled loop that reads a bucket's codes in order and keeps
    only the pairs that pass every condition: look-alike shots put thousands of
    codes in one bucket, and only a few percent of them pass."""
    queries, database = as_codes(queries), as_codes(database)
    _check_radius(radius)
    also_queries = also_database = np.zeros(0, dtype=np.uint64)
    also_radius = -1
    if also_within is not None:
        also_queries, also_database, also_radius = as_codes(also_within[0]), as_codes(also_within[1]), also_within[2]
        _check_radius(also_radius)
        if len(also_queries) != len(queries) or len(also_database) != len(database):
            raise ValueError("also_within's codes must match the queries and the database one for one")
    close_values, close_distance = np.zeros((0, 1), dtype=np.int16), -1
    if also_close is not None:
        close_values, close_distance = np.asarray(also_close[0]), int(also_close[1])
        if own_rows is None or close_values.ndim != 2 or len(close_values) != len(queries) or close_distance < 0:
            raise ValueError("also_close needs own_rows, values of shape (queries, channels) and a distance >= 0")
        close_values = close_values.astype(np.int64)
    if not len(queries) or not len(database):
        return np.empty((0, 2), dtype=np.int64)
    plan = _feasible(_plan(tables or plan_tables(len(database), radius, queries=len(queries)), radius), radius)
    spans = [(start, min(start + QUERY_SPAN, len(queries))) for start in range(0, len(queries), QUERY_SPAN)]
    found = []
    for number, table in enumerate(plan):
        buckets = _Buckets.of(database, table)
        lookup = _BucketLookup.of(buckets, table.width)
        # Queries in key order: look-alikes share keys, so consecutive queries probe buckets just read.
        query_order = np.argsort(table.key(queries), kind="stable")
        sorted_also = also_database[buckets.order] if also_radius >= 0 else also_database
        earlier_shifts = np.array([t.shift for t in plan[:number]], dtype=np.uint64)
        earlier_masks = np.array([(1 << t.width) - 1 for t in plan[:number]], dtype=np.uint64)
        earlier_thresholds = np.array([t.threshold for t in plan[:number]], dtype=np.int64)
        masks = np.r_[np.zeros(1, dtype=np.uint64), _flip_masks(table.width, table.threshold)]

        def probe(span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
            return _probe_between(queries, query_order, also_queries, span[0], span[1], np.uint64(table.shift),
                                  np.uint64((1 << table.width) - 1), masks, lookup.first, lookup.present,
                                  buckets.keys, buckets.starts, buckets.sizes, buckets.codes, sorted_also,
                                  buckets.order, earlier_shifts, earlier_masks, earlier_thresholds, radius,
                                  also_radius, own_rows or 0, close_values, close_distance)

        with ThreadPoolExecutor(threads or _cpus()) as pool:
            found.extend(pool.map(probe, spans))
        del buckets, lookup, sorted_also  # before the next table's are built
    return _sorted_pairs(found, symmetric=False)


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
    return _sorted_pairs(found, symmetric=True)


def exhaustive_pairs_between(queries: np.ndarray, database: np.ndarray, radius: int, *,
                             block: int = 2048) -> np.ndarray:
    """The all-pairs baseline of `near_pairs_between`."""
    queries, database = as_codes(queries), as_codes(database)
    _check_radius(radius)
    found = []
    for start in range(0, len(queries), block):
        q, d = np.nonzero(np.bitwise_count(queries[start:start + block, None] ^ database[None, :]) <= radius)
        found.append((q + start, d))
    return _sorted_pairs(found, symmetric=False)


def as_codes(codes: np.ndarray) -> np.ndarray:
    """Hashes as a 1-D uint64 array; int64 input (as stored in Parquet/DuckDB) is
    reinterpreted bit for bit, not converted."""
    codes = np.ascontiguousarray(codes)
    if codes.ndim != 1 or codes.dtype not in (np.uint64, np.int64):
        raise ValueError(f"expected a 1-D uint64 or int64 array, got {codes.dtype} with shape {codes.shape}")
    return codes.view(np.uint64)


def plan_tables(n: int, radius: int, *, queries: int | None = None) -> int:
    """The number of substrings with the least expected work for n uniformly spread
    codes (the database, when `queries` codes probe it; else pairs within the n):
    candidate checks plus probes, summed over the tables."""
    def cost(m: int) -> float:
        total = 0.0
        for table in _plan(m, radius):
            if table.neighbourhood > MAX_PROBES:
                return float("inf")
            keys = min(n, 2.0 ** table.width)
            if queries is None:
                candidates = n * n / 2 * table.neighbourhood / 2.0 ** table.width
                probes = keys * (table.neighbourhood - 1) / 2
            else:
                candidates = queries * n * table.neighbourhood / 2.0 ** table.width
                probes = queries * table.neighbourhood
            total += candidates + PROBE_COST * probes
        return total

    return min(range(1, min(CODE_BITS, radius + 1) + 1), key=cost)


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check_radius(radius: int) -> None:
    if not 0 <= radius < CODE_BITS:
        raise ValueError(f"radius must be in [0, {CODE_BITS - 1}], got {radius}")


def _plan(m: int, radius: int) -> list[_Table]:
    """m contiguous substrings covering the 64 bits (widths differing by at most
    one, wider first) with thresholds t_k, sum(t_k + 1) = radius + 1, the wider
    ones taking the larger. With more substrings than radius + 1, the surplus
    ones (t_k = -1) need no table."""
    if not 1 <= m <= CODE_BITS:
        raise ValueError(f"tables must be in [1, {CODE_BITS}], got {m}")
    widths = [CODE_BITS // m + (k < CODE_BITS % m) for k in range(m)]
    shifts = np.cumsum([0] + widths[:-1])
    base, extra = divmod(radius + 1, m)
    return [_Table(int(shift), width, base - 1 + (k < extra)) for k, (shift, width) in enumerate(zip(shifts, widths))
            if base - 1 + (k < extra) >= 0]


def _feasible(plan: list[_Table], radius: int) -> list[_Table]:
    probes = max(table.neighbourhood for table in plan)
    if probes > MAX_PROBES:
        raise ValueError(f"{len(plan)} tables at radius {radius} need {probes} probes per key; use more tables")
    return plan


def _verified(chunk: _Candidates, earlier_tables: list[_Table], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's pairs within the radius that no earlier table has as candidates
    (each pair is reported by the first table where it is a candidate only)."""
    a, b = chunk.left_codes, chunk.right_codes
    close = np.flatnonzero(np.bitwise_count(a ^ b) <= radius)
    a, b = a[close], b[close]
    first_here = np.ones(len(close), dtype=bool)
    for earlier in earlier_tables:
        first_here &= earlier.apart(a, b) > earlier.threshold
    return chunk.left(close[first_here]), chunk.right(close[first_here])


@dataclass
class _Candidates:
    """A chunk of candidate pairs: both sides' codes, and their code indices on demand
    (only the few that verify need the random reads that map positions to indices)."""

    left_codes: np.ndarray
    right_codes: np.ndarray
    left_positions: np.ndarray
    right_positions: np.ndarray
    left_index: np.ndarray | None  # position -> code index; None: positions are indices
    right_index: np.ndarray | None

    def left(self, rows: np.ndarray) -> np.ndarray:
        positions = self.left_positions[rows]
        return positions if self.left_index is None else self.left_index[positions]

    def right(self, rows: np.ndarray) -> np.ndarray:
        positions = self.right_positions[rows]
        return positions if self.right_index is None else self.right_index[positions]


def _flip_masks(width: int, flips: int) -> np.ndarray:
    """Every nonzero key difference of at most `flips` bits."""
    masks = [sum(1 << bit for bit in bits) for k in range(1, flips + 1) for bits in combinations(range(width), k)]
    return np.array(masks, dtype=np.uint64)


@dataclass
class _Buckets:
    """Codes sorted by one table's key; equal keys form a bucket. The codes are kept
    in that order too, so a bucket's candidates are read from consecutive memory."""

    order: np.ndarray  # sorted position -> code index
    codes: np.ndarray  # sorted position -> code
    starts: np.ndarray  # bucket -> first sorted position
    sizes: np.ndarray
    keys: np.ndarray  # bucket -> its key, ascending
    first: np.ndarray  # key -> its bucket's first sorted position (2**width + 1 of them); empty for wide keys

    @classmethod
    def of(cls, codes: np.ndarray, table: _Table) -> _Buckets:
        # Keys of up to 32 bits as uint32, positions as int32 while they fit: half the
        # memory (at 800k pictures, 65M crop windows) and half the memory traffic.
        keys = table.key(codes).astype(np.uint32 if table.width <= 32 else np.uint64)
        position = np.int32 if len(codes) < 2**31 else np.int64
        if table.width <= DENSE_KEY_BITS:
            # A counting sort: linear, and several times faster than argsort at millions of codes.
            first = np.zeros((1 << table.width) + 1, dtype=np.int64)
            np.cumsum(np.bincount(keys, minlength=1 << table.width), out=first[1:])
            order = _counting_order(keys, first, np.zeros(len(keys), dtype=position))
            del keys
            first = first.astype(position)
            present = np.flatnonzero(first[1:] != first[:-1])
            return cls(order, codes[order], first[present].astype(np.int64),
                       (first[present + 1] - first[present]).astype(np.int64), present.astype(np.uint64), first)
        order = np.argsort(keys, kind="stable").astype(position)
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        return cls(order, codes[order], starts, np.diff(np.r_[starts, len(keys)]),
                   sorted_keys[starts].astype(np.uint64), np.zeros(0, dtype=np.int64))


@numba.njit(cache=True, nogil=True)
def _counting_order(keys, first, order):
    """Code indices in (key, index) order into `order`, given each key's first position."""
    filled = first[:-1].copy()
    for index in range(len(keys)):
        key = keys[index]
        order[filled[key]] = index
        filled[key] += 1
    return order


def _self_candidates(codes: np.ndarray, table: _Table, chunk_pairs: int) -> Iterator[_Candidates]:
    """Candidate pairs of one table, in bounded chunks, each pair once: same bucket
    (i before j in bucket order), or buckets whose keys differ in 1..threshold bits
    (probed from the smaller key only)."""
    buckets = _Buckets.of(codes, table)

    def chunk(left: np.ndarray, right: np.ndarray) -> _Candidates:
        return _Candidates(buckets.codes[left], buckets.codes[right], left, right, buckets.order, buckets.order)

    # Same bucket: position p pairs with every later position of its bucket.
    ends = np.repeat(buckets.starts + buckets.sizes, buckets.sizes)
    positions = np.arange(len(codes))
    for left, right in _expand(positions, positions + 1, ends - positions - 1, chunk_pairs):
        yield chunk(left, right)

    # Neighbouring buckets: each member of bucket a pairs with every member of bucket b.
    lookup = _BucketLookup.of(buckets, table.width)
    for masks in _mask_batches(_flip_masks(table.width, table.threshold), len(codes), chunk_pairs):
        targets = (buckets.keys[:, None] ^ masks[None, :]).ravel()
        sources = np.repeat(np.arange(len(buckets.keys)), len(masks))
        upward = targets > buckets.keys[sources]
        targets, sources = targets[upward], sources[upward]
        hit_starts, hit_sizes = lookup.ranges(targets)
        found = hit_sizes > 0
        a, hit_starts, hit_sizes = sources[found], hit_starts[found], hit_sizes[found]
        rows = _members(buckets.starts[a], buckets.sizes[a])
        member_of = np.repeat(np.arange(len(a)), buckets.sizes[a])
        for left, right in _expand(rows, hit_starts[member_of], hit_sizes[member_of], chunk_pairs):
            yield chunk(left, right)


@dataclass
class _BucketLookup:
    """From keys to their buckets' runs of sorted positions (empty: no such bucket).
    Short keys index the table of each key's first position (_Buckets.first: its
    bucket ends where the next key's begins): one memory read per probe, and on a
    large database the reads, not the comparisons, are what probing costs. Longer
    keys (they pay off once the database is large: fewer random codes per bucket)
    are first tested against a bit per possible key, so that the binary search over
    the buckets' keys only runs for keys that are there, a few percent of the
    probes. Unused arrays are empty (the compiled probe loop takes them all)."""

    keys: np.ndarray  # bucket -> its key, ascending (uint64)
    starts: np.ndarray  # bucket -> its first sorted position
    sizes: np.ndarray
    first: np.ndarray  # _Buckets.first
    present: np.ndarray  # a bit per possible key (uint8), for keys up to BITMAP_KEY_BITS wide

    @classmethod
    def of(cls, buckets: _Buckets, width: int) -> _BucketLookup:
        present = np.zeros(0, dtype=np.uint8)
        if not len(buckets.first) and width <= BITMAP_KEY_BITS:
            keys = buckets.keys
            present = np.zeros(1 << (width - 3), dtype=np.uint8)
            byte, first_of_byte = np.unique(keys >> np.uint64(3), return_index=True)  # sorted keys: bytes in runs
            present[byte] = np.bitwise_or.reduceat(np.left_shift(1, keys & np.uint64(7)).astype(np.uint8),
                                                   first_of_byte)
        return cls(buckets.keys, buckets.starts, buckets.sizes, buckets.first, present)

    def ranges(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First sorted position and size of each key's bucket (size 0: none)."""
        if len(self.first):
            starts = self.first[keys].astype(np.int64)
            return starts, self.first[keys + np.uint64(1)] - starts
        starts, sizes = np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=np.int64)
        maybe = np.arange(len(keys))
        if len(self.present):
            maybe = np.flatnonzero((self.present[keys >> np.uint64(3)] >> (keys & np.uint64(7)).astype(np.uint8)) & 1)
        hit = np.minimum(np.searchsorted(self.keys, keys[maybe]), len(self.keys) - 1)
        there = self.keys[hit] == keys[maybe]
        starts[maybe[there]], sizes[maybe[there]] = self.starts[hit[there]], self.sizes[hit[there]]
        return starts, sizes


@intrinsic
def _popcount(typingctx, value):
    """Set bits of a 64-bit integer, as one CPU instruction (numba has no np.bitwise_count)."""
    if not isinstance(value, types.Integer) or value.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(value), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _bucket_run(key, first, present, keys, starts, sizes):
    """_BucketLookup.ranges for one key, as (start, end)."""
    if len(first):
        return np.int64(first[key]), np.int64(first[key + np.uint64(1)])
    if len(present) and not (present[key >> np.uint64(3)] >> (key & np.uint64(7))) & 1:
        return np.int64(0), np.int64(0)
    hit = np.searchsorted(keys, key)
    if hit < len(keys) and keys[hit] == key:
        return np.int64(starts[hit]), np.int64(starts[hit] + sizes[hit])
    return np.int64(0), np.int64(0)


@numba.njit(cache=True, nogil=True)
def _probe_between(queries, query_order, also_queries, first, stop, shift, key_mask, masks, first_positions, present,
                   bucket_keys, starts, sizes, codes, also_codes, order, earlier_shifts, earlier_masks,
                   earlier_thresholds, radius, also_radius, own_rows, close_values, close_distance):
    """The pairs (q, database row) for queries query_order[first..stop-1] against
    one table's buckets (codes, also_codes and order in bucket order) that are
    within `radius`, are not an earlier table's candidates, are within `also_radius`
    on the second codes (unless it is negative), are not the query's own rows
    (unless own_rows is 0) and whose query and owning query have close_values within
    close_distance (unless it is negative). One loop body, no calls inside: at a few codes per
    bucket, a call per probe would cost more than its scan."""
    left, right = np.empty(1 << 12, dtype=np.int64), np.empty(1 << 12, dtype=np.int64)
    count = 0
    for i in range(first, stop):
        q = query_order[i]
        code = queries[q]
        key = (code >> shift) & key_mask
        for mask in masks:
            start, end = _bucket_run(key ^ mask, first_positions, present, bucket_keys, starts, sizes)
            for position in range(start, end):
                apart = code ^ codes[position]
                if _popcount(apart) > radius:
                    continue
                earlier = False
                for e in range(len(earlier_shifts)):
                    if _popcount((apart >> earlier_shifts[e]) & earlier_masks[e]) <= earlier_thresholds[e]:
                        earlier = True
                        break
                if earlier or (also_radius >= 0 and _popcount(also_queries[q] ^ also_codes[position]) > also_radius):
                    continue
                row = order[position]
                if own_rows and row // own_rows == q:
                    continue
                if close_distance >= 0:
                    owner, far = row // own_rows, False
                    for channel in range(close_values.shape[1]):
                        far |= abs(close_values[q, channel] - close_values[owner, channel]) > close_distance
                    if far:
                        continue
                if count == len(left):
                    left, right = _grown(left, 2 * count), _grown(right, 2 * count)
                left[count], right[count] = q, row
                count += 1
    return left[:count].copy(), right[:count].copy()


@numba.njit(cache=True, nogil=True)
def _grown(values, capacity):
    out = np.empty(capacity, dtype=values.dtype)
    out[:len(values)] = values
    return out


def _mask_batches(masks: np.ndarray, n: int, chunk_pairs: int) -> Iterator[np.ndarray]:
    """Masks in batches whose probes (at most one per code and mask) fit in one chunk."""
    step = max(1, chunk_pairs // max(n, 1))
    for start in range(0, len(masks), step):
        yield masks[start:start + step]


def _members(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The sorted positions of several buckets, concatenated."""
    offsets = np.cumsum(sizes) - sizes
    return np.arange(sizes.sum()) - np.repeat(offsets - starts, sizes)


def _expand(rows: np.ndarray, first: np.ndarray, lengths: np.ndarray,
            chunk_pairs: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs (rows[k], first[k] + t) for t < lengths[k], at most about chunk_pairs at a time."""
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
        yield rows[row_of], first[row_of] + offsets
        start = stop


def _sorted_pairs(found: list[tuple[np.ndarray, np.ndarray]], *, symmetric: bool) -> np.ndarray:
    """The pairs as one (k, 2) int64 array sorted by (left, right); symmetric pairs as (min, max)."""
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    left = np.concatenate([f[0] for f in found]).astype(np.int64)
    right = np.concatenate([f[1] for f in found]).astype(np.int64)
    if symmetric:
        left, right = np.minimum(left, right), np.maximum(left, right)
    span = int(right.max()) + 1 if len(right) else 1
    if len(left) and int(left.max()) < np.iinfo(np.int64).max // span:
        order = np.argsort(left * span + right)  # one key sorts several times faster than lexsort's two
    else:
        order = np.lexsort((right, left))
    return np.column_stack([left[order], right[order]])
