"""The Zalora spider's parse methods against our own fixtures, the real GFG record
sample (when ../shared is present), and a round trip through the Zalora replay
renderer: what the shop renders must come back out of the spider unchanged."""

from __future__ import annotations

import functools
import json
import re

import pytest
import scrapy

from replay_shop.records import ShopProduct
from replay_shop.sites.protocol import ShopRequest
from replay_shop.sites.zalora import RENDERER
from scrapers.blocks import detect_block
from scrapers.items import validate
from scrapers.middlewares import MalformedResponse
from scrapers.spiders import zalora
from scrapers.spiders.zalora import ZaloraSpider, full_size
from tests import spider_harness as harness
from tests.spider_harness import FakeCatalog, response_for, run_callback, split

REAL_SAMPLE = "gfg_mockChatbotResponse_datajet_products.js"

LISTING_WOMEN = ("https://api.zalora.com.my/v1/dynproducts/datajet/list?segment=women&categoryId=4"
                 "&limit=100&offset={}&shop=m&fullFacetCategory=true&image_format=webp&image_quality=70")
PAGE_4100001 = "https://www.zalora.com.my/p/replayfoot-replay-runner-knit-sneakers-black-4100001"
PAGE_4100002 = "https://www.zalora.com.my/p/strappy-block-heel-sandals-beige-4100002"


make_spider = functools.partial(harness.make_spider, ZaloraSpider)
fixture = harness.site_fixtures("zalora")


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
    harness.assert_malformed_body_is_retried(spider, spider.listing_request("women-shoes", 1), fixture("malformed.json"))


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
    terms = js_object(harness.real_fixture("zalora", REAL_SAMPLE).read_text(encoding="utf-8"))["suggestions"]["search_terms"]
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
def make_product(n: int, category: str) -> ShopProduct:
    product_id = f"HI{n:03d}SH{n:02d}DMOMY"  # ConfigSku-shaped, as the catalog makes them
    return harness.demo_product(
        RENDERER, n, category, product_id, slug=f"giay-demo-{n}-den", images=3,
        description_html=f"<p>Mô tả {n}</p><script>x('</p>')</script><!-- c -->",
        brand=None if n % 3 == 0 else f"Hiệu {n}", colour="đen", material="vải canvas", price=1234 + n)


def crawl(catalog, spider: ZaloraSpider):
    return harness.crawl(RENDERER, catalog, spider)


def assert_items_reproduce(items, records: list[ShopProduct]) -> None:
    harness.assert_items_reproduce(items, records, currency=RENDERER.currency)


def test_round_trip_reaches_every_listed_product_once(monkeypatch):
    monkeypatch.setattr(zalora, "PAGE_SIZE", 2)  # 5 products: pages of 2, 2, 1, ended by the total
    records = [make_product(n, "women-shoes") for n in range(5)] + [make_product(n, "men-shoes") for n in (5, 6)]
    items, urls = crawl(FakeCatalog(records), make_spider())
    assert_items_reproduce(items, records)
    assert [u for u in urls if "segment=women" in u] == [
        LISTING_WOMEN.format(offset).replace("limit=100", "limit=2") for offset in (0, 2, 4)]


def test_spider_and_renderer_agree_on_hosts_and_categories():
    spider = make_spider()
    harness.hosts_allowed(RENDERER, spider.allowed_domains)
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
