"""Scrapy settings for the CLIP Shoe crawlers: the politeness policy first.

Live shops are crawled slowly and considerately: robots.txt obeyed, AutoThrottle,
few concurrent requests per domain, retries with exponential backoff on 429/5xx,
timeouts and block pages. Tests and benchmarks relax the pacing explicitly
(`-s` overrides) when they talk to the loopback replay shop.
"""


BOT_NAME = "clipshoe"
SPIDER_MODULES = ["scrapers.spiders"]
NEWSPIDER_MODULE = "scrapers.spiders"
COMMANDS_MODULE = "scrapers.commands"  # `crawl` exits non-zero on a blocked/empty crawl

# --- Politeness -------------------------------------------------------------
ROBOTSTXT_OBEY = True
USER_AGENT = "clipshoe-research-crawler (+https://github.com/clipshoe/clipshoe)"
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.5
# Scrapy randomises the delay by ±50% by default (DOWNLOAD_DELAY_JITTER from 2.19;
# setting the older RANDOMIZE_DOWNLOAD_DELAY now only prints a deprecation warning).
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_TIMEOUT = 30
DEFAULT_REQUEST_HEADERS = {
    "Accept": "application/json, text/html;q=0.9, */*;q=0.8",
    "Accept-Language": "vi-VN,vi;q=0.9,en;q=0.8",
}

# --- Retries with backoff, block pages ---------------------------------------
RETRY_ENABLED = True
RETRY_TIMES = 5
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
CLIPSHOE_BACKOFF_BASE = 1.0  # seconds; doubles per attempt, jittered, capped
CLIPSHOE_BACKOFF_MAX = 60.0
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "scrapers.middlewares.BackoffRetryMiddleware": 550,
    # Below retry: sees an image failure only once retries are exhausted.
    "scrapers.middlewares.MediaFailureMiddleware": 540,
    # Before Scrapy's CookiesMiddleware (700), which turns request.cookies into a header.
    "scrapers.middlewares.SessionMiddleware": 450,
}
# Browser-session headers/cookies per domain for live crawls (see SessionMiddleware).
CLIPSHOE_SESSIONS: dict[str, dict] = {}
SPIDER_MIDDLEWARES = {
    "scrapers.middlewares.MalformedResponseMiddleware": 550,
}

# --- The replay switch (see scrapers/replay.py) -------------------------------
CLIPSHOE_REPLAY_URL = ""  # e.g. http://127.0.0.1:8765; empty: the live sites
DOWNLOAD_HANDLERS = {
    "http": "scrapers.replay.ReplayDownloadHandler",
    "https": "scrapers.replay.ReplayDownloadHandler",
}

# --- Storage -----------------------------------------------------------------
# The crawl command passes the data dir's image store; this is for a bare `scrapy crawl`.
CLIPSHOE_IMAGES_STORE = "data/images"
CLIPSHOE_IMAGE_MAX_BYTES = 10 * 1024 * 1024  # larger bodies are cancelled mid-download
CLIPSHOE_IMAGE_MIN_SIDE = 80  # pixels; thumbnails and tracking pixels are useless for CLIP

# --- Incremental recrawls: nothing fetched twice without need ------------------
# The image index (SQLite: image URL -> the stored image and when it was fetched), shared
# by every site's crawl; the crawler resource passes the data dir's. Empty: every image
# is downloaded. An entry older than the maximum age is fetched again (a CDN may reuse a URL).
CLIPSHOE_IMAGE_INDEX = ""
CLIPSHOE_IMAGE_MAX_AGE_DAYS = 30
# The site's products as the last crawl left them (JSON lines, scrapers.journal.KnownProducts),
# written by the raw_products asset before the crawl. Empty: every product page is read.
# A product whose listing entry is unchanged skips its page unless its last full read is
# older than the maximum age (descriptions and attributes change without the listing showing it).
CLIPSHOE_KNOWN_PRODUCTS = ""
CLIPSHOE_DETAIL_MAX_AGE_DAYS = 7
# Product pages that are read are asked for conditionally where the shop sent validators
# (ETag, Last-Modified); only they are cached (DetailPageCachePolicy). Off for a bare
# `scrapy crawl`: the crawler resource turns it on with HTTPCACHE_DIR under the data dir.
HTTPCACHE_ENABLED = False
HTTPCACHE_POLICY = "scrapers.middlewares.DetailPageCachePolicy"
ITEM_PIPELINES = {
    "scrapers.pipelines.ValidationPipeline": 100,
    "scrapers.pipelines.ContentAddressedImagesPipeline": 500,
    "scrapers.pipelines.JournalPipeline": 900,
}
EXTENSIONS = {
    "scrapers.extensions.ResumeGuard": 0,
    "scrapers.extensions.CrawlVerdict": 10,
    "scrapers.pipes.PipesReporter": 20,  # only active under Dagster Pipes
}
CLIPSHOE_PIPES_INTERVAL = 10.0  # seconds between progress lines in the Dagster run log
CLIPSHOE_PIPES_MAX_ERRORS = 20  # crawl errors forwarded to the run log, then only counted
# Fail fast on HTTP bodies cut short: they are retried, never parsed.
DOWNLOAD_FAIL_ON_DATALOSS = True

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
