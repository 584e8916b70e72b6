"""The crawl layer's asset: one Scrapy crawl per site, published as Parquet.

The crawl and the publishing are separate steps on purpose: `ScrapyCrawler` runs the
subprocess and leaves its output in the job dir; `publish_crawl` turns a finished
crawl (read through scrapers.interface, the crawl's one window to the pipeline) into
the site's raw_products and rejections files, the catalog's views of them and the
materialization's metadata. It is a plain function, so it is tested with a
hand-written journal, no subprocess.

Concurrency. Two crawls of one site must not share a job dir; crawls of different
sites should run side by side. Pools are named statically, so a pool per site is not
expressible on one partitioned asset, and a pool slot is held for the whole step: a
"duckdb_writer" pool on this asset would serialise entire crawls to protect a
sub-second write. So: one run per site at a time comes from the instance's run tag
limit on `dagster/partition` (ensure_dagster_home writes it). Sites write separate
Parquet files, so publishing needs no lock beyond the catalog's for its views.
"""

# No `from __future__ import annotations` here: Dagster reads the config and
# resource types from the signatures at definition time.

import shutil
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from clipshoe_common.files import tail
from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.crawl import history
from clipshoe_pipeline.defs.crawl.resources import ScrapyCrawler
from clipshoe_pipeline.markdown import cell, markdown_table
from clipshoe_pipeline.parquet_io import RAW_PRODUCTS_SCHEMA, raw_products_table, write_parquet_atomic
from clipshoe_pipeline.paths import DataPaths
from clipshoe_pipeline.rejections import rejected_rows, stamped
from scrapers import interface
from scrapers.interface import CrawlOutput, read_crawl_output
from scrapers.items import SITES

SITE_PARTITIONS = dg.StaticPartitionsDefinition(list(SITES))
NOTHING_COLLECTED = (interface.BLOCKED, interface.EMPTY)
FAILED_PAGES_CHECK = "raw_products_failed_page_ratio"
REJECTIONS_GROUP = "crawl"  # the crawl and download stages' file in the rejections dataset
PREVIEW_ROWS = 10
LOG_TAIL_LINES = 30
# A crawl that failed part-way (a crash, the network gone) is transient: tried again
# after ~10 s, then ~20 s, and it resumes from its job dir. One that collected nothing
# (blocked, empty) or cannot be published fails for good (dg.Failure(allow_retries=False)).
CRAWL_RETRIES = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
STALE_AFTER = timedelta(days=8)  # the weekly schedule plus a day of slack
# Parquet gives maps back as lists of pairs; the crawl's items hold dicts.
MAP_COLUMNS = tuple(field.name for field in RAW_PRODUCTS_SCHEMA if pa.types.is_map(field.type))


class CrawlConfig(dg.Config):
    """Per-run crawl limits and overrides (the Launchpad's run config)."""

    max_pages: int | None = None  # listing pages per category; None: every page the listing has
    max_items: int | None = None  # products per crawl; None: no cap
    categories: list[str] | None = None  # category keys (each spider's categories); None: the spider's defaults
    # Scrapy `-s` overrides for this run only (e.g. DOWNLOAD_DELAY, CONCURRENT_REQUESTS_PER_DOMAIN,
    # CLIPSHOE_IMAGE_MAX_BYTES); the project's defaults are in scrapers/settings.py.
    settings: dict[str, str] = {}
    # Pages of one failure reason over all pages: above the first the failed-page check
    # warns, above the second it fails (and blocks curation in the same run).
    failed_pages_warn_ratio: float = 0.05
    failed_pages_error_ratio: float = 0.25

    def spider_args(self) -> dict[str, object]:
        return {"max_pages": self.max_pages, "max_items": self.max_items,
                "categories": ",".join(self.categories) if self.categories else None}


