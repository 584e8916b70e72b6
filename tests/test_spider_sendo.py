"""The Sendo spider's parse methods against our own fixtures, the real recorded
listing (when ../shared is present), and a round trip through the Sendo replay
renderer: what the shop renders must come back out of the spider unchanged."""

from __future__ import annotations

import functools
import json

import pytest
import scrapy

from replay_shop.records import ShopProduct
from replay_shop.sites.protocol import ShopRequest
from replay_shop.sites.sendo import RENDERER
from scrapers.blocks import detect_block
from scrapers.items import validate
from scrapers.middlewares import MalformedResponse
from scrapers.spiders.sendo import SendoSpider, full_size
from tests import spider_harness as harness
from tests.spider_harness import FakeCatalog, assert_items_reproduce, response_for, run_callback, split

REAL_LISTING = "sendo_searchlist_web_products_q_giay_the_thao_600items_wrapped.json"

LISTING_1689 = ("https://searchlist-api.sendo.vn/web/categories/1689/products"
                "?listing_algo=algo13&page={}&platform=web&size=60&sortType=listing_v2_desc")
DETAIL_101 = "https://detail-api.sendo.vn/full/giay-sneaker-nam-co-thap-de-bang-90000101"


make_spider = functools.partial(harness.make_spider, SendoSpider)
fixture = harness.site_fixtures("sendo")


# -- listing ----------------------------------------------------------------------
def test_listing_request_is_the_real_url_with_referer():
    request = make_spider().listing_request("1689", 1)
    assert request.url == LISTING_1689.format(1)
    assert request.headers["Referer"] == b"https://www.sendo.vn/"
    assert request.headers["Origin"] == b"https://www.sendo.vn"


def test_listing_yields_details_skips_bad_entries_and_pages_on():
    spider = make_spider()
    requests, items = split(run_callback(spider.listing_request("1689", 1), fixture("listing_page1.json")))
    assert items == []
    assert [r.url for r in requests] == [
        DETAIL_101,
        "https://detail-api.sendo.vn/full/dep-sandal-nu-quai-manh-90000102",
        LISTING_1689.format(2),
    ]
    assert requests[0].headers["Referer"] == b"https://www.sendo.vn/"
    assert requests[0].cb_kwargs["product_id"] == "90000101"
    # Two dict entries lack a usable id; the non-dict entry is dropped by entries().
    assert spider.crawler.stats.get_value("clipshoe/skipped/bad_entry") == 2


def test_empty_listing_page_ends_the_category():
    requests, items = split(run_callback(make_spider().listing_request("1689", 7), fixture("listing_empty.json")))
    assert requests == [] and items == []


def test_listing_respects_item_and_page_caps():
    spider = make_spider(max_items=1, max_pages=1)
    requests, _ = split(run_callback(spider.listing_request("1689", 1), fixture("listing_page1.json")))
    assert [r.url for r in requests] == [DETAIL_101]


def test_malformed_body_is_retried_by_the_middleware():
    spider = make_spider()
    harness.assert_malformed_body_is_retried(spider, spider.listing_request("1689", 1), fixture("malformed.json"))


def test_block_page_is_recognised():
    request = make_spider().listing_request("1689", 1)
    assert detect_block(response_for(request, fixture("block.html"), status=403)) == "http_403"


# -- detail -------------------------------------------------------------------------
def detail_request(spider: SendoSpider, index: int) -> scrapy.Request:
    listing = spider.listing_request("1689", 1)
    return [r for r in run_callback(listing, fixture("listing_page1.json")) if "detail-api" in r.url][index]


def test_detail_item_fields():
    spider = make_spider()
    [item] = run_callback(detail_request(spider, 0), fixture("detail.json"))
    assert item.site == "sendo" and item.product_id == "90000101"
    assert item.url == "https://www.sendo.vn/giay-sneaker-nam-co-thap-de-bang-90000101.html"
    assert item.title == "Giày sneaker nam cổ thấp & đế bằng"
    assert item.description == "Giày sneaker nam, đế cao su & êm.\nForm chuẩn\nDễ phối đồ"
    assert item.brand == "DemoStep"
    assert item.category_path == ["Giày dép", "Giày nam", "Giày sneaker - thể thao nam"]
    assert item.attributes == {"colour": "Trắng, Đen", "material": "Da tổng hợp", "gender": "nam",
                               "style": "sneaker", "size": "40, 41"}
    assert item.price == 399000.0 and item.currency == "VND"
    assert item.image_urls == [  # images only, absolute, de-duplicated, in order
        "https://media3.scdn.vn/img4/2024/03_14/0f1e2d3c4b5a69788796a5b4c3d2e1f0.jpg",
        "https://media3.scdn.vn/img4/2024/03_14/1f2e3d4c5b6a79889706b5c4d3e2f1a0.jpg",
    ]
    assert validate(item) == []


