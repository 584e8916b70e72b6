"""The Zalora spider's parse methods against our own fixtures, the real GFG record
sample (when ../shared is present), and a round trip through the Zalora replay
renderer: what the shop renders must come back out of the spider unchanged."""

from __future__ import annotations

import json
import re
from collections import deque
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import scrapy
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler

from replay_shop.model import ShopImage, ShopProduct
from replay_shop.sites import ShopRequest
from replay_shop.sites.zalora import RENDERER
from scrapers.blocks import detect_block
from scrapers.items import ProductItem, validate
from scrapers.middlewares import MalformedResponse, MalformedResponseMiddleware
from scrapers.spiders import zalora
from scrapers.spiders.zalora import ZaloraSpider, full_size
from scrapers.text import clean_str

FIXTURES = Path(__file__).parent / "fixtures" / "zalora"
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real" / "zalora"
REAL_SAMPLE = REAL / "gfg_mockChatbotResponse_datajet_products.js"

LISTING_WOMEN = ("https://api.zalora.com.my/v1/dynproducts/datajet/list?segment=women&categoryId=4"
                 "&limit=100&offset={}&shop=m&fullFacetCategory=true&image_format=webp&image_quality=70")
PAGE_4100001 = "https://www.zalora.com.my/p/replayfoot-replay-runner-knit-sneakers-black-4100001"
PAGE_4100002 = "https://www.zalora.com.my/p/strappy-block-heel-sandals-beige-4100002"


def make_spider(settings: dict | None = None, **kwargs) -> ZaloraSpider:
    crawler = get_crawler(ZaloraSpider, settings or {})
    crawler.spider = ZaloraSpider.from_crawler(crawler, **kwargs)  # as crawl() would set it
    return crawler.spider


def response_for(request: scrapy.Request, body: bytes, status: int = 200, html: bool = False) -> TextResponse:
    response_class = HtmlResponse if html else TextResponse
    return response_class(request.url, body=body, status=status, encoding="utf-8", request=request)


def run_callback(request: scrapy.Request, body: bytes, html: bool = False) -> list:
    return list(request.callback(response_for(request, body, html=html), **request.cb_kwargs))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def split(results: list) -> tuple[list[scrapy.Request], list[ProductItem]]:
    return ([r for r in results if isinstance(r, scrapy.Request)],
            [r for r in results if isinstance(r, ProductItem)])


# -- listing ----------------------------------------------------------------------
def test_listing_request_is_the_real_url_with_origin_and_referer():
    request = make_spider().listing_request("women-shoes", 3)
    assert request.url == LISTING_WOMEN.format(200)
    assert request.headers["Referer"] == b"https://www.zalora.com.my/"
    assert request.headers["Origin"] == b"https://www.zalora.com.my"
    assert request.headers["Accept"] == b"application/json"


def test_listing_yields_product_pages_skips_bad_entries_and_pages_on():
    spider = make_spider()
    requests, items = split(run_callback(spider.listing_request("women-shoes", 1), fixture("listing_women_page1.json")))
    assert items == []
    assert [r.url for r in requests] == [PAGE_4100001, PAGE_4100002, LISTING_WOMEN.format(100)]
    assert [r.cb_kwargs["product_id"] for r in requests[:2]] == ["0A1B2C3D4E5F60MY", "1B2C3D4E5F6071MY"]
    assert requests[0].cb_kwargs["entry"]["Name"] == "Replay Runner Knit Sneakers"
    # No ProductUrl, a numeric ProductUrl, a null ConfigSku, and a string where an object belongs.
    assert spider.crawler.stats.get_value("clipshoe/skipped/bad_entry") == 4


def test_listing_ends_when_the_offset_reaches_the_total():
    request = make_spider().listing_request("women-shoes", 2)
    requests, _ = split(run_callback(request, fixture("listing_women_page2.json")))
    assert [r.url for r in requests] == ["https://www.zalora.com.my/p/leather-penny-loafers-brown-4100003"]


def test_empty_listing_page_ends_the_category():
    assert run_callback(make_spider().listing_request("men-shoes", 1), fixture("listing_empty.json")) == []


