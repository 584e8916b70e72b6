"""The replay switch: one setting sends every request to a loopback shop.

With the Scrapy setting `CLIPSHOE_REPLAY_URL=http://127.0.0.1:PORT` (passed by the crawl
command, scrapers.interface.crawl_command; empty by default: the live sites),
`https://HOST/PATH?QUERY` goes on the wire as `http://127.0.0.1:PORT/HOST/PATH?QUERY`.
The rewrite happens inside the download handler, so everything above it — the
scheduler, dupefilter, robots.txt, per-domain slots, the spiders and the items —
sees only the real URLs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from scrapy import Request
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler
from scrapy.http import Response

SETTING = "CLIPSHOE_REPLAY_URL"

# Pacing for the loopback shop: politeness delays protect real shops, not our own
# server, and tests/demos should not wait on them. Applied at spider priority when
# replay is on, so `-s` on the command line still wins.
REPLAY_PACE = {
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "CONCURRENT_REQUESTS": 64,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
    "CLIPSHOE_BACKOFF_BASE": 0.02,
    "CLIPSHOE_BACKOFF_MAX": 0.5,
    "DOWNLOAD_TIMEOUT": 10,
}


def replay_base(settings) -> str | None:
    """The replay base URL from the Scrapy setting, or None when replay is off."""
    base = (settings.get(SETTING) or "").strip().rstrip("/")
    if not base:
        return None
    if urlsplit(base).scheme not in ("http", "https"):
        raise ValueError(f"{SETTING} must look like http://127.0.0.1:PORT, got {base!r}")
    return base


def to_replay(url: str, base: str) -> str:
    """`https://HOST/PATH?Q` -> `BASE/HOST/PATH?Q` (fragment dropped, as on the wire)."""
    parts = urlsplit(url)
    wire = f"{base}/{parts.netloc}{parts.path or '/'}"
    return f"{wire}?{parts.query}" if parts.query else wire


class ReplayDownloadHandler(HTTP11DownloadHandler):
    """HTTP(S) handler that rewrites to the replay shop when it is configured."""

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self._base = replay_base(crawler.settings)

    async def download_request(self, request: Request) -> Response:
        if self._base is None:
            return await super().download_request(request)
        wire = request.replace(url=to_replay(request.url, self._base))
        response = await super().download_request(wire)
        return response.replace(url=request.url)
