"""`scrapy crawl` that exits non-zero when the crawl collected nothing or stopped early.

Scrapy's own command exits 0 whatever happened, so a shop that blocked us
throughout would look like a successful, empty crawl to any script or scheduler.
The verdict comes from scrapers.extensions.CrawlVerdict.
"""

from __future__ import annotations

import sys

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from scrapers.interface import BLOCKED, EMPTY, PARTIAL, VERDICT_STAT

EXIT_BLOCKED = 3
EXIT_EMPTY = 4
EXIT_PARTIAL = 5


class Command(ScrapyCrawlCommand):
    def run(self, args, opts):
        if len(args) != 1:
            raise UsageError("give exactly one spider: scrapy crawl <spider>")
        site = args[0]
        # Created here, through the runner's public factory, to read its stats at the end.
        crawler = self.crawler_process.create_crawler(site)
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = 1
            return
        verdict = crawler.stats.get_value(VERDICT_STAT)
        if verdict == BLOCKED:
            print(f"crawl failed: {site} blocked every request (see the log above)", file=sys.stderr)
            self.exitcode = EXIT_BLOCKED
        elif verdict == EMPTY:
            print(f"crawl failed: {site} collected no items (see the log above)", file=sys.stderr)
            self.exitcode = EXIT_EMPTY
        elif verdict == PARTIAL:
            print(f"crawl incomplete: {site} stopped early; rerun with the same JOBDIR to finish",
                  file=sys.stderr)
            self.exitcode = EXIT_PARTIAL
