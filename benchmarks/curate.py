"""Curation throughput, side by side in one run: image hashing and near-duplicate search.

Each stage of the curated_pairs asset that grows with the catalog, against a naive
baseline on the same input (issue #3):

1. Image hashing, images/s with a pool of --workers processes: our per-image step
   (curation.features.image_features: draft-mode JPEG decode, normalise, pHash,
   dHash and crop-window hashes, mean colour, the normalised JPEG copy and the
   feature cache) against a full PIL decode + imagehash.phash + imagehash.dhash in a
   pool of the same size; and our steps timed apart in one process, to show where
   the time goes. Inputs: replay-shop pictures drawn at shop size (800-1000 px),
   saved as JPEGs in the crawler's content-addressed layout.
2. Near-duplicate search over --hashes 64-bit codes, random plus planted groups
   within the pHash radius: multi-index hashing (curation.neardup.near_pairs) plus
   union-find (curation.clusters.connected_components), with its recall of the
   planted pairs; and on a --sample subsample, against all pairs by XOR + popcount
   (neardup.exhaustive_pairs), checking that both return the same pairs.
(The DuckDB ingest stage it once timed is gone: the catalog is views over the Parquet
files, so publishing a table copies nothing.)

Inputs are made once, up front, on disk. Every measurement runs in a fresh child
process, --runs times (each round runs every case once, so that load from other
processes hits all alike), median time reported; only the measured call is timed
(pool start-up included). The child imports this file as a module under `python -c`,
as Dagster runs a step under `python -m dagster`: a pool worker re-runs a main
*script* before its first task (Python 3.11's forkserver never preloads `__main__`,
CPython gh-98552), which here meant importing dagster and duckdb in every worker,
1-2 s per pool start that Dagster runs do not pay. Peak memory is the child's, so
cases do not inherit each other's: the highest sum of RSS over it and its workers
(benchmarks/hashing.PeakRss), or its own exact high-water mark if the measured call
raised it, highest over runs.
benchmarks/hashing.py and benchmarks/neardup.py break stages 1 and 2 down further
(one-process variants, agreement with imagehash, table counts, faiss).

    python benchmarks/curate.py            # defaults: a few minutes on the 2-core vm
    python benchmarks/curate.py --quick    # smoke run
    python benchmarks/curate.py --only hashing --runs 5   # stage 1 alone
Target: 1M hashes clustered in < 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hashing import PeakRss, naive_image_hashes, write_store  # noqa: E402  (benchmarks/hashing.py)
from neardup import planted_codes  # noqa: E402  (benchmarks/neardup.py)

from clipshoe_pipeline.curation.config import DedupConfig, NormaliseConfig  # noqa: E402
from clipshoe_pipeline.curation.components import connected_components  # noqa: E402
from clipshoe_pipeline.curation.features import STATUS_OK, default_workers, image_features  # noqa: E402
from clipshoe_pipeline.curation.hashing import perceptual_hashes, window_hashes  # noqa: E402
from clipshoe_pipeline.curation.images import normalise  # noqa: E402
from clipshoe_pipeline.curation.neardup import exhaustive_pairs, near_pairs  # noqa: E402
from replay_shop.pictures import COLOUR_RGB, PictureSpec, draw, encode_jpeg  # noqa: E402
from replay_shop.vocab import SHOE_KINDS  # noqa: E402

DEFAULTS = {"images": 400, "hashes": 1_000_000, "sample": 20_000, "runs": 3}
QUICK = {"images": 40, "hashes": 100_000, "sample": 5_000, "runs": 1}
SHOP_SIDES = (800, 1000)  # px, the longer side of a shop photo
CODES_PER_GROUP = 20  # one planted near-duplicate group per this many codes (50k groups in 1M)
CLUSTER_TARGET_S = 60
TASKS_PER_WORKER = 8  # the baseline pool's chunking, as curation.features chunks ours


# -- inputs (made once, by the driver) -------------------------------------------------


def make_inputs(data: Path, args: argparse.Namespace) -> None:
    """The inputs of the stages in args.only."""
    if "hashing" in args.only:
        write_store(shop_pictures(args.images, args.seed), data / "store")
    if "neardup" in args.only:
        make_codes(data, args)


def make_codes(data: Path, args: argparse.Namespace) -> None:
    codes, planted = planted_codes(args.hashes, args.hashes // CODES_PER_GROUP, args.radius, args.seed)
    np.save(data / "codes.npy", codes)
    np.save(data / "planted.npy", planted)
    np.save(data / "sample.npy", subsample(codes, planted, args.sample, args.seed))


def shop_pictures(count: int, seed: int) -> list[bytes]:
    """`count` replay-shop shoe pictures, each drawn (not upscaled) at a shop-photo size."""
    rng = random.Random(seed)
    kinds, colours = list(SHOE_KINDS), list(COLOUR_RGB)
    return [encode_jpeg(draw(PictureSpec(rng.choice(kinds), rng.choice(colours), rng.getrandbits(32)),
                             rng.randint(*SHOP_SIDES)))
            for _ in range(count)]


def subsample(codes: np.ndarray, planted: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` of the codes, with the same share of planted groups as the whole set
    (a uniform sample would keep almost no pair whole). The groups fill the front
    of `codes`, so a prefix keeps them whole; the rest is drawn from the random codes."""
    grouped = int(planted.max()) + 1
    head = round(size * grouped / len(codes))
    tail = np.random.default_rng(seed).choice(np.arange(grouped, len(codes)), size - head, replace=False)
    return np.concatenate([codes[:head], codes[np.sort(tail)]])


