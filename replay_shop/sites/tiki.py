"""Tiki as the replay shop serves it: the public `tiki.vn/api/v2/products` listing
and `tiki.vn/api/v2/products/<id>` detail JSON, in the shapes of the real bodies
described in docs/sites.md.

Known from real bodies: the listing envelope `data[]` + `paging{total, total_text,
per_page, current_page, last_page, from, to}` (plus `widgets`, `sort_options`, ...),
its ~2000-result cap, listing entries with only a `cache/280x280` thumbnail and no
description or specifications, and the raw (unwrapped) detail object with
`description` HTML, `images[]{base_url, large_url, ...}`, `brand{id, name, slug}`,
`breadcrumbs[]` (last element = the product) and `specifications[{name,
attributes[{name, value}]}]`; a product without a brand shows brand "OEM".
Chosen here because no real body shows them: the Laravel-style paging of an empty
or past-the-end page (`last_page` at least 1, `from`/`to` null), the 404 body for an
unknown product, and the block answer (nothing Tiki-specific is known: a 403 page).
The category table is the shop's own: the spider keeps its own id -> slug table, so a
wrong `urlKey`/Referer in the spider is not hidden by a shared constant.
"""

from __future__ import annotations

import math
import random
import re
from urllib.parse import urlsplit

from replay_shop.records import ShopProduct
from replay_shop.sites.common import clamped_size, distinct_numbers, forbidden_reply, int_arg, json_reply, number, page_slice
from replay_shop.sites.protocol import ProductSource, ShopReply, ShopRequest

HOST = "tiki.vn"
IMAGE_HOST = "salt.tikicdn.com"
LISTING_PATH = "/api/v2/products"
DETAIL_PATH = re.compile(r"^/api/v2/products/(\d+)$")
PAGE_SIZE_DEFAULT = 40
PAGE_SIZE_MAX = 100  # public scripts ask for 40, 48 and 100
# The real API stops at 2000 results whatever the category size ("total": 2000,
# "total_text": "10000+"); crawlers shard by sub-category to see the rest.
RESULT_CAP = 2000
NO_BRAND = {"id": 111461, "name": "OEM", "slug": "oem"}  # what Tiki shows for an unbranded product

# Category id -> breadcrumb of (category id, url slug, name). The roots are the
# shoe categories of docs/sites.md; the sub-categories come from an unverified list.
_MEN = ("1686", "giay-dep-nam", "Giày - Dép nam")
_WOMEN = ("1703", "giay-dep-nu", "Giày - Dép nữ")
CATEGORY_TREE: dict[str, tuple[tuple[str, str, str], ...]] = {
    "1686": (_MEN,),
    "1703": (_WOMEN,),
    "27572": (_MEN, ("27572", "giay-the-thao-nam", "Giày thể thao nam")),
    "8355": (_WOMEN, ("8355", "giay-cao-got", "Giày cao gót")),
}


def resized(url: str, size: str) -> str:
    """A `salt.tikicdn.com/cache/<size>/...` variant of a full-size image URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/cache/{size}{parts.path}"


def url_key(product: ShopProduct) -> str:
    """`<slug>-p<id>`, Tiki's `url_key`, from the product page URL."""
    return urlsplit(product.url).path.strip("/").removesuffix(".html")


def paging(total_listed: int, page: int, per_page: int) -> dict:
    total = min(total_listed, RESULT_CAP)
    last_page = max(1, math.ceil(total / per_page))
    shown = 0 < page <= last_page and total > 0
    return {
        "total": total,
        "total_text": "10000+" if total_listed > RESULT_CAP else str(total),
        "per_page": per_page,
        "current_page": page,
        "last_page": last_page,
        "from": (page - 1) * per_page + 1 if shown else None,
        "to": min(page * per_page, total) if shown else None,
    }


