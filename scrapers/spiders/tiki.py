"""Tiki spider: category listings from the public `tiki.vn/api/v2/products` JSON
API, one `/api/v2/products/<id>` detail call per product (the listing lacks the
description, specifications and full-size images). Endpoints and shapes:
docs/sites.md.

Live crawling needs no tokens or browser as far as public scripts show: plain HTTP
with a browser-like Accept and the category page as Referer. Some scripts also send
a random `x-guest-token` and a `trackity_id` query parameter; neither is known to be
required, so neither is invented here. Public scripts pause from 0.2 s to 3–10 s
per page; the project's AutoThrottle/backoff defaults sit within that range, so no
custom_settings. The listing stops at ~2000 results per query (`total: 2000`,
`total_text: "10000+"`): large categories must be sharded, which is why the default
categories include sub-categories (their ids come from an unverified list; a wrong
id only yields an empty listing). A product seen in two categories is fetched once:
`ShopSpider.wants_product` requests each product id once per crawl.
Full-size images: detail `images[].base_url`; `cache/<size>/` variants are mapped
back to it. Variant images (`configurable_products[].images`) are left out on
purpose: they show other colours than the product's own attributes describe.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import scrapy
from scrapy.http import Response

from scrapers.attributes import normalise_attributes
from scrapers.items import ProductItem
from scrapers.middlewares import MalformedResponse
from scrapers.spiders.base import ShopSpider
from scrapers.text import absolute_url, clean_str, html_to_text, to_float, unique

SITE_URL = "https://tiki.vn/"
LISTING_URL = ("https://tiki.vn/api/v2/products?limit=40&include=advertisement&aggregations=2"
               "&category={category}&page={page}")
DETAIL_URL = "https://tiki.vn/api/v2/products/{product_id}?platform=web"
# Category id -> url slug (the listing's `urlKey` and the Referer's category page).
CATEGORY_SLUGS = {
    "1686": "giay-dep-nam",
    "1703": "giay-dep-nu",
    "27572": "giay-the-thao-nam",
    "8355": "giay-cao-got",
}
CACHE_MARKER = re.compile(r"^(https://[^/]+)/cache/[^/]+/")


def full_size(url: object) -> str | None:
    """Absolute image URL with Tiki's `cache/<size>/` resize prefix removed."""
    absolute = absolute_url(url)
    return CACHE_MARKER.sub(r"\1/", absolute) if absolute else None


def entry_id(entry: dict[str, Any]) -> str | None:
    value = entry.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        return None
    return str(value)


def product_page(record: dict[str, Any]) -> str | None:
    """The canonical product page from `url_path` (`<key>.html?spid=..`) or `url_key`."""
    path = record.get("url_path")
    if isinstance(path, str) and path.strip("/"):
        return SITE_URL + urlsplit(path).path.strip("/")
    key = record.get("url_key")
    return f"{SITE_URL}{key}.html" if isinstance(key, str) and key.strip("/") else None


def seller_product_id(entry: dict[str, Any]) -> str | None:
    """`seller_product_id`, else the `?spid=` of `url_path`."""
    spid = entry.get("seller_product_id")
    if isinstance(spid, (int, str)) and not isinstance(spid, bool) and str(spid).isdigit():
        return str(spid)
    path = entry.get("url_path")
    query = parse_qs(urlsplit(path).query) if isinstance(path, str) else {}
    return next((s for s in query.get("spid", []) if s.isdigit()), None)


def specification_pairs(specifications: object) -> Iterator[tuple[object, object]]:
    """`specifications[{name, attributes[{name, value}]}]` as (label, value) pairs."""
    for group in specifications if isinstance(specifications, list) else ():
        attributes = group.get("attributes") if isinstance(group, dict) else None
        for attribute in attributes if isinstance(attributes, list) else ():
            if isinstance(attribute, dict):
                yield attribute.get("name"), attribute.get("value")


