"""Downloader/spider middlewares: polite retries with backoff, block handling, image
failures as recorded results, and malformed responses as counted retries instead of
crashes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.httpobj import urlparse_cached

from scrapers import settings as defaults
from scrapers.blocks import detect_block
from scrapers.interface import BLOCKED_GAVE_UP_STAT, BLOCKED_PREFIX, BLOCKED_STAT, FAILED_PAGES_PREFIX, PAGES_STAT
from scrapers.items import ProductItem
from scrapers.signals import page_failed

logger = logging.getLogger(__name__)

BACKOFF_META = "clipshoe_backoff_s"
MEDIA_META = "clipshoe_media"  # set on the image pipeline's requests
FAILURE_HEADER = b"X-Clipshoe-Download-Error"  # MediaFailureMiddleware's 599 names the failure here
PARSER_ERROR = "parser_error"  # the failed-page reason of a callback that raised anything but MalformedResponse
PRODUCT_ID_META = "clipshoe_product_id"  # set on detail-page requests (ShopSpider.product_request)
LISTING_KWARG = "listing"  # the detail callback's argument: the item its listing entry makes (ditto)
RETRY_AFTER_MAX = 600.0  # a server may ask for a long pause; honour it up to 10 minutes


class MalformedResponse(ValueError):
    """A response whose body is not what the endpoint promises (bad JSON, missing envelope)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class BlockedRequest(IgnoreRequest):
    """Still a block page after every retry."""

    def __init__(self, kind: str, url: str):
        super().__init__(f"blocked ({kind}) after retries: {url}")
        self.kind = kind


def failure_reason(exception: BaseException) -> str:
    """A short, stable reason for a request that failed for good."""
    if isinstance(exception, HttpError):
        return f"http_{exception.response.status}"
    if isinstance(exception, BlockedRequest):
        return f"blocked_{exception.kind}"
    name = type(exception).__name__
    if name == "DownloadCancelledError":  # our only cancellation: DOWNLOAD_MAXSIZE exceeded
        return "too_large"
    if isinstance(exception, IgnoreRequest):
        return "filtered"  # robots.txt, offsite, ...
    return {
        "DownloadTimeoutError": "timeout",
        "ResponseDataLossError": "truncated",
        "DownloadFailedError": "connection_failed",
        "DownloadConnectionRefusedError": "connection_refused",
        "CannotResolveHostError": "dns",
    }.get(name, f"error_{name}")


