"""Shopee spider parse methods against synthetic fixtures, the real third-party
bodies (when ../shared is present) and the replay renderer's own answers."""

from __future__ import annotations

import json

import pytest
import scrapy

from replay_shop.records import ShopImage, ShopProduct
from replay_shop.sites.shopee import RENDERER
from scrapers.blocks import detect_block
from scrapers.items import ProductItem, validate
from scrapers.middlewares import MalformedResponse
from scrapers.spiders.shopee import ShopeeSpider
from scrapers.text import clean_str
from tests import spider_harness as harness
from tests.spider_harness import JSON, FakeCatalog, response_for, run_callback, split

CDN = "https://down-vn.img.susercontent.com/file/"


@pytest.fixture
def spider() -> ShopeeSpider:
    return harness.make_spider(ShopeeSpider, {"CLIPSHOE_REPLAY_URL": ""})


def respond(request: scrapy.Request, body: bytes | str):
    return response_for(request, body, content_type=JSON)


def call(request: scrapy.Request, body: bytes | str) -> list:
    return run_callback(request, body, content_type=JSON)


fixture = harness.site_fixtures("shopee")


def detail_url(item_id: int, shop_id: int) -> str:
    return (f"https://shopee.vn/api/v4/pdp/get_pc?item_id={item_id}&shop_id={shop_id}"
            "&tz_offset_minutes=420&detail_level=0")


# -- listing ------------------------------------------------------------------
def test_listing_request_is_the_real_category_api(spider):
    request = spider.listing_request("11035801", 3)
    assert request.url == ("https://shopee.vn/api/v4/search/search_items?by=relevancy&limit=60&match_id=11035801"
                           "&newest=120&order=desc&page_type=search&scenario=PAGE_CATEGORY&version=2")
    assert request.headers["Referer"] == b"https://shopee.vn/"
    assert request.headers["x-api-source"] == b"pc"


def test_listing_yields_details_skips_bad_entries_and_follows_pagination(spider):
    requests, items = split(call(spider.listing_request("11035801", 1), fixture("listing_page1.json")))
    assert not items
    assert [r.url for r in requests] == [detail_url(70000001, 900001), detail_url(70000002, 900002),
                                         spider.listing_request("11035801", 2).url]
    assert requests[0].headers["Referer"] == b"https://shopee.vn/product/900001/70000001"
    assert requests[0].cb_kwargs["entry"]["brand"] == "Thử Nghiệm"
    assert spider.crawler.stats.get_value("clipshoe/skipped/bad_entry") == 2


def test_listing_stops_at_nomore_and_at_null_items(spider):
    requests, _ = split(call(spider.listing_request("11035801", 2), fixture("listing_last.json")))
    assert [r.url for r in requests] == [detail_url(70000005, 900001)]
    assert call(spider.listing_request("11035801", 3), fixture("listing_empty.json")) == []


def test_listing_respects_already_collected(spider):
    spider.already_collected = {"70000001"}
    requests, _ = split(call(spider.listing_request("11035801", 1), fixture("listing_page1.json")))
    assert detail_url(70000001, 900001) not in [r.url for r in requests]


@pytest.mark.parametrize("body", [fixture("malformed.json"), '{"error": 10005, "error_msg": "deprecated"}'])
def test_malformed_listing_raises_for_the_middleware(spider, body):
    with pytest.raises(MalformedResponse):
        call(spider.listing_request("11035801", 1), body)


# -- detail -------------------------------------------------------------------
def entry_of(listing: str, index: int) -> dict:
    return json.loads(fixture(listing))["items"][index]["item_basic"]


def test_detail_item(spider):
    request = spider.detail_request("70000001", "900001", entry_of("listing_page1.json", 0))
    _, items = split(call(request, fixture("detail.json")))
    [item] = items
    assert item.site == "shopee" and item.product_id == "70000001"
    assert item.url == "https://shopee.vn/product/900001/70000001"
    assert item.title == "Giày sneaker nam Thử Nghiệm & Co. trắng"
    assert item.description == "Giày êm chân, đế cao su.\nSize 39 – 43"
    assert item.brand == "Thử Nghiệm"
    assert item.category_path == ["Giày Dép Nam", "Giày Thể Thao/ Sneakers"]
    assert item.attributes == {"material": "Da tổng hợp", "gender": "nam", "style": "sneaker", "colour": "Trắng"}
    assert item.price == 459000.0 and item.currency == "VND"
    assert item.image_urls == [CDN + "0a1b2c3d4e5f60718293a4b5c6d7e8f9", CDN + "1b2c3d4e5f60718293a4b5c6d7e8f90a",
                               CDN + "4e5f60718293a4b5c6d7e8f90a1b2c3d"]
    validate(item)


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


