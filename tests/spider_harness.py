"""Helpers the spider tests share: building a spider, dressing a body as the
response to a request, running callbacks, the pipelines that keep items, a stand-in
catalog, a synchronous crawl through a replay renderer, comparing what came out with
what was rendered, and locating the real recorded bodies, when present."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import scrapy
from scrapy.exceptions import DropItem
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.utils.test import get_crawler

from replay_shop.records import ShopImage, ShopProduct
from replay_shop.sites.protocol import ShopReply, ShopRequest
from scrapers.items import ProductItem, validate
from scrapers.middlewares import MalformedResponse, MalformedResponseMiddleware
from scrapers.pipelines import JournalPipeline, ValidationPipeline
from scrapers.text import clean_str, html_to_text, unique

FIXTURES = Path(__file__).resolve().parent / "fixtures"
JSON = "application/json"
HTML = "text/html; charset=utf-8"


# -- spiders, responses, callbacks --------------------------------------------------
def make_spider(spider_class: type[scrapy.Spider], settings: dict | None = None, **kwargs) -> scrapy.Spider:
    crawler = get_crawler(spider_class, settings or {})
    crawler.spider = spider_class.from_crawler(crawler, **kwargs)  # as crawl() would set it
    return crawler.spider


def response_for(request: scrapy.Request, body: bytes | str, status: int = 200, *,
                 content_type: str | None = None, html: bool = False) -> TextResponse:
    """The response to `request` (real URL, request attached), as the downloader would
    hand it over; an HtmlResponse when `html` or the content type is HTML."""
    body = body.encode("utf-8") if isinstance(body, str) else body
    cls = HtmlResponse if html or (content_type or "").startswith("text/html") else TextResponse
    headers = {"Content-Type": content_type} if content_type else None
    return cls(request.url, body=body, status=status, encoding="utf-8", request=request, headers=headers)


def results_of(request: scrapy.Request, response: Response) -> list:
    return list(request.callback(response, **request.cb_kwargs))


def run_callback(request: scrapy.Request, body: bytes | str, **response_kwargs) -> list:
    return results_of(request, response_for(request, body, **response_kwargs))


def split(results: list) -> tuple[list[scrapy.Request], list[ProductItem]]:
    return ([r for r in results if isinstance(r, scrapy.Request)],
            [r for r in results if isinstance(r, ProductItem)])


def assert_malformed_body_is_retried(spider: scrapy.Spider, request: scrapy.Request, body: bytes) -> None:
    """The callback rejects `body` and the middleware retries the same URL, counted."""
    response = response_for(request, body)
    with pytest.raises(MalformedResponse) as exc:
        results_of(request, response)
    retry = MalformedResponseMiddleware(spider.crawler).process_spider_exception(response, exc.value, spider)
    assert [r.url for r in retry] == [request.url]
    assert spider.crawler.stats.get_value("clipshoe/malformed/json") == 1


class Storage:
    """The crawl's validation and journal pipelines (no image downloads) on a spider's
    crawler; made before the spider runs, so the journal hears its failed pages too."""

    def __init__(self, spider: scrapy.Spider):
        self.pipelines = (ValidationPipeline(spider.crawler), JournalPipeline(spider.crawler))

    def keep(self, results: Iterable) -> list[ProductItem]:
        """The items among `results` that pass every pipeline."""
        kept = []
        for item in (r for r in results if isinstance(r, ProductItem)):
            try:
                for pipeline in self.pipelines:
                    item = pipeline.process_item(item)
            except DropItem:
                continue
            kept.append(item)
        return kept


# -- fixtures ---------------------------------------------------------------------
def fixture(site: str, name: str) -> bytes:
    """The bytes of our own fixture tests/fixtures/<site>/<name>."""
    return (FIXTURES / site / name).read_bytes()


# -- the replay side ------------------------------------------------------------------
class FakeCatalog:
    """Just the part of replay_shop.catalog.Catalog a renderer uses, over hand-made records."""

    seed = 0

    def __init__(self, products: Iterable[ShopProduct]):
        self.products = list(products)

    def listing(self, site: str, category: str) -> list[ShopProduct]:
        return [p for p in self.products if p.site == site and p.category == category]

    def product(self, site: str, product_id: str) -> ShopProduct | None:
        return next((p for p in self.products if p.site == site and p.product_id == product_id), None)


def demo_product(renderer, n: int, category: str, product_id: str, shop_id: str = "",
                 slug: str | None = None, images: int = 2, **overrides) -> ShopProduct:
    """A hand-made record with a planted <script> and an HTML entity in the title;
    every fifth one has no brand."""
    fields = dict(
        site=renderer.site, product_id=product_id, shop_id=shop_id,
        url=renderer.product_url(product_id, shop_id, slug or f"giay-demo-{n}"),
        title=f"Giày demo {n} &amp; bạn", description_html=f"<p>Mô tả {n}</p><script>x()</script>",
        brand=None if n % 5 == 0 else f"Hiệu {n % 3}", shoe_type="sneaker", is_shoe=True,
        colour="Đen", material="Vải canvas", gender="nữ", category=category,
        category_path=renderer.category_path(category), price=100000 + 1000 * n, currency=renderer.currency,
        images=tuple(ShopImage(url=renderer.image_url(f"{n:08x}{k:024x}"), picture_id=f"p{n}-{k}")
                     for k in range(images)),
    )
    return ShopProduct(**{**fields, **overrides})


def shop_reply(renderer, catalog, url: str) -> ShopReply | None:
    """What the replay server's renderer answers for a real URL."""
    parts = urlsplit(url)
    return renderer.handle(catalog, ShopRequest(host=parts.hostname, path=parts.path,
                                                query=dict(parse_qsl(parts.query)), headers={}))