@dg.asset(
    partitions_def=SITE_PARTITIONS,
    kinds={"scrapy", "parquet"},
    group_name="crawl",
    # Emitted by the asset itself: the ratio is in the crawl's stats, which only this
    # step sees (the job dir is gone once the crawl is published).
    check_specs=[dg.AssetCheckSpec(FAILED_PAGES_CHECK, asset="raw_products", blocking=True,
                                   description="Per failure reason, failed pages over all pages of the crawl.")],
    retry_policy=CRAWL_RETRIES,
    # For the UI's freshness view, over the asset as a whole; per site: raw_products_fresh_per_site.
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=STALE_AFTER * 2, warn_window=STALE_AFTER),
)
def raw_products(context: dg.AssetExecutionContext, config: CrawlConfig, crawler: ScrapyCrawler,
                 catalog: CatalogDB) -> dg.MaterializeResult:
    """Every shoe product a shop lists, with its images downloaded: the raw material of
    the image-text dataset. One partition per shop, so shops are crawled, retried and
    scheduled independently. Written to Parquet, the site's files of the `raw_products`
    (the latest state per product), `product_observations` (this crawl's, the history)
    and `rejections` datasets (catalog views of the same names). A crawl that failed
    part-way keeps its job dir, so re-running the partition resumes instead of
    starting over."""
    site = context.partition_key
    paths = catalog.paths
    job = paths.crawl_jobdir(site)
    interface.forget_verdict(job)
    # What the site's products were, so unchanged ones are not fetched again; the run
    # config can set CLIPSHOE_KNOWN_PRODUCTS to "" for a full recrawl.
    settings = {"CLIPSHOE_KNOWN_PRODUCTS": str(write_known_products(site, paths)), **config.settings}
    # Pipes raises a non-public DagsterPipesExecutionError on a non-zero exit; any
    # failure to run the crawl is handled the same way. An interrupted run raises a
    # BaseException, which passes through untouched.
    try:
        crawler.crawl(context, site, paths, settings=settings, spider_args=config.spider_args())
        crawl_error = None
    except Exception as exc:
        crawl_error = exc
    raise_unless_publishable(site, paths, crawl_error)
    output = read_crawl_output(job)
    result = publish_crawl(site, output, catalog, context.run.run_id,
                           check_results=[failed_pages_check(output, config)])
    shutil.rmtree(job)  # done: the next crawl of this site starts fresh
    return result


def write_known_products(site: str, paths: DataPaths) -> Path:
    """The site's raw_products rows with their listing state, for the crawl to skip the
    pages (and keep the rows) of products whose listing entry did not change."""
    parquet = paths.raw_products_parquet(site)
    rows = pq.read_table(parquet).to_pylist() if parquet.exists() else []
    return interface.write_known_products(paths.crawl_known_products(site), map(item_row, rows),
                                          paths.crawl_listing_state(site))


def item_row(row: dict[str, Any]) -> dict[str, Any]:
    """A raw_products row as the crawl's item (ProductItem dict) it was written from."""
    return {**row, **{name: dict(row[name]) for name in MAP_COLUMNS if row[name] is not None}}


def raise_unless_publishable(site: str, paths: DataPaths, crawl_error: Exception | None) -> None:
    """dg.Failure for a crawl that collected nothing (its job dir removed: nothing to
    resume, and Scrapy's seen-set would filter the retry's listing pages) or that
    failed part-way (its job dir kept for resuming, the log's tail in the message)."""
    job = paths.crawl_jobdir(site)
    output = read_crawl_output(job)
    if output.verdict in NOTHING_COLLECTED:
        shutil.rmtree(job)
        raise_for_verdict(site, output)
    if crawl_error is not None:
        log = paths.crawl_log(site)
        raise dg.Failure(
            description=(f"crawl of {site} failed ({crawl_error}); its job dir is kept, so a re-run resumes. "
                         f"Last lines of {log}:\n{tail(log, LOG_TAIL_LINES)}"),
            metadata={"crawl_log": dg.MetadataValue.path(str(log))},
        ) from crawl_error


crawl_job = dg.define_asset_job(
    "crawl_job", selection=[raw_products],
    description="Crawl one shop (pick the site partition) into raw_products.",
)


