"""The Zalora spider's own parsing, against our fixtures: what the listing entries
carry, where a listing ends, the country and category settings, a sparse product
page falling back to the listing, the resizer URLs; and the real GFG record sample,
when present. What every spider must do is tested for Zalora by tests/test_spiders.py,
from its row ZALORA in tests/spider_cases.py."""

from __future__ import annotations

import json
import re

import pytest

from scrapers.items import validate
from scrapers.spiders.zalora import ZaloraSpider, full_size
from tests.spider_cases import ZALORA
from tests.spider_cases import ZALORA_PAGE_4100002 as PAGE_4100002
from tests.spider_harness import run_callback, split

REAL_SAMPLE = "gfg_mockChatbotResponse_datajet_products.js"

make_spider, fixture, product_request = ZALORA.make_spider, ZALORA.fixture, ZALORA.product_request


# -- listing ----------------------------------------------------------------------
def test_product_requests_carry_the_listing_item():
    first, second, _ = split(ZALORA.listing_page(make_spider()))[0]
    assert [r.cb_kwargs["listing"].product_id for r in (first, second)] == ["0A1B2C3D4E5F60MY", "1B2C3D4E5F6071MY"]
    assert first.cb_kwargs["listing"].title == "Replay Runner Knit Sneakers"


def test_listing_ends_when_the_offset_reaches_the_total():
    request = make_spider().listing_request("women-shoes", 2)
    requests, _ = split(run_callback(request, fixture("listing_women_page2.json")))
    assert [r.url for r in requests] == ["https://www.zalora.com.my/p/leather-penny-loafers-brown-4100003"]


def test_country_and_category_ids_are_settings():
    spider = make_spider({"CLIPSHOE_ZALORA_DOMAIN": "zalora.sg",
                          "CLIPSHOE_ZALORA_CATEGORIES": {"men-shoes": {"segment": "men", "categoryId": "99"}}})
    request = spider.listing_request("men-shoes", 1)
    assert request.url.startswith("https://api.zalora.sg/v1/dynproducts/datajet/list?segment=men&categoryId=99&")
    assert request.headers["Referer"] == b"https://www.zalora.sg/"
    assert spider.allowed_domains == ["zalora.sg", "zacdn.com"]
    with pytest.raises(ValueError, match="CLIPSHOE_ZALORA_CATEGORIES"):
        spider.listing_request("kids-shoes", 1)


# -- product page -----------------------------------------------------------------------
def test_sparse_product_page_falls_back_to_the_listing():
    [item] = run_callback(product_request(make_spider(), 1), fixture("product_page_sparse.html"), html=True)
    assert item.url == PAGE_4100002
    assert item.brand is None  # null Brand in the listing, no brand on the page
    assert item.description == "Two straps, 6 cm block heel."
    assert item.price == 1299.0 and item.currency == "MYR"
    assert item.image_urls == ["https://static-my.zacdn.com/p/generic-2001-4100002-1.jpg"]
    assert item.attributes == {}
    assert validate(item) == ["missing_brand"]


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
    terms = js_object(ZALORA.real(REAL_SAMPLE).decode("utf-8"))["suggestions"]["search_terms"]
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
    assert [r.cb_kwargs["listing"].product_id for r in requests] == [p["ConfigSku"] for p in real_records]


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
