"""The Lazada spider against synthetic fixtures in the real shapes, and a round trip
through the replay renderer.

No real Lazada body (ajax listing JSON or product-page HTML) was found anywhere
(see ../shared/fixtures/real/lazada/SOURCES.txt and docs/sites.md), so the fixtures
under tests/fixtures/lazada/ are our own, built from the documented field names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest
import scrapy
from scrapy.http import Response

from replay_shop.records import ShopImage, ShopProduct
from replay_shop.sites.protocol import ShopReply
from replay_shop.sites.lazada import PAGE_SIZE, RENDERER
from scrapers.attributes import normalise_attributes
from scrapers.blocks import detect_block
from scrapers.items import ProductItem, validate
from scrapers.middlewares import MalformedResponse
from scrapers.spiders.lazada import LazadaSpider
from scrapers.text import clean_str, html_to_text, unique
from tests import spider_harness as harness
from tests.spider_harness import HTML, JSON, FakeCatalog
from tests.spider_harness import results_of as call

FIXTURES = harness.FIXTURES / "lazada"
REAL = harness.REAL_FIXTURES / "lazada"
LISTING_URL = "https://www.lazada.vn/giay-sneaker-nam/?ajax=true&isFirstRequest=true&page={}"
PRODUCT_1 = "https://www.lazada.vn/products/giay-sneaker-nam-co-thap-de-em-i2412345601-s8812345601.html"
PRODUCT_2 = "https://www.lazada.vn/products/giay-luoi-nam-da-bo-i2412345602-s8812345602.html"
PRODUCT_3 = "https://www.lazada.vn/products/giay-the-thao-nam-chay-bo-i2412345603-s8812345603.html"
CDN = "https://vn-live-01.slatic.net/p/"


@pytest.fixture
def spider() -> LazadaSpider:
    spider = harness.make_spider(LazadaSpider)
    spider.crawler.stats.open_spider()
    return spider


def response_for(request: scrapy.Request, body: bytes, content_type: str = JSON, status: int = 200) -> Response:
    """A response as the downloader would hand it over, JSON unless said otherwise."""
    return harness.response_for(request, body, status, content_type=content_type)


def fixture_response(request: scrapy.Request, name: str) -> Response:
    return response_for(request, (FIXTURES / name).read_bytes(), HTML if name.endswith(".html") else JSON)


def bad_entries(spider: LazadaSpider) -> int:
    return spider.crawler.stats.get_value("clipshoe/skipped/bad_entry", 0)


def product_request(spider: LazadaSpider, url: str, **listing) -> scrapy.Request:
    base = {"product_id": "", "url": url, "title": None, "brand": None, "price": None, "image": None,
            "highlights": []}
    return scrapy.Request(url, callback=spider.parse_product, cb_kwargs={"listing": {**base, **listing}})


# -- listing ---------------------------------------------------------------------
def test_listing_request_is_the_ajax_xhr_with_referer(spider):
    request = spider.listing_request("giay-sneaker-nam", 3)
    assert request.url == LISTING_URL.format(3)
    assert request.headers["Accept"] == b"application/json"
    assert request.headers["Referer"] == b"https://www.lazada.vn/giay-sneaker-nam/"
    assert request.cb_kwargs == {"category": "giay-sneaker-nam", "page": 3}


def test_listing_page_requests_details_skips_bad_entries_and_follows_pagination(spider):
    request = spider.listing_request("giay-sneaker-nam", 1)
    out = call(request, fixture_response(request, "listing_page1.json"))
    assert [r.url for r in out] == [PRODUCT_1, PRODUCT_2, LISTING_URL.format(2)]
    assert out[0].callback == spider.parse_product
    assert out[0].cb_kwargs["listing"]["product_id"] == "2412345601"
    assert out[1].cb_kwargs["listing"]["product_id"] == "2412345602"  # an int id becomes a string
    assert bad_entries(spider) == 2  # the entry without itemId and the non-object entry


def test_last_page_ends_pagination(spider):
    request = spider.listing_request("giay-sneaker-nam", 2)
    out = call(request, fixture_response(request, "listing_page2_last.json"))
    assert [r.url for r in out] == [PRODUCT_3]  # 2 pages x 4 >= totalResults 6: no page 3
    assert bad_entries(spider) == 1  # the list-typed itemId


def test_empty_page_ends_pagination_without_counters(spider):
    request = spider.listing_request("giay-sneaker-nam", 7)
    assert call(request, response_for(request, b'{"mods": {"listItems": []}}')) == []


def test_item_cap_and_resume_are_respected():
    spider = harness.make_spider(LazadaSpider, max_items=1)
    spider.already_collected = {"2412345601"}
    request = spider.listing_request("giay-sneaker-nam", 1)
    out = call(request, fixture_response(request, "listing_page1.json"))
    assert [r.url for r in out] == [PRODUCT_2]  # 601 collected; cap reached: no next page


@pytest.mark.parametrize("body", [(FIXTURES / "malformed.json").read_bytes(), b'{"mainInfo": {}}', b"[]"])
def test_malformed_listing_raises_for_the_middleware(spider, body):
    request = spider.listing_request("giay-sneaker-nam", 1)
    with pytest.raises(MalformedResponse):
        call(request, response_for(request, body))


# -- product page ------------------------------------------------------------------
def test_product_page_item(spider):
    request = product_request(spider, PRODUCT_1, product_id="2412345601")
    [item] = call(request, fixture_response(request, "product.html"))
    assert isinstance(item, ProductItem)
    assert (item.site, item.product_id, item.url) == ("lazada", "2412345601", PRODUCT_1)
    assert item.title == "Giày Sneaker Nam Cổ Thấp & Đế Êm 🔥 FREESHIP"
    assert item.description == "Giày sneaker cổ thấp & đế êm.\nĐi học, đi chơi"  # script dropped
    assert item.brand == "Ananas"
    assert item.category_path == ["Thời trang nam", "Giày nam", "Giày sneaker nam"]
    assert item.attributes == {"colour": "Trắng, Đen", "material": "Vải canvas", "gender": "Nam",
                               "style": "Sneaker"}  # no brand/SKU; the size-system tab is not a value
    assert (item.price, item.currency) == (459000.0, "VND")
    # protocol-relative made https; thumbnail suffix stripped; video skipped; duplicates dropped
    assert item.image_urls == [CDN + "0a1b2c3d4e5f60718293a4b5c6d7e8f9.jpg",
                               CDN + "3c4d5e6f708192a3b4c5d6e7f8091021.jpg"]
    assert validate(item) == []


def test_tracking_only_page_falls_back_to_listing_data(spider):
    request = product_request(
        spider, PRODUCT_2, product_id="2412345602", price="820000.00", brand="No Brand",
        image="//vn-live-01.slatic.net/p/1f2e3d4c5b6a79880796a5b4c3d2e1f0.jpg_200x200q80.jpg_.webp",
        highlights=["<b>Da bò</b> thật", "Đế cao su"])
    [item] = call(request, fixture_response(request, "product_tracking_only.html"))
    assert (item.product_id, item.url, item.title) == ("2412345602", PRODUCT_2, "Giày lười nam da bò")
    assert item.brand is None  # "No Brand" is Lazada's null brand
    assert item.price == 820000.0
    assert item.category_path == ["Thời trang nam", "Giày nam", "Giày lười"]
    assert item.image_urls == [CDN + "1f2e3d4c5b6a79880796a5b4c3d2e1f0.jpg"]
    assert item.description == "Da bò thật\nĐế cao su"
    assert item.attributes == {}


def test_page_without_embedded_data_is_malformed(spider):
    request = product_request(spider, PRODUCT_1, product_id="2412345601")
    with pytest.raises(MalformedResponse):
        call(request, response_for(request, b"<html><body>Lazada</body></html>", "text/html"))


def test_block_body_is_detected():
    request = scrapy.Request(LISTING_URL.format(1))
    assert detect_block(fixture_response(request, "block.json")) == "lazada_captcha"
    reply = RENDERER.block_reply()
    assert detect_block(response_for(request, reply.body, reply.content_type, reply.status)) == "lazada_captcha"


def test_real_samples_when_present():
    samples = [p for p in REAL.glob("*") if p.suffix in (".json", ".html")] if REAL.is_dir() else []
    if not samples:
        pytest.skip("no real Lazada listing/PDP body exists (SOURCES.txt): only synthetic fixtures")
    pytest.fail(f"real Lazada samples appeared ({[p.name for p in samples]}): add a test that parses them")


# -- round trip through the replay renderer -------------------------------------------
def make_product(n: int, category: str = "giay-sneaker-nam", **overrides) -> ShopProduct:
    product_id, sku = str(3000000000 + n), str(9000000000 + n)
    tokens = [f"{n:08x}{k:024x}" for k in range(3)]
    base = dict(
        site="lazada", product_id=product_id, shop_id=sku,
        url=RENDERER.product_url(product_id, sku, f"giay-thu-nghiem-{n}"),
        title=f"Giày thử nghiệm số {n} &amp; bạn", description_html=f"<p>Mô tả <b>{n}</b></p><script>x()</script>",
        brand="Biti's", shoe_type="sneaker", is_shoe=True, colour="Đen", material="Da tổng hợp", gender="nam",
        category=category, category_path=RENDERER.category_path(category), price=100000 + 1000 * n, currency="VND",
        images=tuple(ShopImage(url=RENDERER.image_url(t), picture_id=t) for t in tokens),
    )
    return ShopProduct(**{**base, **overrides})


def serve(catalog, url: str) -> ShopReply | None:
    return harness.shop_reply(RENDERER, catalog, url)


def crawl(spider: LazadaSpider, catalog, categories: Iterable[str]) -> tuple[list[ProductItem], list[str]]:
    """Run the spider's callbacks against the renderer, as the engine would (no network),
    without a dupefilter: the spider itself must not fetch a product twice."""
    return harness.crawl(RENDERER, catalog, spider, categories, dedupe=False)


def assert_reproduces(item: ProductItem, record: ShopProduct) -> None:
    assert (item.site, item.product_id, item.url) == ("lazada", record.product_id, record.url)
    assert item.title == clean_str(record.title)
    assert item.brand == clean_str(record.brand)
    assert item.price == float(record.price) and item.currency == record.currency
    assert item.image_urls == unique(image.url for image in record.images)
    assert item.category_path == list(record.category_path)
    assert item.attributes == normalise_attributes([("Màu sắc", record.colour), ("Chất liệu", record.material),
                                                    ("Giới tính", record.gender), ("Loại giày", record.shoe_type)])
    if html_to_text(record.description_html):
        assert item.description == html_to_text(record.description_html)
    assert "<" not in item.description and "x()" not in item.description


def test_round_trip_reproduces_the_records_across_pages(spider):
    records = [make_product(n) for n in range(PAGE_SIZE + 5)]
    records[1] = make_product(1, brand=None)
    records[2] = make_product(2, description_html='<div>A</div><script>var s = "</script>";</script>B')
    records.append(make_product(99, category="giay-nu-thoi-trang", gender="nữ", shoe_type="boot"))
    items, urls = crawl(spider, FakeCatalog(records), ["giay-sneaker-nam", "giay-nu-thoi-trang"])
    assert sorted(i.product_id for i in items) == sorted(r.product_id for r in records)  # each exactly once
    listing_pages = [u for u in urls if "ajax=true" in u]
    women_page_1 = "https://www.lazada.vn/giay-nu-thoi-trang/?ajax=true&isFirstRequest=true&page=1"
    assert listing_pages == [LISTING_URL.format(1), women_page_1, LISTING_URL.format(2)]
    by_id = {r.product_id: r for r in records}
    for item in items:
        assert_reproduces(item, by_id[item.product_id])
    assert next(i for i in items if i.product_id == "3000000001").brand is None


def test_renderer_edges():
    catalog = FakeCatalog([make_product(1)])
    empty = json.loads(serve(catalog, "https://www.lazada.vn/khong-ton-tai/?ajax=true&page=1").body)
    assert empty["mods"]["listItems"] == [] and empty["mainInfo"]["totalResults"] == "0"
    past_end = json.loads(serve(catalog, LISTING_URL.format(2)).body)
    assert past_end["mods"]["listItems"] == [] and past_end["mainInfo"]["totalResults"] == "1"
    entry = json.loads(serve(catalog, LISTING_URL.format(1)).body)["mods"]["listItems"][0]
    assert entry["productUrl"].startswith("//www.lazada.vn/products/") and "desc" not in entry
    html_page = serve(catalog, "https://www.lazada.vn/giay-sneaker-nam/")
    assert html_page.content_type.startswith("text/html") and b"window.pageData = {" in html_page.body
    assert serve(catalog, "https://www.lazada.vn/products/x-i3999999999-s1.html").status == 404
    pdp = serve(catalog, make_product(1).url).body.decode()
    assert "//vn-live-01.slatic.net/p/" in pdp and "https://vn-live-01" not in pdp.split("__moduleData__")[1]
    assert pdp.count("</script>") == 2  # the description's script cannot end an inline script
    assert serve(catalog, "https://www.lazada.vn/a/b/c") is None


def test_round_trip_with_the_replay_catalog(spider):
    catalog_module = pytest.importorskip("replay_shop.catalog")
    catalog = catalog_module.Catalog(seed=1, products_per_site=20)
    items, _ = crawl(spider, catalog, RENDERER.categories)
    listed = [p for category in RENDERER.categories for p in catalog.listing("lazada", category)]
    assert sorted(i.product_id for i in items) == sorted({p.product_id for p in listed})  # listed twice, fetched once
    by_id = {p.product_id: p for p in listed}
    for item in items:
        assert_reproduces(item, by_id[item.product_id])