# -- one measurement (in a child process) ---------------------------------------------


class Measured:
    """Wall time and peak memory of a block: RSS of this process and its descendants
    as PeakRss samples it, or this process's exact high-water mark if the block raised
    it (it catches spikes shorter than the sampling interval; set-up before the block
    does not count unless the block went higher)."""

    def __enter__(self) -> Measured:
        self._maxrss_before = own_maxrss_mib()
        self._rss = PeakRss().__enter__()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start
        self._rss.__exit__(*exc)
        maxrss = own_maxrss_mib()
        self.peak_mib = max(self._rss.mib, maxrss if maxrss > self._maxrss_before else 0.0)

    def result(self, items: int, note: str = "", **extra) -> dict:
        return {"items": items, "seconds": self.seconds, "peak_mib": self.peak_mib, "note": note, **extra}


def own_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def store_pairs(data: Path) -> list[tuple[str, str]]:
    return [tuple(pair) for pair in json.loads((data / "store" / "manifest.json").read_text())]


def hash_baseline(data: Path, args: argparse.Namespace) -> dict:
    paths = [data / "store" / relpath for _, relpath in store_pairs(data)]
    chunksize = max(1, math.ceil(len(paths) / (args.workers * TASKS_PER_WORKER)))
    # forkserver, preloaded with the worker function's module, as curation.features starts its pool
    # (Python 3.11's forkserver ignores sys.path, CPython gh-117378, so there each worker imports it).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([naive_image_hashes.__module__])
    with Measured() as measured:
        with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
            hashes = list(pool.map(naive_image_hashes, paths, chunksize=chunksize))
    return measured.result(len(hashes))


def hash_ours(data: Path, args: argparse.Namespace) -> dict:
    pairs = store_pairs(data)
    with tempfile.TemporaryDirectory(prefix="clipshoe-curate-bench-") as tmp, Measured() as measured:
        features = image_features(data / "store", Path(tmp) / "normalised", pairs, NormaliseConfig(),
                                  Path(tmp) / "cache.parquet", workers=args.workers)
    kept = features.column("status").to_pylist().count(STATUS_OK)
    return measured.result(len(pairs), f"{kept} of {len(pairs)} kept")


