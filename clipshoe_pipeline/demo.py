"""The main job, end to end against the replay shop, and the UI launcher.

`clipshoe demo` starts the synthetic shops (with faults on, as real shops have),
materializes every asset of the pipeline — today the crawl of all five sites — in
the persistent Dagster instance under $CLIPSHOE_DATA_DIR, so the runs show up later
in `clipshoe dev`, and ends with a summary read back from the DuckDB catalog.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings

import dagster as dg

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.paths import data_paths, ensure_dagster_home
from replay_shop.catalog import Catalog
from replay_shop.model import Faults
from replay_shop.server import running_shop
from scrapers.replay import SETTING as REPLAY_ENV
from scrapers.runner import PROJECT_ROOT

SUMMARY_SQL = """
SELECT p.site,
       count(*) AS items,
       sum(len(list_filter(p.images, lambda i: i.status = 'ok'))) AS images_ok,
       sum(len(list_filter(p.images, lambda i: i.status <> 'ok'))) AS images_failed,
       count(*) FILTER (WHERE p.brand IS NULL) AS no_brand,
       (SELECT count(*) FROM rejections r WHERE r.site = p.site AND r.stage = 'crawl') AS items_rejected
FROM raw_products p GROUP BY p.site ORDER BY p.site
"""


# The full event log is in the UI; the terminal gets one line per run and warnings.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


CURATED_SQL = """
SELECT site, count(*) AS pairs, count(*) FILTER (WHERE split = 'train') AS train,
       count(*) FILTER (WHERE split = 'test') AS test,
       (SELECT count(*) FROM rejections r WHERE r.site = c.site AND r.stage = 'curate') AS rejected_in_curation
FROM curated_pairs c GROUP BY site ORDER BY site
"""


def run_demo(*, seed: int, products_per_site: int, sites: list[str], faults: Faults) -> int:
    ensure_dagster_home()
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)  # Pipes internals, not ours
    from clipshoe_pipeline.definitions import defs  # after DAGSTER_HOME is settled

    job = defs.resolve_job_def("crawl_job")
    catalog = Catalog(seed=seed, products_per_site=products_per_site)
    print(f"data: {data_paths().root}   dagster home: {os.environ['DAGSTER_HOME']}")
    print("The replay shop's products and pictures are synthetic (seeded), not real shop data.\n")
    failed = []
    with running_shop(catalog, faults=faults) as shop, dg.DagsterInstance.get() as instance:
        os.environ[REPLAY_ENV] = shop.url  # the crawl resource and its subprocess inherit it
        for site in sites:
            started = time.monotonic()
            result = job.execute_in_process(partition_key=site, instance=instance, raise_on_error=False,
                                            run_config=QUIET_CONSOLE)
            status = "ok" if result.success else "FAILED"
            print(f"crawl {site:<7} {status}  {time.monotonic() - started:5.1f} s  (run {result.run_id[:8]})")
            if not result.success:
                failed.append(site)
        print(f"\nreplay shop served {shop.stats['requests']} requests, faults planted: {shop.stats['faults']}")
        if not failed:
            started = time.monotonic()
            result = defs.resolve_job_def("curate_job").execute_in_process(
                instance=instance, raise_on_error=False, run_config=QUIET_CONSOLE)
            status = "ok" if result.success else "FAILED"
            print(f"curate         {status}  {time.monotonic() - started:5.1f} s  (run {result.run_id[:8]})")
            if not result.success:
                failed.append("curate")
    print_summary()
    if failed:
        print(f"\nfailed: {', '.join(failed)} — see the runs in the Dagster UI (make dev)")
    return 1 if failed else 0


def print_summary() -> None:
    rows = CatalogDB().query(SUMMARY_SQL)
    header = ("site", "items", "images_ok", "images_failed", "no_brand", "items_rejected")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[column]) for column in header) + " |")
    catalog = CatalogDB()
    if catalog.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'curated_pairs'"):
        curated = catalog.query(CURATED_SQL)
        header = ("site", "pairs", "train", "test", "rejected_in_curation")
        print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in curated:
            print("| " + " | ".join(str(row[column]) for column in header) + " |")
    print(f"\ncatalog: {data_paths().catalog_db} (tables raw_products, curated_pairs, rejections)")


def run_dev(*, replay: bool, seed: int, products_per_site: int, port: int) -> int:
    """`dagster dev` on workspace.yaml with run history under the data dir; with
    `replay`, the synthetic shops run alongside so UI-launched crawls work offline."""
    ensure_dagster_home()
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-p", str(port)]
    if not replay:
        return subprocess.call(command, cwd=PROJECT_ROOT)
    catalog = Catalog(seed=seed, products_per_site=products_per_site)
    with running_shop(catalog, faults=Faults.default_on()) as shop:
        print(f"replay shop at {shop.url} (synthetic data); crawls launched from the UI go there")
        env = {**os.environ, REPLAY_ENV: shop.url}
        try:
            return subprocess.call(command, cwd=PROJECT_ROOT, env=env)
        except KeyboardInterrupt:
            return 0


