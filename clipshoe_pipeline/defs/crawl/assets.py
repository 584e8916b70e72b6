"""The crawl layer's asset: one Scrapy crawl per site, published as Parquet + DuckDB.

The crawl and the publishing are separate steps on purpose: `ScrapyCrawler` runs the
subprocess and leaves its journal in the job dir; `publish_crawl` turns a finished
journal into the Parquet file, the catalog rows and the materialization's metadata.
It is a plain function, so it is tested with a hand-written journal, no subprocess.

Concurrency. Two crawls of one site must not share a job dir; crawls of different
sites should run side by side. Pools are named statically, so a pool per site is not
expressible on one partitioned asset, and a pool slot is held for the whole step: a
"duckdb_writer" pool on this asset would serialise entire crawls to protect a
sub-second write. So: one run per site at a time comes from the instance's run tag
limit on `dagster/partition` (ensure_dagster_home writes it), and DuckDB writes are
serialised by CatalogDB's file lock, which also covers writers outside Dagster.
"""

# No `from __future__ import annotations` here: Dagster reads the config and
# resource types from the signatures at definition time.

import json
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.crawl.resources import ScrapyCrawler
from clipshoe_pipeline.parquet_io import RAW_PRODUCTS_SCHEMA, raw_products_table, write_parquet_atomic
from clipshoe_pipeline.paths import DataPaths, data_paths
from scrapers.extensions import STATS_FILE
from scrapers.items import SITES
from scrapers.journal import ITEMS, REJECTIONS, read_jsonl

SITE_PARTITIONS = dg.StaticPartitionsDefinition(list(SITES))
NOTHING_COLLECTED = ("blocked", "empty")  # verdicts of scrapers.extensions.CrawlVerdict
PREVIEW_ROWS = 10
LOG_TAIL_LINES = 30


class CrawlConfig(dg.Config):
    """Per-run crawl limits and overrides (the Launchpad's run config)."""

    max_pages: int | None = None  # listing pages per category; None: the spider's setting
    max_items: int | None = None  # products per crawl; None: no cap beyond the setting
    categories: list[str] | None = None  # category keys (each spider's categories); None: the defaults
    settings: dict[str, str] = {}  # Scrapy `-s` overrides for this run only

    def spider_args(self) -> dict[str, object]:
        return {"max_pages": self.max_pages, "max_items": self.max_items,
                "categories": ",".join(self.categories) if self.categories else None}


@dg.asset(
    partitions_def=SITE_PARTITIONS,
    kinds={"scrapy", "parquet", "duckdb"},
    group_name="crawl",
)
def raw_products(context: dg.AssetExecutionContext, config: CrawlConfig, crawler: ScrapyCrawler,
                 catalog: CatalogDB) -> dg.MaterializeResult:
    """Every shoe product a shop lists, with its images downloaded: the raw material of
    the image-text dataset. One partition per shop, so shops are crawled, retried and
    scheduled independently. Written to Parquet (the source of truth) and the DuckDB
    tables `raw_products` and `rejections`. A crawl that failed part-way keeps its job
    dir, so re-running the partition resumes instead of starting over."""
    site = context.partition_key
    paths = data_paths()
    job = paths.crawl_job(site)
    # A verdict left by an earlier attempt must not be mistaken for this one's.
    (job / STATS_FILE).unlink(missing_ok=True)
    # Pipes raises a non-public DagsterPipesExecutionError on a non-zero exit; any
    # failure to run the crawl is handled the same way. An interrupted run raises a
    # BaseException, which passes through untouched.
    try:
        crawler.crawl(context, site, paths, settings=config.settings, spider_args=config.spider_args())
        crawl_error = None
    except Exception as exc:
        crawl_error = exc
    raise_unless_publishable(site, paths, crawl_error)
    result = publish_crawl(site, job, paths.raw_products_parquet(site), catalog, context.run.run_id)
    shutil.rmtree(job)  # done: the next crawl of this site starts fresh
    return result


def raise_unless_publishable(site: str, paths: DataPaths, crawl_error: Exception | None) -> None:
    """dg.Failure for a crawl that collected nothing (its job dir removed: nothing to
    resume, and Scrapy's seen-set would filter the retry's listing pages) or that
    failed part-way (its job dir kept for resuming, the log's tail in the message)."""
    job = paths.crawl_job(site)
    stats = read_stats(job) or {}
    if stats.get("clipshoe/verdict") in NOTHING_COLLECTED:
        shutil.rmtree(job)
        raise_for_verdict(site, stats)
    if crawl_error is not None:
        log = paths.crawl_log(site)
        raise dg.Failure(
            description=(f"crawl of {site} failed ({crawl_error}); its job dir is kept, so a re-run resumes. "
                         f"Last lines of {log}:\n{_tail(log)}"),
            metadata={"crawl_log": dg.MetadataValue.path(str(log))},
        ) from crawl_error


crawl_job = dg.define_asset_job(
    "crawl_job", selection=[raw_products],
    description="Crawl one shop (pick the site partition) into raw_products.",
)


