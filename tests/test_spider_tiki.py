"""The Tiki spider's parse methods against our own fixtures, the real recorded
bodies (when ../shared is present), and a round trip through the Tiki replay
renderer: what the shop renders must come back out of the spider unchanged."""

from __future__ import annotations

import functools
import json
from urllib.parse import urlsplit

import pytest
import scrapy

from replay_shop.records import ShopProduct
from replay_shop.sites.tiki import RENDERER, RESULT_CAP
from scrapers.blocks import detect_block
from scrapers.items import validate
from scrapers.middlewares import MalformedResponse
from scrapers.spiders.tiki import TikiSpider, full_size
from tests import spider_harness as harness
from tests.spider_harness import FakeCatalog, assert_items_reproduce, response_for, run_callback, split

REAL_ENVELOPE = "tiki_api_v2_products_listing_full_response.json"
REAL_ITEMS = "tiki_api_v2_products_listing_data_array.json"
REAL_DETAIL = "tiki_api_v2_products_detail_wrapped_by_tiki-api_readme.json"

LISTING = ("https://tiki.vn/api/v2/products?limit=40&include=advertisement&aggregations=2"
           "&category={}&page={}&urlKey={}")
LISTING_1686 = LISTING.format("1686", "{}", "giay-dep-nam")
DETAIL_1 = "https://tiki.vn/api/v2/products/70000001?platform=web&spid=70000011"
DETAIL_2 = "https://tiki.vn/api/v2/products/70000002?platform=web&spid=70000012"
CDN = "https://salt.tikicdn.com/ts/product"


make_spider = functools.partial(harness.make_spider, TikiSpider)
fixture = harness.site_fixtures("tiki")


# -- listing ----------------------------------------------------------------------
def test_listing_request_is_the_real_url_with_the_category_page_as_referer():
    request = make_spider().listing_request("1686", 1)
    assert request.url == LISTING_1686.format(1)
    assert request.headers["Referer"] == b"https://tiki.vn/giay-dep-nam/c1686"


def test_listing_request_for_a_category_without_known_slug():
    request = make_spider(categories="1234").listing_request("1234", 2)
    assert request.url == ("https://tiki.vn/api/v2/products?limit=40&include=advertisement"
                           "&aggregations=2&category=1234&page=2")
    assert request.headers["Referer"] == b"https://tiki.vn/"


def test_listing_yields_details_skips_bad_entries_and_pages_on():
    spider = make_spider()
    requests, items = split(run_callback(spider.listing_request("1686", 1), fixture("listing_page1.json")))
    assert items == []
    # The second entry has no seller_product_id: its spid comes from url_path.
    assert [r.url for r in requests] == [DETAIL_1, DETAIL_2, LISTING_1686.format(2)]
    assert requests[0].cb_kwargs["product_id"] == "70000001"
    # Missing id, non-numeric id, no url_path/url_key; the non-dict entry is dropped by entries().
    assert spider.crawler.stats.get_value("clipshoe/skipped/bad_entry") == 3


def test_last_page_ends_the_category():
    spider = make_spider()
    requests, _ = split(run_callback(spider.listing_request("1686", 2), fixture("listing_page2_last.json")))
    assert [r.url for r in requests] == ["https://tiki.vn/api/v2/products/70000003?platform=web&spid=70000013"]


def test_empty_listing_page_ends_the_category():
    requests, items = split(run_callback(make_spider().listing_request("1686", 1), fixture("listing_empty.json")))
    assert requests == [] and items == []


def test_listing_respects_item_and_page_caps():
    spider = make_spider(max_items=1, max_pages=1)
    requests, _ = split(run_callback(spider.listing_request("1686", 1), fixture("listing_page1.json")))
    assert [r.url for r in requests] == [DETAIL_1]


def test_malformed_body_is_retried_by_the_middleware():
    spider = make_spider()
    harness.assert_malformed_body_is_retried(spider, spider.listing_request("1686", 1), fixture("malformed.json"))


def test_block_page_is_recognised():
    request = make_spider().listing_request("1686", 1)
    assert detect_block(response_for(request, fixture("block.html"), status=403)) == "http_403"


# -- detail -------------------------------------------------------------------------
def detail_request(spider: TikiSpider, index: int) -> scrapy.Request:
    listing = spider.listing_request("1686", 1)
    return [r for r in run_callback(listing, fixture("listing_page1.json")) if "/products/" in r.url][index]


