"""The Lazada spider's own parsing, against our fixtures in the real shapes: what the
product requests carry, the last listing page, a tracking-only product page falling
back to the listing; what the Lazada replay renderer shows of its pages; and what a
Lazada item holds beyond the shared round trip (every attribute row, tricky
descriptions, null brands). What every spider must do is tested for Lazada by
tests/test_spiders.py, from its row LAZADA in tests/spider_cases.py.

No real Lazada body (ajax listing JSON or product-page HTML) was found anywhere
(see SOURCES.txt beside the real recorded bodies, and docs/sites.md), so the
fixtures under tests/fixtures/lazada/ are our own, built from the documented field
names.
"""

from __future__ import annotations

import json

import pytest
import scrapy
from scrapy.http import Response

from replay_shop.records import ShopProduct
from replay_shop.sites.lazada import RENDERER
from replay_shop.sites.protocol import ShopReply
from scrapers.attributes import normalise_attributes
from scrapers.spiders.lazada import LazadaSpider
from tests.builders import REAL_FIXTURES
from tests import spider_harness as harness
from tests.spider_cases import LAZADA
from tests.spider_cases import LAZADA_CDN as CDN
from tests.spider_cases import LAZADA_LISTING as LISTING_URL
from tests.spider_cases import LAZADA_PRODUCT_2 as PRODUCT_2
from tests.spider_cases import lazada_product as make_product
from tests.spider_cases import lazada_product_request as product_request
from tests.spider_harness import HTML, JSON, FakeCatalog
from tests.spider_harness import results_of as call

REAL = REAL_FIXTURES / "lazada"
PRODUCT_3 = "https://www.lazada.vn/products/giay-the-thao-nam-chay-bo-i2412345603-s8812345603.html"


@pytest.fixture
def spider() -> LazadaSpider:
    spider = LAZADA.make_spider()
    spider.crawler.stats.open_spider()
    return spider


def response_for(request: scrapy.Request, body: bytes, content_type: str = JSON, status: int = 200) -> Response:
    """A response as the downloader would hand it over, JSON unless said otherwise."""
    return harness.response_for(request, body, status, content_type=content_type)


def fixture_response(request: scrapy.Request, name: str) -> Response:
    return response_for(request, LAZADA.fixture(name), HTML if name.endswith(".html") else JSON)


def bad_entries(spider: LazadaSpider) -> int:
    return spider.crawler.stats.get_value("clipshoe/skipped/bad_entry", 0)


# -- listing ---------------------------------------------------------------------
def test_product_requests_carry_the_listing_item(spider):
    out = LAZADA.listing_page(spider)
    assert out[0].callback == spider.parse_product
    assert out[0].cb_kwargs["listing"].product_id == "2412345601"
    assert out[1].cb_kwargs["listing"].product_id == "2412345602"  # an int id becomes a string


def test_last_page_ends_pagination(spider):
    request = spider.listing_request("giay-sneaker-nam", 2)
    out = call(request, fixture_response(request, "listing_page2_last.json"))
    assert [r.url for r in out] == [PRODUCT_3]  # 2 pages x 4 >= totalResults 6: no page 3
    assert bad_entries(spider) == 1  # the list-typed itemId


# -- product page ------------------------------------------------------------------
def test_tracking_only_page_falls_back_to_listing_data(spider):
    request = product_request(
        spider, PRODUCT_2, itemId="2412345602", price="820000.00", brandName="No Brand",
        image="//vn-live-01.slatic.net/p/1f2e3d4c5b6a79880796a5b4c3d2e1f0.jpg_200x200q80.jpg_.webp",
        description=["<b>Da bò</b> thật", "Đế cao su"])
    [item] = call(request, fixture_response(request, "product_tracking_only.html"))
    assert (item.product_id, item.url, item.title) == ("2412345602", PRODUCT_2, "Giày lười nam da bò")
    assert item.brand is None  # "No Brand" is Lazada's null brand
    assert item.price == 820000.0
    assert item.category_path == ["Thời trang nam", "Giày nam", "Giày lười"]
    assert item.image_urls == [CDN + "1f2e3d4c5b6a79880796a5b4c3d2e1f0.jpg"]
    assert item.description == "Da bò thật\nĐế cao su"
    assert item.attributes == {}


def test_real_samples_when_present():
    samples = [p for p in REAL.glob("*") if p.suffix in (".json", ".html")] if REAL.is_dir() else []
    if not samples:
        pytest.skip("no real Lazada listing/PDP body exists (SOURCES.txt): only synthetic fixtures")
    pytest.fail(f"real Lazada samples appeared ({[p.name for p in samples]}): add a test that parses them")


# -- the replay renderer's pages, and what a round trip adds for Lazada -----------------
def serve(catalog, url: str) -> ShopReply | None:
    return harness.shop_reply(RENDERER, catalog, url)


def attribute_rows(record: ShopProduct) -> dict[str, str]:
    """The item attributes from the product page's rows, as the renderer writes the record."""
    return normalise_attributes([("Màu sắc", record.colour), ("Chất liệu", record.material),
                                 ("Giới tính", record.gender), ("Loại giày", record.shoe_type)])


def test_renderer_edges():
    catalog = FakeCatalog([make_product(1)])
    past_end = json.loads(serve(catalog, LISTING_URL.format(2)).body)
    assert past_end["mods"]["listItems"] == [] and past_end["mainInfo"]["totalResults"] == "1"
    entry = json.loads(serve(catalog, LISTING_URL.format(1)).body)["mods"]["listItems"][0]
    assert entry["productUrl"].startswith("//www.lazada.vn/products/") and "desc" not in entry
    html_page = serve(catalog, "https://www.lazada.vn/giay-sneaker-nam/")
    assert html_page.content_type.startswith("text/html") and b"window.pageData = {" in html_page.body
    pdp = serve(catalog, make_product(1).url).body.decode()
    assert "//vn-live-01.slatic.net/p/" in pdp and "https://vn-live-01" not in pdp.split("__moduleData__")[1]
    assert pdp.count("</script>") == 2  # the description's script cannot end an inline script


def test_round_trip_keeps_every_attribute_row_tricky_descriptions_and_null_brands():
    records = [make_product(0), make_product(1, brand=None),
               make_product(2, description_html='<div>A</div><script>var s = "</script>";</script>B'),
               make_product(99, category="giay-nu-thoi-trang", gender="nữ", shoe_type="boot")]
    spider = LAZADA.make_spider(categories="giay-sneaker-nam,giay-nu-thoi-trang")
    items, _ = harness.crawl(RENDERER, FakeCatalog(records), spider, dedupe=False)
    harness.assert_items_reproduce(items, records)
    by_id = {item.product_id: item for item in items}
    assert [by_id[r.product_id].attributes for r in records] == [attribute_rows(r) for r in records]
    assert by_id["3000000001"].brand is None


def test_real_catalog_items_hold_every_attribute_row():
    items, records = LAZADA.crawl_real_catalog()
    assert items and [i.attributes for i in items] == [attribute_rows(records[i.product_id]) for i in items]
