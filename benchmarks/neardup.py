"""Near-duplicate search over 1M 64-bit hashes: multi-index hashing vs the baselines.

The data: random codes plus planted groups (2-5 codes, each member within the
radius of its group's first code). Measured in one run, nothing extrapolated:
- on a subsample (default 20k), where all pairs are feasible: exhaustive pairs,
  near_pairs with several table counts, and faiss's IndexBinaryMultiHash (if
  installed) as a self range search; every method must return the exhaustive set;
- on all codes: near_pairs (planned tables) plus union-find clustering, with its
  recall of the planted pairs, and faiss on a slice of the queries (its full run
  is too slow to repeat).
Time is the median of --runs; peak memory is tracemalloc's peak of numpy buffers
(faiss allocates outside it, so it has none).

    python benchmarks/neardup.py --codes 1000000 --radius 4
Target (issue #3): 1M hashes clustered in < 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clipshoe_pipeline.curation.config import DedupConfig  # noqa: E402
from clipshoe_pipeline.curation.components import connected_components  # noqa: E402
from clipshoe_pipeline.curation.neardup import exhaustive_pairs, near_pairs, plan_tables  # noqa: E402


def planted_codes(n: int, groups: int, radius: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n codes, the first ones in `groups` groups of 2-5; and the planted pairs
    (group head, member), each within `radius`."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    sizes = rng.integers(2, 6, size=groups)
    heads = np.repeat(np.cumsum(sizes) - sizes, sizes)
    members = np.arange(sizes.sum())
    flips = np.zeros(len(members), dtype=np.uint64)
    for bit_count in range(1, radius + 1):  # members get 0..radius distinct random bits flipped
        chosen = (rng.integers(0, radius + 1, size=len(members)) >= bit_count)
        flips[chosen] |= np.uint64(1) << rng.integers(0, 64, size=int(chosen.sum())).astype(np.uint64)
    flips[heads == members] = 0  # the head keeps its code
    codes[members] = codes[heads] ^ flips
    planted = np.column_stack([heads, members])[heads != members]
    return codes, planted


def measure(run: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """(median seconds, tracemalloc peak MiB of the last run, last result)."""
    times = []
    for _ in range(runs):
        tracemalloc.start()
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return statistics.median(times), peak / 2**20, result


def faiss_pairs(codes: np.ndarray, radius: int, queries: int | None = None) -> np.ndarray | None:
    """Self range search with IndexBinaryMultiHash (exact MIH tables of the same
    plan), or None without faiss."""
    try:
        import faiss
    except ImportError:
        return None
    tables = plan_tables(len(codes), radius)
    vectors = codes.view(np.uint8).reshape(-1, 8)
    index = faiss.IndexBinaryMultiHash(64, tables, 64 // tables)
    index.nflip = radius // tables
    index.add(vectors)
    limits, _, found = index.range_search(vectors[:queries], radius + 1)  # faiss keeps distance < radius
    rows = np.repeat(np.arange(len(limits) - 1), np.diff(limits).astype(np.int64))
    keep = rows < found
    return np.column_stack([rows[keep], found[keep]]).astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=50_000)
    parser.add_argument("--radius", type=int, default=DedupConfig().phash_radius)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--faiss-queries", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    codes, planted = planted_codes(args.codes, args.groups, args.radius, seed=0)
    sample = codes[np.random.default_rng(1).permutation(args.codes)[:args.sample]]
    radius = args.radius
    print(f"{args.codes} codes, {len(planted)} planted pairs within radius {radius}; "
          f"planned tables: {plan_tables(args.codes, radius)} (1M), {plan_tables(args.sample, radius)} (sample)\n")
    print("| data | method | time s | peak MiB | pairs | exact / recall |")
    print("|---|---|---:|---:|---:|---:|")

    base_time, base_peak, expected = measure(lambda: exhaustive_pairs(sample, radius), args.runs)
    print(f"| {args.sample} sample | exhaustive | {base_time:.2f} | {base_peak:.0f} | {len(expected)} | "
          f"(truth) |")
    for tables in sorted({plan_tables(args.sample, radius), 2, 3, 4, radius + 1}):
        if tables > radius + 1 or 64 // tables >= 32:
            continue
        seconds, peak, found = measure(lambda: near_pairs(sample, radius, tables=tables), args.runs)
        print(f"| {args.sample} sample | near_pairs, {tables} tables | {seconds:.2f} ({base_time / seconds:.0f}x) | "
              f"{peak:.0f} | {len(found)} | {np.array_equal(found, expected)} |")
    seconds, _, found = measure(lambda: faiss_pairs(sample, radius), args.runs)
    if found is not None:
        print(f"| {args.sample} sample | faiss MultiHash | {seconds:.2f} ({base_time / seconds:.0f}x) | - | "
              f"{len(found)} | {np.array_equal(found[np.lexsort(found.T[::-1])], expected)} |")

    seconds, peak, found = measure(lambda: near_pairs(codes, radius), args.runs)
    found_set = {tuple(p) for p in found.tolist()}
    recall = sum(tuple(p) in found_set for p in planted.tolist()) / len(planted)
    print(f"| {args.codes} | near_pairs | {seconds:.2f} | {peak:.0f} | {len(found)} | {recall:.4f} |")
    cluster_time, cluster_peak, labels = measure(lambda: connected_components(found, len(codes)), args.runs)
    print(f"| {args.codes} | union-find of those pairs | {cluster_time:.2f} | {cluster_peak:.0f} | "
          f"{len(np.unique(labels))} clusters | - |")
    print(f"| {args.codes} | **search + clusters** | **{seconds + cluster_time:.2f}** | - | - | - |")
    seconds, _, found = measure(lambda: faiss_pairs(codes, radius, args.faiss_queries), 1)
    if found is not None:
        print(f"| {args.codes}, first {args.faiss_queries} queries | faiss MultiHash | {seconds:.2f} | - | "
              f"{len(found)} | - |")


if __name__ == "__main__":
    main()