def listing_fallback(request: Request | None, reason: str) -> list[ProductItem]:
    """What is kept of a page that failed for good for `reason`: for a product page, the
    item its listing entry made, marked `detail_unavailable`; nothing for a listing page.
    Degrade, don't drop: the listing often holds a usable item (title, images, price),
    and validation still drops the ones that are not."""
    listing = request.cb_kwargs.get(LISTING_KWARG) if request is not None else None
    return [dataclasses.replace(listing, detail_unavailable=reason)] if isinstance(listing, ProductItem) else []


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware plus exponential backoff and block-page detection.

    Replaces the stock retry middleware (same slot, 550). A retried request waits
    `base * 2**(n-1)` seconds (jittered, capped, or the server's Retry-After) before
    it is sent again, and a 429 or block page also slows the whole domain down: its
    download slot's delay doubles, and eases back on each success. Block pages (see
    scrapers.blocks) are retried and counted under `clipshoe/blocked/*`; once retries
    run out an API request fails with BlockedRequest, so a block body is never parsed
    as an empty result (an image keeps its response: the image pipeline records it).
    """

    def __init__(self, settings):
        super().__init__(settings)
        self.backoff_base = settings.getfloat("CLIPSHOE_BACKOFF_BASE", defaults.CLIPSHOE_BACKOFF_BASE)
        self.backoff_max = settings.getfloat("CLIPSHOE_BACKOFF_MAX", defaults.CLIPSHOE_BACKOFF_MAX)
        self.base_delay = settings.getfloat("DOWNLOAD_DELAY", 0.0)

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        delay = request.meta.pop(BACKOFF_META, 0)
        if delay:
            await asyncio.sleep(delay)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None):
        if request.meta.get("dont_retry", False):
            return response
        block = detect_block(response)
        if block:
            stats = self.crawler.stats
            stats.inc_value(BLOCKED_STAT)
            stats.inc_value(f"{BLOCKED_PREFIX}{block}")
            self._slow_down(request)
            retry = self._retry(request, f"blocked:{block}")
            if retry is not None:
                return self._with_backoff(retry, response)
            stats.inc_value(BLOCKED_GAVE_UP_STAT)
            if request.meta.get(MEDIA_META):
                return response
            raise BlockedRequest(block, request.url)
        if response.status in self.retry_http_codes:
            if response.status in (429, 503):
                self._slow_down(request)
            retry = self._retry(request, f"http_{response.status}")
            return self._with_backoff(retry, response) if retry is not None else response
        self._ease_up(request)
        return response

    def process_exception(self, request: Request, exception: Exception, spider: Spider | None = None):
        retry = super().process_exception(request, exception)
        return self._with_backoff(retry, None) if isinstance(retry, Request) else retry

    def _with_backoff(self, retry: Request, response: Response | None) -> Request:
        attempt = retry.meta.get("retry_times", 1)
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay *= random.uniform(0.5, 1.0)  # jitter: retries of one burst must not align
        if response is not None:
            retry_after = response.headers.get(b"Retry-After")
            if retry_after and retry_after.isdigit():
                delay = min(RETRY_AFTER_MAX, float(retry_after))
        retry.meta[BACKOFF_META] = delay
        return retry

    def _slot(self, request: Request):
        key = request.meta.get("download_slot") or urlparse_cached(request).hostname
        return self.crawler.engine.downloader.slots.get(key)

    def _slow_down(self, request: Request) -> None:
        slot = self._slot(request)
        if slot is not None:
            slot.delay = min(self.backoff_max, max(slot.delay * 2, self.backoff_base))
            self.crawler.stats.inc_value("clipshoe/backoff/domain_slowdowns")

    def _ease_up(self, request: Request) -> None:
        slot = self._slot(request)
        if slot is not None and slot.delay > self.base_delay:
            slot.delay = max(self.base_delay, slot.delay * 0.9)


class MalformedResponseMiddleware:
    """Spider middleware: counts the pages that reach a callback and keeps a malformed
    body from crashing the crawl.

    A `MalformedResponse` (bad JSON, missing envelope: often a transient truncation) is
    retried; what still fails is counted and announced as a failed page, and a product
    page's item is kept from its listing entry (`listing_fallback`). Any other
    exception in a callback is a parser bug, not a shop's fault: it is counted and
    recorded as a `parser_error` failed page (so the crawl's failed-page check sees it)
    and then left to Scrapy, which logs it with its traceback as a spider error; it is
    never papered over with the listing's item.
    """

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_spider_input(self, response: Response, spider: Spider | None = None) -> None:
        self.crawler.stats.inc_value(PAGES_STAT)

    def process_spider_exception(self, response: Response, exception: Exception, spider: Spider | None = None):
        stats = self.crawler.stats
        request = response.request
        if isinstance(exception, MalformedResponse):
            stats.inc_value(f"clipshoe/malformed/{exception.reason}")
            retry = get_retry_request(request, spider=self.crawler.spider, reason=f"malformed:{exception.reason}",
                                      give_up_log_level="WARNING")
            if retry is not None:
                stats.inc_value(PAGES_STAT, -1)  # the retry counts the page again when it arrives
                return [retry]
            reason = f"malformed_{exception.reason}"
            self._announce_failure(response, reason)
            return listing_fallback(request, reason)
        callback = getattr(request.callback, "__name__", "parse") if request else "parse"
        stats.inc_value(f"clipshoe/parser_errors/{callback}/{type(exception).__name__}")
        self._announce_failure(response, PARSER_ERROR)
        return None

    def _announce_failure(self, response: Response, reason: str) -> None:
        request = response.request
        self.crawler.stats.inc_value(f"{FAILED_PAGES_PREFIX}{reason}")
        self.crawler.signals.send_catch_log(page_failed, site=self.crawler.spider.name, url=response.url,
                                            reason=reason,
                                            product_id=request.meta.get(PRODUCT_ID_META) if request else None)


class DetailPageCachePolicy(RFC2616Policy):
    """Scrapy's RFC 2616 cache policy for product pages only (ShopSpider.product_request
    marks them): a page stored with its ETag or Last-Modified is asked for again with
    If-None-Match / If-Modified-Since, and a 304 stands for the stored page. Listings
    must be fetched afresh (they are how a crawl learns what changed), images have their
    own index (CLIPSHOE_IMAGE_INDEX), and robots.txt is never worth storing."""

    def should_cache_request(self, request: Request) -> bool:
        if not request.meta.get(PRODUCT_ID_META):
            return False
        # A product page is only requested when it may have changed (KnownProducts), so a
        # stored copy is never served unasked, however fresh its headers call it: max-age=0
        # (what a browser's reload sends) makes the policy revalidate it with the shop.
        # Set before the policy first parses the request's Cache-Control (it caches that).
        request.headers.setdefault(b"Cache-Control", b"max-age=0")
        return super().should_cache_request(request)


class MediaFailureMiddleware:
    """Downloader middleware: an image download that still fails after retries comes
    back as a 599 response naming the failure, so the image pipeline records it per
    item with a reason instead of logging an anonymous error. API requests untouched."""

    def process_exception(self, request: Request, exception: Exception, spider=None):
        if not request.meta.get(MEDIA_META):
            return None
        return Response(request.url, status=599, headers={FAILURE_HEADER: failure_reason(exception)},
                        request=request)


class SessionMiddleware:
    """Downloader middleware: headers and cookies of a real browser session, per domain.

    Live Shopee, Lazada and Zalora answer plain clients with block pages; a session
    copied from a logged-in browser (cookies such as SPC_EC / x5sec / _px3, headers
    such as x-csrftoken) can get through for a while. Configure, e.g.:
    `-s 'CLIPSHOE_SESSIONS={"shopee.vn": {"headers": {"x-csrftoken": "…"}, "cookies": {"SPC_EC": "…"}}}'`.
    Shopee's per-request signed headers cannot be configured this way at all: they need
    a browser download handler (see README, "Live crawling").
    """

    def __init__(self, sessions: dict[str, dict]):
        self.sessions = sessions

    @classmethod
    def from_crawler(cls, crawler):
        from scrapy.exceptions import NotConfigured

        sessions = crawler.settings.getdict("CLIPSHOE_SESSIONS")
        if not sessions:
            raise NotConfigured
        return cls(sessions)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        host = urlparse_cached(request).hostname or ""
        for domain, session in self.sessions.items():
            if host == domain or host.endswith("." + domain):
                for name, value in (session.get("headers") or {}).items():
                    request.headers.setdefault(name, value)
                if isinstance(request.cookies, dict):
                    for name, value in (session.get("cookies") or {}).items():
                        request.cookies.setdefault(name, value)