class TikiRenderer:
    """Renders catalog records as Tiki's listing and detail API answers."""

    site = "tiki"
    hosts = (HOST,)
    image_hosts = (IMAGE_HOST,)
    categories = tuple(CATEGORY_TREE)
    currency = "VND"

    def category_path(self, category: str) -> tuple[str, ...]:
        return tuple(name for _, _, name in CATEGORY_TREE.get(category, ()))

    def product_url(self, product_id: str, shop_id: str, slug: str) -> str:
        # The canonical page (as in `breadcrumbs`); `?spid=` only picks the seller offer.
        return f"https://{HOST}/{slug}-p{product_id}.html"

    def image_url(self, token: str) -> str:
        # Real paths shard by three hex pairs: ts/product/c3/62/bb/<hash>.jpg.
        return f"https://{IMAGE_HOST}/ts/product/{token[:2]}/{token[2:4]}/{token[4:6]}/{token}.jpg"

    def new_ids(self, rng: random.Random, brands: list[str]) -> tuple[list[str], list[str]]:
        n = len(brands)  # product id, seller product id (spid)
        return distinct_numbers(rng, 10_000_000, 280_000_000, n), distinct_numbers(rng, 10_000_000, 300_000_000, n)

    def handle(self, catalog: ProductSource, request: ShopRequest) -> ShopReply | None:
        if request.host != HOST:
            return None
        if request.path == LISTING_PATH:
            return self._listing(catalog, request.query)
        match = DETAIL_PATH.match(request.path)
        return self._detail(catalog, match.group(1)) if match else None

    def block_reply(self) -> ShopReply:
        return forbidden_reply()

    # -- answers -----------------------------------------------------------------
    def _listing(self, catalog: ProductSource, query: dict[str, str]) -> ShopReply:
        category = query.get("category", "")
        page = int_arg(query, "page", 1)
        per_page = clamped_size(query, "limit", PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)
        products = catalog.listing(self.site, category) if category in CATEGORY_TREE else []
        chunk = page_slice(products[:RESULT_CAP], page, per_page)
        return json_reply({
            "data": [self._listing_entry(p) for p in chunk],
            "paging": paging(len(products), page, per_page),
            "widgets": [],
            "sort_options": [{"display_value": "Phổ biến", "query_value": "default", "selected": True}],
            "experiment_variants": {},
            "query_info": {"trackity_id": query.get("trackity_id", "")},
            "trace_id": f"replay{catalog.seed}",
        })

    def _detail(self, catalog: ProductSource, product_id: str) -> ShopReply:
        product = catalog.product(self.site, product_id)
        if product is None:
            return json_reply({"error": {"code": 404, "message": "Không tìm thấy sản phẩm"}}, status=404,
                              missing_product=True)
        return json_reply(self._detail_data(product), product_id=product.product_id)

    # -- shapes ------------------------------------------------------------------
    def _common(self, product: ShopProduct) -> dict:
        """Fields the listing entry and the detail object share."""
        key = url_key(product)
        return {
            "id": number(product.product_id),
            "sku": product.product_id.zfill(13),
            "name": product.title,
            "url_key": key,
            "url_path": f"{key}.html?spid={product.shop_id}" if product.shop_id else f"{key}.html",
            "price": product.price,
            "list_price": product.price,
            "original_price": product.price,
            "discount": 0,
            "discount_rate": 0,
            "rating_average": 0,
            "review_count": 0,
            "thumbnail_url": resized(product.images[0].url, "280x280") if product.images else "",
            "inventory_status": "available",
        }

    def _listing_entry(self, product: ShopProduct) -> dict:
        # No description or specifications and only a thumbnail, as in the real listing.
        trail = CATEGORY_TREE.get(product.category, ())
        return {
            **self._common(product),
            "brand_name": product.brand or NO_BRAND["name"],
            "seller_id": 1,
            "seller_name": "Tiki Trading",
            "seller_product_id": number(product.shop_id) if product.shop_id else None,
            "primary_category_path": "/".join(["1", "2", *(cat_id for cat_id, _, _ in trail)]),
            "primary_category_name": product.category_path[-1] if product.category_path else "",
            "thumbnail_width": 280,
            "thumbnail_height": 280,
            "availability": 1,
        }

    def _detail_data(self, product: ShopProduct) -> dict:
        brand = {"id": 0, "name": product.brand, "slug": ""} if product.brand else NO_BRAND
        specs = (("Thương hiệu", brand["name"]), ("Màu sắc", product.colour), ("Chất liệu", product.material),
                 ("Giới tính", product.gender), ("Loại giày", product.shoe_type))
        return {
            **self._common(product),
            "master_id": number(product.product_id),
            "type": "simple",
            "short_description": "",
            "description": product.description_html,
            "images": [self._image(image.url, position) for position, image in enumerate(product.images)],
            "brand": brand,
            "categories": self._leaf_category(product),
            "breadcrumbs": self._breadcrumbs(product),
            "specifications": [{"name": "Content", "attributes": [
                {"name": name, "value": value} for name, value in specs if value]}],
            "configurable_options": [],
            "configurable_products": [],
            "current_seller": {"id": 1, "name": "Tiki Trading", "product_id": product.shop_id,
                               "price": product.price},
            "stock_item": {"qty": 100, "min_sale_qty": 1, "max_sale_qty": 10, "preorder_date": False},
        }

    @staticmethod
    def _image(url: str, position: int) -> dict:
        return {
            "label": None,
            "position": position,
            "base_url": url,
            "thumbnail_url": resized(url, "200x280"),
            "small_url": resized(url, "w42"),
            "medium_url": resized(url, "w300"),
            "large_url": resized(url, "w1200"),
            "is_gallery": True,
        }

    @staticmethod
    def _category_ids(product: ShopProduct) -> list[tuple[int, str]]:
        """(id, slug) per breadcrumb name; names the tree does not know get id 0."""
        known = [(int(cat_id), slug) for cat_id, slug, _ in CATEGORY_TREE.get(product.category, ())]
        return known + [(0, "")] * (len(product.category_path) - len(known))

    def _breadcrumbs(self, product: ShopProduct) -> list[dict]:
        trail = [{"url": f"/{slug}/c{cat_id}", "name": name, "category_id": cat_id}
                 for (cat_id, slug), name in zip(self._category_ids(product), product.category_path)]
        return trail + [{"url": product.url, "name": product.title}]

    def _leaf_category(self, product: ShopProduct) -> dict:
        if not product.category_path:
            return {"id": 2, "name": "Root", "is_leaf": False}
        cat_id, _ = self._category_ids(product)[-1]
        return {"id": cat_id, "name": product.category_path[-1], "is_leaf": True}


RENDERER = TikiRenderer()
