"""How the crawl layer launches Scrapy.

Scrapy's Twisted reactor cannot be restarted inside a process, so every crawl is a
child process (`scrapy crawl <site>` from the repository root, built by
scrapers.interface.crawl_command; Scrapy settings reach it only as `-s` flags there)
launched through Dagster Pipes: the crawl streams its
progress into the run's log (scrapers.pipes.PipesReporter) and an interrupted run
forwards SIGINT, which Scrapy answers with a clean stop that keeps JOBDIR resumable.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from clipshoe_common import PROJECT_ROOT
from clipshoe_pipeline.paths import DataPaths
from clipshoe_pipeline.settings import REPLAY_URL, env_var_if_set
from scrapers.interface import crawl_command


class ScrapyCrawler(dg.ConfigurableResource):
    """Launches one site's crawl as a Pipes subprocess and waits for it.

    Where requests go: `replay_url` (e.g. http://127.0.0.1:8765, the replay shop;
    default $CLIPSHOE_REPLAY_URL when set), passed to the crawl as the Scrapy setting of
    the same name; None: the live sites. Pacing needs no setting here: with a replay URL
    the spiders drop the politeness delays themselves (scrapers.replay.REPLAY_PACE),
    and live crawls keep the polite defaults of scrapers/settings.py.
    """

    replay_url: str | None = Field(
        default=None, description=f"Replay shop base URL; None: the live sites. Default: ${REPLAY_URL} when set.")
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="Scrapy settings (`-s NAME=VALUE`) for every crawl, e.g. {'DOWNLOAD_DELAY': '2'} "
                    "for a gentler live crawl or {'CLIPSHOE_PIPES_INTERVAL': '2'} for more frequent progress lines "
                    "in the run log.")

    def crawl(self, context: dg.AssetExecutionContext, site: str, paths: DataPaths, *,
              settings: Mapping[str, str], spider_args: Mapping[str, object]) -> None:
        """Run the crawl to its end; raises if it exits non-zero (a blocked or empty
        crawl does too; see scrapers.commands.crawl)."""
        log_file = paths.crawl_log(site)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        command = crawl_command(
            site, jobdir=paths.crawl_jobdir(site), images_dir=paths.images, replay_url=self.replay_url,
            settings={
                # Scrapy's log goes to a file, whose tail explains a failure; the run log
                # gets the Pipes progress lines instead of every request.
                "LOG_FILE": log_file, "LOG_FILE_APPEND": False,
                # Incremental recrawls: images and product pages fetched before are not
                # fetched again without need (scrapers/settings.py).
                "CLIPSHOE_IMAGE_INDEX": paths.image_index,
                "HTTPCACHE_ENABLED": True, "HTTPCACHE_DIR": paths.http_cache,
                **self.settings, **settings,
            },
            spider_args=spider_args,
        )
        context.log.info(f"crawling {site}: {' '.join(map(str, command))}")
        dg.PipesSubprocessClient(cwd=str(PROJECT_ROOT)).run(command=command, context=context)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"crawler": ScrapyCrawler(replay_url=env_var_if_set(REPLAY_URL))})
