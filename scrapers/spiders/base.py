"""What every shop spider shares: category configuration, page/item caps, resume
skipping, skipping the pages of products unchanged since the last crawl, strict JSON
loading, and keeping a product whose page failed for good from
its listing entry. Site spiders implement `listing_request` and their parse
callbacks; they never store anything."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.http import Response

from scrapers.interface import DETAILS_SKIPPED_STAT, DETAILS_STALE_STAT, FAILED_PAGES_PREFIX, PAGES_STAT
from scrapers.items import ProductItem
from scrapers.journal import Journal, KnownProducts
from scrapers.middlewares import LISTING_KWARG, PRODUCT_ID_META, MalformedResponse, failure_reason, listing_fallback
from scrapers.signals import page_failed
from scrapers.replay import REPLAY_PACE, replay_base


class ShopSpider(scrapy.Spider):
    #: category keys (ids or slugs) crawled when none are given; see docs/sites.md
    default_categories: tuple[str, ...] = ()

    def __init__(self, categories: str | None = None, max_pages: str | int | None = None,
                 max_items: str | int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._categories_arg = categories
        self._max_pages_arg = max_pages
        self._max_items_arg = max_items
        self.products_requested = 0
        self.requested_ids: set[str] = set()
        self.already_collected: set[str] = set()

    @classmethod
    def update_settings(cls, settings) -> None:
        super().update_settings(settings)
        if replay_base(settings):
            settings.setdict(REPLAY_PACE, priority="spider")

    # -- configuration --------------------------------------------------------
    @property
    def categories(self) -> list[str]:
        """`-a categories=a,b`, else the site's default categories."""
        if self._categories_arg:
            return [c.strip() for c in str(self._categories_arg).split(",") if c.strip()]
        return list(self.default_categories)

    @property
    def max_pages(self) -> int:
        """`-a max_pages=N`: listing pages per category; 0 or unset: no limit."""
        return int(self._max_pages_arg or 0)

    @property
    def max_items(self) -> int:
        """`-a max_items=N`: products per crawl; 0 or unset: no limit."""
        return int(self._max_items_arg or 0)

    # -- crawl control ----------------------------------------------------------
    async def start(self) -> AsyncIterator[scrapy.Request]:
        # Resume: products already in the journal are not fetched again.
        self.already_collected = Journal.of(self.crawler).collected_ids()
        for category in self.categories:
            yield self._reported(self.listing_request(category, 1))

    def listing_request(self, category: str, page: int) -> scrapy.Request:
        raise NotImplementedError

    def wants_page(self, page: int) -> bool:
        return not self.max_pages or page <= self.max_pages

    def wants_product(self, product_id: Any) -> bool:
        """False for products already requested in this crawl (a product listed in two
        categories), already collected (resume) or past the item cap."""
        if product_id is None:
            return False
        key = str(product_id)
        if key in self.requested_ids:
            return False
        if key in self.already_collected:
            self.crawler.stats.inc_value("clipshoe/skipped/already_collected")
            self.requested_ids.add(key)
            return False
        if self.max_items and self.products_requested >= self.max_items:
            return False
        self.requested_ids.add(key)
        self.products_requested += 1
        return True

    def next_listing(self, category: str, page: int, has_more: bool) -> list[scrapy.Request]:
        """The next listing page, if the listing says there is one and caps allow.
        Stops at the item cap too, so a capped crawl ends promptly."""
        if not has_more or not self.wants_page(page + 1):
            return []
        if self.max_items and self.products_requested >= self.max_items:
            return []
        return [self._reported(self.listing_request(category, page + 1))]

    def product_request(self, url: str, listing: ProductItem, **kwargs: Any) -> scrapy.Request | ProductItem:
        """A detail-page request for the product a listing entry shows, or the product's
        known row when its page need not be read again (KnownProducts: listing entry
        unchanged since a full read younger than CLIPSHOE_DETAIL_MAX_AGE_DAYS); either is
        yielded as it comes. `listing` is the item that entry alone makes; the callback
        gets it as `listing` and completes it from the page. Should the page fail for good
        (HTTP error, block or malformed body after retries), it is counted as a failed
        page and `listing` is kept in its stead, marked with the reason: a listing usually
        holds a usable item, and validation still drops the ones without a title or an image."""
        known = KnownProducts.of(self.crawler)
        entry = known.unchanged(listing)
        if entry is not None:
            if not known.stale(entry):
                self.crawler.stats.inc_value(DETAILS_SKIPPED_STAT)
                return known.item(entry)
            self.crawler.stats.inc_value(DETAILS_STALE_STAT)
        request = scrapy.Request(url, errback=self.on_request_failed, cb_kwargs={LISTING_KWARG: listing}, **kwargs)
        request.meta[PRODUCT_ID_META] = listing.product_id
        return request

    def _reported(self, request: scrapy.Request) -> scrapy.Request:
        if request.errback is None:
            request.errback = self.on_request_failed
        return request

    def on_request_failed(self, failure) -> list[ProductItem]:
        """Errback: a page that failed for good (HTTP error after retries, block,
        timeout...) is announced, so it is counted and recorded, never silently lost;
        a product page's listing item is kept in its stead (`product_request`).
        Storage listens to the signal and stores the item; the spider only reports."""
        request = failure.request
        reason = failure_reason(failure.value)
        # Such a page never reaches a callback, where the parser middleware counts pages.
        self.crawler.stats.inc_value(PAGES_STAT)
        self.crawler.stats.inc_value(f"{FAILED_PAGES_PREFIX}{reason}")
        self.crawler.signals.send_catch_log(page_failed, site=self.name, url=request.url, reason=reason,
                                            product_id=request.meta.get(PRODUCT_ID_META))
        return listing_fallback(request, reason)

    # -- parsing helpers ----------------------------------------------------------
    @staticmethod
    def load_json(response: Response) -> Any:
        """The JSON body, or MalformedResponse (retried, then counted)."""
        try:
            return json.loads(response.body)
        except ValueError as exc:
            raise MalformedResponse("json", f"{response.url}: {exc}") from exc

    @staticmethod
    def entries(container: Any, key: str) -> list[dict[str, Any]]:
        """`container[key]` as a list of dicts; a missing/non-list envelope is malformed.
        Non-dict entries are dropped (counted by the caller via their absence)."""
        if not isinstance(container, dict) or not isinstance(container.get(key), list):
            raise MalformedResponse("envelope", f"expected a list under {key!r}")
        return [e for e in container[key] if isinstance(e, dict)]
