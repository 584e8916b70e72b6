"""Curation at catalog scale: the real curate_job on replay-shop catalogs of growing size, stage by stage.

For each of --sizes (images, approximately), a data dir as a crawl leaves it: the
replay shop's seeded catalog (products, planted near-duplicates, look-alike shots,
non-shoe items and broken images, all at the shop's usual rates), each product
turned into the row its spider yields and each picture stored by the crawler's own
image pipeline (scrapers.pipelines), raw_products written to Parquet and DuckDB.
No HTTP: this measures curation, not crawling (benchmarks/crawl.py does that).
Stores are built once, in parallel, and cached under --cache-dir.

Each measurement is a fresh child process running curate_job (the curated_pairs
asset and its checks) through Dagster with an empty feature cache, so every stage
does its full work: per-image features, products (captions, shoe filter, joins),
de-duplication, the canonical pair per cluster, the split, the writes. Seconds and
the main process's peak RSS per stage come from the asset's own metadata; the whole
run's peak is the process tree's (pool workers included). Median of --runs. The
growth exponent between two sizes is log(t2 / t1) / log(n2 / n1): 1 is linear.

Last, de-duplication alone at --dedup-images (default 800k): the largest store's
features replicated, each copy's hashes XORed with its own random mask (distances
within a copy are kept, so are its planted duplicates and look-alikes; copies are
far apart), and 1% of each copy's pictures replaced by pictures of the first copy
(planted duplicates across copies), through curation.clusters.duplicate_pairs and
connected_components as curate runs them.

    python benchmarks/curate_scale.py                          # 25k, 50k, 100k images + 800k dedup
    python benchmarks/curate_scale.py --sizes 2000 4000 8000 --dedup-images 40000   # quick
Targets (issue #10): growth exponent <= 1.15 for every stage between the two
largest sizes; dedup of 800k images <= 15 min and <= 6 GiB; 100k images curated in <= 15 min.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hashing import PeakRss  # noqa: E402  (benchmarks/hashing.py)

from clipshoe_pipeline.paths import DataPaths  # noqa: E402
from scrapers.items import SITES  # noqa: E402

IMAGES_PER_PRODUCT = 2.72  # the replay catalog's average (non-shoe items and defects included)
REPLICA_SHARE = 0.01  # pictures of each extra copy replaced by first-copy pictures


# -- stores ------------------------------------------------------------------------------


def products_per_site(images: int) -> int:
    return max(1, round(images / IMAGES_PER_PRODUCT / len(SITES)))


def store_dir(cache_dir: Path, seed: int, images: int) -> Path:
    return cache_dir / f"seed{seed}-{products_per_site(images)}pps"


def build_store(cache_dir: Path, seed: int, images: int) -> Path:
    """The data dir of a catalog of about `images` images, built unless cached."""
    root = store_dir(cache_dir, seed, images)
    done = root / "store.json"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    per_site = products_per_site(images)
    started = time.perf_counter()
    with ProcessPoolExecutor(min(len(SITES), os.cpu_count() or 1)) as pool:
        counts = dict(zip(SITES, pool.map(_build_site, [root] * len(SITES), [seed] * len(SITES),
                                          [per_site] * len(SITES), SITES)))
    from clipshoe_pipeline.catalog_db import CatalogDB
    CatalogDB(data_dir=str(root)).publish()
    stored = sum(1 for _ in DataPaths(root).images.rglob("*.*"))
    done.write_text(json.dumps({"products_per_site": per_site, "images_listed": sum(counts.values()),
                                "images_stored": stored, "seconds": round(time.perf_counter() - started, 1)}))
    return root


def _build_site(root: Path, seed: int, per_site: int, site: str) -> int:
    """One site's raw_products Parquet and its pictures in the image store; returns the images listed."""
    from scrapy.utils.test import get_crawler

    from clipshoe_pipeline.parquet_io import raw_products_table, write_parquet_atomic
    from replay_shop.catalog import Catalog
    from scrapers.items import ProductItem
    from scrapers.pipelines import ContentAddressedImagesPipeline
    from scrapers.text import clean_str, html_to_text

    paths = DataPaths(root)
    pipeline = ContentAddressedImagesPipeline.from_crawler(
        get_crawler(settings_dict={"CLIPSHOE_IMAGES_STORE": str(paths.images)}))
    catalog = Catalog(seed=seed, products_per_site=per_site)
    rows, listed = [], 0
    for product in catalog.products(site):
        item = ProductItem(
            site=site, product_id=product.product_id, url=product.url, title=clean_str(product.title) or "",
            description=html_to_text(product.description_html), brand=clean_str(product.brand),
            category_path=list(product.category_path),
            attributes={"colour": product.colour, "material": product.material, "gender": product.gender},
            price=float(product.price), currency=product.currency, image_urls=[i.url for i in product.images],
            images=[pipeline.store_image(image.url, catalog.image_bytes(image)) for image in product.images])
        listed += len(product.images)
        rows.append(dataclasses.asdict(item))
    write_parquet_atomic(raw_products_table(rows), paths.raw_products_parquet(site))
    return listed


