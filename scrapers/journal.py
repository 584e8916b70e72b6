"""The crawl journal: the crash-safe record of what a crawl has collected.

Scrapy's JOBDIR persists its queue and seen-set only on a clean stop, so after a
SIGKILL it can lose in-flight requests. The journal is written item by item
(flushed after each line), so it survives any kill: on restart the spider
re-walks listings and skips every product already here. The Dagster asset turns
the journal into Parquet; `-O file` feeds still work for ad-hoc runs.

Files, under JOBDIR:
- items.jsonl       one collected product per line (with its image results)
- rejections.jsonl  one dropped item / failed page / failed image per line
- listings.jsonl    one line per product read in full or kept unchanged: its listing
                    fingerprint and last full read (the next crawl's KnownProducts)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from scrapers import settings as defaults
from scrapers.items import ProductItem, utc_now_iso

logger = logging.getLogger(__name__)

ITEMS = "items.jsonl"
REJECTIONS = "rejections.jsonl"
LISTINGS = "listings.jsonl"
# What an item gets from elsewhere than its listing entry.
_NOT_FROM_LISTING = ("crawled_at", "images", "detail_unavailable")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Lines of a journal file; a torn last line (killed mid-write) is skipped."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                logger.warning("Skipping torn last line of %s (%d bytes)", path, len(raw))
                return
            yield json.loads(raw)


class Journal:
    def __init__(self, directory: Path | None):
        self.directory = directory
        self._files: dict[str, Any] = {}
        self._collected: set[str] | None = None

    @classmethod
    def from_settings(cls, settings) -> "Journal":
        directory = settings.get("JOBDIR")
        return cls(Path(directory) if directory else None)

    @classmethod
    def of(cls, crawler) -> "Journal":
        """The crawl's one journal, shared by every component that records to it,
        closed when the engine stops."""
        journal = getattr(crawler, "_clipshoe_journal", None)
        if journal is None:
            from scrapy import signals

            journal = crawler._clipshoe_journal = cls.from_settings(crawler.settings)
            crawler.signals.connect(journal.close, signal=signals.engine_stopped, weak=False)
        return journal

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def collected_ids(self) -> set[str]:
        """Products journaled by earlier runs of this crawl (read once, then cached)."""
        if self._collected is None:
            self._collected = (set() if not self.enabled else
                               {row["product_id"] for row in read_jsonl(self.directory / ITEMS)})
        return set(self._collected)

    def append_item(self, row: dict[str, Any]) -> None:
        self._write(ITEMS, row)

    def append_listing(self, state: dict[str, Any]) -> None:
        self._write(LISTINGS, state)

    def reject(self, *, site: str, stage: str, reason: str, product_id: str | None = None,
               url: str | None = None, image_url: str | None = None) -> None:
        self._write(REJECTIONS, {"site": site, "product_id": product_id, "url": url,
                                 "image_url": image_url, "stage": stage, "reason": reason})

    def _write(self, name: str, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        f = self._files.get(name)
        if f is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / name
            self._heal_torn_tail(path)
            f = self._files[name] = path.open("a", encoding="utf-8")
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()  # in the kernel's hands now: survives SIGKILL of this process

    @staticmethod
    def _heal_torn_tail(path: Path) -> None:
        """Cut a half-written last line left by a kill, so appends start on a fresh line."""
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("rb+") as f:
            data = f.read()
            if not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def close(self, **_signal_kwargs) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def listing_fingerprint(listing: ProductItem) -> str:
    """What a listing entry says of its product (title, price, image list, and any update
    stamp a spider puts in the item), as a hash: equal fingerprints, unchanged entry."""
    fields = {name: value for name, value in dataclasses.asdict(listing).items() if name not in _NOT_FROM_LISTING}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class KnownProducts:
    """The site's products as the last crawls left them (CLIPSHOE_KNOWN_PRODUCTS: one JSON
    line per product, `{product_id, listing_fingerprint, detail_read_at, row}`, `row` its
    raw_products row), and what this crawl's listings say of them.

    A product page is re-read only when it can have changed: its listing entry differs,
    or its last full read is older than CLIPSHOE_DETAIL_MAX_AGE_DAYS (a description can
    change without the listing showing it). Otherwise the known row is collected again,
    images included, with `crawled_at` this crawl's (publishing keeps the earlier row, and
    so its `crawled_at`, when nothing else changed); `detail_read_at` says when its page
    was last read. The row is not overlaid with
    the listing's fields: they are unchanged, and the page's versions (full-size images,
    full title) superseded them when it was read."""

    def __init__(self, known: dict[str, dict[str, Any]], max_age: timedelta):
        self.known = known
        self.max_age = max_age
        self.fingerprints: dict[str, str] = {}  # product_id -> this crawl's listing fingerprint
        self.reused_read_at: dict[str, str] = {}  # product_id -> detail_read_at of a row collected again

    @classmethod
    def from_settings(cls, settings) -> "KnownProducts":
        path = settings.get("CLIPSHOE_KNOWN_PRODUCTS")
        days = settings.getfloat("CLIPSHOE_DETAIL_MAX_AGE_DAYS", defaults.CLIPSHOE_DETAIL_MAX_AGE_DAYS)
        known = {entry["product_id"]: entry for entry in read_jsonl(Path(path))} if path else {}
        return cls(known, timedelta(days=days))

    @classmethod
    def of(cls, crawler) -> "KnownProducts":
        """The crawl's one instance, shared by the spider (which asks) and the journal
        pipeline (which records)."""
        known = getattr(crawler, "_clipshoe_known_products", None)
        if known is None:
            known = crawler._clipshoe_known_products = cls.from_settings(crawler.settings)
        return known

    def unchanged(self, listing: ProductItem) -> dict[str, Any] | None:
        """The known entry of the listing's product if its listing entry is unchanged;
        None for a new or changed product. Notes the fingerprint for `listing_state`."""
        fingerprint = self.fingerprints[listing.product_id] = listing_fingerprint(listing)
        entry = self.known.get(listing.product_id)
        return entry if entry is not None and entry["listing_fingerprint"] == fingerprint else None

    def stale(self, entry: dict[str, Any], now: datetime | None = None) -> bool:
        read_at = datetime.fromisoformat(entry["detail_read_at"])
        return (now or datetime.now(timezone.utc)) - read_at >= self.max_age

    def item(self, entry: dict[str, Any]) -> ProductItem:
        """The known row collected again by this crawl."""
        self.reused_read_at[entry["product_id"]] = entry["detail_read_at"]
        return ProductItem(**{**entry["row"], "crawled_at": utc_now_iso()})

    def listing_state(self, item: ProductItem) -> dict[str, Any] | None:
        """What the next crawl needs to know of a collected item; None for one kept from
        its listing alone (its page failed), whose page the next crawl must read."""
        fingerprint = self.fingerprints.get(item.product_id)
        if fingerprint is None or item.detail_unavailable:
            return None
        return {"product_id": item.product_id, "listing_fingerprint": fingerprint,
                "detail_read_at": self.reused_read_at.get(item.product_id, item.crawled_at)}
