"""Crawl-level extensions: crash-safe resume and an honest verdict at the end."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from scrapy import signals
from scrapy.exceptions import NotConfigured

from clipshoe_common.files import write_json_atomic
from scrapers.interface import (BLOCKED, BLOCKED_STAT, EMPTY, OK, PARTIAL, STATS_FILE, VERDICT_STAT, block_reasons,
                                items_collected)
from scrapers.journal import Journal

logger = logging.getLogger(__name__)

RUNNING_MARKER = "crawl.running"
# What Scrapy keeps in JOBDIR; only consistent after a clean stop.
_SCRAPY_STATE = ("requests.queue", "requests.seen", "spider.state")


class ResumeGuard:
    """Makes JOBDIR resumption safe after a hard kill, and a JOBDIR single-use.

    Scrapy persists its request queue and seen-set on a clean stop (Ctrl-C once).
    After SIGKILL/OOM they are stale and would silently drop requests that were in
    flight. This extension runs before the scheduler opens and holds an exclusive
    lock on `crawl.running` for the whole crawl: a second crawl of the same JOBDIR is
    refused; a marker left behind by a dead crawl (no lock held) means an unclean
    stop, so Scrapy's state is discarded, the spider re-walks the listings, and the
    journal (flushed item by item) tells it what to skip.
    """

    def __init__(self, jobdir: Path, crawler):
        jobdir.mkdir(parents=True, exist_ok=True)
        marker = jobdir / RUNNING_MARKER
        stale = marker.exists()
        self.lock = marker.open("a+")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.close()
            raise RuntimeError(f"another crawl is running in {jobdir} (pid {marker.read_text().strip() or '?'})")
        self.marker = marker
        if stale:
            self._discard_scrapy_state(jobdir, crawler)
        self.lock.seek(0)
        self.lock.truncate()
        self.lock.write(str(os.getpid()))
        self.lock.flush()
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @staticmethod
    def _discard_scrapy_state(jobdir: Path, crawler) -> None:
        collected = len(Journal.of(crawler).collected_ids())
        logger.warning(
            "Previous crawl in %s stopped uncleanly; discarding Scrapy's queue and seen-set, "
            "re-walking listings, skipping %d products already journaled", jobdir, collected)
        crawler.stats.set_value("clipshoe/recovered_from_crash", 1)
        for name in _SCRAPY_STATE:
            path = jobdir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    @classmethod
    def from_crawler(cls, crawler):
        jobdir = crawler.settings.get("JOBDIR")
        if not jobdir:
            raise NotConfigured
        return cls(Path(jobdir), crawler)

    def spider_closed(self, spider, reason):
        # A graceful shutdown (first Ctrl-C) leaves Scrapy's state consistent.
        self.marker.unlink(missing_ok=True)
        self.lock.close()


class CrawlVerdict:
    """At close: turn 'finished with 0 items because every page was blocked' into a
    loud failure (`clipshoe/verdict` = `blocked`; also `empty`, `partial` for a crawl
    stopped early, else `ok`), and write the final stats to
    `stats.json` in the job directory for the orchestrator to read."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.jobdir = crawler.settings.get("JOBDIR")
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def spider_closed(self, spider, reason):
        stats = self.crawler.stats
        items = items_collected(stats.get_stats())
        blocked = stats.get_value(BLOCKED_STAT) or 0
        verdict = OK
        if items == 0 and blocked:
            verdict = BLOCKED
            logger.error(
                "Crawl of %s collected nothing: %d responses were block pages (%s). The site is "
                "refusing this client; see README 'Live crawling' for cookies/headers or a browser handler.",
                spider.name, blocked, _block_reasons(stats.get_stats()),
            )
        elif items == 0:
            verdict = EMPTY
            logger.error("Crawl of %s collected no items (finish reason %s)", spider.name, reason)
        elif reason != "finished":
            # Stopped early (signal, CLOSESPIDER_*): the journal holds a part of the shop,
            # which must not replace a complete snapshot. Resume to finish it.
            verdict = PARTIAL
            logger.error("Crawl of %s stopped early (finish reason %s) after %d items; run it again "
                         "with the same JOBDIR to finish", spider.name, reason, items)
        stats.set_value(VERDICT_STAT, verdict)
        if self.jobdir:
            write_json_atomic(Path(self.jobdir) / STATS_FILE, stats.get_stats())


def _block_reasons(stats: dict) -> str:
    return ", ".join(f"{kind}={count}" for kind, count in block_reasons(stats).items()) or "unknown"