# -- one curation (in its own process) -------------------------------------------------


def fresh(root: Path) -> None:
    """Remove what curation wrote, so the next run computes everything."""
    paths = DataPaths(root)
    for path in (paths.image_features_cache.parent, paths.normalised_images, paths.curated_pairs_parquet.parent):
        shutil.rmtree(path, ignore_errors=True)


def curate_once(root: Path) -> dict:
    """curate_job on `root` in this process: the asset's stage metadata and the tree's peak RSS."""
    os.environ["CLIPSHOE_DATA_DIR"] = str(root)
    import dagster as dg

    from clipshoe_pipeline.definitions import defs

    fresh(root)
    with dg.DagsterInstance.ephemeral() as instance, PeakRss() as peak:
        started = time.perf_counter()
        result = defs.resolve_job_def("curate_job").execute_in_process(instance=instance, raise_on_error=False)
        seconds = time.perf_counter() - started
    if not result.success:
        raise SystemExit([event.message for event in result.all_events if event.is_failure])
    (materialization,) = result.asset_materializations_for_node("curated_pairs")
    metadata = {key: value.value for key, value in materialization.metadata.items()
                if key.startswith(("seconds_", "peak_rss_mib_")) or key in ("pairs_out", "images_computed",
                                                                             "near_duplicate_pairs")}
    checks = {check.check_name: check.passed for check in result.get_asset_check_evaluations()}
    return {**metadata, "job_seconds": seconds, "tree_peak_mib": peak.mib, "checks_passed": all(checks.values())}


