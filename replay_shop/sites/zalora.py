"""Zalora (zalora.com.my) as the replay shop serves it, in the shapes of docs/sites.md.

There is no Vietnamese Zalora storefront, so the shop answers for the default
country of the spider, Malaysia (prices in MYR, images on static-my.zacdn.com).

Known from public code (docs/sites.md; the datajet facts are unattributed index hits
plus GFG's record sample): the datajet list API
`GET api.zalora.com.my/v1/dynproducts/datajet/list?categoryId=&segment=&limit=&offset=`
answering `data{NumProductFound, Products[]}` with ConfigSku, Name, Brand,
Price ("RM 79.00"), SpecialPrice ("" when not on sale), PriceInDecimal,
SpecialPriceInDecimal, MainImageUrl, ImageList[] (dynamic.zacdn.com resizer URLs
wrapping the static original), Breadcrumbs[], ProductUrl ("p/<slug>-<id>"),
SupplierName, ReviewStatistics; offset/limit paging, an empty page past the end.
Category ids are the older .com.my catalog API's (women's shoes 4, men's 27),
assumed to hold for datajet; the catalog's ids are ConfigSkus, so ProductUrl ends
with the ConfigSku here (real URLs end with a separate number).

Our assumptions (no raw Zalora page was found): the product page `/p/<slug>-<id>`
carries a schema.org JSON-LD `Product` (name, sku, brand, description, color,
material, image[], offers) and `BreadcrumbList`, plus a "Details" attribute table
(public Zalora page parsers read these); a missing brand is an empty string; the
limit cap; the block answer is the PerimeterX 403 page (PerimeterX cookies were
seen on Zalora requests, docs/sites.md).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import random
import re
import string
from functools import lru_cache
from typing import Any

from replay_shop.records import ShopProduct
from replay_shop.sites.common import int_arg
from replay_shop.sites.protocol import ProductSource, ShopReply, ShopRequest


SITE = "zalora"
DOMAIN = "zalora.com.my"
API_HOST = f"api.{DOMAIN}"
WEB_HOST = f"www.{DOMAIN}"
STATIC_HOST = "static-my.zacdn.com"
RESIZER_HOST = "dynamic.zacdn.com"
LISTING_PATH = "/v1/dynproducts/datajet/list"
PAGE_SIZE_DEFAULT = 36  # what the web client asks for
PAGE_SIZE_MAX = 200  # largest limit seen accepted in public scripts; larger is clamped
LISTING_IMAGE_FILTERS = "filters:quality(70):format(webp)"
PAGE_IMAGE_FILTERS = "fit-in/762x1100/filters:quality(95):fill(ffffff)"

# Category key -> ((segment, categoryId), breadcrumb names as the site shows them).
CATEGORIES: dict[str, tuple[tuple[str, str], tuple[str, ...]]] = {
    "women-shoes": (("women", "4"), ("Women", "Shoes")),
    "men-shoes": (("men", "27"), ("Men", "Shoes")),
}
_BY_QUERY = {query: key for key, (query, _) in CATEGORIES.items()}

# `/p/<slug>-<id>`: the id (here the ConfigSku) is whatever follows the slug's last dash.
_PRODUCT_PATH = re.compile(r"^/p/(?:[^/]*-)?(?P<id>[0-9A-Za-z]+)/?$")
_HTML = "text/html; charset=utf-8"


def _json(value: Any) -> str:
    # Inline-script safe: no "<" at all, so neither "</script" nor "<!--" in a value
    # can end or confuse the <script> element ("<" only occurs inside JSON strings).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


@lru_cache(maxsize=65536)
def resized(static_url: str, filters: str) -> str:
    """The dynamic.zacdn.com (Thumbor) URL that serves `static_url` through `filters`.
    The path starts with the request signature: base64url of an HMAC-SHA1 digest."""
    signature = base64.urlsafe_b64encode(hashlib.sha1(f"{filters}/{static_url}".encode()).digest()).decode()
    return f"https://{RESIZER_HOST}/{signature}/{filters}/{static_url}"


def _price_text(price: int) -> str:
    return f"RM {price:,.2f}"


def _relative_product_url(product: ShopProduct) -> str:
    return product.url.split(f"{WEB_HOST}/", 1)[-1]


class ZaloraRenderer:
    """Renders the catalog's zalora records as the datajet list JSON and product pages."""

    site = SITE
    hosts = (API_HOST, WEB_HOST)
    image_hosts = (STATIC_HOST, RESIZER_HOST)
    categories = tuple(CATEGORIES)
    currency = "MYR"

    def category_path(self, category: str) -> tuple[str, ...]:
        return CATEGORIES[category][1] if category in CATEGORIES else ()

    def product_url(self, product_id: str, shop_id: str, slug: str) -> str:
        return f"https://{WEB_HOST}/p/{slug}-{product_id}"

    def image_url(self, token: str) -> str:
        return f"https://{STATIC_HOST}/p/{token}.jpg"

    def block_reply(self) -> ShopReply:
        # PerimeterX's "Access denied" page with its captcha mount point.
        body = ("<!DOCTYPE html><html lang=\"en\"><head><title>Access to this page has been denied.</title>"
                "</head><body><div id=\"px-captcha\"></div><p>Press &amp; Hold to confirm you are a human "
                "(and not a bot).</p><script>window._pxAppId = 'PXreplay';</script></body></html>")
        return ShopReply(status=403, body=body.encode(), content_type=_HTML)

    def new_ids(self, rng: random.Random, brands: list[str]) -> tuple[list[str], list[str]]:
        """ConfigSkus, e.g. "AD123SH45ABCMY": brand code, number, SH (shoes), country; no shop ids."""
        skus: dict[str, None] = {}
        for brand in brands:
            code = (re.sub(r"[^A-Z]", "", brand.upper()) + "XX")[:2]
            while True:
                letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
                sku = f"{code}{rng.randint(100, 999)}SH{rng.randint(10, 99)}{letters}MY"
                if sku not in skus:
                    break
            skus[sku] = None
        return list(skus), [""] * len(brands)

    def handle(self, catalog: ProductSource, request: ShopRequest) -> ShopReply | None:
        if request.host == API_HOST and request.path == LISTING_PATH:
            return self._listing(catalog, request.query)
        match = _PRODUCT_PATH.match(request.path) if request.host == WEB_HOST else None
        if match:
            return self._product_page(catalog.product(SITE, match["id"]))
        return None

    # -- listing ----------------------------------------------------------------
    def _listing(self, catalog: ProductSource, query: dict[str, str]) -> ShopReply:
        category = _BY_QUERY.get((query.get("segment", ""), query.get("categoryId", "")))
        # An unknown category lists nothing: the API answers an empty result, not an error.
        products = catalog.listing(SITE, category) if category else []
        offset = int_arg(query, "offset", 0)
        limit = min(int_arg(query, "limit", PAGE_SIZE_DEFAULT), PAGE_SIZE_MAX)
        window = products[offset: offset + limit]
        payload = {"data": {"NumProductFound": len(products), "Products": [self._list_item(p) for p in window]}}
        return ShopReply(body=_json(payload).encode())

    def _list_item(self, product: ShopProduct) -> dict[str, Any]:
        images = [resized(image.url, LISTING_IMAGE_FILTERS) for image in product.images]
        return {
            "ConfigSku": product.product_id,  # the catalog ids zalora products by ConfigSku
            "Name": product.title,
            "Price": _price_text(product.price),
            "SpecialPrice": "",
            "Brand": product.brand or "",
            "ImageList": images,
            "MainImageUrl": images[0] if images else "",
            "Variations": "none",
            "Breadcrumbs": list(product.category_path),
            "HasDifferentSimplePrices": "false",
            "PriceInDecimal": product.price,
            "SpecialPriceInDecimal": 0,
            "SupplierName": "ZALORA",
            "ReviewStatistics": {"AvgRating": 0, "ReviewCount": 0, "StarPercentage": 0, "MostMentionedTags": "none"},
            "ProductUrl": _relative_product_url(product),
        }

    # -- product page -------------------------------------------------------------
    def _product_page(self, product: ShopProduct | None) -> ShopReply:
        if product is None:
            missing = ("<!DOCTYPE html><html lang=\"en\"><head><title>Page not found | ZALORA Malaysia</title></head>"
                       "<body><h1>Sorry, the page you are looking for cannot be found.</h1></body></html>")
            return ShopReply(status=404, body=missing.encode(), content_type=_HTML, missing_product=True)
        sku = product.product_id
        ld_product: dict[str, Any] = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": product.title,
            "sku": sku,
            "description": product.description_html,
            "color": product.colour,
            "material": product.material,
            "image": [resized(image.url, PAGE_IMAGE_FILTERS) for image in product.images],
            "offers": {"@type": "Offer", "price": f"{product.price:.2f}", "priceCurrency": self.currency,
                       "availability": "https://schema.org/InStock", "url": product.url},
        }
        if product.brand:
            ld_product["brand"] = {"@type": "Brand", "name": product.brand}
        crumbs = [*product.category_path, product.title]
        ld_breadcrumbs = {
            "@context": "https://schema.org",
            "@type": "BreadcrumbList",
            "itemListElement": [{"@type": "ListItem", "position": n, "name": name}
                                for n, name in enumerate(crumbs, start=1)],
        }
        details = (("Colour", product.colour), ("Material", product.material),
                   ("Gender", product.gender), ("Product Type", product.shoe_type))
        rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{html.escape(value)}</td></tr>"
                       for label, value in details)
        page = (
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(product.title)} | ZALORA Malaysia</title>"
            f"<link rel=\"canonical\" href=\"{html.escape(product.url)}\">"
            f"<script type=\"application/ld+json\">{_json(ld_product)}</script>"
            f"<script type=\"application/ld+json\">{_json(ld_breadcrumbs)}</script>"
            "</head><body>"
            f"<input type=\"hidden\" name=\"configSku\" value=\"{sku}\">"
            f"<input type=\"hidden\" name=\"configBrand\" value=\"{html.escape(product.brand or '')}\">"
            f"<div class=\"product__title\">{html.escape(product.title)}</div>"
            f"<div id=\"productDesc\">{product.description_html}</div>"
            f"<div class=\"pvd-attribute-detail-flex\"><table><tbody>{rows}</tbody></table></div>"
            "</body></html>"
        )
        return ShopReply(body=page.encode(), content_type=_HTML, product_id=product.product_id)


RENDERER = ZaloraRenderer()