def test_listing_respects_the_item_cap():
    spider = make_spider(max_items=1)
    requests, _ = split(run_callback(spider.listing_request("women-shoes", 1), fixture("listing_women_page1.json")))
    assert [r.url for r in requests] == [PAGE_4100001]


def test_country_and_category_ids_are_settings():
    spider = make_spider({"CLIPSHOE_ZALORA_DOMAIN": "zalora.sg",
                          "CLIPSHOE_ZALORA_CATEGORIES": {"men-shoes": {"segment": "men", "categoryId": "99"}}})
    request = spider.listing_request("men-shoes", 1)
    assert request.url.startswith("https://api.zalora.sg/v1/dynproducts/datajet/list?segment=men&categoryId=99&")
    assert request.headers["Referer"] == b"https://www.zalora.sg/"
    assert spider.allowed_domains == ["zalora.sg", "zacdn.com"]
    with pytest.raises(ValueError, match="CLIPSHOE_ZALORA_CATEGORIES"):
        spider.listing_request("kids-shoes", 1)


def test_malformed_body_is_retried_by_the_middleware():
    spider = make_spider()
    request = spider.listing_request("women-shoes", 1)
    response = response_for(request, fixture("malformed.json"))
    with pytest.raises(MalformedResponse) as exc:
        list(request.callback(response, **request.cb_kwargs))
    retry = MalformedResponseMiddleware(spider.crawler).process_spider_exception(response, exc.value, spider)
    assert [r.url for r in retry] == [request.url]
    assert spider.crawler.stats.get_value("clipshoe/malformed/json") == 1


def test_listing_without_data_envelope_is_malformed():
    with pytest.raises(MalformedResponse):
        run_callback(make_spider().listing_request("women-shoes", 1), b'{"success": false}')


def test_block_page_is_recognised():
    request = make_spider().listing_request("women-shoes", 1)
    assert detect_block(response_for(request, fixture("block.html"), status=403)) == "http_403"


# -- product page -----------------------------------------------------------------------
def product_request(spider: ZaloraSpider, index: int) -> scrapy.Request:
    listing = spider.listing_request("women-shoes", 1)
    return run_callback(listing, fixture("listing_women_page1.json"))[index]


def test_product_item_fields():
    [item] = run_callback(product_request(make_spider(), 0), fixture("product_page.html"), html=True)
    assert item.site == "zalora" and item.product_id == "0A1B2C3D4E5F60MY"
    assert item.url == PAGE_4100001
    assert item.title == "Replay Runner Knit & Go Sneakers"
    assert item.description == "Lightweight knit upper & cushioned sole.\nLace-up closure"
    assert item.brand == "Replayfoot"
    assert item.category_path == ["Women", "Shoes", "Sneakers"]
    assert item.attributes == {"colour": "Black", "material": "Knit", "gender": "Women", "style": "Sneakers"}
    assert item.price == 189.0 and item.currency == "MYR"
    assert item.image_urls == [  # the originals inside the resizer URLs, de-duplicated, in order
        "https://static-my.zacdn.com/p/replayfoot-1001-4100001-1.jpg",
        "https://static-my.zacdn.com/p/replayfoot-1002-4100001-2.jpg",
        "https://static-my.zacdn.com/p/replayfoot-1003-4100001-3.jpg",
    ]
    assert validate(item) == []


def test_sparse_product_page_falls_back_to_the_listing():
    [item] = run_callback(product_request(make_spider(), 1), fixture("product_page_sparse.html"), html=True)
    assert item.url == PAGE_4100002
    assert item.brand is None  # null Brand in the listing, no brand on the page
    assert item.description == "Two straps, 6 cm block heel."
    assert item.price == 1299.0 and item.currency == "MYR"
    assert item.image_urls == ["https://static-my.zacdn.com/p/generic-2001-4100002-1.jpg"]
    assert item.attributes == {}
    assert validate(item) == ["missing_brand"]


def test_broken_json_ld_is_malformed():
    with pytest.raises(MalformedResponse):
        run_callback(product_request(make_spider(), 0), fixture("product_page_bad_json_ld.html"), html=True)