def measured(root: Path) -> dict:
    command = [sys.executable, __file__, "--child-curate", str(root)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# -- de-duplication at full scale ------------------------------------------------------


def replicated_features(root: Path, images: int, seed: int) -> dict[str, np.ndarray]:
    """The store's kept-image features, replicated to `images` rows (see the module docstring)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from clipshoe_pipeline.curation.assemble import _list_matrix, _thumbnails

    table = pq.read_table(DataPaths(root).image_features_cache)
    table = table.filter(pc.equal(table.column("status"), "ok"))
    windows = len(table.column("window_phash")[0])
    base = {"phash": table.column("phash").to_numpy(), "dhash": table.column("dhash").to_numpy(),
            "window_phash": _list_matrix(table.column("window_phash"), windows),
            "window_dhash": _list_matrix(table.column("window_dhash"), windows),
            "thumbnails": _thumbnails(table.column("thumbnail")),
            "colour": np.stack([table.column(c).to_numpy() for c in ("mean_r", "mean_g", "mean_b")], axis=1)}
    del table
    n = len(base["phash"])
    copies = math.ceil(images / n)
    rng = np.random.default_rng(seed)
    out = {key: np.empty((copies * n, *value.shape[1:]), dtype=value.dtype) for key, value in base.items()}
    for copy in range(copies):
        rows = slice(copy * n, (copy + 1) * n)
        for key, value in base.items():
            out[key][rows] = value
        if copy:
            p_mask, d_mask = rng.integers(-2**63, 2**63, size=2, dtype=np.int64)
            for key, mask in (("phash", p_mask), ("window_phash", p_mask), ("dhash", d_mask), ("window_dhash", d_mask)):
                out[key][rows] ^= mask
            # Planted duplicates across copies: some pictures of this copy are the first copy's, unmasked.
            planted = copy * n + rng.choice(n, size=int(n * REPLICA_SHARE), replace=False)
            for key in ("phash", "dhash", "window_phash", "window_dhash"):
                out[key][planted] = base[key][planted - copy * n]
    return {key: value[:images] for key, value in out.items()}


def dedup_once(root: Path, images: int, seed: int) -> dict:
    from clipshoe_pipeline.curation.clusters import DedupConfig, connected_components, duplicate_pairs
    from clipshoe_pipeline.stage_clock import peak_rss_mib

    features = replicated_features(root, images, seed)
    loaded = peak_rss_mib()
    started = time.perf_counter()
    pairs = duplicate_pairs(features["phash"], features["dhash"], features["colour"], DedupConfig(),
                            features["window_phash"], features["window_dhash"], features["thumbnails"])
    clusters = connected_components(pairs, len(features["phash"]))
    return {"images": len(features["phash"]), "seconds": time.perf_counter() - started, "pairs": len(pairs),
            "clusters": int(len(np.unique(clusters))), "peak_mib": peak_rss_mib(), "inputs_mib": loaded}


def dedup_measured(root: Path, images: int, seed: int) -> dict:
    command = [sys.executable, __file__, "--child-dedup", str(root), str(images), str(seed)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# -- report ------------------------------------------------------------------------------


def exponent(small: float, large: float, n_small: int, n_large: int) -> float:
    return math.log(large / small) / math.log(n_large / n_small) if small > 0 and large > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 50_000, 100_000], help="images per store")
    parser.add_argument("--dedup-images", type=int, default=800_000, help="0: skip the full-scale dedup")
    parser.add_argument("--runs", type=int, default=3, help="0: build the stores only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "clipshoe-bench" / "curate_scale")
    parser.add_argument("--child-curate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-dedup", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_curate:
        print(json.dumps(curate_once(args.child_curate)))
        return
    if args.child_dedup:
        root, images, seed = args.child_dedup
        print(json.dumps(dedup_once(Path(root), int(images), int(seed))))
        return

    print(f"# curate_scale on {platform.node()}: {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, "
          f"runs {args.runs}\n", flush=True)
    results = {}
    for size in sorted(args.sizes):
        root = build_store(args.cache_dir, args.seed, size)
        store = json.loads((root / "store.json").read_text())
        if not args.runs:
            print(f"{root}: {store}", flush=True)
            continue
        runs = []
        for run in range(args.runs):
            print(f"curating {root.name} ({store['images_stored']} stored images), run {run + 1}/{args.runs}",
                  file=sys.stderr, flush=True)
            runs.append(measured(root))
        results[size] = {"store": store, "runs": runs}
        _report(results)
    if args.dedup_images and args.runs:
        largest = store_dir(args.cache_dir, args.seed, max(args.sizes))
        print(f"de-duplicating {args.dedup_images} replicated pictures", file=sys.stderr, flush=True)
        found = dedup_measured(largest, args.dedup_images, args.seed)
        print(f"\n| de-duplication alone | images | seconds | peak RSS (MiB) | of it, inputs (MiB) | pairs | clusters |\n"
              f"|---|---:|---:|---:|---:|---:|---:|\n"
              f"| {max(args.sizes)}-image features replicated | {found['images']} | {found['seconds']:.1f} | "
              f"{found['peak_mib']:.0f} | {found['inputs_mib']:.0f} | {found['pairs']} | {found['clusters']} |")


def _report(results: dict) -> None:
    sizes = sorted(results)
    median = {size: {key: statistics.median(run[key] for run in results[size]["runs"])
                     for key in results[size]["runs"][0] if isinstance(results[size]["runs"][0][key], (int, float))}
              for size in sizes}
    images = {size: results[size]["store"]["images_stored"] for size in sizes}
    last = sizes[-1]
    header = " | ".join(f"{images[s]} images: s / MiB" for s in sizes)
    growth = " | ".join(f"exp {images[a]}->{images[b]}" for a, b in zip(sizes, sizes[1:]))
    print(f"\n| stage | {header} | {growth} |")
    print("|---|" + "---:|" * (len(sizes) + len(sizes) - 1))
    stages = [key.removeprefix("seconds_") for key in results[last]["runs"][0] if key.startswith("seconds_")]
    for stage in (*stages, "job"):
        key = "job_seconds" if stage == "job" else f"seconds_{stage}"
        peak = "tree_peak_mib" if stage == "job" else f"peak_rss_mib_{stage}"
        cells = " | ".join(f"{median[s][key]:.1f} / {median[s][peak]:.0f}" for s in sizes)
        exps = " | ".join(f"{exponent(median[a][key], median[b][key], images[a], images[b]):.2f}"
                          for a, b in zip(sizes, sizes[1:]))
        print(f"| {stage if stage != 'job' else 'whole curate_job (tree peak)'} | {cells} | {exps} |")
    print(f"\npairs out {median[last]['pairs_out']:.0f}, near-duplicate pairs {median[last]['near_duplicate_pairs']:.0f}, "
          f"checks passed: {all(run['checks_passed'] for s in sizes for run in results[s]['runs'])}", flush=True)


if __name__ == "__main__":
    main()
