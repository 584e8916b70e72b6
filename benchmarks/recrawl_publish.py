"""The raw_products asset's own work around a recrawl, at three sizes: before the crawl
`write_known_products` (the site's rows and listing state -> CLIPSHOE_KNOWN_PRODUCTS),
after it `publish_crawl` (latest state merged with the previous file, the crawl's
observations, rejections, raw_products, the catalog's views). The crawl itself is
benchmarks/crawl.py. Each size runs in its own process (peak RSS is that process's):
a first crawl is published, then an unchanged recrawl is timed `--runs` times.

    python benchmarks/recrawl_publish.py                 # 10k, 40k, 160k products (a site at full scale)
    python benchmarks/recrawl_publish.py --sizes 1000,4000,16000 --runs 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(products: int, runs: int) -> dict:
    from clipshoe_pipeline.catalog_db import CatalogDB
    from clipshoe_pipeline.defs.crawl.assets import publish_crawl, write_known_products
    from clipshoe_pipeline.paths import DataPaths
    from scrapers.interface import read_crawl_output
    from scrapers.journal import LISTINGS
    from tests.builders import item_row, write_journal

    stats = {"clipshoe/verdict": "ok", "clipshoe/items": products, "finish_reason": "finished"}
    with tempfile.TemporaryDirectory() as root:
        paths = DataPaths(Path(root))
        catalog = CatalogDB(data_dir=root)
        job = paths.crawl_jobdir("tiki")

        def crawl(at: str) -> None:
            rows = [item_row(str(i), crawled_at=at, title=f"Giày {i}", price=float(100_000 + i))
                    for i in range(products)]
            write_journal(job, rows, [], stats)
            # What the journal pipeline records per product read in full (the next crawl's state).
            (job / LISTINGS).write_text("".join(json.dumps({"product_id": row["product_id"], "listing_fingerprint": "f",
                                                            "detail_read_at": at}) + "\n" for row in rows))

        crawl("2026-11-02T01:00:00+00:00")
        publish_crawl("tiki", read_crawl_output(job), catalog, "first")
        known_s, publish_s = [], []
        for run in range(runs):
            started = time.perf_counter()
            write_known_products("tiki", paths)
            known_s.append(time.perf_counter() - started)
            crawl(f"2026-11-{9 + run:02d}T01:00:00+00:00")
            started = time.perf_counter()
            publish_crawl("tiki", read_crawl_output(job), catalog, f"recrawl-{run}")
            publish_s.append(time.perf_counter() - started)
        (states,) = catalog.query("SELECT count(*) AS n FROM product_history")
        assert states["n"] == products, states  # unchanged recrawls add no state
        known = sum(1 for _ in paths.crawl_known_products("tiki").open())
        assert known == products, known  # every product's row went to the crawl
    return {"products": products, "known_s": statistics.median(known_s), "publish_s": statistics.median(publish_s),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,40000,160000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.runs)))
        return
    results = []
    for size in map(int, args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(size), "--runs", str(args.runs)],
                             check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"median of {args.runs} unchanged recrawls per size; growth against the previous size\n")
    print("| products | write_known_products s | publish_crawl s | µs/product (publish) | growth (publish) | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    previous = None
    for r in results:
        growth = f"{r['publish_s'] / previous['publish_s']:.2f}× for {r['products'] / previous['products']:.0f}×" \
            if previous else "—"
        print(f"| {r['products']:,} | {r['known_s']:.2f} | {r['publish_s']:.2f} | "
              f"{r['publish_s'] / r['products'] * 1e6:.1f} | {growth} | {r['peak_rss_mib']:.0f} |")
        previous = r


if __name__ == "__main__":
    main()
