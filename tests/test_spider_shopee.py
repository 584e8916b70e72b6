"""The Shopee spider's own parsing, against our fixtures: what a detail request
carries, the end of a listing at `nomore`, a detail falling back to the listing, an
API error code; and the real third-party bodies, when present. What every spider
must do is tested for Shopee by tests/test_spiders.py, from its row SHOPEE in
tests/spider_cases.py."""

from __future__ import annotations

import json

import pytest
import scrapy

from scrapers.blocks import detect_block
from scrapers.items import validate
from scrapers.spiders.shopee import ShopeeSpider
from tests.spider_cases import SHOPEE
from tests.spider_cases import SHOPEE_CDN as CDN
from tests.spider_cases import shopee_detail_url as detail_url
from tests.spider_harness import JSON, response_for, run_callback, split

fixture = SHOPEE.fixture


@pytest.fixture
def spider() -> ShopeeSpider:
    return SHOPEE.make_spider()


def call(request: scrapy.Request, body: bytes | str) -> list:
    return run_callback(request, body, content_type=JSON)


# -- listing ------------------------------------------------------------------
def test_detail_request_has_the_product_page_as_referer_and_carries_the_listing_item(spider):
    request = SHOPEE.product_request(spider)
    assert request.headers["Referer"] == b"https://shopee.vn/product/900001/70000001"
    assert request.cb_kwargs["listing"].brand == "Thử Nghiệm"


def test_listing_stops_at_nomore(spider):
    requests, _ = split(call(spider.listing_request("11035801", 2), fixture("listing_last.json")))
    assert [r.url for r in requests] == [detail_url(70000005, 900001)]


# -- detail -------------------------------------------------------------------
def entry_of(listing: str, index: int) -> dict:
    return json.loads(fixture(listing))["items"][index]["item_basic"]


def test_detail_with_null_brand_falls_back_to_listing_images(spider):
    request = spider.detail_request("70000002", "900002", entry_of("listing_page1.json", 1))
    [item] = call(request, fixture("detail_null_brand.json"))
    assert item.brand is None
    assert item.attributes == {}
    assert item.description == ""
    assert item.price == 120000.0
    assert item.image_urls == [CDN + "2c3d4e5f60718293a4b5c6d7e8f90a1b"]


def test_detail_not_found_is_counted_not_crashed(spider):
    request = spider.detail_request("70000009", "900001", {})
    assert call(request, fixture("detail_not_found.json")) == []
    assert spider.crawler.stats.get_value("clipshoe/skipped/api_error_4") == 1


# -- the real third-party bodies ------------------------------------------------
real = SHOPEE.real


def test_real_search_items(spider):
    entries = json.loads(real("shopee_vn_search_items_items_array.json"))
    # The sample kept only the `items` array; re-wrap it in the API's envelope.
    body = json.dumps({"error": None, "total_count": 1000, "nomore": False, "items": entries})
    requests, _ = split(call(spider.listing_request("11035801", 1), body))
    details, following = requests[:-1], requests[-1]
    assert len(details) == len(entries) == 60  # duplicates are left to Scrapy's dupefilter
    assert [r.url for r in details] == [detail_url(e["itemid"], e["shopid"]) for e in entries]
    assert following.url == spider.listing_request("11035801", 2).url
    # The detail falls back to the listing entry: a sensible item from item_basic alone.
    first = entries[0]["item_basic"]
    [item] = call(details[0], json.dumps({"error": None, "data": {"item": {"item_id": first["itemid"]}}}))
    assert item.title and item.price == first["price"] / 100000
    assert item.image_urls == [CDN + h for h in dict.fromkeys(first["images"])]
    validate(item)


def test_real_block_body_is_detected():
    response = response_for(scrapy.Request(detail_url(1, 2)), real("shopee_get_pc_antibot_block_90309999.json"),
                            content_type=JSON)
    assert detect_block(response) == "shopee_90309999"
