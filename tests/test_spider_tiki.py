"""The Tiki spider's own parsing, against our fixtures: a category without a known
slug, the last listing page, a detail falling back to the listing, the resize
prefix; the real recorded bodies, when present; and what the Tiki replay renderer
shows of the real API (its result cap, its listing entries). What every spider must
do is tested for Tiki by tests/test_spiders.py, from its row TIKI in
tests/spider_cases.py."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from replay_shop.sites.tiki import RENDERER, RESULT_CAP
from scrapers.items import validate
from scrapers.spiders.tiki import full_size
from tests import spider_harness as harness
from tests.spider_cases import TIKI
from tests.spider_cases import TIKI_CDN as CDN
from tests.spider_cases import TIKI_LISTING as LISTING
from tests.spider_cases import tiki_product as make_product
from tests.spider_harness import FakeCatalog, run_callback, split

REAL_ENVELOPE = "tiki_api_v2_products_listing_full_response.json"
REAL_ITEMS = "tiki_api_v2_products_listing_data_array.json"
REAL_DETAIL = "tiki_api_v2_products_detail_wrapped_by_tiki-api_readme.json"

LISTING_1686 = LISTING.format("1686", "{}", "giay-dep-nam")
DETAIL_1 = "https://tiki.vn/api/v2/products/70000001?platform=web&spid=70000011"


make_spider, fixture, detail_request = TIKI.make_spider, TIKI.fixture, TIKI.product_request


# -- listing ----------------------------------------------------------------------
def test_listing_request_for_a_category_without_known_slug():
    request = make_spider(categories="1234").listing_request("1234", 2)
    assert request.url == ("https://tiki.vn/api/v2/products?limit=40&include=advertisement"
                           "&aggregations=2&category=1234&page=2")
    assert request.headers["Referer"] == b"https://tiki.vn/"


def test_detail_request_carries_the_listing_item():
    request = detail_request(make_spider())
    assert request.cb_kwargs["listing"].product_id == "70000001"


def test_last_page_ends_the_category():
    spider = make_spider()
    requests, _ = split(run_callback(spider.listing_request("1686", 2), fixture("listing_page2_last.json")))
    assert [r.url for r in requests] == ["https://tiki.vn/api/v2/products/70000003?platform=web&spid=70000013"]


# -- detail -------------------------------------------------------------------------
def test_detail_with_oem_brand_and_no_images_falls_back_to_the_listing():
    [item] = run_callback(detail_request(make_spider(), 1), fixture("detail_null_brand.json"))
    assert item.brand is None
    assert item.url == "https://tiki.vn/dep-quai-ngang-nam-p70000002.html"
    assert item.description == "Dép quai ngang nhẹ"  # short_description when description is null
    assert item.price == 129000.0  # the listing price when the detail has none
    assert item.image_urls == [f"{CDN}/d4/e5/f6/d4e5f600000000000000000000000000.jpg"]  # thumbnail, full size
    assert item.category_path == [] and item.attributes == {}
    assert validate(item) == ["missing_brand", "missing_category_path"]


def test_resize_prefix_is_stripped():
    assert full_size("https://salt.tikicdn.com/cache/280x280/ts/product/ab/cd/ef/x.jpg") == \
        "https://salt.tikicdn.com/ts/product/ab/cd/ef/x.jpg"
    assert full_size("//salt.tikicdn.com/cache/w1200/ts/product/x.jpg") == "https://salt.tikicdn.com/ts/product/x.jpg"
    assert full_size("https://salt.tikicdn.com/ts/product/x.jpg") == "https://salt.tikicdn.com/ts/product/x.jpg"
    assert full_size(None) is None


# -- the real recorded bodies -------------------------------------------------------
def real_json(name: str):
    return json.loads(TIKI.real(name))


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


# -- the replay renderer ---------------------------------------------------------------
def render(catalog, url: str):
    return harness.shop_reply(RENDERER, catalog, url)


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


def test_renderer_answers_a_page_that_is_no_number():
    catalog = FakeCatalog([make_product(1, "1686")])
    assert render(catalog, "https://tiki.vn/api/v2/products?category=1686&page=x").status == 200
