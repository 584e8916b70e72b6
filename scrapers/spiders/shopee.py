"""Shopee spider: category listings from the v4 `search/search_items` API, one
`pdp/get_pc` call per product (the listing lacks description and attributes).
Endpoints and shapes: docs/sites.md.

Live crawling of shopee.vn does NOT work with plain HTTP: since ~2022 the v4 API
answers HTTP 200 `{"error": 90309999}` (or 403) unless each request carries the
`af-ac-enc-dat`/`x-sap-sec`/`x-sap-ri` tokens computed by the site's obfuscated JS,
bound to session cookies (`SPC_F`, `SPC_EC`, `SPC_SI`) and the browser fingerprint.
A live run needs a real browser (scrapy-playwright, intercepting these two API
responses and handing their bodies to the same callbacks) or a paid unblocking API;
as it stands the spider speaks to the replay shop or to recorded responses. The
block body is detected by scrapers.blocks and retried, never parsed as empty.

Product URLs use the id-only `https://shopee.vn/product/<shopid>/<itemid>` form:
it follows from the ids alone (the API has no slug) and survives title edits;
the `<name>-i.<shopid>.<itemid>` form names the same page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy.http import Response

from scrapers.attributes import canonical_key, normalise_attributes
from scrapers.items import ProductItem
from scrapers.middlewares import MalformedResponse
from scrapers.spiders.base import ShopSpider
from scrapers.text import absolute_url, clean_str, html_to_text, to_float, unique

SITE_URL = "https://shopee.vn/"
LISTING_URL = "https://shopee.vn/api/v4/search/search_items"
DETAIL_URL = "https://shopee.vn/api/v4/pdp/get_pc"
PRODUCT_URL = "https://shopee.vn/product/{shop_id}/{item_id}"
IMAGE_URL = "https://down-vn.img.susercontent.com/file/{hash}"
PAGE_SIZE = 60
PRICE_SCALE = 100_000  # Shopee prices are integers ×100000
# The web client's headers; "without Referer it doesn't send price" (docs/sites.md).
API_HEADERS = {"x-api-source": "pc", "x-requested-with": "XMLHttpRequest", "Referer": SITE_URL}
# `<hash>_tn` / `<hash>_tn.webp` are thumbnails; the bare hash is the full-size file.
THUMBNAIL_SUFFIX = re.compile(r"_tn(\.\w+)?$")


def image_url(value: object) -> str | None:
    """Full-size CDN URL from a bare hash or a (thumbnail) URL."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = THUMBNAIL_SUFFIX.sub("", value.strip())
    return absolute_url(value) if "/" in value else IMAGE_URL.format(hash=value)