def test_resizer_urls_give_the_original():
    assert full_size("https://dynamic.zacdn.com/AbC-_12=/fit-in/346x500/filters:quality(95):fill(ffffff)/"
                     "https://static-sg.zacdn.com/p/x-1-2-1.jpg") == "https://static-sg.zacdn.com/p/x-1-2-1.jpg"
    assert full_size("//static-my.zacdn.com/p/y.jpg") == "https://static-my.zacdn.com/p/y.jpg"
    assert full_size("") is None


# -- the real record sample (a JS module of datajet Products records) ------------------------
_JS_TOKEN = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[A-Za-z_$][\w$]*(?=\s*:)|,(?=\s*[}\]])""")


def js_object(text: str):
    """The object literal of a JS module as Python data: quote bare keys, turn
    single-quoted strings into JSON strings, drop trailing commas."""
    def token(match: re.Match) -> str:
        value = match.group()
        if value == ",":
            return ""
        if value[0] == "'":
            return json.dumps(value[1:-1].replace("\\'", "'"))
        return value if value[0] == '"' else json.dumps(value)

    return json.loads(_JS_TOKEN.sub(token, text[text.index("{"): text.rindex("}") + 1]))


@pytest.fixture(scope="module")
def real_records() -> list[dict]:
    if not REAL_SAMPLE.exists():
        pytest.skip("real Zalora sample not present")
    terms = js_object(REAL_SAMPLE.read_text(encoding="utf-8"))["suggestions"]["search_terms"]
    records = [p for term in terms.values() for p in term["products"]]
    assert records
    return records


def real_listing(spider: ZaloraSpider, records: list[dict]) -> list:
    # The sample holds bare records (zalora.sg); the API wraps them as data{NumProductFound, Products}.
    body = json.dumps({"data": {"NumProductFound": len(records), "Products": records}}).encode()
    return run_callback(spider.listing_request("women-shoes", 1), body)


def test_real_records_yield_one_product_page_each_and_no_next_page(real_records):
    requests = real_listing(make_spider({"CLIPSHOE_ZALORA_DOMAIN": "zalora.sg"}), real_records)
    assert [r.url for r in requests] == ["https://www.zalora.sg/" + p["ProductUrl"] for p in real_records]
    assert [r.cb_kwargs["product_id"] for r in requests] == [p["ConfigSku"] for p in real_records]


def test_real_records_with_a_bare_page_give_valid_items(real_records):
    spider = make_spider({"CLIPSHOE_ZALORA_DOMAIN": "zalora.sg"})
    for request, record in zip(real_listing(spider, real_records), real_records):
        [item] = run_callback(request, b"<html><head></head><body></body></html>", html=True)
        assert item.title == record["Name"] and item.brand == record["Brand"]
        assert item.category_path == record["Breadcrumbs"]
        assert item.price == float(record["SpecialPriceInDecimal"] or record["PriceInDecimal"])
        assert item.currency == "SGD"
        assert item.image_urls and all(u.startswith("https://static-sg.zacdn.com/p/") for u in item.image_urls)
        assert validate(item) == ["missing_description"]


# -- round trip through the replay renderer ---------------------------------------------
class FakeCatalog:
    """Just the part of replay_shop.catalog.Catalog a renderer uses."""

    seed = 0

    def __init__(self, products: list[ShopProduct]):
        self.products = products

    def listing(self, site: str, category: str) -> list[ShopProduct]:
        return [p for p in self.products if p.category == category]

    def product(self, site: str, product_id: str) -> ShopProduct | None:
        return next((p for p in self.products if p.product_id == product_id), None)


def make_product(n: int, category: str) -> ShopProduct:
    product_id = f"HI{n:03d}SH{n:02d}DMOMY"  # ConfigSku-shaped, as the catalog makes them
    images = tuple(ShopImage(url=RENDERER.image_url(f"{n:08x}{k:024x}"), picture_id=f"p{n}-{k}") for k in range(3))
    return ShopProduct(
        site="zalora", product_id=product_id, url=RENDERER.product_url(product_id, "", f"giay-demo-{n}-den"),
        title=f"Giày demo {n} &amp; bạn", description_html=f"<p>Mô tả {n}</p><script>x('</p>')</script><!-- c -->",
        brand=None if n % 3 == 0 else f"Hiệu {n}", shoe_type="sneaker", is_shoe=True,
        colour="đen", material="vải canvas", gender="nữ", category=category,
        category_path=RENDERER.category_path(category), price=1234 + n, currency="MYR",
        images=images,
    )


def replay(catalog, request: scrapy.Request) -> TextResponse:
    """What the replay server would answer for `request`, dressed with the real URL."""
    parts = urlsplit(request.url)
    reply = RENDERER.handle(catalog, ShopRequest(host=parts.hostname, path=parts.path,
                                                 query=dict(parse_qsl(parts.query)), headers={}))
    assert reply is not None, request.url
    return response_for(request, reply.body, status=reply.status, html=not reply.is_json)


def crawl(catalog, spider: ZaloraSpider) -> tuple[list[ProductItem], list[str]]:
    """A tiny synchronous engine: run every request through the renderer and callbacks,
    dropping repeated URLs as Scrapy's dupefilter would."""
    queue = deque(spider.listing_request(c, 1) for c in spider.categories)
    items, urls = [], []
    while queue:
        request = queue.popleft()
        if request.url in urls:
            continue
        urls.append(request.url)
        for result in request.callback(replay(catalog, request), **request.cb_kwargs):
            (queue.append if isinstance(result, scrapy.Request) else items.append)(result)
    return items, urls


