"""Shopee as the replay shop serves it: the v4 `search/search_items` category
listing and the `pdp/get_pc` product JSON, in the shapes of docs/sites.md.

Known from real bodies and code: the listing envelope `{error, total_count, nomore,
items[{item_basic{…}, itemid, shopid, adsid, …}]}` paged by a `newest` offset in
steps of `limit`; `item_basic` with prices ×100000, an `image` hash plus the full
`images[]` hashes (the CDN URL is built by the client), `brand` as "" when the shop
gave none, `tier_variations[{name, options}]`; the HTTP 200 anti-bot body
`{"error": 90309999, "action_type": 2, "tracking_id": …}`.
No real get_pc success body is known, so its layout follows the parser hits listed
in docs/sites.md: `data.item{item_id, shop_id, title, brand, price…, fe_categories}`,
`data.product_images.images[]`, `data.product_attributes.attrs[{name, value}]`,
`data.product_description.paragraph_list[{type, text}]`. Chosen here, not
confirmed: `items: null` on a page past the end, `{"error": 4, "data": null}` for an
unknown product, the global `catid` numbers, and carrying colour as a one-option
`Màu sắc` tier variation (where Shopee shoppers pick it) rather than in `attrs`.
"""

from __future__ import annotations

import random
import uuid

from replay_shop.records import ShopProduct
from replay_shop.sites.common import clamped_size, distinct_numbers, int_arg, json_reply, number, shared_numbers
from replay_shop.sites.protocol import ProductSource, ShopReply, ShopRequest

LISTING_PATH = "/api/v4/search/search_items"
DETAIL_PATH = "/api/v4/pdp/get_pc"
IMAGE_BASE = "https://down-vn.img.susercontent.com/file/"
PRICE_SCALE = 100_000  # Shopee sends prices as integers ×100000
PAGE_SIZE_DEFAULT = 60
PAGE_SIZE_MAX = 100  # the web client asks for 60; larger limits are clamped
ITEM_NOT_FOUND = 4

_MEN = (11035801, "Giày Dép Nam")
_WOMEN = (11035825, "Giày Dép Nữ")
# match_id (storefront category) -> breadcrumb of (catid, display_name); ids from docs/sites.md.
CATEGORY_TREE: dict[str, tuple[tuple[int, str], ...]] = {
    "11035801": (_MEN,),
    "11035825": (_WOMEN,),
    "11035807": (_MEN, (11035807, "Giày Thể Thao/ Sneakers")),
    "11035830": (_WOMEN, (11035830, "Giày Thể Thao/ Sneaker")),
}
# item_basic.catid is Shopee's global category, not the storefront one (invented ids).
GLOBAL_CATID = {"11035801": 100011, "11035807": 100011, "11035825": 100532, "11035830": 100532}


def image_hash(url: str) -> str:
    """The `file/<hash>` part of a CDN URL: Shopee's JSON carries hashes, not URLs."""
    return url.rsplit("/", 1)[-1]


