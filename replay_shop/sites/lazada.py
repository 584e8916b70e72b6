"""Lazada (lazada.vn) as the replay shop serves it, in the real shapes scrapers/spiders/lazada.py parses.

- Category listing: `GET /<category-slug>/?ajax=true&isFirstRequest=true&page=N`
  answers JSON `{mods{listItems[], filter, breadcrumb}, mainInfo{page, pageSize,
  totalResults}, ...}` with 40 items a page and string-typed counters; a page past
  the end has an empty `listItems`. Without `ajax=true` the same object sits in
  the category HTML as `window.pageData = {...}`.
- Product page: `GET /products/<slug>-i<itemId>-s<skuId>.html`, HTML embedding
  `var pdpTrackingData = "<escaped JSON>"` and `var __moduleData__ = {...}` whose
  `data.root.fields` holds product{title, desc, highlights, brand, link}, skuInfos,
  skuGalleries (protocol-relative image URLs), specifications and productOption.
- Block: the `rgv587_flag` captcha JSON.

Listing entries carry only one image and the highlights, so a crawler must open the
product page for the description, the attributes and the full gallery.
"""

from __future__ import annotations

import html
import json
import random
import re
from typing import Any

from replay_shop.records import ShopProduct
from replay_shop.sites.common import distinct_numbers, int_arg, page_slice
from replay_shop.sites.protocol import ProductSource, ShopReply, ShopRequest


SITE = "lazada"
HOST = "www.lazada.vn"
IMAGE_HOST = "vn-live-01.slatic.net"
PAGE_SIZE = 40
NO_BRAND = "No Brand"  # what Lazada prints (and links to) for a product without brand

# The shoe categories the Lazada spider crawls, with the breadcrumb names the site shows for them.
CATEGORY_NAMES: dict[str, tuple[str, ...]] = {
    "giay-sneaker-nam": ("Thời trang nam", "Giày nam", "Giày sneaker nam"),
    "giay-nam-thoi-trang": ("Thời trang nam", "Giày nam", "Giày thời trang nam"),
    "giay-nu-thoi-trang": ("Thời trang nữ", "Giày nữ", "Giày thời trang nữ"),
    "giay-the-thao-cho-nam": ("Thể thao & Du lịch", "Giày thể thao", "Giày thể thao cho nam"),
    "giay-the-thao-da-ngoai-nu": ("Thể thao & Du lịch", "Giày thể thao", "Giày thể thao & dã ngoại nữ"),
}

_CATEGORY_PATH = re.compile(r"^/(?P<category>[a-z0-9-]+)/?$")
# The slug may itself contain "-i"; the ids are the last "-i<id>[-s<sku>].html".
_PRODUCT_PATH = re.compile(r"^/products/(?:.*-)?i(?P<item>[0-9A-Za-z]+)(?:-s(?P<sku>[0-9A-Za-z]+))?\.html$")
_HTML = "text/html; charset=utf-8"


def _json(value: Any) -> str:
    # Inline-script safe: "</" would end the <script> element in a browser.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def _protocol_relative(url: str) -> str:
    """`https://host/p` -> `//host/p`, the form Lazada's pages use for links and images."""
    return url.split(":", 1)[1] if url.startswith(("https://", "http://")) else url


def _price_text(price: int) -> str:
    return f"{price:,}".replace(",", ".") + " ₫"


def _brand(product: ShopProduct) -> str:
    return product.brand or NO_BRAND


def _features(product: ShopProduct) -> dict[str, str]:
    """The spec table of the product page (Vietnamese labels, as lazada.vn shows)."""
    return {
        "Thương hiệu": _brand(product),
        "Màu sắc": product.colour,
        "Chất liệu": product.material,
        "Giới tính": product.gender,
        "Loại giày": product.shoe_type,
        "SKU": f"{product.product_id}_VNAMZ-{product.shop_id}",
    }


def _highlights(product: ShopProduct) -> list[str]:
    return [f"Chất liệu: {product.material}", f"Màu sắc: {product.colour}", f"Kiểu dáng: {product.shoe_type}"]