def publish_crawl(site: str, job: Path, parquet_path: Path, catalog: CatalogDB,
                  run_id: str) -> dg.MaterializeResult:
    """A finished crawl's job dir -> Parquet (atomically) -> DuckDB, with its metadata.
    Raises dg.Failure when the crawl's verdict says it collected nothing."""
    stats = read_stats(job)
    if stats is None:
        raise dg.Failure(f"crawl of {site} left no {STATS_FILE} in {job}: it did not finish")
    raise_for_verdict(site, stats)
    rows, duplicates = unique_by_product(read_jsonl(job / ITEMS))
    write_parquet_atomic(raw_products_table(rows), parquet_path)
    loaded = catalog.replace_site_rows("raw_products", site, parquet_path)
    rejections, recovered = current_rejections(read_jsonl(job / REJECTIONS), rows)
    catalog.replace_site_rejections(site, run_id, rejections)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": loaded,
        "dagster/column_schema": column_schema(),
        **crawl_metadata(rows, stats),
        "duplicates_dropped": duplicates,
        "rejections": len(rejections),
        "failures_recovered_on_resume": recovered,
        "preview": dg.MetadataValue.md(preview_markdown(rows[:PREVIEW_ROWS])),
        "parquet_path": dg.MetadataValue.path(str(parquet_path)),
    })


def read_stats(job: Path) -> dict[str, Any] | None:
    """The final Scrapy stats the crawl wrote (scrapers.extensions.CrawlVerdict), if any."""
    path = job / STATS_FILE
    return json.loads(path.read_text()) if path.exists() else None


def raise_for_verdict(site: str, stats: Mapping[str, Any]) -> None:
    verdict = stats.get("clipshoe/verdict")
    if verdict == "blocked":
        raise dg.Failure(
            description=(f"{site} blocked the crawler throughout: {stats.get('clipshoe/blocked/count', 0)} "
                         f"block pages out of {stats.get('downloader/request_count', 0)} requests, 0 items. "
                         "See README 'Live crawling' (cookies/headers, browser handler)."),
            metadata=_prefixed(stats, "clipshoe/blocked/"),
        )
    if verdict == "empty":
        raise dg.Failure(f"crawl of {site} collected no items (finish reason "
                         f"{stats.get('finish_reason')!r}, {stats.get('downloader/request_count', 0)} requests)")
    if verdict != "ok":
        raise dg.Failure(f"crawl of {site} ended without a verdict ({verdict!r})")


def unique_by_product(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """First row per product_id, and how many repeats were dropped. The journal is
    de-duplicated already; this keeps a hand-edited or merged journal honest."""
    kept: dict[str, dict[str, Any]] = {}
    duplicates = 0
    for row in rows:
        if row["product_id"] in kept:
            duplicates += 1
        else:
            kept[row["product_id"]] = row
    return list(kept.values()), duplicates


def current_rejections(rejections: Iterable[dict[str, Any]],
                       rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The journal's rejections as they stand at the end: a resumed crawl may record
    the same rejection twice, and a product page that failed before a crash may have
    been collected after it (that old failure is dropped and counted as recovered)."""
    collected = {row["product_id"] for row in rows}
    unique: dict[tuple, dict[str, Any]] = {}
    recovered = 0
    for rejection in rejections:
        if rejection["stage"] == "crawl" and rejection.get("product_id") in collected:
            recovered += 1
            continue
        key = tuple(rejection.get(k) for k in ("product_id", "url", "image_url", "stage", "reason"))
        unique.setdefault(key, rejection)
    return list(unique.values()), recovered


def crawl_metadata(rows: list[dict[str, Any]], stats: Mapping[str, Any]) -> dict[str, Any]:
    """Counts that say how the crawl went. Image counts come from the rows, so a resumed
    crawl reports all its products' images, not only this attempt's."""
    images = [image for row in rows for image in row["images"]]
    failed = Counter(image["reason"] for image in images if image["status"] != "ok")
    requests = stats.get("downloader/request_count", 0)
    elapsed = stats.get("elapsed_time_seconds") or 0
    return {
        "items": len(rows),
        "images_ok": len(images) - sum(failed.values()),
        "images_failed": sum(failed.values()),
        "images_failed_by_reason": dg.MetadataValue.json(dict(failed)),
        "requests": requests,
        "requests_retried": stats.get("retry/count", 0),
        "requests_blocked": stats.get("clipshoe/blocked/count", 0),
        "requests_failed": stats.get("retry/max_reached", 0),
        "pages_failed": sum(_prefixed(stats, "clipshoe/failed_pages/").values()),
        "finish_reason": str(stats.get("finish_reason")),
        "duration_s": round(elapsed, 1),
        "requests_per_s": round(requests / elapsed, 1) if elapsed else 0.0,
    }


def preview_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| title | brand | price | images |", "|---|---|---|---|"]
    for row in rows:
        ok = sum(image["status"] == "ok" for image in row["images"])
        price = f"{row['price']:,.0f} {row['currency']}" if row.get("price") is not None else ""
        lines.append(f"| {_cell(row['title'])} | {_cell(row.get('brand') or '')} | {price} | "
                     f"{ok}/{len(row['image_urls'])} |")
    return "\n".join(lines)


def column_schema() -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(field.name, str(field.type), constraints=dg.TableColumnConstraints(nullable=field.nullable))
        for field in RAW_PRODUCTS_SCHEMA
    ])


def _prefixed(stats: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {key[len(prefix):]: value for key, value in stats.items() if key.startswith(prefix)}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:80]


def _tail(path: Path) -> str:
    if not path.exists():
        return f"({path} does not exist: the crawl did not get as far as logging)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
