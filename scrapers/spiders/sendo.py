"""Sendo spider: category listings from searchlist-api.sendo.vn, one detail-api
call per product (the listing lacks description, brand, attributes and full-size
images). Endpoints and shapes: docs/sites.md.

Live crawling needs no tokens or browser as far as public scripts show: plain
HTTP with `Referer: https://www.sendo.vn/` (and `Origin`) on the API calls. The
category ids are a 2019 snapshot and may have moved; the listing's end is only
known by an empty page. Public scripts pause ~5–10 s per 50 details; the project's
AutoThrottle/backoff defaults are at least that polite, so no custom_settings.
Full-size images: detail `media[].image`. Only when a product has no media is the
listing thumbnail used, with its `_simg_<hex>_250x250_maxb` marker removed —
whether that yields the original on the live CDN is unverified.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import scrapy
from scrapy.http import Response

from scrapers.attributes import normalise_attributes
from scrapers.items import ProductItem
from scrapers.middlewares import MalformedResponse
from scrapers.spiders.base import ShopSpider
from scrapers.text import absolute_url, clean_str, html_to_text, to_float, unique

SITE_URL = "https://www.sendo.vn/"
LISTING_URL = ("https://searchlist-api.sendo.vn/web/categories/{category}/products"
               "?listing_algo=algo13&page={page}&platform=web&size=60&sortType=listing_v2_desc")
DETAIL_URL = "https://detail-api.sendo.vn/full/{path}"
# The web client's headers; public scripts send both to the API hosts.
API_HEADERS = {"Referer": SITE_URL, "Origin": SITE_URL.rstrip("/")}
THUMBNAIL_MARKER = re.compile(r"_simg_[0-9a-f]+_\d+x\d+_[a-z]+(?=\.\w+$)")


def full_size(url: object) -> str | None:
    """Absolute image URL with the resize marker removed (unverified on the live CDN)."""
    absolute = absolute_url(url)
    return THUMBNAIL_MARKER.sub("", absolute) if absolute else None


def product_path(entry: dict[str, Any]) -> str | None:
    """The entry's `<slug>-<id>.html`, or None when the entry cannot be followed."""
    path = entry.get("category_path")
    if isinstance(path, str) and path.endswith(".html") and "/" not in path.strip("/"):
        return path.strip("/")
    return None


def entry_id(entry: dict[str, Any]) -> str | None:
    value = entry.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        return None
    return str(value)


def attribute_pairs(attributes: object) -> Iterator[tuple[str, object]]:
    """`attribute[{name, value[{value|name}]}]` as (label, value) pairs."""
    for attribute in attributes if isinstance(attributes, list) else ():
        if not isinstance(attribute, dict):
            continue
        values = attribute.get("value")
        for value in values if isinstance(values, list) else [values]:
            label = attribute.get("name")
            yield label, (value.get("value") or value.get("name")) if isinstance(value, dict) else value


def media_images(data: dict[str, Any]) -> list[object]:
    """Image URLs of `media[{type, image}]`, in order; videos are left out."""
    media = data.get("media")
    if not isinstance(media, list):
        return []
    return [m.get("image") for m in media if isinstance(m, dict) and m.get("type") == "image"]


def category_names(data: dict[str, Any]) -> list[str]:
    """Breadcrumb titles of `category_info[{id, title}]`, root first."""
    categories = data.get("category_info")
    if not isinstance(categories, list):
        return []
    titles = (clean_str(c.get("title")) for c in categories if isinstance(c, dict))
    return [title for title in titles if title]


class SendoSpider(ShopSpider):
    name = "sendo"
    # scdn.vn is the image CDN: the offsite filter also applies to the image pipeline's requests.
    allowed_domains = ["sendo.vn", "scdn.vn"]
    # Men's, women's, men's/women's sneakers, men's dress shoes, women's sandals (docs/sites.md).
    default_categories = ("1689", "1687", "4166", "4179", "4162", "4170")

    def listing_request(self, category: str, page: int) -> scrapy.Request:
        return scrapy.Request(LISTING_URL.format(category=category, page=page), headers=API_HEADERS,
                              callback=self.parse_listing, cb_kwargs={"category": category, "page": page})

    def parse_listing(self, response: Response, category: str, page: int):
        data = self.load_json(response)
        for entry in self.entries(data, "data"):
            product_id, path = entry_id(entry), product_path(entry)
            if product_id is None or path is None:
                self.crawler.stats.inc_value("clipshoe/skipped/bad_entry")
                continue
            if self.wants_product(product_id):
                yield self.product_request(DETAIL_URL.format(path=path.removesuffix(".html")),
                                           self.listing_item(product_id, path, entry), headers=API_HEADERS,
                                           callback=self.parse_product)
        # No total count is known: the listing ends with an empty page.
        yield from self.next_listing(category, page, has_more=bool(data["data"]))

    def listing_item(self, product_id: str, path: str, entry: dict[str, Any]) -> ProductItem:
        """What a listing entry says of its product: name, sale price and a thumbnail;
        no description, brand, categories or attributes."""
        return ProductItem(
            site=self.name,
            product_id=product_id,
            url=SITE_URL + path,
            title=clean_str(entry.get("name")) or "",
            price=to_float(entry.get("sale_price_min")),
            currency="VND",
            image_urls=unique([full_size(entry.get("image"))]),
        )

    def parse_product(self, response: Response, listing: ProductItem):
        payload = self.load_json(response)
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            raise MalformedResponse("envelope", "expected an object under 'data'")
        brand = data.get("brand_info")  # null, or {"name": ""} when the shop names none
        yield ProductItem(
            site=self.name,
            product_id=listing.product_id,
            url=listing.url,
            title=clean_str(data.get("name")) or listing.title,
            description=html_to_text((data.get("description_info") or {}).get("description"))
            or html_to_text(data.get("short_description")),
            brand=clean_str(brand.get("name")) if isinstance(brand, dict) else None,
            category_path=category_names(data),
            attributes=normalise_attributes(attribute_pairs(data.get("attribute"))),
            price=to_float(data.get("final_price")) or to_float(data.get("price")) or listing.price,
            currency="VND",
            # The listing thumbnail only stands in when the detail has no image at all.
            image_urls=unique(full_size(url) for url in media_images(data)) or listing.image_urls,
        )