def publish_crawl(site: str, output: CrawlOutput, catalog: CatalogDB, run_id: str,
                  check_results: list[dg.AssetCheckResult] | None = None) -> dg.MaterializeResult:
    """A finished crawl -> the site's rejections, this crawl's observations and the
    site's raw_products, the latest state per product (defs/crawl/history.py), each file
    written atomically and raw_products last -> the catalog's views, with the metadata. Raises dg.Failure when the
    crawl did not finish or its verdict says it collected nothing."""
    if not output.finished:
        raise dg.Failure(f"crawl of {site} left no final stats in {output.job}: it did not finish")
    raise_for_verdict(site, output)
    rows, duplicates = unique_by_product(output.items())
    foreign = {row["site"] for row in rows} - {site}
    if foreign:  # they would land in this site's partition
        raise dg.Failure(f"crawl of {site} holds products of other sites: {sorted(foreign)}", allow_retries=False)
    paths = catalog.paths
    crawled = raw_products_table(rows).to_pylist()  # as Parquet gives them back, to compare with the last state
    started = history.crawl_started_at(crawled)
    parquet_path = paths.raw_products_parquet(site)
    previous = pq.read_table(parquet_path) if parquet_path.exists() else None
    # In product order: the journal's is the order pages happened to arrive in, and an
    # unchanged recrawl must leave the file byte-identical.
    latest = sorted(history.latest_state(crawled, previous), key=lambda row: row["product_id"])
    table = raw_products_table(latest)
    # What this crawl saw, as merged: a product read from its listing alone (its page
    # failed) keeps its page's title and images, and records no change of state for it.
    seen = {row["product_id"] for row in crawled}
    observed = [row for row in latest if row["product_id"] in seen]
    rejections, recovered = current_rejections(output.rejections(), rows)
    # Rejections and observations first: raw_products never shows a crawl whose record is missing.
    write_parquet_atomic(stamped(rejected_rows(rejections), run_id), paths.rejections_parquet(site, REJECTIONS_GROUP))
    write_parquet_atomic(history.observations(observed, started),
                         paths.observations_parquet(site, history.crawl_file_name(started)))
    write_parquet_atomic(table, parquet_path)
    interface.update_listing_state(paths.crawl_listing_state(site), output, (row["product_id"] for row in rows))
    catalog.publish("raw_products", "rejections", "product_observations", "product_history")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": table.num_rows,
        "crawl_started_at": started.isoformat(),
        "products_not_seen_this_crawl": table.num_rows - len(crawled),
        "dagster/column_schema": column_schema(),
        **crawl_metadata(rows, output),
        "duplicates_dropped": duplicates,
        "rejections": len(rejections),
        "failures_recovered_on_resume": recovered,
        "preview": dg.MetadataValue.md(preview_markdown(rows[:PREVIEW_ROWS])),
        "parquet_path": dg.MetadataValue.path(str(parquet_path)),
    }, check_results=check_results)


def failed_pages_check(output: CrawlOutput, config: CrawlConfig) -> dg.AssetCheckResult:
    """Failed pages per reason as a share of all pages: a shop that changed its pages
    (parser errors, malformed bodies) or started blocking shows up here even when
    enough items were collected for the crawl to count as done."""
    pages, failed = output.pages, output.failed_pages
    ratios = {reason: round(count / max(pages, 1), 4) for reason, count in sorted(failed.items())}
    worst = max(ratios.values(), default=0.0)
    return dg.AssetCheckResult(
        check_name=FAILED_PAGES_CHECK, passed=worst <= config.failed_pages_warn_ratio,
        severity=dg.AssetCheckSeverity.ERROR if worst > config.failed_pages_error_ratio else dg.AssetCheckSeverity.WARN,
        metadata={"pages": pages, "failed_pages": sum(failed.values()), "worst_ratio": worst,
                  "ratio_by_reason": dg.MetadataValue.json(ratios), "warn_above": config.failed_pages_warn_ratio,
                  "fail_above": config.failed_pages_error_ratio})


