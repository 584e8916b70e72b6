"""The five shops as rows of one table, read by the tests every spider must pass
(tests/test_spiders.py) and by each shop's own tests (tests/test_spider_<site>.py).

A row names the site's spider and replay renderer, how a demo record of the site is
made (its id scheme), the category its listing fixtures belong to, and what the
shared tests expect of it: a listing request, what the spider makes of the first
listing fixture, of a product page fixture and of the listing alone when the product
page fails for good, an empty listing, bodies that are no listing or no product, a
block answer, what the renderer answers to unknowns, and the listing pages of a round
trip through the renderer. Below the row of each site
stand the helpers its row and its own tests use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import scrapy

from replay_shop.records import ShopProduct
from replay_shop.sites import lazada as lazada_site
from replay_shop.sites import sendo as sendo_site
from replay_shop.sites import shopee as shopee_site
from replay_shop.sites import tiki as tiki_site
from replay_shop.sites import zalora as zalora_site
from replay_shop.sites.protocol import SiteRenderer
from scrapers.items import ProductItem
from scrapers.spiders import zalora as zalora_spider
from scrapers.spiders.base import ShopSpider
from scrapers.spiders.lazada import LazadaSpider
from scrapers.spiders.sendo import SendoSpider
from scrapers.spiders.shopee import ShopeeSpider
from scrapers.spiders.tiki import TikiSpider
from scrapers.spiders.zalora import ZaloraSpider
from tests.builders import real_fixture
from tests import spider_harness as harness
from tests.spider_harness import HTML, JSON


@dataclass(frozen=True)
class Listing:
    """`listing_request(category, page)` must be `url`, sent with `headers`."""
    category: str
    page: int
    url: str
    headers: dict[str, bytes]


@dataclass(frozen=True)
class FirstPage:
    """What the spider makes of the listing fixture: requests for `urls` (the products',
    then the next listing page's), for products `product_ids`, and bad entries counted."""
    urls: tuple[str, ...]
    product_ids: tuple[str, ...]
    bad_entries: int


@dataclass(frozen=True)
class ProductPage:
    """What a product request (the listing fixture's first, unless `request` makes
    another) makes of our fixture `sample`: one valid item with the fields of `item`."""
    sample: str
    item: dict
    request: Callable[[ShopSpider], scrapy.Request] | None = None


@dataclass(frozen=True)
class Block:
    """Our fixture `sample` of the site's block answer, its HTTP status and the
    reason detect_block gives it; the renderer's block reply must look the same."""
    sample: str
    status: int
    reason: str


@dataclass(frozen=True)
class Unknowns:
    """What the renderer answers to a listing of an unknown category (JSON holding
    `empty`), a product it does not have (`missing_status`, JSON holding
    `missing_body` if given) and a path it does not route (nothing)."""
    listing: str
    empty: dict
    missing_product: str
    unrouted: str
    missing_status: int = 404
    missing_body: dict | None = None


@dataclass(frozen=True)
class RoundTrip:
    """`sizes` demo records in the two `categories`, crawled through the renderer:
    the listing URLs fetched that contain `marker` must be `pages`, in order.
    `page_size`: (module, value) to shrink the spider's PAGE_SIZE for the crawl."""
    categories: tuple[str, str]
    sizes: tuple[int, int]
    marker: str
    pages: tuple[str, ...]
    page_size: tuple[object, int] | None = None


@dataclass(frozen=True)
class SiteCase:
    """One shop's row; its fixtures are under tests/fixtures/<site>/."""
    site: str
    spider_class: type[ShopSpider]
    renderer: SiteRenderer
    make_product: Callable[[int, str], ShopProduct]  # demo record `n` of a category, in the site's id scheme
    category: str  # the category our listing fixtures are pages of
    listing_fixture: str  # a page of it with at least two products and a next page
    listing: Listing
    first_page: FirstPage
    product_page: ProductPage
    # The fields of the item the listing fixture's first product is kept as when its
    # product page fails for good: what its listing entry alone says.
    listing_only: dict
    empty_listing: bytes
    block: Block
    unknowns: Unknowns
    round_trip: RoundTrip
    not_listings: tuple[bytes, ...] = ()  # bodies, besides malformed.json, that are no listing
    not_products: tuple[bytes, ...] = ()  # bodies a product request must reject
    listing_type: str | None = None  # the Content-Type the tests dress listing bodies with
    product_type: str | None = None  # ... and product bodies

    def make_spider(self, settings: dict | None = None, **kwargs) -> ShopSpider:
        return harness.make_spider(self.spider_class, settings, **kwargs)

    def fixture(self, name: str) -> bytes:
        return harness.fixture(self.site, name)

    def real(self, name: str) -> bytes:
        """A real recorded body, when present; else the test is skipped."""
        return real_fixture(self.site, name).read_bytes()

    def listing_page(self, spider: ShopSpider) -> list:
        """What `spider` makes of the first page of the listing fixture."""
        listing = spider.listing_request(self.category, 1)
        return harness.run_callback(listing, self.fixture(self.listing_fixture), content_type=self.listing_type)

    def product_request(self, spider: ShopSpider, index: int = 0) -> scrapy.Request:
        """The `index`-th product request of the listing fixture (listing requests have a
        page), from a spider that has not listed it yet (it asks for a product once)."""
        requests, _ = harness.split(self.listing_page(spider))
        return [r for r in requests if "page" not in r.cb_kwargs][index]

    def crawl_real_catalog(self) -> tuple[list[ProductItem], dict[str, ShopProduct]]:
        """The spider's crawl of its default categories in the replay catalog (no
        dupefilter: a product listed twice must be fetched once), and the records listed."""
        catalog = pytest.importorskip("replay_shop.catalog").Catalog(seed=1, products_per_site=20)
        records = {p.product_id: p for c in self.renderer.categories for p in catalog.listing(self.site, c)}
        items, _ = harness.crawl(self.renderer, catalog, self.make_spider(), dedupe=False)
        return items, records


# -- zalora ---------------------------------------------------------------------------
ZALORA_LISTING_WOMEN = ("https://api.zalora.com.my/v1/dynproducts/datajet/list?segment=women&categoryId=4"
                        "&limit=100&offset={}&shop=m&fullFacetCategory=true&image_format=webp&image_quality=70")
ZALORA_PAGE_4100001 = "https://www.zalora.com.my/p/replayfoot-replay-runner-knit-sneakers-black-4100001"
ZALORA_PAGE_4100002 = "https://www.zalora.com.my/p/strappy-block-heel-sandals-beige-4100002"


def zalora_product(n: int, category: str) -> ShopProduct:
    product_id = f"HI{n:03d}SH{n:02d}DMOMY"  # ConfigSku-shaped, as the catalog makes them
    return harness.demo_product(
        zalora_site.RENDERER, n, category, product_id, slug=f"giay-demo-{n}-den", images=3,
        description_html=f"<p>Mô tả {n}</p><script>x('</p>')</script><!-- c -->",
        brand=None if n % 3 == 0 else f"Hiệu {n}", colour="đen", material="vải canvas", price=1234 + n)


ZALORA = SiteCase(
    site="zalora", spider_class=ZaloraSpider, renderer=zalora_site.RENDERER, make_product=zalora_product,
    category="women-shoes", listing_fixture="listing_women_page1.json",
    listing=Listing("women-shoes", 3, ZALORA_LISTING_WOMEN.format(200), {
        "Referer": b"https://www.zalora.com.my/", "Origin": b"https://www.zalora.com.my",
        "Accept": b"application/json"}),
    # No ProductUrl, a numeric ProductUrl, a null ConfigSku, and a string where an object belongs.
    first_page=FirstPage((ZALORA_PAGE_4100001, ZALORA_PAGE_4100002, ZALORA_LISTING_WOMEN.format(100)),
                         ("0A1B2C3D4E5F60MY", "1B2C3D4E5F6071MY"), bad_entries=4),
    product_page=ProductPage("product_page.html", dict(
        site="zalora", product_id="0A1B2C3D4E5F60MY", url=ZALORA_PAGE_4100001,
        title="Replay Runner Knit & Go Sneakers",
        description="Lightweight knit upper & cushioned sole.\nLace-up closure", brand="Replayfoot",
        category_path=["Women", "Shoes", "Sneakers"],
        attributes={"colour": "Black", "material": "Knit", "gender": "Women", "style": "Sneakers"},
        price=189.0, currency="MYR",
        image_urls=[  # the originals inside the resizer URLs, de-duplicated, in order
            "https://static-my.zacdn.com/p/replayfoot-1001-4100001-1.jpg",
            "https://static-my.zacdn.com/p/replayfoot-1002-4100001-2.jpg",
            "https://static-my.zacdn.com/p/replayfoot-1003-4100001-3.jpg"])),
    # All but the page's description and attributes; the listing's (sale) price and gallery.
    listing_only=dict(
        site="zalora", product_id="0A1B2C3D4E5F60MY", url=ZALORA_PAGE_4100001, title="Replay Runner Knit Sneakers",
        description="", brand="Replayfoot", category_path=["Women", "Shoes", "Sneakers"], attributes={},
        price=189.0, currency="MYR",
        image_urls=["https://static-my.zacdn.com/p/replayfoot-1001-4100001-1.jpg",
                    "https://static-my.zacdn.com/p/replayfoot-1002-4100001-2.jpg"]),
    empty_listing=harness.fixture("zalora", "listing_empty.json"),
    not_listings=(b'{"success": false}',),  # no data envelope
    not_products=(harness.fixture("zalora", "product_page_bad_json_ld.html"),),
    product_type=HTML,
    block=Block("block.html", 403, "http_403"),
    unknowns=Unknowns(
        listing="https://api.zalora.com.my/v1/dynproducts/datajet/list?segment=kids&categoryId=534",
        empty={"data": {"NumProductFound": 0, "Products": []}},
        missing_product="https://www.zalora.com.my/p/giay-khac-ZZ999SH99ZZZMY",
        unrouted="https://www.zalora.com.my/women/shoes/"),
    # 5 products: pages of 2, 2, 1, ended by the total.
    round_trip=RoundTrip(("women-shoes", "men-shoes"), (5, 2), "segment=women", tuple(
        ZALORA_LISTING_WOMEN.format(offset).replace("limit=100", "limit=2") for offset in (0, 2, 4)),
        page_size=(zalora_spider, 2)),
)


# -- shopee ---------------------------------------------------------------------------
SHOPEE_LISTING = ("https://shopee.vn/api/v4/search/search_items?by=relevancy&limit=60&match_id={}"
                  "&newest={}&order=desc&page_type=search&scenario=PAGE_CATEGORY&version=2")
SHOPEE_CDN = "https://down-vn.img.susercontent.com/file/"


def shopee_detail_url(item_id: int, shop_id: int) -> str:
    return (f"https://shopee.vn/api/v4/pdp/get_pc?item_id={item_id}&shop_id={shop_id}"
            "&tz_offset_minutes=420&detail_level=0")


def shopee_product(n: int, category: str) -> ShopProduct:
    return harness.demo_product(
        shopee_site.RENDERER, n, category, str(80000000 + n), str(500 + n % 7), slug="slug",
        title=f"Giày thử {n} &amp; bạn", brand=None if n % 5 == 0 else f"Hãng {n % 3}", colour="đen",
        material="vải", gender="nam" if category == "11035801" else "nữ")


SHOPEE = SiteCase(
    site="shopee", spider_class=ShopeeSpider, renderer=shopee_site.RENDERER, make_product=shopee_product,
    category="11035801", listing_fixture="listing_page1.json",
    listing=Listing("11035801", 3, SHOPEE_LISTING.format("11035801", 120), {
        "Referer": b"https://shopee.vn/", "x-api-source": b"pc"}),
    first_page=FirstPage((shopee_detail_url(70000001, 900001), shopee_detail_url(70000002, 900002),
                          SHOPEE_LISTING.format("11035801", 60)), ("70000001", "70000002"), bad_entries=2),
    product_page=ProductPage("detail.json", dict(
        site="shopee", product_id="70000001", url="https://shopee.vn/product/900001/70000001",
        title="Giày sneaker nam Thử Nghiệm & Co. trắng",
        description="Giày êm chân, đế cao su.\nSize 39 – 43",
        brand="Thử Nghiệm", category_path=["Giày Dép Nam", "Giày Thể Thao/ Sneakers"],
        attributes={"material": "Da tổng hợp", "gender": "nam", "style": "sneaker", "colour": "Trắng"},
        price=459000.0, currency="VND",
        image_urls=[SHOPEE_CDN + "0a1b2c3d4e5f60718293a4b5c6d7e8f9", SHOPEE_CDN + "1b2c3d4e5f60718293a4b5c6d7e8f90a",
                    SHOPEE_CDN + "4e5f60718293a4b5c6d7e8f90a1b2c3d"])),
    # item_basic: no description, categories or attributes.
    listing_only=dict(
        site="shopee", product_id="70000001", url="https://shopee.vn/product/900001/70000001",
        title="Giày sneaker nam Thử Nghiệm & Co. trắng", description="", brand="Thử Nghiệm", category_path=[],
        attributes={}, price=459000.0, currency="VND",
        image_urls=[SHOPEE_CDN + "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                    SHOPEE_CDN + "1b2c3d4e5f60718293a4b5c6d7e8f90a"]),
    empty_listing=harness.fixture("shopee", "listing_empty.json"),  # null items
    not_listings=(b'{"error": 10005, "error_msg": "deprecated"}',),
    not_products=(harness.fixture("shopee", "malformed.json"), b'{"error": null, "data": {"item": []}}'),
    listing_type=JSON, product_type=JSON,
    block=Block("block.json", 200, "shopee_90309999"),
    unknowns=Unknowns(
        listing="https://shopee.vn/api/v4/search/search_items?limit=60&match_id=999&newest=0",
        empty={"items": None, "nomore": True, "total_count": 0},
        missing_product=shopee_detail_url(80000001, 1), missing_status=200,  # the wrong shop: an error code
        missing_body={"error": 4, "data": None},
        unrouted="https://shopee.vn/other"),
    # 125 products: pages of 60, 60, 5.
    round_trip=RoundTrip(("11035801", "11035825"), (125, 5), "match_id=11035801",
                         tuple(SHOPEE_LISTING.format("11035801", newest) for newest in (0, 60, 120))),
)


# -- lazada ---------------------------------------------------------------------------
LAZADA_LISTING = "https://www.lazada.vn/giay-sneaker-nam/?ajax=true&isFirstRequest=true&page={}"
LAZADA_PRODUCT_1 = "https://www.lazada.vn/products/giay-sneaker-nam-co-thap-de-em-i2412345601-s8812345601.html"
LAZADA_PRODUCT_2 = "https://www.lazada.vn/products/giay-luoi-nam-da-bo-i2412345602-s8812345602.html"
LAZADA_CDN = "https://vn-live-01.slatic.net/p/"


def lazada_product_request(spider: LazadaSpider, url: str, **entry) -> scrapy.Request:
    """The product-page request for a `listItems` entry of the page `url` holding `entry`
    (an `itemId` at least), as the listing would make it."""
    return spider.product_request(url, spider.listing_item({"productUrl": url, **entry}), callback=spider.parse_product)


def lazada_product(n: int, category: str = "giay-sneaker-nam", **overrides) -> ShopProduct:
    product_id, sku = str(3000000000 + n), str(9000000000 + n)
    fields = dict(title=f"Giày thử nghiệm số {n} &amp; bạn", brand="Biti's", material="Da tổng hợp",
                  gender="nam", description_html=f"<p>Mô tả <b>{n}</b></p><script>x()</script>")
    return harness.demo_product(lazada_site.RENDERER, n, category, product_id, sku, slug=f"giay-thu-nghiem-{n}",
                                images=3, **{**fields, **overrides})


LAZADA = SiteCase(
    site="lazada", spider_class=LazadaSpider, renderer=lazada_site.RENDERER, make_product=lazada_product,
    category="giay-sneaker-nam", listing_fixture="listing_page1.json",
    listing=Listing("giay-sneaker-nam", 3, LAZADA_LISTING.format(3), {
        "Accept": b"application/json", "Referer": b"https://www.lazada.vn/giay-sneaker-nam/"}),
    # The entry without itemId and the non-object entry are bad; an int id becomes a string.
    first_page=FirstPage((LAZADA_PRODUCT_1, LAZADA_PRODUCT_2, LAZADA_LISTING.format(2)),
                         ("2412345601", "2412345602"), bad_entries=2),
    # The page alone, without the listing's fields.
    product_page=ProductPage("product.html", dict(
        site="lazada", product_id="2412345601", url=LAZADA_PRODUCT_1,
        title="Giày Sneaker Nam Cổ Thấp & Đế Êm 🔥 FREESHIP",
        description="Giày sneaker cổ thấp & đế êm.\nĐi học, đi chơi",  # script dropped
        brand="Ananas", category_path=["Thời trang nam", "Giày nam", "Giày sneaker nam"],
        # no brand/SKU; the size-system tab is not a value
        attributes={"colour": "Trắng, Đen", "material": "Vải canvas", "gender": "Nam", "style": "Sneaker"},
        price=459000.0, currency="VND",
        # protocol-relative made https; thumbnail suffix stripped; video skipped; duplicates dropped
        image_urls=[LAZADA_CDN + "0a1b2c3d4e5f60718293a4b5c6d7e8f9.jpg",
                    LAZADA_CDN + "3c4d5e6f708192a3b4c5d6e7f8091021.jpg"]),
        request=lambda spider: lazada_product_request(spider, LAZADA_PRODUCT_1, itemId="2412345601")),
    # One picture; the highlights stand in for the description.
    listing_only=dict(
        site="lazada", product_id="2412345601", url=LAZADA_PRODUCT_1,
        title="Giày Sneaker Nam Cổ Thấp & Đế Êm 🔥 FREESHIP", description="Chất liệu: Vải canvas\nMàu sắc: Trắng",
        brand="Ananas", category_path=[], attributes={}, price=459000.0, currency="VND",
        image_urls=[LAZADA_CDN + "0a1b2c3d4e5f60718293a4b5c6d7e8f9.jpg"]),
    empty_listing=b'{"mods": {"listItems": []}}',
    not_listings=(b'{"mainInfo": {}}', b"[]"),
    not_products=(b"<html><body>Lazada</body></html>",),  # no embedded data
    listing_type=JSON, product_type=HTML,
    block=Block("block.json", 200, "lazada_captcha"),
    unknowns=Unknowns(
        listing="https://www.lazada.vn/khong-ton-tai/?ajax=true&page=1",
        empty={"mods": {"listItems": []}, "mainInfo": {"totalResults": "0"}},
        missing_product="https://www.lazada.vn/products/x-i3999999999-s1.html",
        unrouted="https://www.lazada.vn/a/b/c"),
    # A page and 5 more of one category, one product of the other: its page comes between.
    round_trip=RoundTrip(("giay-sneaker-nam", "giay-nu-thoi-trang"), (lazada_site.PAGE_SIZE + 5, 1), "ajax=true", (
        LAZADA_LISTING.format(1), "https://www.lazada.vn/giay-nu-thoi-trang/?ajax=true&isFirstRequest=true&page=1",
        LAZADA_LISTING.format(2))),
)


# -- tiki -----------------------------------------------------------------------------
TIKI_LISTING = ("https://tiki.vn/api/v2/products?limit=40&include=advertisement&aggregations=2"
                "&category={}&page={}&urlKey={}")
TIKI_CDN = "https://salt.tikicdn.com/ts/product"


def tiki_product(n: int, category: str) -> ShopProduct:
    return harness.demo_product(tiki_site.RENDERER, n, category, str(71000000 + n), str(72000000 + n))


TIKI = SiteCase(
    site="tiki", spider_class=TikiSpider, renderer=tiki_site.RENDERER, make_product=tiki_product,
    category="1686", listing_fixture="listing_page1.json",
    listing=Listing("1686", 1, TIKI_LISTING.format("1686", 1, "giay-dep-nam"), {
        "Referer": b"https://tiki.vn/giay-dep-nam/c1686"}),
    # The second entry has no seller_product_id: its spid comes from url_path.
    # Missing id, non-numeric id, no url_path/url_key; the non-dict entry is dropped by entries().
    first_page=FirstPage(("https://tiki.vn/api/v2/products/70000001?platform=web&spid=70000011",
                          "https://tiki.vn/api/v2/products/70000002?platform=web&spid=70000012",
                          TIKI_LISTING.format("1686", 2, "giay-dep-nam")), ("70000001", "70000002"), bad_entries=3),
    product_page=ProductPage("detail.json", dict(
        site="tiki", product_id="70000001", url="https://tiki.vn/giay-the-thao-nam-mau-den-p70000001.html",
        title="Giày thể thao nam & nữ màu đen đế cao su",
        description="Giày thể thao êm chân cho mọi ngày.\nĐế cao su chống trơn\nThân vải lưới",
        brand="Mẫu Sport", category_path=["Giày - Dép nam", "Giày thể thao nam"],
        attributes={"brand": "Mẫu Sport", "colour": "Đen", "material": "Vải lưới", "gender": "Nam",
                    "style": "sneaker", "origin": "Việt Nam"},
        price=459000.0, currency="VND",
        # base_url of each gallery image, de-duplicated, in order; no variant (other colour) images.
        image_urls=[f"{TIKI_CDN}/a1/b2/c3/a1b2c300000000000000000000000000.jpg",
                    f"{TIKI_CDN}/0a/1b/2c/0a1b2c00000000000000000000000000.jpg"])),
    # The thumbnail, full size; no description, categories or specifications.
    listing_only=dict(
        site="tiki", product_id="70000001", url="https://tiki.vn/giay-the-thao-nam-mau-den-p70000001.html",
        title="Giày thể thao nam màu đen", description="", brand="Mẫu Sport", category_path=[], attributes={},
        price=459000.0, currency="VND", image_urls=[f"{TIKI_CDN}/a1/b2/c3/a1b2c300000000000000000000000000.jpg"]),
    empty_listing=harness.fixture("tiki", "listing_empty.json"),
    not_products=(b'{"error": {"code": 404, "message": "not found"}}', b"[]",
                  b'{"status": true, "data": {"id": 70000001}}'),  # not the product object
    block=Block("block.html", 403, "http_403"),
    unknowns=Unknowns(
        listing=TIKI_LISTING.format("999", 1, "khac"),
        empty={"data": [], "paging": {"total": 0, "last_page": 1}},
        missing_product="https://tiki.vn/api/v2/products/123?platform=web",
        unrouted="https://tiki.vn/other"),
    # 85 products: pages of 40, 40, 5; last_page == 3 ends it without an empty page.
    round_trip=RoundTrip(("27572", "1703"), (85, 3), "category=27572",
                         tuple(TIKI_LISTING.format("27572", page, "giay-the-thao-nam") for page in (1, 2, 3))),
)


# -- sendo ----------------------------------------------------------------------------
SENDO_LISTING = ("https://searchlist-api.sendo.vn/web/categories/{}/products"
                 "?listing_algo=algo13&page={}&platform=web&size=60&sortType=listing_v2_desc")


def sendo_product(n: int, category: str) -> ShopProduct:
    return harness.demo_product(sendo_site.RENDERER, n, category, str(91000000 + n), "7001")


SENDO = SiteCase(
    site="sendo", spider_class=SendoSpider, renderer=sendo_site.RENDERER, make_product=sendo_product,
    category="1689", listing_fixture="listing_page1.json",
    listing=Listing("1689", 1, SENDO_LISTING.format("1689", 1), {
        "Referer": b"https://www.sendo.vn/", "Origin": b"https://www.sendo.vn"}),
    # Two dict entries lack a usable id; the non-dict entry is dropped by entries().
    first_page=FirstPage(("https://detail-api.sendo.vn/full/giay-sneaker-nam-co-thap-de-bang-90000101",
                          "https://detail-api.sendo.vn/full/dep-sandal-nu-quai-manh-90000102",
                          SENDO_LISTING.format("1689", 2)), ("90000101", "90000102"), bad_entries=2),
    product_page=ProductPage("detail.json", dict(
        site="sendo", product_id="90000101", url="https://www.sendo.vn/giay-sneaker-nam-co-thap-de-bang-90000101.html",
        title="Giày sneaker nam cổ thấp & đế bằng",
        description="Giày sneaker nam, đế cao su & êm.\nForm chuẩn\nDễ phối đồ", brand="DemoStep",
        category_path=["Giày dép", "Giày nam", "Giày sneaker - thể thao nam"],
        attributes={"colour": "Trắng, Đen", "material": "Da tổng hợp", "gender": "nam", "style": "sneaker",
                    "size": "40, 41"},
        price=399000.0, currency="VND",
        image_urls=[  # images only, absolute, de-duplicated, in order
            "https://media3.scdn.vn/img4/2024/03_14/0f1e2d3c4b5a69788796a5b4c3d2e1f0.jpg",
            "https://media3.scdn.vn/img4/2024/03_14/1f2e3d4c5b6a79889706b5c4d3e2f1a0.jpg"])),
    # The sale price and the thumbnail without its resize marker; no brand.
    listing_only=dict(
        site="sendo", product_id="90000101", url="https://www.sendo.vn/giay-sneaker-nam-co-thap-de-bang-90000101.html",
        title="Giày sneaker nam cổ thấp & đế bằng", description="", brand=None, category_path=[], attributes={},
        price=399000.0, currency="VND",
        image_urls=["https://media3.scdn.vn/img4/2024/03_14/0f1e2d3c4b5a69788796a5b4c3d2e1f0.jpg"]),
    empty_listing=harness.fixture("sendo", "listing_empty.json"),
    not_products=(b'{"status": 404, "error": {}}',),  # no data object
    block=Block("block.html", 403, "http_403"),
    unknowns=Unknowns(
        listing="https://searchlist-api.sendo.vn/web/categories/999/products",
        empty={"data": []},
        missing_product="https://detail-api.sendo.vn/full/giay-khac-91000001",
        unrouted="https://detail-api.sendo.vn/other"),
    # 130 products: pages of 60, 60, 10, then the empty page that ends it.
    round_trip=RoundTrip(("4162", "1689"), (130, 3), "categories/4162",
                         tuple(SENDO_LISTING.format("4162", page) for page in (1, 2, 3, 4))),
)


CASES = (ZALORA, SHOPEE, LAZADA, TIKI, SENDO)
