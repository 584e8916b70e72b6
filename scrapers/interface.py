"""The crawl as the pipeline sees it: how to start one and how to read what it left.

Besides the item schema (scrapers.items) this is the only module of `scrapers` that
`clipshoe_pipeline` imports, so the journal's file names, the stats keys and the
verdict strings can change here without the orchestrator knowing them.

Scrapy's Twisted reactor cannot restart inside a process, so every caller (the
Dagster asset, the demo, tests, benchmarks) runs `scrapy crawl` as a child process
from the repository root, where scrapy.cfg lives (`clipshoe_common.PROJECT_ROOT`).
The crawl leaves, in its JOBDIR: the journal (scrapers.journal: one line per
collected product and per rejection, flushed as it goes) and, once it has closed,
its final Scrapy stats with a verdict (scrapers.extensions.CrawlVerdict).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipshoe_common.files import atomic_file
from scrapers.journal import ITEMS, LISTINGS, REJECTIONS, read_jsonl

STATS_FILE = "stats.json"
VERDICT_STAT = "clipshoe/verdict"
# Verdicts: a crawl that collected products and ran to its end; one stopped early
# (resumable, must not replace a complete snapshot); none collected because every page
# was a block page; none collected otherwise.
OK, PARTIAL, BLOCKED, EMPTY = "ok", "partial", "blocked", "empty"
# The crawl's own Scrapy stats keys (Scrapy's, such as retry/count, keep their names).
# Pages (listings, product details; not images) that reached a spider callback or
# failed for good, and of those the ones that failed, per reason.
PAGES_STAT = "clipshoe/pages"
FAILED_PAGES_PREFIX = "clipshoe/failed_pages/"
# Items collected by this attempt, and by the attempts it resumed.
ITEMS_STAT = "clipshoe/items"
RESUMED_ITEMS_STAT = "clipshoe/resumed_items"
# Of this attempt's items, those kept from their listing entry alone because the product
# page failed for good, per failed-page reason (the item's `detail_unavailable`).
DETAIL_UNAVAILABLE_PREFIX = "clipshoe/detail_unavailable/"
IMAGES_OK_STAT = "clipshoe/images/ok"
IMAGES_FAILED_PREFIX = "clipshoe/images/failed/"
# Of the images ok, those rebuilt from the image index (CLIPSHOE_IMAGE_INDEX), not downloaded.
IMAGES_REUSED_STAT = "clipshoe/images/reused"
# Product pages not requested because the listing entry is unchanged since a full read
# younger than CLIPSHOE_DETAIL_MAX_AGE_DAYS (the known row is collected instead); and
# those requested although unchanged, their last full read being too old.
DETAILS_SKIPPED_STAT = "clipshoe/details/skipped_unchanged"
DETAILS_STALE_STAT = "clipshoe/details/refreshed_stale"
# Scrapy's HTTP cache: product pages the shop answered 304 Not Modified to (or a 5xx,
# the cached page then standing in), and those still fresh by their own cache headers.
DETAILS_REVALIDATED_STAT = "httpcache/revalidate"
DETAILS_CACHE_HIT_STAT = "httpcache/hit"
# Block pages seen (each retried), per block kind; the total; those still blocked after retries.
BLOCKED_PREFIX = "clipshoe/blocked/"
BLOCKED_STAT = BLOCKED_PREFIX + "count"
BLOCKED_GAVE_UP_STAT = BLOCKED_PREFIX + "gave_up"


def items_collected(stats: Mapping[str, Any]) -> int:
    """Items in the journal, this attempt's and those of the attempts it resumed."""
    return (stats.get(ITEMS_STAT) or 0) + (stats.get(RESUMED_ITEMS_STAT) or 0)


def block_reasons(stats: Mapping[str, Any]) -> dict[str, int]:
    """Block pages per block kind (scrapers.blocks), without the totals."""
    return {key[len(BLOCKED_PREFIX):]: value for key, value in stats.items()
            if key.startswith(BLOCKED_PREFIX) and key not in (BLOCKED_STAT, BLOCKED_GAVE_UP_STAT)}


def crawl_command(site: str, *, jobdir: Path, images_dir: Path, replay_url: str | None = None,
                  settings: Mapping[str, object] | None = None,
                  spider_args: Mapping[str, object] | None = None) -> list[str]:
    """`python -m scrapy crawl SITE -s JOBDIR=... ...`; run it with cwd=PROJECT_ROOT."""
    command = [sys.executable, "-m", "scrapy", "crawl", site,
               "-s", f"JOBDIR={jobdir}", "-s", f"CLIPSHOE_IMAGES_STORE={images_dir}"]
    if replay_url:
        command += ["-s", f"CLIPSHOE_REPLAY_URL={replay_url}"]
    for name, value in (settings or {}).items():
        command += ["-s", f"{name}={value}"]
    for name, value in (spider_args or {}).items():
        if value is not None:
            command += ["-a", f"{name}={value}"]
    return command