@pytest.mark.parametrize("body", [fixture("malformed.json"), '{"error": null, "data": {"item": []}}'])
def test_malformed_detail_raises_for_the_middleware(spider, body):
    with pytest.raises(MalformedResponse):
        call(spider.detail_request("70000001", "900001", {}), body)


def test_block_bodies_are_detected():
    request = scrapy.Request(detail_url(1, 2))
    assert detect_block(respond(request, fixture("block.json"))) == "shopee_90309999"
    assert detect_block(respond(request, RENDERER.block_reply().body)) == "shopee_90309999"


# -- the real third-party bodies ------------------------------------------------
def real(name: str) -> bytes:
    return harness.real_fixture("shopee", name).read_bytes()


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
    first = details[0].cb_kwargs["entry"]
    [item] = call(details[0], json.dumps({"error": None, "data": {"item": {"item_id": first["itemid"]}}}))
    assert item.title and item.price == first["price"] / 100000
    assert item.image_urls == [CDN + h for h in dict.fromkeys(first["images"])]
    validate(item)


def test_real_block_body_is_detected():
    assert detect_block(respond(scrapy.Request(detail_url(1, 2)), real("shopee_get_pc_antibot_block_90309999.json"))) \
        == "shopee_90309999"


# -- round trip through the replay renderer ---------------------------------------
def make_product(n: int, category: str) -> ShopProduct:
    product_id, shop_id = str(80000000 + n), str(500 + n % 7)
    return ShopProduct(
        site="shopee", product_id=product_id, url=RENDERER.product_url(product_id, shop_id, "slug"),
        title=f"Giày thử {n} &amp; bạn", description_html=f"<p>Mô tả {n}</p><script>x()</script>",
        brand=None if n % 5 == 0 else f"Hãng {n % 3}", shoe_type="sneaker", is_shoe=True,
        colour="đen", material="vải", gender="nam" if category == "11035801" else "nữ",
        category=category, category_path=RENDERER.category_path(category), price=100000 + n * 1000,
        currency="VND", shop_id=shop_id,
        images=tuple(ShopImage(url=RENDERER.image_url(f"{n:08x}{k:024x}"), picture_id=f"{n}-{k}") for k in range(2)),
    )


def serve(catalog, request: scrapy.Request) -> bytes:
    return harness.replay(RENDERER, catalog, request).body


def crawl(spider: ShopeeSpider, catalog) -> tuple[list[ProductItem], list[str]]:
    """Every request through the renderer, repeated URLs included (no dupefilter)."""
    return harness.crawl(RENDERER, catalog, spider, dedupe=False)


def assert_reproduces(item: ProductItem, product: ShopProduct) -> None:
    assert item.url == product.url
    assert item.title == " ".join(product.title.replace("&amp;", "&").split())
    assert item.brand == product.brand
    assert item.price == product.price and item.currency == product.currency
    assert item.image_urls == [image.url for image in product.images]
    assert item.category_path == list(product.category_path)
    assert {k: item.attributes[k] for k in ("colour", "material", "gender", "style")} == {
        "colour": product.colour, "material": product.material, "gender": product.gender, "style": product.shoe_type}
    assert "<" not in item.description and "x()" not in item.description
    validate(item)


def test_round_trip_reaches_every_product_once(spider):
    products = [make_product(n, "11035801") for n in range(125)] + [make_product(n, "11035825") for n in range(125, 130)]
    items, urls = crawl(spider, FakeCatalog(products))
    assert sorted(item.product_id for item in items) == sorted(p.product_id for p in products)
    assert sum("match_id=11035801" in url for url in urls) == 3  # 60 + 60 + 5
    by_id = {p.product_id: p for p in products}
    for item in items:
        assert_reproduces(item, by_id[item.product_id])


def test_renderer_answers_unknowns_realistically():
    catalog = FakeCatalog([make_product(1, "11035801")])
    listing = json.loads(serve(catalog, scrapy.Request(
        "https://shopee.vn/api/v4/search/search_items?limit=60&match_id=999&newest=0")))
    assert listing["items"] is None and listing["nomore"] is True and listing["total_count"] == 0
    wrong_shop = json.loads(serve(catalog, scrapy.Request(detail_url(80000001, 1))))
    assert wrong_shop["error"] == 4 and wrong_shop["data"] is None


def test_round_trip_with_the_real_catalog(spider):
    catalog_module = pytest.importorskip("replay_shop.catalog")
    catalog = catalog_module.Catalog(seed=1, products_per_site=20)
    items, _ = crawl(spider, catalog)
    listed = {p.product_id: p for c in RENDERER.categories for p in catalog.listing("shopee", c)}
    assert listed and {i.product_id for i in items} == set(listed)
    for item in items:
        product = listed[item.product_id]
        assert item.url == product.url and item.brand == clean_str(product.brand)
        assert item.price == product.price
        assert item.image_urls == list(dict.fromkeys(image.url for image in product.images))