def test_detail_item_fields():
    [item] = run_callback(detail_request(make_spider(), 0), fixture("detail.json"))
    assert item.site == "tiki" and item.product_id == "70000001"
    assert item.url == "https://tiki.vn/giay-the-thao-nam-mau-den-p70000001.html"
    assert item.title == "Giày thể thao nam & nữ màu đen đế cao su"
    assert item.description == "Giày thể thao êm chân cho mọi ngày.\nĐế cao su chống trơn\nThân vải lưới"
    assert item.brand == "Mẫu Sport"
    assert item.category_path == ["Giày - Dép nam", "Giày thể thao nam"]
    assert item.attributes == {"brand": "Mẫu Sport", "colour": "Đen", "material": "Vải lưới", "gender": "Nam",
                               "style": "sneaker", "origin": "Việt Nam"}
    assert item.price == 459000.0 and item.currency == "VND"
    # base_url of each gallery image, de-duplicated, in order; no variant (other colour) images.
    assert item.image_urls == [f"{CDN}/a1/b2/c3/a1b2c300000000000000000000000000.jpg",
                               f"{CDN}/0a/1b/2c/0a1b2c00000000000000000000000000.jpg"]
    assert validate(item) == []


def test_detail_with_oem_brand_and_no_images_falls_back_to_the_listing():
    [item] = run_callback(detail_request(make_spider(), 1), fixture("detail_null_brand.json"))
    assert item.brand is None
    assert item.url == "https://tiki.vn/dep-quai-ngang-nam-p70000002.html"
    assert item.description == "Dép quai ngang nhẹ"  # short_description when description is null
    assert item.price == 129000.0  # the listing price when the detail has none
    assert item.image_urls == [f"{CDN}/d4/e5/f6/d4e5f600000000000000000000000000.jpg"]  # thumbnail, full size
    assert item.category_path == [] and item.attributes == {}
    assert validate(item) == ["missing_brand", "missing_category_path"]


@pytest.mark.parametrize("body", [b'{"error": {"code": 404, "message": "not found"}}', b"[]",
                                  b'{"status": true, "data": {"id": 70000001}}'])
def test_detail_that_is_not_the_product_object_is_malformed(body):
    with pytest.raises(MalformedResponse):
        run_callback(detail_request(make_spider(), 0), body)


def test_resize_prefix_is_stripped():
    assert full_size("https://salt.tikicdn.com/cache/280x280/ts/product/ab/cd/ef/x.jpg") == \
        "https://salt.tikicdn.com/ts/product/ab/cd/ef/x.jpg"
    assert full_size("//salt.tikicdn.com/cache/w1200/ts/product/x.jpg") == "https://salt.tikicdn.com/ts/product/x.jpg"
    assert full_size("https://salt.tikicdn.com/ts/product/x.jpg") == "https://salt.tikicdn.com/ts/product/x.jpg"
    assert full_size(None) is None


# -- the real recorded bodies -------------------------------------------------------
def real_json(name: str):
    return json.loads(harness.real_fixture("tiki", name).read_bytes())


def test_real_listing_envelope_yields_details_and_the_next_page():
    envelope = real_json(REAL_ENVELOPE)  # page 1 of 200 (the 2000-result cap)
    spider = make_spider()
    requests, _ = split(run_callback(spider.listing_request("1686", 1), json.dumps(envelope).encode()))
    details, listings = requests[:-1], requests[-1:]
    assert len(details) == len(envelope["data"])
    for request, entry in zip(details, envelope["data"]):
        assert request.url == (f"https://tiki.vn/api/v2/products/{entry['id']}"
                               f"?platform=web&spid={entry['seller_product_id']}")
    assert [r.url for r in listings] == [LISTING_1686.format(2)]


def test_real_listing_items_with_a_bare_detail_give_valid_items():
    entries = real_json(REAL_ITEMS)  # raw `data` entries; the recorder dropped the envelope
    spider = make_spider()
    requests, _ = split(run_callback(spider.listing_request("1686", 1), json.dumps({"data": entries}).encode()))
    details = [r for r in requests if "/products/" in urlsplit(r.url).path]
    assert len(details) == len(entries)
    for request, entry in zip(details, entries):
        [item] = run_callback(request, json.dumps({"id": entry["id"]}).encode())
        assert item.url == "https://tiki.vn/" + entry["url_path"].split("?")[0]
        assert item.price == float(entry["price"])
        assert item.image_urls and all("/cache/" not in u for u in item.image_urls)
        validate(item)  # raises InvalidItem if the listing fallback left the item unusable


