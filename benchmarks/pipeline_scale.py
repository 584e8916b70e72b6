"""The whole pipeline at replay-shop scale: crawl, curate, fine-tune and evaluate, stage by stage.

For each of --products-per-site (default 100, 1000, 4000: 500, 5,000 and 20,000
products over the five sites), a fresh child process runs `clipshoe demo`'s own code
path (clipshoe_pipeline.demo.run_demo) with a new, empty CLIPSHOE_DATA_DIR and
DAGSTER_HOME: the replay shop (seeded, faults as --faults; default the demo's
realistic mix) on a thread of that process, crawl_job once per site partition (in
sequence, as the demo runs them), curate_job, finetune_job and evaluate_job, each
its own Dagster run in the persistent instance of that data dir. Two things differ
from `clipshoe demo`, both set from here in the child, demo.py unchanged: fine-tuning
runs --epochs (default 1) instead of the demo's 8, and each job's execution is
wrapped in a peak-RSS sampler.

Per stage, from that instance once the demo is done:
- wall time: the run record's end_time - start_time (crawl: the sum over the sites'
  runs, so the column is the whole crawl); "whole run" is run_demo's wall time,
  shop start-up, definitions load and the final summary included;
- peak RSS: the highest sum of RSS over the child process and its descendants (the
  crawl's Scrapy subprocess, the training subprocess, pool workers), sampled every
  20 ms (benchmarks/hashing.PeakRss) while that stage's job executes (crawl: the
  highest over the sites). The child process holds the replay shop and its catalog
  throughout, so every stage includes them.
A second table is curated_pairs' own stage metadata (seconds_<stage>,
peak_rss_mib_<stage>: features, products, dedup, canonical, split, write). Its peaks
are the demo process's resident high-water mark when the stage ends, so they are
monotonic over the child and start at whatever the crawl left there; pool workers
are not in them.

The growth exponent between consecutive sizes is log(t2 / t1) / log(n2 / n1), n the
products listed over all sites: 1 is linear. Median of --runs, default 1, since the
largest size takes long (each run is a whole fresh pipeline; data dirs are deleted
after each run unless --keep).

    python benchmarks/pipeline_scale.py                               # 500, 5k, 20k products
    python benchmarks/pipeline_scale.py --products-per-site 20 40     # smoke run, a few minutes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hashing import PeakRss  # noqa: E402  (benchmarks/hashing.py)

from scrapers.items import SITES  # noqa: E402

STAGES = ("crawl", "curate", "finetune", "evaluate")
JOB_STAGE = {"crawl_job": "crawl", "curate_job": "curate", "finetune_job": "finetune", "evaluate_job": "evaluate"}
CURATE_STAGES = ("features", "products", "dedup", "canonical", "split", "write")


# -- one pipeline run (in its own process) -----------------------------------------------


def pipeline_once(root: Path, products_per_site: int, seed: int, faults: str, epochs: int) -> dict:
    """run_demo against a fresh data dir `root`; stage seconds and peaks, curated_pairs' stage metadata."""
    os.environ["CLIPSHOE_DATA_DIR"] = str(root)
    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    import dagster as dg

    from clipshoe_pipeline import demo
    from clipshoe_pipeline.cli import FAULT_PRESETS

    demo.DEMO_FINETUNE = {**demo.DEMO_FINETUNE, "epochs": epochs}
    peaks: dict[str, float] = {}  # "<job>/<partition>" -> peak MiB of the process tree while it ran
    materialize = demo._materialize

    def sampled(defs, instance, job, label, *, partition=None, ops=None) -> bool:
        with PeakRss() as peak:
            ok = materialize(defs, instance, job, label, partition=partition, ops=ops)
        peaks[f"{job}/{partition or ''}"] = peak.mib
        return ok

    demo._materialize = sampled
    with contextlib.redirect_stdout(sys.stderr), PeakRss() as whole:
        started = time.perf_counter()
        code = demo.run_demo(seed=seed, products_per_site=products_per_site, sites=list(SITES),
                             faults=FAULT_PRESETS[faults]())
        seconds = time.perf_counter() - started
    if code:
        raise SystemExit(f"clipshoe demo failed at {products_per_site} products per site (see above)")

    stages = {stage: {"seconds": 0.0, "peak_mib": 0.0, "runs": 0} for stage in STAGES}
    with dg.DagsterInstance.get() as instance:
        for record in instance.get_run_records():
            run = record.dagster_run
            stage = stages[JOB_STAGE[run.job_name]]
            stage["seconds"] += record.end_time - record.start_time
            stage["peak_mib"] = max(stage["peak_mib"], peaks[f"{run.job_name}/{run.tags.get('dagster/partition', '')}"])
            stage["runs"] += 1
        event = instance.get_latest_materialization_event(dg.AssetKey("curated_pairs"))
        metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()
                    if key.startswith(("seconds_", "peak_rss_mib_")) or key == "pairs_out"}
    from clipshoe_pipeline.catalog_db import CatalogDB
    (items,) = CatalogDB().query("SELECT count(*) AS n FROM raw_products")
    assert stages["crawl"]["runs"] == len(SITES), stages
    flat = {f"{key}_{stage}": value[key] for stage, value in stages.items() for key in ("seconds", "peak_mib")}
    return {**flat, "seconds_run": seconds, "peak_mib_run": whole.mib, "items_crawled": items["n"],
            **{f"curate_{key}": value for key, value in metadata.items()}}