def replay(renderer, catalog, request: scrapy.Request) -> TextResponse:
    """The renderer's (HTTP 200) answer to `request`, dressed with the real URL."""
    reply = shop_reply(renderer, catalog, request.url)
    assert reply is not None and reply.status == 200, request.url
    return response_for(request, reply.body, reply.status, content_type=reply.content_type)


def crawl(renderer, catalog, spider: scrapy.Spider, categories: Iterable[str] | None = None, *,
          dedupe: bool = True) -> tuple[list[ProductItem], list[str]]:
    """A tiny synchronous engine: run every request through the renderer and callbacks,
    dropping repeated URLs as Scrapy's dupefilter would (unless `dedupe` is off)."""
    queue = deque(spider.listing_request(c, 1) for c in (spider.categories if categories is None else categories))
    items, urls = [], []
    while queue:
        request = queue.popleft()
        if dedupe and request.url in urls:
            continue
        urls.append(request.url)
        for result in results_of(request, replay(renderer, catalog, request)):
            (queue.append if isinstance(result, scrapy.Request) else items.append)(result)
    return items, urls


def assert_items_reproduce(items: list[ProductItem], records: list[ShopProduct]) -> None:
    """Each record came out once, as the spider should read what the renderer wrote,
    and as a valid item (validate raises for one that must be dropped)."""
    by_id = {item.product_id: item for item in items}
    assert sorted(by_id) == sorted(p.product_id for p in records) and len(items) == len(by_id)
    for record in records:
        item = by_id[record.product_id]
        assert (item.site, item.url) == (record.site, record.url)
        assert item.title == clean_str(record.title)
        assert item.brand == clean_str(record.brand)
        assert item.price == float(record.price) and item.currency == record.currency
        assert item.image_urls == unique(image.url for image in record.images)
        assert item.category_path == list(record.category_path)
        if html_to_text(record.description_html):
            assert item.description == html_to_text(record.description_html)
        assert "<" not in item.description and "x(" not in item.description  # the planted <script>
        for key, value in (("colour", record.colour), ("material", record.material),
                           ("gender", record.gender), ("style", record.shoe_type)):
            assert item.attributes.get(key) == clean_str(value)
        validate(item)


def projected(value, like):
    """`value` cut down to the keys of the dict `like`, recursively, so that
    `projected(value, like) == like` says `value` holds all that `like` holds."""
    if isinstance(value, dict) and isinstance(like, dict):
        return {key: projected(value.get(key, "<missing>"), like[key]) for key in like}
    return value


def hosts_allowed(renderer, allowed_domains: Iterable[str]) -> None:
    """The offsite filter also drops the image pipeline's requests: the CDN must be allowed."""
    allowed = list(allowed_domains)
    for host in renderer.hosts + renderer.image_hosts:
        assert any(host == d or host.endswith("." + d) for d in allowed), host
