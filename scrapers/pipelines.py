"""Item pipelines: validation, image download into a content-addressed store, and
the crash-safe journal. Spiders only parse; everything stored happens here."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from PIL import Image, UnidentifiedImageError
from scrapy import Request
from scrapy.exceptions import DropItem
from scrapy.http import Response
from scrapy.pipelines.files import FilesPipeline

from clipshoe_common.files import write_once
from scrapers import settings as defaults
from scrapers.blocks import detect_block
from scrapers.items import InvalidItem, ProductItem, utc_now_iso, validate
from scrapers.interface import (DETAIL_UNAVAILABLE_PREFIX, IMAGES_FAILED_PREFIX, IMAGES_OK_STAT, IMAGES_REUSED_STAT,
                                ITEMS_STAT, RESUMED_ITEMS_STAT)
from scrapers.journal import Journal, KnownProducts
from scrapers.middlewares import FAILURE_HEADER, MEDIA_META
from scrapers.signals import page_failed

logger = logging.getLogger(__name__)

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "MPO": "jpg"}


class ValidationPipeline:
    """Drop invalid items with a counted, recorded reason; count soft warnings."""

    def __init__(self, crawler):
        self.stats = crawler.stats
        self.journal = Journal.of(crawler)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item: ProductItem, spider=None):
        try:
            warnings = validate(item)
        except InvalidItem as exc:
            self.stats.inc_value(f"clipshoe/dropped/{exc.reason}")
            self.journal.reject(site=item.site, stage="crawl", reason=exc.reason,
                                product_id=item.product_id or None, url=item.url or None)
            raise DropItem(f"invalid item ({exc})") from exc
        for warning in warnings:
            self.stats.inc_value(f"clipshoe/warning/{warning}")
        return item


class ImageIndex:
    """Image URL -> the image stored from it (its `images` result) and when it was fetched.

    Scrapy's FilesPipeline keys its store by URL and re-reads a stored file to check
    it; this store is content-addressed, so the URL -> content record is kept here.
    SQLite because every site's crawl shares the store and may write side by side.
    Only stored images are recorded: a failed one is tried again by the next crawl."""

    def __init__(self, path: Path, max_age: timedelta):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_age = max_age
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None)  # autocommit: a kill loses nothing
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS images (url TEXT PRIMARY KEY, fetched_at TEXT NOT NULL, "
                        "result TEXT NOT NULL)")

    def fresh(self, url: str, now: datetime | None = None) -> dict[str, Any] | None:
        """The recorded result for `url` if fetched within the maximum age."""
        found = self.db.execute("SELECT fetched_at, result FROM images WHERE url = ?", (url,)).fetchone()
        if found is None or (now or datetime.now(timezone.utc)) - datetime.fromisoformat(found[0]) >= self.max_age:
            return None
        return json.loads(found[1])

    def record(self, result: dict[str, Any], fetched_at: str | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO images (url, fetched_at, result) VALUES (?, ?, ?)",
                        (result["url"], fetched_at or utc_now_iso(), json.dumps(result)))

    def close(self) -> None:
        self.db.close()


class ContentAddressedImagesPipeline(FilesPipeline):
    """Download `image_urls` into `<store>/<sha256[:2]>/<sha256>.<ext>`.

    The same picture listed by several products or sites is stored once. Each
    image gets a result in `images` (same order as `image_urls`): either
    `{url, status: "ok", path, sha256, bytes, width, height, format}` or
    `{url, status: "failed", reason}` — never silently missing.

    An image URL stored before is not downloaded again: the image index
    (CLIPSHOE_IMAGE_INDEX) gives its result back while it is younger than
    CLIPSHOE_IMAGE_MAX_AGE_DAYS and its file is still in the store (so a picture changed
    under the same URL is seen once its entry is that old). An item that comes with its
    `images` (a known row collected again, ShopSpider.product_request) goes through the
    same lookup: its stored images come back as they were, its failed ones are retried.
    """

    def __init__(self, store_uri, *, crawler=None, **kwargs):
        super().__init__(store_uri, crawler=crawler, **kwargs)
        settings = crawler.settings
        self.store_dir = Path(store_uri)
        self.max_bytes = settings.getint("CLIPSHOE_IMAGE_MAX_BYTES", defaults.CLIPSHOE_IMAGE_MAX_BYTES)
        self.min_side = settings.getint("CLIPSHOE_IMAGE_MIN_SIDE", defaults.CLIPSHOE_IMAGE_MIN_SIDE)
        self.journal = Journal.of(crawler)
        self.stats = crawler.stats
        index = settings.get("CLIPSHOE_IMAGE_INDEX")
        days = settings.getfloat("CLIPSHOE_IMAGE_MAX_AGE_DAYS", defaults.CLIPSHOE_IMAGE_MAX_AGE_DAYS)
        self.index = ImageIndex(Path(index), timedelta(days=days)) if index else None

    @classmethod
    def from_crawler(cls, crawler):
        store = crawler.settings.get("CLIPSHOE_IMAGES_STORE")
        if not store:
            raise ValueError("CLIPSHOE_IMAGES_STORE is empty: set it to the image store directory")
        return cls(store, crawler=crawler)

    def close_spider(self, spider=None):
        if self.index is not None:
            self.index.close()

    def get_media_requests(self, item, info):
        # A known row's images too: the index answers the stored ones without a request,
        # and the ones that failed last time are tried again.
        return [
            # CDN hosts are not the spider's allowed_domains: images are never offsite.
            Request(url, meta={MEDIA_META: True, "download_maxsize": self.max_bytes, "allow_offsite": True})
            for url in ItemAdapter(item).get("image_urls") or []
        ]

    def media_to_download(self, request, info, *, item=None):
        """The recorded result of an image fetched recently whose file is still stored,
        so no request is made; None: download it (the path is known only after)."""
        result = self.index.fresh(request.url) if self.index is not None else None
        if result is None or not (self.store_dir / result["path"]).exists():
            return None
        self.stats.inc_value(IMAGES_REUSED_STAT)
        return result

    async def media_downloaded(self, response: Response, request: Request, info, *, item=None) -> dict[str, Any]:
        failure = response.headers.get(FAILURE_HEADER)
        if failure:
            return _failed(request.url, failure.decode())
        block = detect_block(response)
        if block:
            return _failed(request.url, f"blocked_{block}")
        if response.status != 200:
            return _failed(request.url, f"http_{response.status}")
        return self.store_image(request.url, response.body)

    def store_image(self, url: str, body: bytes) -> dict[str, Any]:
        if not body:
            return _failed(url, "empty")
        if len(body) > self.max_bytes:
            return _failed(url, "too_large")
        try:
            with Image.open(io.BytesIO(body)) as image:
                width, height = image.size
                fmt = image.format or "unknown"
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            return _failed(url, "not_an_image")
        if _cut_short(fmt, body):
            return _failed(url, "corrupt")
        if min(width, height) < self.min_side:
            return _failed(url, "too_small")
        digest = hashlib.sha256(body).hexdigest()
        relative = f"{digest[:2]}/{digest}.{_EXTENSIONS.get(fmt, 'bin')}"
        write_once(self.store_dir / relative, body)
        result = {"url": url, "status": "ok", "path": relative, "sha256": digest, "bytes": len(body),
                  "width": width, "height": height, "format": fmt, "reason": None}
        if self.index is not None:
            self.index.record(result)
        return result

    def item_completed(self, results, item: ProductItem, info):
        by_url = {}
        for ok, result in results:
            if ok:
                by_url[result["url"]] = result
            else:  # a bug in our own code path, not a download failure: keep it visible
                logger.error("Image pipeline error: %s", result.getErrorMessage())
        kept = {image["url"]: image for image in item.images}
        images = []
        for url in item.image_urls:
            result = by_url.get(url) or kept.get(url) or _failed(url, "pipeline_error")
            images.append(result)
            if result["status"] == "ok":
                self.stats.inc_value(IMAGES_OK_STAT)
            else:
                self.stats.inc_value(f"{IMAGES_FAILED_PREFIX}{result['reason']}")
                self.journal.reject(site=item.site, stage="download", reason=result["reason"],
                                    product_id=item.product_id, url=item.url, image_url=url)
        item.images = images
        return item


def _failed(url: str, reason: str) -> dict[str, Any]:
    return {"url": url, "status": "failed", "path": None, "sha256": None, "bytes": None,
            "width": None, "height": None, "format": None, "reason": reason}


def _cut_short(fmt: str, body: bytes) -> bool:
    """A JPEG/PNG whose end marker is missing: cut short by the server or an upload.
    Pillow's verify() does not decode JPEG data, and a full decode belongs to curation."""
    tail = body[-64:]
    if fmt == "JPEG":
        return b"\xff\xd9" not in tail
    if fmt == "PNG":
        return b"IEND" not in tail
    return False


