"""Live crawl progress in Dagster, when the crawl runs under Dagster Pipes.

The `raw_products` asset runs `scrapy crawl` in a subprocess through Dagster Pipes and
sends Scrapy's own log to a file. This extension opens the Pipes channel and streams
into the run's log, every CLIPSHOE_PIPES_INTERVAL seconds, a progress line (items,
requests, retries, blocked pages, images), each ERROR record of the crawl (the first
CLIPSHOE_PIPES_MAX_ERRORS of them: a broken site must not flood the event log), and a
summary at the end.

Without the Pipes environment (a plain `scrapy crawl`, tests) it is not configured
and changes nothing. The final numbers the asset records come from `stats.json`
(scrapers.extensions.CrawlVerdict), which is written with or without Pipes.
"""

from __future__ import annotations

import logging
import os

from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, PipesContext, open_dagster_pipes
from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from scrapers import settings as defaults
from scrapers.interface import BLOCKED_STAT, IMAGES_FAILED_PREFIX, IMAGES_OK_STAT, VERDICT_STAT, items_collected


class PipesReporter:
    def __init__(self, crawler, pipes: PipesContext, interval: float, max_errors: int):
        self.stats = crawler.stats
        self.pipes = pipes
        self.interval = interval
        self.error_forwarder = _ErrorForwarder(pipes, max_errors)
        self.task = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        if DAGSTER_PIPES_CONTEXT_ENV_VAR not in os.environ:
            raise NotConfigured  # no message: Scrapy would log one as a warning on every plain crawl
        settings = crawler.settings
        return cls(crawler, open_dagster_pipes(),
                   settings.getfloat("CLIPSHOE_PIPES_INTERVAL", defaults.CLIPSHOE_PIPES_INTERVAL),
                   settings.getint("CLIPSHOE_PIPES_MAX_ERRORS", defaults.CLIPSHOE_PIPES_MAX_ERRORS))

    def spider_opened(self, spider):
        logging.getLogger().addHandler(self.error_forwarder)
        self.pipes.log.info(f"crawl of {spider.name} started")
        self.task = create_looping_call(self.report_progress)
        self.task.start(self.interval, now=False)

    def report_progress(self, prefix: str = "progress") -> None:
        self.pipes.log.info(f"{prefix}: {progress_line(self.stats.get_stats())}")

    def spider_closed(self, spider, reason):
        if self.task and self.task.running:
            self.task.stop()
        logging.getLogger().removeHandler(self.error_forwarder)
        verdict = self.stats.get_value(VERDICT_STAT, "?")
        self.report_progress(f"crawl of {spider.name} finished ({reason}, verdict {verdict})")
        self.pipes.close()


def progress_line(stats: dict) -> str:
    """One line of the counters that tell whether a crawl is healthy."""
    images_failed = sum(v for k, v in stats.items() if k.startswith(IMAGES_FAILED_PREFIX))
    return (f"items={items_collected(stats)} requests={stats.get('downloader/request_count', 0)} "
            f"retries={stats.get('retry/count', 0)} blocked={stats.get(BLOCKED_STAT, 0)} "
            f"images_ok={stats.get(IMAGES_OK_STAT, 0)} images_failed={images_failed}")


class _ErrorForwarder(logging.Handler):
    """Copies the crawl's ERROR records into the Dagster run log, up to a cap."""

    def __init__(self, pipes: PipesContext, max_errors: int):
        super().__init__(level=logging.ERROR)
        self.pipes = pipes
        self.remaining = max_errors

    def emit(self, record: logging.LogRecord) -> None:
        if self.remaining <= 0:
            return
        self.remaining -= 1
        suffix = " (further errors only in crawl.log)" if self.remaining == 0 else ""
        self.pipes.log.error(f"{record.name}: {record.getMessage()}{suffix}")