def test_detail_without_brand_or_media_falls_back_to_the_listing():
    spider = make_spider()
    [item] = run_callback(detail_request(spider, 1), fixture("detail_null_brand.json"))
    assert item.brand is None
    assert item.title == "Dép sandal nữ quai mảnh"
    assert item.description == "Dép nữ nhẹ, quai mảnh"
    assert item.price == 189000.0
    assert item.image_urls == ["https://media3.scdn.vn/img4/2024/05_02/11223344556677889900aabbccddeeff.jpg"]
    assert item.category_path == [] and item.attributes == {}
    assert validate(item) == ["missing_brand", "missing_category_path"]


def test_detail_without_data_object_is_malformed():
    request = detail_request(make_spider(), 0)
    with pytest.raises(MalformedResponse):
        run_callback(request, b'{"status": 404, "error": {}}')


def test_thumbnail_marker_is_stripped():
    assert full_size("//media3.scdn.vn/img3/2019/4_4/YNwyZE_simg_de2fe0_250x250_maxb.jpg") == \
        "https://media3.scdn.vn/img3/2019/4_4/YNwyZE.jpg"
    assert full_size(None) is None


# -- the real recorded listing --------------------------------------------------------
@pytest.fixture(scope="module")
def real_entries() -> list[dict]:
    # The recording script re-wrapped the items as {total_products, products}; the API says {data}.
    return json.loads(harness.real_fixture("sendo", REAL_LISTING).read_bytes())["products"]


def test_real_listing_yields_one_detail_request_per_product(real_entries):
    spider = make_spider()
    body = json.dumps({"data": real_entries}).encode()
    requests, _ = split(run_callback(spider.listing_request("1689", 1), body))
    details, listings = requests[:-1], requests[-1:]
    assert len(details) == len(real_entries) == 600
    assert all(r.url.startswith("https://detail-api.sendo.vn/full/") and not r.url.endswith(".html")
               for r in details)
    assert len({r.cb_kwargs["product_id"] for r in details}) == 600
    assert [r.url for r in listings] == [LISTING_1689.format(2)]


def test_real_listing_entry_with_a_bare_detail_gives_a_valid_item(real_entries):
    spider = make_spider()
    body = json.dumps({"data": real_entries[:1]}).encode()
    detail = run_callback(spider.listing_request("1689", 1), body)[0]
    [item] = run_callback(detail, b'{"data": {"media": []}}')
    entry = real_entries[0]
    assert item.url == "https://www.sendo.vn/" + entry["category_path"]
    assert item.price == float(entry["sale_price_min"])
    assert item.image_urls and "_simg_" not in item.image_urls[0]
    assert "missing_title" not in validate(item)


# -- round trip through the replay renderer ---------------------------------------------
def make_product(n: int, category: str) -> ShopProduct:
    return harness.demo_product(RENDERER, n, category, str(91000000 + n), "7001")


def crawl(catalog, spider: SendoSpider):
    return harness.crawl(RENDERER, catalog, spider)


def test_round_trip_reaches_every_listed_product_once():
    # 130 products in one category: pages of 60, 60, 10, then the empty page that ends it.
    records = [make_product(n, "4162") for n in range(130)] + [make_product(n, "1689") for n in range(130, 133)]
    items, urls = crawl(FakeCatalog(records), make_spider(categories="4162,1689"))
    assert_items_reproduce(items, records)
    assert [u for u in urls if "categories/4162" in u] == [
        LISTING_1689.replace("1689", "4162").format(page) for page in (1, 2, 3, 4)]


def test_spider_and_renderer_agree_on_hosts_and_categories():
    harness.hosts_allowed(RENDERER, SendoSpider.allowed_domains)
    assert SendoSpider.default_categories == RENDERER.categories


def test_renderer_answers_unknowns_without_crashing():
    catalog = FakeCatalog([make_product(1, "4162")])
    listing = RENDERER.handle(catalog, ShopRequest("searchlist-api.sendo.vn", "/web/categories/999/products"))
    assert json.loads(listing.body) == {"data": []}
    missing = RENDERER.handle(catalog, ShopRequest("detail-api.sendo.vn", "/full/giay-khac-91000001"))
    assert missing.status == 404
    assert RENDERER.handle(catalog, ShopRequest("detail-api.sendo.vn", "/other")) is None
    assert RENDERER.block_reply().status == 403


def test_round_trip_with_the_real_catalog():
    catalog_module = pytest.importorskip("replay_shop.catalog")
    catalog = catalog_module.Catalog(seed=1, products_per_site=20)
    records = {p.product_id: p for c in RENDERER.categories for p in catalog.listing("sendo", c)}
    items, _ = crawl(catalog, make_spider())
    assert records and len(items) == len(records)
    assert_items_reproduce(items, list(records.values()))