class LazadaRenderer:
    """Renders the catalog's lazada records as lazada.vn's listing JSON and PDP HTML."""

    site = SITE
    hosts = (HOST,)
    image_hosts = (IMAGE_HOST,)
    categories = tuple(CATEGORY_NAMES)
    currency = "VND"

    def category_path(self, category: str) -> tuple[str, ...]:
        return CATEGORY_NAMES.get(category, ())

    def product_url(self, product_id: str, shop_id: str, slug: str) -> str:
        sku = f"-s{shop_id}" if shop_id else ""
        return f"https://{HOST}/products/{slug}-i{product_id}{sku}.html"

    def image_url(self, token: str) -> str:
        return f"https://{IMAGE_HOST}/p/{token}.jpg"

    def block_reply(self) -> ShopReply:
        # The x5sec slider-captcha redirect Lazada answers to XHRs it distrusts.
        body = {"rgv587_flag": "sm",
                "url": f"https://{HOST}//_____tmd_____/punish?x5secdata=replay&x5step=2&action=captcha"}
        return ShopReply(status=200, body=_json(body).encode())

    def new_ids(self, rng: random.Random, brands: list[str]) -> tuple[list[str], list[str]]:
        n = len(brands)  # itemId, skuId
        return distinct_numbers(rng, 100_000_000, 2_999_999_999, n), distinct_numbers(rng, 100_000_000, 9_999_999_999, n)

    def handle(self, catalog: ProductSource, request: ShopRequest) -> ShopReply | None:
        product_match = _PRODUCT_PATH.match(request.path)
        if product_match:
            return self._product_page(catalog.product(SITE, product_match["item"]))
        category_match = _CATEGORY_PATH.match(request.path)
        if category_match:
            return self._listing(catalog, category_match["category"], request.query)
        return None

    # -- listing ----------------------------------------------------------------
    def _listing(self, catalog: ProductSource, category: str, query: dict[str, str]) -> ShopReply:
        page = max(1, int_arg(query, "page", 1))
        # An unknown slug lists nothing, like a category without products.
        products = catalog.listing(SITE, category) if category in CATEGORY_NAMES else []
        window = page_slice(products, page, PAGE_SIZE)
        names = self.category_path(category)
        page_data = {
            "templates": {},
            "mods": {
                "listItems": [self._list_item(p) for p in window],
                "filter": {"filterItems": []},
                "breadcrumb": [{"title": name} for name in names],
            },
            "mainInfo": {"dataFrom": "", "q": "", "title": names[-1] if names else "",
                         "page": str(page), "pageSize": str(PAGE_SIZE), "totalResults": str(len(products))},
            "seoInfo": {"canonical": f"https://{HOST}/{category}/"},
        }
        if query.get("ajax") == "true":
            return ShopReply(body=_json(page_data).encode())
        page_html = ("<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
                     f"<title>{html.escape(page_data['mainInfo']['title'])} | Lazada.vn</title></head>"
                     "<body><div id=\"root\"></div>"
                     f"<script>window.pageData = {_json(page_data)};</script></body></html>")
        return ShopReply(body=page_html.encode(), content_type=_HTML)

    def _list_item(self, product: ShopProduct) -> dict[str, Any]:
        sku = f"{product.product_id}_VNAMZ-{product.shop_id}"
        return {
            "name": product.title,
            "nid": product.product_id,
            "itemId": product.product_id,
            "skuId": product.shop_id,
            "sku": sku,
            "cheapest_sku": sku,
            "icons": [],
            # The listing shows one picture; the gallery is on the product page only.
            "image": product.images[0].url if product.images else "",
            "isSmartImage": False,
            "productUrl": _protocol_relative(product.url) + "?search=1",
            "description": _highlights(product),
            "price": f"{product.price}.00",
            "priceShow": _price_text(product.price),
            "originalPrice": f"{product.price}.00",
            "brandName": _brand(product),
            "sellerName": "Replay Shop VN",
            "location": "Hồ Chí Minh",
            "inStock": True,
        }

    # -- product page -------------------------------------------------------------
    def _product_page(self, product: ShopProduct | None) -> ShopReply:
        if product is None:
            missing = ("<!DOCTYPE html><html lang=\"vi\"><head><title>Lazada.vn</title></head>"
                       "<body><h1>Rất tiếc, không tìm thấy trang bạn yêu cầu</h1></body></html>")
            return ShopReply(status=404, body=missing.encode(), content_type=_HTML, missing_product=True)
        tracking = {
            "pdt_name": product.title,
            "pdt_sku": product.product_id,
            "pdt_simplesku": product.shop_id,
            "pdt_price": _price_text(product.price),
            "pdt_category": list(product.category_path),
            "brand_name": _brand(product),
            "pagetype": "pdp",
            "core": {"country": "VN", "language": "vi", "currencyCode": self.currency},
        }
        sku_info = {
            "itemId": product.product_id,
            "skuId": product.shop_id,
            "image": _protocol_relative(product.images[0].url) if product.images else "",
            "price": {"salePrice": {"text": _price_text(product.price), "value": product.price},
                      "originalPrice": {"text": _price_text(product.price), "value": product.price}},
            "dataLayer": tracking,
        }
        sku_key = product.shop_id or product.product_id
        gallery = [{"type": "img", "itemLevel": True, "src": _protocol_relative(image.url),
                    "poster": _protocol_relative(image.url)} for image in product.images]
        fields = {
            "primaryKey": {"itemId": product.product_id, "skuId": product.shop_id},
            "product": {
                "title": product.title,
                "desc": product.description_html,
                "highlights": "<ul>" + "".join(f"<li>{html.escape(h)}</li>" for h in _highlights(product)) + "</ul>",
                "brand": {"name": _brand(product)},
                "link": product.url,
            },
            # "0" is the item-level entry; variants would add one per skuId.
            "skuInfos": {"0": sku_info, sku_key: sku_info},
            "skuGalleries": {"0": gallery},
            "specifications": {sku_key: {"features": _features(product)}},
            "productOption": {"skuBase": {
                "properties": [{"name": "Màu sắc", "pid": "1", "values": [{"name": product.colour, "vid": "1"}]}],
                "skus": [{"itemId": product.product_id, "skuId": product.shop_id, "propPath": "1:1"}],
            }},
        }
        module_data = {"data": {"root": {"fields": fields}}}
        page_html = (
            "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(product.title)} | Lazada.vn</title>"
            f"<link rel=\"canonical\" href=\"{html.escape(product.url)}\">"
            # A JSON string holding JSON, exactly as the tracking script expects it.
            f"<script>var pdpTrackingData = {_json(_json(tracking))};</script>"
            "</head><body><div id=\"container\"></div><script>\n"
            f"var __moduleData__ = {_json(module_data)};\n"
            "var __googleBot__ = \"\";\n</script></body></html>"
        )
        return ShopReply(body=page_html.encode(), content_type=_HTML, product_id=product.product_id)


RENDERER = LazadaRenderer()