class ShopeeRenderer:
    """Renders catalog records as Shopee's search_items and get_pc answers."""

    site = "shopee"
    hosts = ("shopee.vn",)
    image_hosts = ("down-vn.img.susercontent.com",)
    categories = tuple(CATEGORY_TREE)
    currency = "VND"

    def category_path(self, category: str) -> tuple[str, ...]:
        return tuple(name for _, name in CATEGORY_TREE.get(category, ()))

    def product_url(self, product_id: str, shop_id: str, slug: str) -> str:
        # The id-only form: the API gives no slug, and Shopee redirects the -i. form to it anyway.
        return f"https://shopee.vn/product/{shop_id}/{product_id}"

    def image_url(self, token: str) -> str:
        return IMAGE_BASE + token  # 32-hex hashes are one of the two real hash forms

    def new_ids(self, rng: random.Random, brands: list[str]) -> tuple[list[str], list[str]]:
        n = len(brands)  # itemid; shopid, shared by a seller's items
        return distinct_numbers(rng, 1_000_000_000, 29_999_999_999, n), shared_numbers(rng, 10_000_000, 999_999_999, n, 8)

    def handle(self, catalog: ProductSource, request: ShopRequest) -> ShopReply | None:
        if request.host != "shopee.vn":
            return None
        if request.path == LISTING_PATH:
            return self._listing(catalog, request.query)
        if request.path == DETAIL_PATH:
            return self._detail(catalog, request.query)
        return None

    def block_reply(self) -> ShopReply:
        # Shopee answers errors with HTTP 200 and an `error` code in the body.
        return json_reply({"is_customized": False, "is_login": False, "action_type": 2,
                           "error": 90309999, "tracking_id": str(uuid.uuid4())})

    # -- answers -----------------------------------------------------------------
    def _listing(self, catalog: ProductSource, query: dict[str, str]) -> ShopReply:
        category = query.get("match_id", "")
        offset = int_arg(query, "newest", 0)
        limit = clamped_size(query, "limit", PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)
        products = catalog.listing(self.site, category) if category in CATEGORY_TREE else []
        chunk = products[offset: offset + limit]
        return json_reply({
            "bff_meta": None,
            "error": None,
            "error_msg": None,
            "total_count": len(products),
            "nomore": offset + limit >= len(products),
            "items": [self._listing_entry(p, category) for p in chunk] or None,
            "total_ads_count": 0,
            "show_disclaimer": False,
            "need_next_search": False,
        })

    def _detail(self, catalog: ProductSource, query: dict[str, str]) -> ShopReply:
        product = catalog.product(self.site, query.get("item_id", ""))
        # The shop id is part of the address: a wrong one finds nothing, as on the site.
        if product is None or product.shop_id != query.get("shop_id"):
            return json_reply({"bff_meta": None, "error": ITEM_NOT_FOUND, "error_msg": None, "data": None},
                              missing_product=True)
        return json_reply({"bff_meta": None, "error": None, "error_msg": None, "data": self._detail_data(product)},
                          product_id=product.product_id)

    # -- shapes ------------------------------------------------------------------
    @staticmethod
    def _prices(product: ShopProduct) -> dict[str, int]:
        scaled = product.price * PRICE_SCALE
        return {"price": scaled, "price_min": scaled, "price_max": scaled, "price_before_discount": 0}

    @staticmethod
    def _tier_variations(product: ShopProduct) -> list[dict]:
        images = [image_hash(product.images[0].url)] if product.images else []
        return [{"name": "Màu sắc", "options": [product.colour], "images": images, "type": 0}] if product.colour else []

    def _listing_entry(self, product: ShopProduct, category: str) -> dict:
        # Listing entries carry no description and no attributes: the spider needs get_pc.
        hashes = [image_hash(image.url) for image in product.images]
        item_basic = {
            "itemid": number(product.product_id),
            "shopid": number(product.shop_id),
            "name": product.title,
            "image": hashes[0] if hashes else "",
            "images": hashes,
            "currency": product.currency,
            "stock": 100,
            "status": 1,
            "catid": GLOBAL_CATID.get(category, 0),
            "brand": product.brand or "",
            **self._prices(product),
            "raw_discount": 0,
            "discount": None,
            "tier_variations": self._tier_variations(product),
            "item_rating": {"rating_star": 0, "rating_count": [0, 0, 0, 0, 0, 0],
                            "rcount_with_context": 0, "rcount_with_image": 0},
            "shop_location": "TP. Hồ Chí Minh",
            "shop_name": f"shop{product.shop_id}",
        }
        return {"item_basic": item_basic, "itemid": item_basic["itemid"], "shopid": item_basic["shopid"],
                "adsid": None, "campaignid": None, "distance": None, "match_type": None,
                "ads_keyword": None, "json_data": "", "item_type": 0}

    def _detail_data(self, product: ShopProduct) -> dict:
        hashes = [image_hash(image.url) for image in product.images]
        attributes = (("Thương hiệu", product.brand), ("Chất liệu", product.material),
                      ("Giới tính", product.gender), ("Loại giày", product.shoe_type))
        return {
            "item": {
                "item_id": number(product.product_id),
                "shop_id": number(product.shop_id),
                "title": product.title,
                "brand": product.brand or "",
                "currency": product.currency,
                **self._prices(product),
                "image": hashes[0] if hashes else "",
                "fe_categories": self._fe_categories(product),
                "tier_variations": self._tier_variations(product),
                "status": 1,
            },
            "product_images": {"images": hashes, "video": None, "first_tier_variation_images": None},
            "product_attributes": {"attrs": [{"name": name, "value": value, "id": index, "is_timestamp": False}
                                             for index, (name, value) in enumerate(attributes, 1) if value]},
            # Shopee descriptions are one text field split in paragraphs; the shop's
            # HTML (and any planted <script>) is passed through as sellers paste it.
            "product_description": {"paragraph_list": [{"type": 0, "text": product.description_html,
                                                        "img_id": None, "ratio": None}]},
        }

    @staticmethod
    def _fe_categories(product: ShopProduct) -> list[dict]:
        ids = [catid for catid, _ in CATEGORY_TREE.get(product.category, ())]
        ids += [0] * (len(product.category_path) - len(ids))
        return [{"catid": catid, "display_name": name, "no_sub": False, "is_default_subcat": False}
                for catid, name in zip(ids, product.category_path)]


RENDERER = ShopeeRenderer()
