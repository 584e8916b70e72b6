"""`scrapy crawl` that exits non-zero when the crawl collected nothing or stopped early.

Scrapy's own command exits 0 whatever happened, so a shop that blocked us
throughout would look like a successful, empty crawl to any script or scheduler.
The verdict comes from scrapers.extensions.CrawlVerdict.
"""

from __future__ import annotations

import sys

from scrapy.commands.crawl import Command as ScrapyCrawlCommand

EXIT_BLOCKED = 3
EXIT_EMPTY = 4
EXIT_PARTIAL = 5


class Command(ScrapyCrawlCommand):
    def run(self, args, opts):
        created = []
        original = self._create_crawler

        def remember(spname):
            crawler = original(spname)
            created.append(crawler)
            return crawler

        self._create_crawler = remember
        super().run(args, opts)
        if self.exitcode or not created or created[0].stats is None:
            return
        verdict = created[0].stats.get_value("clipshoe/verdict")
        if verdict == "blocked":
            print(f"crawl failed: {args[0]} blocked every request (see the log above)", file=sys.stderr)
            self.exitcode = EXIT_BLOCKED
        elif verdict == "empty":
            print(f"crawl failed: {args[0]} collected no items (see the log above)", file=sys.stderr)
            self.exitcode = EXIT_EMPTY
        elif verdict == "partial":
            print(f"crawl incomplete: {args[0]} stopped early; rerun with the same JOBDIR to finish",
                  file=sys.stderr)
            self.exitcode = EXIT_PARTIAL