def raise_for_verdict(site: str, output: CrawlOutput) -> None:
    verdict = output.verdict
    if verdict == interface.BLOCKED:
        raise dg.Failure(
            description=(f"{site} blocked the crawler throughout: {output.block_pages} "
                         f"block pages out of {output.requests} requests, 0 items. "
                         "See README 'Live crawling' (cookies/headers, browser handler)."),
            metadata=output.block_reasons, allow_retries=False,
        )
    if verdict == interface.EMPTY:
        raise dg.Failure(f"crawl of {site} collected no items (finish reason "
                         f"{output.finish_reason!r}, {output.requests} requests)", allow_retries=False)
    if verdict != interface.OK:
        raise dg.Failure(f"crawl of {site} ended without a verdict ({verdict!r})", allow_retries=False)


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
    been collected after it (that old failure is dropped and counted as recovered; an
    item kept from its listing because its page failed keeps the failure on record)."""
    collected = {row["product_id"] for row in rows if not row.get("detail_unavailable")}
    unique: dict[tuple, dict[str, Any]] = {}
    recovered = 0
    for rejection in rejections:
        if rejection["stage"] == "crawl" and rejection.get("product_id") in collected:
            recovered += 1
            continue
        key = tuple(rejection.get(k) for k in ("product_id", "url", "image_url", "stage", "reason"))
        unique.setdefault(key, rejection)
    return list(unique.values()), recovered


def crawl_metadata(rows: list[dict[str, Any]], output: CrawlOutput) -> dict[str, Any]:
    """Counts that say how the crawl went. Image counts, and the items kept from their
    listing entry alone because their product page failed for good, come from the rows,
    so a resumed crawl reports all its products, not only this attempt's."""
    images = [image for row in rows for image in row["images"]]
    failed = Counter(image["reason"] for image in images if image["status"] != "ok")
    # .get: rows journaled before the field existed (a resumed crawl) lack it.
    from_listing = Counter(row["detail_unavailable"] for row in rows if row.get("detail_unavailable"))
    requests, elapsed = output.requests, output.elapsed_s
    return {
        "items": len(rows),
        "items_from_listing": sum(from_listing.values()),
        "items_from_listing_by_reason": dg.MetadataValue.json(dict(from_listing)),
        "images_ok": len(images) - sum(failed.values()),
        "images_failed": sum(failed.values()),
        "images_failed_by_reason": dg.MetadataValue.json(dict(failed)),
        # Incremental recrawl: what was not fetched again (scrapers.interface).
        "details_skipped_unchanged": output.details_skipped_unchanged,
        "details_refreshed_stale": output.details_refreshed_stale,
        "details_revalidated": output.details_revalidated,
        "details_from_cache": output.details_from_cache,
        "images_reused": output.images_reused,
        "requests": requests,
        "requests_retried": output.requests_retried,
        "requests_blocked": output.block_pages,
        "requests_failed": output.requests_failed,
        "pages": output.pages,
        "pages_failed": sum(output.failed_pages.values()),
        "pages_failed_by_reason": dg.MetadataValue.json(output.failed_pages),
        "finish_reason": str(output.finish_reason),
        "duration_s": round(elapsed, 1),
        "requests_per_s": round(requests / elapsed, 1) if elapsed else 0.0,
    }


def preview_markdown(rows: list[dict[str, Any]]) -> str:
    def line(row: dict[str, Any]) -> list[str]:
        ok = sum(image["status"] == "ok" for image in row["images"])
        price = f"{row['price']:,.0f} {row['currency']}" if row.get("price") is not None else ""
        return [cell(row["title"]), cell(row.get("brand")), price, f"{ok}/{len(row['image_urls'])}"]

    return markdown_table(["title", "brand", "price", "images"], map(line, rows))


def column_schema() -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(field.name, str(field.type), constraints=dg.TableColumnConstraints(nullable=field.nullable))
        for field in RAW_PRODUCTS_SCHEMA
    ])