def category_names(breadcrumbs: object) -> list[str]:
    """Breadcrumb names without the last element, which is the product itself."""
    crumbs = [c for c in breadcrumbs if isinstance(c, dict)] if isinstance(breadcrumbs, list) else []
    return [name for c in crumbs if "category_id" in c and (name := clean_str(c.get("name")))]


class TikiSpider(ShopSpider):
    name = "tiki"
    # The CDN too: the offsite filter also sees the image pipeline's requests.
    allowed_domains = ["tiki.vn", "tikicdn.com"]
    # Men's and women's shoes, plus men's sneakers and high heels as shards (see above).
    default_categories = tuple(CATEGORY_SLUGS)

    def listing_request(self, category: str, page: int) -> scrapy.Request:
        url = LISTING_URL.format(category=category, page=page)
        slug = CATEGORY_SLUGS.get(category)
        if slug:
            url += f"&urlKey={slug}"
        # Public scripts send the category page as Referer, as the web client does.
        referer = f"{SITE_URL}{slug}/c{category}" if slug else SITE_URL
        return scrapy.Request(url, headers={"Referer": referer}, callback=self.parse_listing,
                              cb_kwargs={"category": category, "page": page})

    def parse_listing(self, response: Response, category: str, page: int):
        data = self.load_json(response)
        entries = self.entries(data, "data")
        for entry in entries:
            product_id = entry_id(entry)
            if product_id is None or product_page(entry) is None:
                self.crawler.stats.inc_value("clipshoe/skipped/bad_entry")
                continue
            if self.wants_product(product_id):
                yield self.detail_request(product_id, entry)
        yield from self.next_listing(category, page, has_more=bool(entries) and self.more_pages(data))

    @staticmethod
    def more_pages(data: dict[str, Any]) -> bool:
        """`current_page < last_page`; without paging, only an empty page ends the listing."""
        paging = data.get("paging")
        if not isinstance(paging, dict):
            return True
        current, last = to_float(paging.get("current_page")), to_float(paging.get("last_page"))
        return current is None or last is None or current < last

    def detail_request(self, product_id: str, entry: dict[str, Any]) -> scrapy.Request | ProductItem:
        url = DETAIL_URL.format(product_id=product_id)
        spid = seller_product_id(entry)
        if spid:
            url += f"&spid={spid}"
        return self.product_request(url, self.listing_item(product_id, entry), callback=self.parse_product)

    def listing_item(self, product_id: str, entry: dict[str, Any]) -> ProductItem:
        """What a listing entry says of its product: name, brand, price and a thumbnail
        (full size); no description, categories or specifications."""
        return ProductItem(
            site=self.name,
            product_id=product_id,
            url=product_page(entry),
            title=clean_str(entry.get("name")) or "",
            brand=clean_str(entry.get("brand_name")),
            price=to_float(entry.get("price")),
            currency="VND",
            image_urls=unique([full_size(entry.get("thumbnail_url"))]),
        )

    def parse_product(self, response: Response, listing: ProductItem):
        # The real detail answer is the raw product object, not wrapped in an envelope.
        data = self.load_json(response)
        if not isinstance(data, dict) or entry_id(data) != listing.product_id:
            raise MalformedResponse("envelope", f"expected product {listing.product_id} at the top level")
        brand = data.get("brand")
        images = [full_size(image.get("base_url") or image.get("large_url"))
                  for image in data.get("images") or () if isinstance(image, dict)]
        yield ProductItem(
            site=self.name,
            product_id=listing.product_id,
            url=product_page(data) or listing.url,
            title=clean_str(data.get("name")) or listing.title,
            description=html_to_text(data.get("description")) or html_to_text(data.get("short_description")),
            brand=clean_str(brand.get("name")) if isinstance(brand, dict) else listing.brand,
            category_path=category_names(data.get("breadcrumbs")),
            attributes=normalise_attributes(specification_pairs(data.get("specifications"))),
            price=to_float(data.get("price")) or listing.price,
            currency="VND",
            image_urls=unique(images or [full_size(data.get("thumbnail_url"))]) or listing.image_urls,
        )