def shopee_id(value: object) -> str | None:
    """A numeric id as a string; None for missing or wrongly typed values."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        return None
    return str(value)


def shopee_price(*values: object) -> float | None:
    """The first usable ×100000 price, in VND."""
    for value in values:
        price = to_float(value)
        if price:
            return price / PRICE_SCALE
    return None


def attribute_pairs(attrs: object, tier_variations: object) -> Iterator[tuple[object, object]]:
    """`attrs[{name, value}]` and `tier_variations[{name, options[]}]` as (label, value) pairs."""
    for attr in attrs if isinstance(attrs, list) else ():
        if isinstance(attr, dict):
            yield attr.get("name"), attr.get("value")
    for tier in tier_variations if isinstance(tier_variations, list) else ():
        if isinstance(tier, dict) and isinstance(tier.get("options"), list):
            for option in tier["options"]:
                yield tier.get("name"), option


def description_text(description: Any) -> str:
    paragraphs = description.get("paragraph_list") if isinstance(description, dict) else None
    texts = [html_to_text(p.get("text")) for p in paragraphs or () if isinstance(p, dict)]
    return "\n".join(text for text in texts if text)


class ShopeeSpider(ShopSpider):
    name = "shopee"
    # Product images come from the CDN on susercontent.com; offsite filtering sees them too.
    allowed_domains = ["shopee.vn", "susercontent.com"]
    # Men's and women's shoes and their sneaker sub-categories (docs/sites.md).
    default_categories = ("11035801", "11035825", "11035807", "11035830")
    custom_settings = {
        # Shopee bans fast clients (90309999) quickly; public Scrapy spiders wait ~5 s.
        "DOWNLOAD_DELAY": 5.0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
    }

    def listing_request(self, category: str, page: int) -> scrapy.Request:
        query = {"by": "relevancy", "limit": PAGE_SIZE, "match_id": category, "newest": (page - 1) * PAGE_SIZE,
                 "order": "desc", "page_type": "search", "scenario": "PAGE_CATEGORY", "version": 2}
        return scrapy.Request(f"{LISTING_URL}?{urlencode(query)}", headers=API_HEADERS,
                              callback=self.parse_listing, cb_kwargs={"category": category, "page": page})

    def detail_request(self, item_id: str, shop_id: str, entry: dict[str, Any]) -> scrapy.Request | ProductItem:
        query = {"item_id": item_id, "shop_id": shop_id, "tz_offset_minutes": 420, "detail_level": 0}
        listing = self.listing_item(item_id, shop_id, entry)
        return self.product_request(f"{DETAIL_URL}?{urlencode(query)}", listing,
                                    headers={**API_HEADERS, "Referer": listing.url}, callback=self.parse_product)

    def listing_item(self, item_id: str, shop_id: str, entry: dict[str, Any]) -> ProductItem:
        """What an `item_basic` entry says of its product: name, brand, price and the
        pictures; no description, categories or attributes."""
        return ProductItem(
            site=self.name,
            product_id=item_id,
            url=PRODUCT_URL.format(shop_id=shop_id, item_id=item_id),
            title=clean_str(entry.get("name")) or "",
            brand=clean_str(entry.get("brand")),
            price=shopee_price(entry.get("price"), entry.get("price_min")),
            currency="VND",
            image_urls=unique(image_url(value) for value in [*(entry.get("images") or ()), entry.get("image")]),
        )

    def parse_listing(self, response: Response, category: str, page: int):
        data = self.load_json(response)
        # Past the last page Shopee sends `items: null` together with `nomore: true`.
        ended = isinstance(data, dict) and data.get("items") is None and data.get("nomore") is True
        entries = [] if ended else self.entries(data, "items")
        for entry in entries:
            basic = entry.get("item_basic")
            basic = basic if isinstance(basic, dict) else {}
            item_id = shopee_id(basic.get("itemid", entry.get("itemid")))
            shop_id = shopee_id(basic.get("shopid", entry.get("shopid")))
            if item_id is None or shop_id is None:
                self.crawler.stats.inc_value("clipshoe/skipped/bad_entry")
                continue
            if self.wants_product(item_id):
                yield self.detail_request(item_id, shop_id, basic)
        yield from self.next_listing(category, page, has_more=bool(entries) and not data.get("nomore"))

    def parse_product(self, response: Response, listing: ProductItem):
        payload = self.load_json(response)
        if not isinstance(payload, dict):
            raise MalformedResponse("envelope", "expected a JSON object")
        if payload.get("error"):  # e.g. 4: the item is gone; blocks never get here
            self.crawler.stats.inc_value(f"clipshoe/skipped/api_error_{payload['error']}")
            return
        data = payload.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("item"), dict):
            raise MalformedResponse("envelope", "expected an object under 'data.item'")
        item = data["item"]
        images = (data.get("product_images") or {}).get("images") or item.get("images") or ()
        attributes = normalise_attributes(attribute_pairs((data.get("product_attributes") or {}).get("attrs"),
                                                          item.get("tier_variations")))
        # The brand is its own field; attrs repeat it as "Thương hiệu".
        attribute_brand = attributes.pop(canonical_key("brand"), None)
        categories = item.get("fe_categories") or item.get("categories") or ()
        yield ProductItem(
            site=self.name,
            product_id=listing.product_id,
            url=listing.url,
            title=clean_str(item.get("title") or item.get("name")) or listing.title,
            description=description_text(data.get("product_description")) or html_to_text(item.get("description")),
            brand=clean_str(item.get("brand")) or listing.brand or clean_str(attribute_brand),
            category_path=[name for c in categories if isinstance(c, dict)
                           and (name := clean_str(c.get("display_name")))],
            attributes=attributes,
            price=shopee_price(item.get("price"), item.get("price_min")) or listing.price,
            currency=clean_str(item.get("currency")) or listing.currency,
            # The detail's gallery and cover; the listing's pictures stand in without them.
            image_urls=unique(image_url(value) for value in [*images, item.get("image")]) or listing.image_urls,
        )