class JournalPipeline:
    """Last stage: drop repeats of a product (also across a resumed crawl) and append
    each kept item to the crash-safe journal, counting those kept from their listing
    entry alone, and its listing state for the next crawl (KnownProducts); record pages
    that failed for good."""

    def __init__(self, crawler):
        self.stats = crawler.stats
        self.journal = Journal.of(crawler)
        self.known = KnownProducts.of(crawler)
        self.seen: set[str] = set()
        crawler.signals.connect(self.record_failed_page, signal=page_failed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self, spider=None):
        self.seen = self.journal.collected_ids()
        self.stats.set_value(RESUMED_ITEMS_STAT, len(self.seen))

    def process_item(self, item: ProductItem, spider=None):
        if item.product_id in self.seen:
            self.stats.inc_value("clipshoe/dropped/duplicate")
            raise DropItem(f"duplicate product {item.site}:{item.product_id}")
        self.seen.add(item.product_id)
        self.journal.append_item(dataclasses.asdict(item))
        state = self.known.listing_state(item)
        if state is not None:
            self.journal.append_listing(state)
        self.stats.inc_value(ITEMS_STAT)
        if item.detail_unavailable:
            self.stats.inc_value(f"{DETAIL_UNAVAILABLE_PREFIX}{item.detail_unavailable}")
        return item

    def record_failed_page(self, site: str, url: str, reason: str, product_id: str | None) -> None:
        self.journal.reject(site=site, stage="crawl", reason=reason, product_id=product_id, url=url)