class _Stat:
    """A CrawlOutput attribute that reads one stats key: zero (or `default`) where the
    counter never moved or the crawl has not closed."""

    def __init__(self, key: str, default: Any = 0):
        self.key, self.default = key, default

    def __get__(self, output: CrawlOutput | None, owner: type | None = None) -> Any:
        return self if output is None else output._stat(self.key, self.default)


@dataclass(frozen=True)
class CrawlOutput:
    """What one crawl's JOBDIR holds. `stats` (the final Scrapy stats) is None until the
    crawl has closed; the properties read them, zero where a counter never moved."""

    job: Path
    stats: Mapping[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.stats is not None

    verdict = _Stat(VERDICT_STAT, None)
    pages = _Stat(PAGES_STAT)
    details_skipped_unchanged = _Stat(DETAILS_SKIPPED_STAT)
    details_refreshed_stale = _Stat(DETAILS_STALE_STAT)
    details_revalidated = _Stat(DETAILS_REVALIDATED_STAT)
    details_from_cache = _Stat(DETAILS_CACHE_HIT_STAT)
    images_reused = _Stat(IMAGES_REUSED_STAT)
    requests = _Stat("downloader/request_count")
    requests_retried = _Stat("retry/count")
    requests_failed = _Stat("retry/max_reached")  # still failed once their retries were spent
    block_pages = _Stat(BLOCKED_STAT)
    finish_reason = _Stat("finish_reason", None)

    @property
    def failed_pages(self) -> dict[str, int]:
        """Pages that failed for good, per reason (http_404, timeout, parser_error...)."""
        return self._counts(FAILED_PAGES_PREFIX)

    @property
    def detail_unavailable(self) -> dict[str, int]:
        """Items this attempt kept from their listing entry alone, per failed-page reason."""
        return self._counts(DETAIL_UNAVAILABLE_PREFIX)

    @property
    def block_reasons(self) -> dict[str, int]:
        return block_reasons(self.stats or {})

    @property
    def elapsed_s(self) -> float:
        return self._stat("elapsed_time_seconds") or 0.0

    def _stat(self, name: str, default: Any = 0) -> Any:
        return (self.stats or {}).get(name, default)

    def _counts(self, prefix: str) -> dict[str, int]:
        return {key[len(prefix):]: value for key, value in (self.stats or {}).items() if key.startswith(prefix)}

    def items(self) -> Iterator[dict[str, Any]]:
        """Collected products (ProductItem dicts with their image results), in journal order."""
        return read_jsonl(self.job / ITEMS)

    def rejections(self) -> Iterator[dict[str, Any]]:
        """Dropped items, failed pages and failed images: site, stage, reason, product_id, url, image_url."""
        return read_jsonl(self.job / REJECTIONS)

    def listings(self) -> Iterator[dict[str, Any]]:
        """Per product read in full (or kept unchanged): product_id, listing_fingerprint,
        detail_read_at; what the next crawl's known products are built from."""
        return read_jsonl(self.job / LISTINGS)


def read_crawl_output(job: Path) -> CrawlOutput:
    """The crawl that ran (or is running) in JOBDIR `job`: the one way the pipeline
    reads a crawl's journal, rejections, stats and verdict."""
    path = job / STATS_FILE
    return CrawlOutput(job, json.loads(path.read_text()) if path.exists() else None)


def forget_verdict(job: Path) -> None:
    """Remove a closed crawl's stats, so a verdict left by an earlier attempt is not
    mistaken for the next one's."""
    (job / STATS_FILE).unlink(missing_ok=True)


def write_known_products(path: Path, rows: Iterable[Mapping[str, Any]], listing_state: Path) -> Path:
    """Write the crawl's CLIPSHOE_KNOWN_PRODUCTS file (scrapers.journal.KnownProducts) to
    `path`: each of `rows` (the site's raw_products rows, as ProductItem dicts) whose
    listing state is known (`listing_state`, kept by update_listing_state). A product
    without one has its page read."""
    state = {entry["product_id"]: entry for entry in read_jsonl(listing_state)}
    with atomic_file(path, "w") as sink:
        for row in rows:
            entry = state.get(row["product_id"])
            if entry is not None:
                sink.write(json.dumps({**entry, "row": dict(row)}, ensure_ascii=False) + "\n")
    return path


def update_listing_state(path: Path, output: CrawlOutput, collected: Iterable[str]) -> None:
    """Fold a published crawl's listing states into the file kept between crawls: this
    crawl's where it has one; none for a product it collected without (kept from its
    listing alone: its page must be read next time); the earlier one for a product it did
    not see."""
    collected = set(collected)
    state = {entry["product_id"]: entry for entry in read_jsonl(path) if entry["product_id"] not in collected}
    state.update((entry["product_id"], entry) for entry in output.listings())
    with atomic_file(path, "w") as sink:
        sink.writelines(json.dumps(entry, ensure_ascii=False) + "\n" for entry in state.values())