def hash_parts(data: Path, args: argparse.Namespace) -> dict:
    """Where our per-image time goes: each step of image_features, one process, no pool."""
    blobs = [(data / "store" / relpath).read_bytes() for _, relpath in store_pairs(data)]
    spent = dict.fromkeys(("normalise", "pHash+dHash", "crop-window hashes"), 0.0)
    with Measured() as measured:
        for blob in blobs:
            start = time.perf_counter()
            grey = normalise(blob).grey  # what image_record hashes
            normalised = time.perf_counter()
            perceptual_hashes(grey)
            hashed = time.perf_counter()
            window_hashes(grey)
            spent["normalise"] += normalised - start
            spent["pHash+dHash"] += hashed - normalised
            spent["crop-window hashes"] += time.perf_counter() - hashed
    return measured.result(len(blobs), ", ".join(f"{step} {1000 * s / len(blobs):.1f} ms"
                                                 for step, s in spent.items()) + " per image")


def pairs_digest(pairs: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pairs, dtype=np.int64).tobytes()).hexdigest()


def search_exhaustive(data: Path, args: argparse.Namespace) -> dict:
    sample = np.load(data / "sample.npy")
    with Measured() as measured:
        pairs = exhaustive_pairs(sample, args.radius)
    return measured.result(len(sample), f"{len(pairs)} pairs (truth)", digest=pairs_digest(pairs))


def search_ours_sample(data: Path, args: argparse.Namespace) -> dict:
    sample = np.load(data / "sample.npy")
    with Measured() as measured:
        pairs = near_pairs(sample, args.radius)
    return measured.result(len(sample), f"{len(pairs)} pairs", digest=pairs_digest(pairs))


def search_and_cluster(data: Path, args: argparse.Namespace) -> dict:
    codes, planted = np.load(data / "codes.npy"), np.load(data / "planted.npy")
    with Measured() as measured:
        pairs = near_pairs(codes, args.radius)
        searched = time.perf_counter()
        labels = connected_components(pairs, len(codes))
    cluster_s = time.perf_counter() - searched
    n = len(codes)
    recall = np.isin(planted[:, 0] * n + planted[:, 1], pairs[:, 0] * n + pairs[:, 1]).mean()
    merged = (labels[planted[:, 0]] == labels[planted[:, 1]]).mean()
    return measured.result(n, f"{len(pairs)} pairs, {len(np.unique(labels))} clusters; planted pairs found "
                              f"{recall:.4f}, clustered together {merged:.4f}; "
                              f"union-find {cluster_s:.2f} s of the total")


@dataclass(frozen=True)
class Case:
    stage: str
    method: str
    measure: Callable[[Path, argparse.Namespace], dict]
    unit: str
    baseline: str | None = None  # the case this one's speed-up is relative to (itself for a baseline)


CASES = {
    "hash_baseline": Case("image hashing", "baseline: full decode + imagehash pHash/dHash, pool",
                          hash_baseline, "images", "hash_baseline"),
    "hash_ours": Case("image hashing", "ours: image_features (draft decode, normalise, hashes + crop windows, "
                      "JPEG copy, cache), pool", hash_ours, "images", "hash_baseline"),
    "hash_parts": Case("image hashing", "ours, its steps timed apart, 1 process", hash_parts, "images"),
    "search_exhaustive": Case("near-dup, sample", "baseline: all pairs, XOR + bitwise_count",
                              search_exhaustive, "hashes", "search_exhaustive"),
    "search_ours_sample": Case("near-dup, sample", "ours: multi-index hashing (near_pairs)",
                               search_ours_sample, "hashes", "search_exhaustive"),
    "search_and_cluster": Case("near-dup, all", "ours: near_pairs + union-find (connected_components)",
                               search_and_cluster, "hashes"),
}


STAGES = {"hashing": "hash_", "neardup": "search_"}  # --only: case name prefixes


# -- driver ---------------------------------------------------------------------------


