"""Sendo as the replay shop serves it: the searchlist-api listing and the
detail-api product JSON, in the shapes public Sendo scrapers read (docs/sites.md).

Known from real code: the listing envelope `data[]` paged by `page`/`size` until a
page comes back empty (no total count is confirmed), listing entries with a 250x250
`_simg_…_maxb` thumbnail and `category_path` = `<slug>-<id>.html`, and the detail
`data{name, price, final_price, short_description, description_info.description,
media[{type, image}], brand_info.name, category_info[{title}], shop_info}`.
Not confirmed by any real body, so chosen here and kept easy to change: the
`attribute[{name, value[{value}]}]` list that carries colour/material/gender/style,
the empty `brand_info.name` for a product without a brand, the 404 body for an
unknown product, and the block answer (nothing Sendo-specific is known: a 403 page).
"""

from __future__ import annotations

import random
import re

from replay_shop.records import ShopProduct
from replay_shop.sites.common import clamped_size, distinct_numbers, forbidden_reply, int_arg, json_reply, number, page_slice, shared_numbers
from replay_shop.sites.protocol import ProductSource, ShopReply, ShopRequest

LISTING_PATH = re.compile(r"^/web/categories/(\d+)/products$")
DETAIL_PATH = re.compile(r"^/full/([^/]+)$")
# `<slug>-<id>`: the trailing number of a Sendo product path is the product id.
PRODUCT_ID_IN_PATH = re.compile(r"-(\d+)$")
PAGE_SIZE_DEFAULT = 60
PAGE_SIZE_MAX = 100  # the web client asks for 60; a larger size is clamped, not refused
THUMBNAIL_MARKER = "_simg_de2fe0_250x250_maxb"

# Category id -> breadcrumb of (category id, title); ids from the 2019 snapshot in docs/sites.md.
_ROOT = ("1686", "Giày dép")
_MEN = ("1689", "Giày nam")
_WOMEN = ("1687", "Giày nữ")
CATEGORY_TREE: dict[str, tuple[tuple[str, str], ...]] = {
    "1689": (_ROOT, _MEN),
    "1687": (_ROOT, _WOMEN),
    "4166": (_ROOT, _MEN, ("4166", "Giày sneaker - thể thao nam")),
    "4179": (_ROOT, _MEN, ("4179", "Giày tây nam")),
    "4162": (_ROOT, _WOMEN, ("4162", "Giày sneaker - thể thao nữ")),
    "4170": (_ROOT, _WOMEN, ("4170", "Giày sandals nữ")),
}


def thumbnail(url: str) -> str:
    """The 250x250 listing variant of a full-size media3.scdn.vn URL."""
    stem, dot, ext = url.rpartition(".")
    return f"{stem}{THUMBNAIL_MARKER}{dot}{ext}"


def product_path(product: ShopProduct) -> str:
    """`<slug>-<id>.html`, Sendo's `category_path` field, from the product page URL."""
    return product.url.rsplit("/", 1)[-1]


class SendoRenderer:
    """Renders catalog records as Sendo's listing and detail API answers."""

    site = "sendo"
    hosts = ("searchlist-api.sendo.vn", "detail-api.sendo.vn")
    image_hosts = ("media3.scdn.vn",)
    categories = tuple(CATEGORY_TREE)
    currency = "VND"

    def category_path(self, category: str) -> tuple[str, ...]:
        return tuple(title for _, title in CATEGORY_TREE.get(category, ()))

    def product_url(self, product_id: str, shop_id: str, slug: str) -> str:
        return f"https://www.sendo.vn/{slug}-{product_id}.html"

    def image_url(self, token: str) -> str:
        # Real paths carry an upload date (img4/2020/12_22/<name>.jpg); derive a stable one.
        month, day = int(token[:2], 16) % 12 + 1, int(token[2:4], 16) % 28 + 1
        return f"https://media3.scdn.vn/img4/2024/{month:02d}_{day:02d}/{token}.jpg"

    def new_ids(self, rng: random.Random, brands: list[str]) -> tuple[list[str], list[str]]:
        n = len(brands)  # product id; shop id, shared by a seller's products
        return distinct_numbers(rng, 10_000_000, 99_999_999, n), shared_numbers(rng, 100_000, 999_999, n, 10)

    def handle(self, catalog: ProductSource, request: ShopRequest) -> ShopReply | None:
        if request.host == "searchlist-api.sendo.vn":
            match = LISTING_PATH.match(request.path)
            return self._listing(catalog, match.group(1), request.query) if match else None
        if request.host == "detail-api.sendo.vn":
            match = DETAIL_PATH.match(request.path)
            return self._detail(catalog, match.group(1)) if match else None
        return None

    def block_reply(self) -> ShopReply:
        return forbidden_reply()

    # -- answers -----------------------------------------------------------------
    def _listing(self, catalog: ProductSource, category: str, query: dict[str, str]) -> ShopReply:
        page = max(1, int_arg(query, "page", 1))
        size = clamped_size(query, "size", PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)
        products = catalog.listing(self.site, category) if category in CATEGORY_TREE else []
        chunk = page_slice(products, page, size)
        return json_reply({"data": [self._listing_entry(p) for p in chunk]})

    def _detail(self, catalog: ProductSource, path: str) -> ShopReply:
        match = PRODUCT_ID_IN_PATH.search(path)
        product = catalog.product(self.site, match.group(1)) if match else None
        # The slug must match too: the path is the product's address, not just its id.
        if product is None or product_path(product) != f"{path}.html":
            return json_reply({"status": 404, "error": {"message": "Không tìm thấy sản phẩm"}}, status=404,
                              missing_product=True)
        return json_reply({"data": self._detail_data(product)}, product_id=product.product_id)

    # -- shapes ------------------------------------------------------------------
    def _listing_entry(self, product: ShopProduct) -> dict:
        # Listing entries carry no description, brand or attributes and only a thumbnail.
        return {
            "id": number(product.product_id),
            "name": product.title,
            "category_path": product_path(product),
            "image": thumbnail(product.images[0].url) if product.images else "",
            "default_price_min": product.price,
            "default_price_max": product.price,
            "sale_price_min": product.price,
            "sale_price_max": product.price,
            "shop": {"id": number(product.shop_id or "0"), "name": f"shop{product.shop_id}",
                     "ware_house_region_name": "TP.HCM"},
            "rated": {},
        }

    def _detail_data(self, product: ShopProduct) -> dict:
        attributes = (("Màu sắc", product.colour), ("Chất liệu", product.material),
                      ("Giới tính", product.gender), ("Kiểu dáng", product.shoe_type))
        return {
            "id": number(product.product_id),
            "name": product.title,
            "price": product.price,
            "final_price": product.price,
            "short_description": "",
            "description_info": {"description": product.description_html},
            "media": [{"type": "image", "image": image.url} for image in product.images],
            "brand_info": {"id": 0, "name": product.brand or ""},
            "category_info": self._category_info(product),
            "attribute": [{"name": name, "value": [{"value": value}]} for name, value in attributes if value],
            "shop_info": {"shop_id": number(product.shop_id or "0"), "shop_name": f"shop{product.shop_id}",
                          "warehourse_region_name": "TP.HCM"},
            "rating_info": {"percent_star": 0, "total_rated": 0},
        }

    @staticmethod
    def _category_info(product: ShopProduct) -> list[dict]:
        ids = [cat_id for cat_id, _ in CATEGORY_TREE.get(product.category, ())]
        ids += ["0"] * (len(product.category_path) - len(ids))
        return [{"id": int(cat_id), "title": title} for cat_id, title in zip(ids, product.category_path)]


RENDERER = SendoRenderer()