def assert_items_reproduce(items: list[ProductItem], records: list[ShopProduct]) -> None:
    by_id = {item.product_id: item for item in items}
    assert sorted(by_id) == sorted(p.product_id for p in records) and len(items) == len(by_id)
    for record in records:
        item = by_id[record.product_id]
        assert item.url == record.url
        assert item.title == clean_str(record.title)
        assert item.brand == clean_str(record.brand)
        assert item.price == float(record.price) and item.currency == RENDERER.currency
        assert item.image_urls == [image.url for image in record.images]
        assert item.category_path == list(record.category_path)
        assert "<" not in item.description and "x(" not in item.description
        for key, value in (("colour", record.colour), ("material", record.material),
                           ("gender", record.gender), ("style", record.shoe_type)):
            assert item.attributes.get(key) == clean_str(value)


def test_round_trip_reaches_every_listed_product_once(monkeypatch):
    monkeypatch.setattr(zalora, "PAGE_SIZE", 2)  # 5 products: pages of 2, 2, 1, ended by the total
    records = [make_product(n, "women-shoes") for n in range(5)] + [make_product(n, "men-shoes") for n in (5, 6)]
    items, urls = crawl(FakeCatalog(records), make_spider())
    assert_items_reproduce(items, records)
    assert [u for u in urls if "segment=women" in u] == [
        LISTING_WOMEN.format(offset).replace("limit=100", "limit=2") for offset in (0, 2, 4)]


def test_spider_and_renderer_agree_on_hosts_and_categories():
    spider = make_spider()
    for host in RENDERER.hosts + RENDERER.image_hosts:
        assert any(host == d or host.endswith("." + d) for d in spider.allowed_domains), host
    assert ZaloraSpider.default_categories == RENDERER.categories


def test_renderer_answers_unknowns_without_crashing():
    catalog = FakeCatalog([make_product(1, "women-shoes")])
    listing = RENDERER.handle(catalog, ShopRequest("api.zalora.com.my", "/v1/dynproducts/datajet/list",
                                                   {"segment": "kids", "categoryId": "534"}))
    assert json.loads(listing.body) == {"data": {"NumProductFound": 0, "Products": []}}
    missing = RENDERER.handle(catalog, ShopRequest("www.zalora.com.my", "/p/giay-khac-ZZ999SH99ZZZMY"))
    assert missing.status == 404
    assert RENDERER.handle(catalog, ShopRequest("www.zalora.com.my", "/women/shoes/")) is None
    assert RENDERER.block_reply().status == 403


def test_round_trip_with_the_real_catalog():
    catalog_module = pytest.importorskip("replay_shop.catalog")
    catalog = catalog_module.Catalog(seed=1, products_per_site=20)
    records = {p.product_id: p for c in RENDERER.categories for p in catalog.listing("zalora", c)}
    items, _ = crawl(catalog, make_spider())
    assert records and len(items) == len(records)
    assert_items_reproduce(items, list(records.values()))
