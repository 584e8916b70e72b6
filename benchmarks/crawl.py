"""Crawl throughput against the replay shop on loopback.

Runs one spider in one Scrapy process over a large synthetic catalog and prints
requests/s, items/s, CPU-seconds per 1000 items and peak RSS of the crawler
process, for an API-only crawl and a full crawl with image downloads, each
repeated (median reported). The shop and the crawler are separate child processes
of this small driver; the crawler is measured with os.wait4, so the shop's cost is
not counted (and a fork of a big parent cannot inflate the crawler's peak RSS).

    python benchmarks/crawl.py --products 20000 --runs 1
Targets (issue #2): >= 150 requests/s in one process, peak RSS < 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clipshoe_common import PROJECT_ROOT
from scrapers.interface import crawl_command  # noqa: E402


@contextmanager
def replay_shop_process(products: int):
    """`clipshoe replay-shop` on a free port, as its own process."""
    command = [sys.executable, "-m", "clipshoe_pipeline.cli", "replay-shop", "--port", "0",
               "--products-per-site", str(products)]
    shop = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = shop.stdout.readline()
        match = re.search(r"http://\S+", line)
        if not match:
            raise SystemExit(f"replay shop did not start: {line!r}")
        url = match.group(0)
        urllib.request.urlopen(f"{url}/_shop/ground_truth", timeout=600).read()  # generate the catalog first
        yield url
    finally:
        shop.send_signal(signal.SIGINT)
        shop.wait(timeout=30)


def one_run(site: str, shop_url: str, images: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="clipshoe-bench-") as tmp:
        work = Path(tmp)
        settings = {"LOG_LEVEL": "WARNING", "CONCURRENT_REQUESTS": 128, "CONCURRENT_REQUESTS_PER_DOMAIN": 64,
                    "ROBOTSTXT_OBEY": True}
        if not images:
            settings["ITEM_PIPELINES"] = json.dumps({"scrapers.pipelines.ValidationPipeline": 100,
                                                     "scrapers.pipelines.JournalPipeline": 900})
        command = crawl_command(site, jobdir=work / "job", images_dir=work / "images",
                                replay_url=shop_url, settings=settings)
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                                   stderr=(work / "log").open("w"))
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"crawl failed ({process.returncode}):\n{(work / 'log').read_text()[-3000:]}")
        stats = json.loads((work / "job" / "stats.json").read_text())
    crawl_seconds = stats.get("elapsed_time_seconds") or wall
    requests = stats.get("downloader/request_count", 0)
    items = stats.get("clipshoe/items", 0)
    cpu = usage.ru_utime + usage.ru_stime
    return {"requests": requests, "items": items, "wall_s": wall, "crawl_s": crawl_seconds,
            "req_per_s": requests / crawl_seconds, "items_per_s": items / crawl_seconds,
            "cpu_s_per_1k_items": 1000 * cpu / max(items, 1), "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Sendo pages until an empty page; Tiki caps a category at ~2000 results (as the real API does).
    parser.add_argument("--site", default="sendo")
    parser.add_argument("--products", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="api,full", help="api (no image downloads), full (with images)")
    args = parser.parse_args()

    rows = []
    with replay_shop_process(args.products) as shop_url:
        for mode in args.modes.split(","):
            runs = [one_run(args.site, shop_url, images=(mode == "full")) for _ in range(args.runs)]
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            rows.append((mode, median))
            print(f"# {mode}: {len(runs)} run(s) done", file=sys.stderr)

    print(f"\ncrawl benchmark — site={args.site} products={args.products} runs={args.runs} (median) "
          f"on {platform.node()} ({os.cpu_count()} cpus, Python {platform.python_version()})")
    header = ("mode", "requests", "items", "crawl s", "requests/s", "items/s", "CPU-s/1k items", "peak RSS MiB")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for mode, m in rows:
        print(f"| {mode} | {m['requests']:.0f} | {m['items']:.0f} | {m['crawl_s']:.1f} | {m['req_per_s']:.0f} | "
              f"{m['items_per_s']:.0f} | {m['cpu_s_per_1k_items']:.2f} | {m['peak_rss_mib']:.0f} |")
    if len(rows) == 2:
        print(f"\nfull/api requests/s ratio: {rows[1][1]['req_per_s'] / rows[0][1]['req_per_s']:.2f}")


if __name__ == "__main__":
    main()