def in_child(case: str, data: Path, args: argparse.Namespace) -> dict:
    # A module, not a script, in the child: see the module docstring.
    run_as_module = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import curate; curate.main()"
    command = [sys.executable, "-c", run_as_module, "--case", case, "--data", str(data), "--workers",
               str(args.workers), "--radius", str(args.radius)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Per case: items, median seconds, its rate, the highest peak over runs, the last note."""
    summary = {}
    for name, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        summary[name] = {"items": results[-1]["items"], "seconds": seconds, "rate": results[-1]["items"] / seconds,
                         "peak_mib": max(r["peak_mib"] for r in results), "note": results[-1]["note"]}
    return summary


def checks(runs: dict[str, list[dict]], summary: dict[str, dict]) -> dict[str, str]:
    """The pass/fail lines of the stages that ran: same pairs as the exhaustive search, and the issue's targets."""
    verdicts = {}
    if "search_ours_sample" in runs:
        digests = {name: {r["digest"] for r in runs[name]} for name in ("search_exhaustive", "search_ours_sample")}
        same = len(digests["search_ours_sample"]) == 1 and digests["search_ours_sample"] == digests["search_exhaustive"]
        cluster_s = summary["search_and_cluster"]["seconds"]
        verdicts["search_ours_sample"] = f"same pairs as exhaustive: {'yes' if same else 'NO'}"
        verdicts["search_and_cluster"] = (f"target < {CLUSTER_TARGET_S} s: "
                                          f"{'met' if cluster_s < CLUSTER_TARGET_S else 'MISSED'}")
    return verdicts


def print_table(summary: dict[str, dict], verdicts: dict[str, str]) -> None:
    print("| stage | method | n | median s | per s | vs baseline | peak RSS MiB | check |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for name, case in CASES.items():
        if name not in summary:
            continue
        row = summary[name]
        speedup = f"{row['rate'] / summary[case.baseline]['rate']:.1f}x" if case.baseline else "-"
        check = "; ".join(part for part in (verdicts.get(name), row["note"]) if part)
        print(f"| {case.stage} | {case.method} | {row['items']:,} {case.unit} | {row['seconds']:.3f} | "
              f"{row['rate']:,.0f} | {speedup} | {row['peak_mib']:.0f} | {check} |")


def benchmark(args: argparse.Namespace) -> None:
    print(f"# Curation benchmark: {args.images} images, {args.hashes:,} hashes (sample {args.sample:,}, "
          f"radius {args.radius}); median of {args.runs} runs, "
          f"pools of {args.workers}")
    print(f"Python {platform.python_version()}, duckdb {duckdb.__version__}, numpy {np.__version__}, "
          f"pyarrow {pa.__version__}; {platform.machine()}, {default_workers()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f} at the start\n")
    cases = [name for name in CASES if name.startswith(tuple(STAGES[stage] for stage in args.only))]
    with tempfile.TemporaryDirectory(prefix="clipshoe-curate-bench-") as tmp:
        data = Path(tmp)
        make_inputs(data, args)
        runs = {name: [] for name in cases}
        for _ in range(args.runs):
            for name in cases:
                runs[name].append(in_child(name, data, args))
    summary = summarise(runs)
    print_table(summary, checks(runs, summary))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other processes share the CPUs if above ~0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"small inputs, one run: {QUICK}")
    for name, default in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"default {default:,}")
    parser.add_argument("--radius", type=int, default=DedupConfig().phash_radius, help="pHash radius")
    parser.add_argument("--workers", type=int, default=default_workers(), help="pool size for image hashing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES), help="run only these stages")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # internal: one measurement
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(CASES[args.case].measure(args.data, args)))
        return
    sizes = QUICK if args.quick else DEFAULTS
    for name, default in sizes.items():  # explicit flags win over --quick
        if getattr(args, name) is None:
            setattr(args, name, default)
    benchmark(args)


if __name__ == "__main__":
    main()