def measured(root: Path, args: argparse.Namespace, products_per_site: int) -> dict:
    """One fresh pipeline in a child process (its output goes to our stderr)."""
    result = root / "result.json"
    command = [sys.executable, __file__, "--child", str(root), "--products-per-site", str(products_per_site),
               "--seed", str(args.seed), "--faults", args.faults, "--epochs", str(args.epochs)]
    subprocess.run(command, check=True, stdout=sys.stderr)
    return json.loads(result.read_text())


# -- report ------------------------------------------------------------------------------


def exponent(small: float, large: float, n_small: int, n_large: int) -> float:
    return math.log(large / small) / math.log(n_large / n_small) if small > 0 and large > 0 else float("nan")


def _report(results: dict[int, list[dict]]) -> None:
    sizes = sorted(results)
    median = {size: {key: statistics.median(run[key] for run in results[size]) for key in results[size][0]}
              for size in sizes}
    products = {size: size * len(SITES) for size in sizes}
    header = " | ".join([*(f"{products[s]} products: s / MiB" for s in sizes),
                         *(f"exp {products[a]}->{products[b]}" for a, b in zip(sizes, sizes[1:]))])
    rule = "|---|" + "---:|" * (2 * len(sizes) - 1)

    def row(name: str, seconds: str, peak: str) -> str:
        cells = " | ".join(f"{median[s][seconds]:.1f} / {median[s][peak]:.0f}" for s in sizes)
        exps = "".join(f" | {exponent(median[a][seconds], median[b][seconds], products[a], products[b]):.2f}"
                       for a, b in zip(sizes, sizes[1:]))
        return f"| {name} | {cells}{exps} |"

    print(f"\n| stage (seconds / peak RSS of the process tree) | {header} |\n{rule}")
    names = {"crawl": f"crawl ({len(SITES)} sites, summed)", "curate": "curate", "finetune": "fine-tune",
             "evaluate": "evaluate"}
    for stage in STAGES:
        print(row(names[stage], f"seconds_{stage}", f"peak_mib_{stage}"))
    print(row("whole run", "seconds_run", "peak_mib_run"))

    print(f"\n| curated_pairs stage (seconds / process peak so far) | {header} |\n{rule}")
    for stage in CURATE_STAGES:
        print(row(stage, f"curate_seconds_{stage}", f"curate_peak_rss_mib_{stage}"))
    print("\n" + "\n".join(f"{products[s]} products listed: {median[s]['items_crawled']:.0f} items crawled, "
                           f"{median[s]['curate_pairs_out']:.0f} curated pairs" for s in sizes), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products-per-site", type=int, nargs="+", default=[100, 1000, 4000],
                        help=f"replay-shop sizes, products per site (x{len(SITES)} sites)")
    parser.add_argument("--runs", type=int, default=1, help="fresh pipelines per size (median reported)")
    parser.add_argument("--seed", type=int, default=0, help="the replay shop's catalog seed")
    parser.add_argument("--faults", choices=("default", "none"), default="default",
                        help="planted HTTP faults, as `clipshoe demo --faults`")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (the demo runs 8)")
    parser.add_argument("--work-dir", type=Path, help="where the data dirs go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep each run's data dir")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (size,) = args.products_per_site
        result = pipeline_once(args.child, size, args.seed, args.faults, args.epochs)
        (args.child / "result.json").write_text(json.dumps(result))
        return

    print(f"# pipeline_scale on {platform.node()}: {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, "
          f"runs {args.runs}, faults {args.faults}, fine-tune {args.epochs} epoch(s) of the tiny model\n", flush=True)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="clipshoe-pipeline-scale-"))
    results: dict[int, list[dict]] = {}
    try:
        for size in sorted(args.products_per_site):
            for run in range(args.runs):
                root = work / f"pps{size}-seed{args.seed}-run{run + 1}"
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir(parents=True)
                print(f"pipeline at {size} products per site ({size * len(SITES)} in total), run {run + 1}/{args.runs}"
                      f" in {root}", file=sys.stderr, flush=True)
                results.setdefault(size, []).append(measured(root, args, size))
                if not args.keep:
                    shutil.rmtree(root, ignore_errors=True)
            _report(results)
    finally:
        if not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