def test_real_detail_gives_a_full_item():
    wrapped = real_json(REAL_DETAIL)
    # The sample is wrapped by a library ({"status", "data"}) and prints nulls as "None";
    # the live API answers the bare object with real nulls.
    raw = json.loads(json.dumps(wrapped["data"]).replace('"None"', "null"))
    spider = make_spider()
    listing = {"data": [{"id": raw["id"], "url_path": raw["url_path"]}],
               "paging": {"current_page": 1, "last_page": 1}}
    [request] = run_callback(spider.listing_request("1686", 1), json.dumps(listing).encode())
    assert request.url == f"https://tiki.vn/api/v2/products/{raw['id']}?platform=web&spid=42265930"
    [item] = run_callback(request, json.dumps(raw).encode())
    assert item.url == "https://tiki.vn/ta-lot-ve-sinh-cho-meo-co-mui-huong-sumiho-cong-nghe-y-p31884922.html"
    assert item.brand is None  # "OEM"
    assert item.price == 209000.0
    assert item.category_path == ["Bách Hóa Online", "Chăm sóc thú cưng", "Dành cho chó", "Đồ dùng vệ sinh cho chó"]
    assert item.image_urls[0] == "https://salt.tikicdn.com/ts/product/c3/62/bb/c81b5ef44f1ffedd83858bb0a7543fcf.jpg"
    assert len(item.image_urls) == len(raw["images"])
    assert item.attributes["material"].startswith("Vải không dệt")
    assert "<" not in item.description and item.description.startswith("Tã lót vệ sinh chó mèo")
    assert validate(item) == ["missing_brand"]


# -- round trip through the replay renderer ---------------------------------------------
def make_product(n: int, category: str) -> ShopProduct:
    return harness.demo_product(RENDERER, n, category, str(71000000 + n), str(72000000 + n))


def render(catalog, url: str):
    return harness.shop_reply(RENDERER, catalog, url)


def crawl(catalog, spider: TikiSpider):
    return harness.crawl(RENDERER, catalog, spider)


def test_round_trip_reaches_every_listed_product_once():
    # 85 products in one category: pages of 40, 40, 5; last_page == 3 ends it without an empty page.
    records = [make_product(n, "27572") for n in range(85)] + [make_product(n, "1703") for n in range(85, 88)]
    items, urls = crawl(FakeCatalog(records), make_spider(categories="27572,1703"))
    assert_items_reproduce(items, records)
    assert [u for u in urls if "category=27572" in u] == [
        LISTING.format("27572", page, "giay-the-thao-nam") for page in (1, 2, 3)]


def test_renderer_caps_the_listing_at_2000_results_like_the_real_api():
    catalog = FakeCatalog([make_product(n, "1686") for n in range(RESULT_CAP + 5)])
    last = json.loads(render(catalog, LISTING_1686.format(50)).body)
    assert last["paging"] == {"total": 2000, "total_text": "10000+", "per_page": 40, "current_page": 50,
                              "last_page": 50, "from": 1961, "to": 2000}
    assert len(last["data"]) == 40
    assert json.loads(render(catalog, LISTING_1686.format(51)).body)["data"] == []


def test_listing_entries_are_thumbnails_without_description():
    catalog = FakeCatalog([make_product(0, "1686")])
    [entry] = json.loads(render(catalog, LISTING_1686.format(1)).body)["data"]
    assert "description" not in entry and "specifications" not in entry and "images" not in entry
    assert entry["thumbnail_url"].startswith("https://salt.tikicdn.com/cache/280x280/ts/product/")
    assert entry["brand_name"] == "OEM"  # a product without a brand
    assert entry["url_path"] == "giay-demo-0-p71000000.html?spid=72000000"


def test_spider_and_renderer_agree_on_hosts_and_categories():
    harness.hosts_allowed(RENDERER, TikiSpider.allowed_domains)
    assert TikiSpider.default_categories == RENDERER.categories


def test_renderer_answers_unknowns_without_crashing():
    catalog = FakeCatalog([make_product(1, "1686")])
    listing = json.loads(render(catalog, LISTING.format("999", 1, "khac")).body)
    assert listing["data"] == [] and listing["paging"]["total"] == 0 and listing["paging"]["last_page"] == 1
    assert render(catalog, "https://tiki.vn/api/v2/products/123?platform=web").status == 404
    assert render(catalog, "https://tiki.vn/other") is None
    assert render(catalog, "https://tiki.vn/api/v2/products?category=1686&page=x").status == 200
    assert RENDERER.block_reply().status == 403


def test_round_trip_with_the_real_catalog():
    catalog_module = pytest.importorskip("replay_shop.catalog")
    catalog = catalog_module.Catalog(seed=1, products_per_site=20)
    records = {p.product_id: p for c in RENDERER.categories for p in catalog.listing("tiki", c)}
    items, _ = crawl(catalog, make_spider())
    assert records and len(items) == len(records)
    assert_items_reproduce(items, list(records.values()))
