"""Downloader/spider middlewares: polite retries with backoff, block handling,
and turning malformed responses into counted retries instead of crashes."""

from __future__ import annotations

import asyncio
import logging
import random

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from scrapers.blocks import detect_block
from scrapers.journal import Journal

logger = logging.getLogger(__name__)

BACKOFF_META = "clipshoe_backoff_s"


class MalformedResponse(ValueError):
    """A response whose body is not what the endpoint promises (bad JSON, missing envelope)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware plus exponential backoff and block-page detection.

    Replaces the stock retry middleware (same slot, 550). A retried request waits
    `base * 2**(n-1)` seconds (jittered, capped, or the server's Retry-After) before
    it is sent again. Block pages (see scrapers.blocks) are retried the same way and
    counted under `clipshoe/blocked/*`; once retries run out the request is ignored,
    so a block body is never parsed as an empty result.
    """

    def __init__(self, settings):
        super().__init__(settings)
        self.backoff_base = settings.getfloat("CLIPSHOE_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("CLIPSHOE_BACKOFF_MAX", 60.0)

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
            stats.inc_value("clipshoe/blocked/count")
            stats.inc_value(f"clipshoe/blocked/{block}")
            retry = self._retry(request, f"blocked:{block}")
            if retry is not None:
                return self._with_backoff(retry, response)
            stats.inc_value("clipshoe/blocked/gave_up")
            raise IgnoreRequest(f"blocked ({block}) after retries: {request.url}")
        if response.status in self.retry_http_codes:
            retry = self._retry(request, f"http_{response.status}")
            return self._with_backoff(retry, response) if retry is not None else response
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
                delay = min(self.backoff_max, float(retry_after))
        retry.meta[BACKOFF_META] = delay
        return retry


class MalformedResponseMiddleware:
    """Spider middleware: a callback that hits a malformed body or an unexpected shape
    does not crash the crawl. Malformed bodies are retried (they are often transient
    truncations); shape errors are counted per callback and recorded as rejections."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.journal = Journal.from_settings(crawler.settings)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_spider_exception(self, response: Response, exception: Exception, spider: Spider | None = None):
        stats = self.crawler.stats
        spider = self.crawler.spider
        callback = getattr(response.request.callback, "__name__", "parse") if response.request else "parse"
        if isinstance(exception, MalformedResponse):
            stats.inc_value(f"clipshoe/malformed/{exception.reason}")
            retry = get_retry_request(
                response.request, spider=spider, reason=f"malformed:{exception.reason}", give_up_log_level="WARNING"
            )
            if retry is not None:
                return [retry]
            reason = f"malformed_{exception.reason}"
        elif isinstance(exception, (KeyError, TypeError, ValueError, AttributeError, IndexError)):
            reason = f"unexpected_shape:{callback}"
            logger.warning("Unexpected response shape in %s for %s: %r", callback, response.url, exception)
        else:
            return None
        stats.inc_value(f"clipshoe/failed_pages/{reason}")
        self.journal.reject(site=spider.name, stage="crawl", reason=reason, url=response.url)
        return []
