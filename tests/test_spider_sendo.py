"""The Sendo spider's own parsing, against our fixtures: what a detail request
carries, a detail without brand or media falling back to the listing, the thumbnail
marker; and the real recorded listing, when present. What every spider must do is
tested for Sendo by tests/test_spiders.py, from its row SENDO in
tests/spider_cases.py."""

from __future__ import annotations

import json

import pytest

from scrapers.items import validate
from scrapers.spiders.sendo import full_size
from tests.spider_cases import SENDO, SENDO_LISTING
from tests.spider_harness import run_callback, split

REAL_LISTING = "sendo_searchlist_web_products_q_giay_the_thao_600items_wrapped.json"

LISTING_1689 = SENDO_LISTING.format("1689", "{}")


make_spider, fixture, detail_request = SENDO.make_spider, SENDO.fixture, SENDO.product_request


# -- listing ----------------------------------------------------------------------
def test_detail_request_has_the_shop_as_referer_and_carries_the_listing_item():
    request = detail_request(make_spider())
    assert request.headers["Referer"] == b"https://www.sendo.vn/"
    assert request.cb_kwargs["listing"].product_id == "90000101"


# -- detail -------------------------------------------------------------------------
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


def test_thumbnail_marker_is_stripped():
    assert full_size("//media3.scdn.vn/img3/2019/4_4/YNwyZE_simg_de2fe0_250x250_maxb.jpg") == \
        "https://media3.scdn.vn/img3/2019/4_4/YNwyZE.jpg"
    assert full_size(None) is None


# -- the real recorded listing --------------------------------------------------------
@pytest.fixture(scope="module")
def real_entries() -> list[dict]:
    # The recording script re-wrapped the items as {total_products, products}; the API says {data}.
    return json.loads(SENDO.real(REAL_LISTING))["products"]


def test_real_listing_yields_one_detail_request_per_product(real_entries):
    spider = make_spider()
    body = json.dumps({"data": real_entries}).encode()
    requests, _ = split(run_callback(spider.listing_request("1689", 1), body))
    details, listings = requests[:-1], requests[-1:]
    assert len(details) == len(real_entries) == 600
    assert all(r.url.startswith("https://detail-api.sendo.vn/full/") and not r.url.endswith(".html")
               for r in details)
    assert len({r.cb_kwargs["listing"].product_id for r in details}) == 600
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
