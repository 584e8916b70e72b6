"""Zalora spider: category listings from the datajet list API, then one product
page per product for the description and the attributes. See docs/sites.md.

Zalora has no Vietnamese storefront; the country is the setting
`CLIPSHOE_ZALORA_DOMAIN` (default `zalora.com.my`): the API is `api.<domain>`,
product pages are `www.<domain>/p/<slug>-<id>`, images live on `zacdn.com`.

Known from public code (docs/sites.md): the listing
`api.<domain>/v1/dynproducts/datajet/list?categoryId=&segment=&limit=&offset=&shop=m`
(with `Origin`/`Referer`) answering `data{NumProductFound, Products[]}` — ConfigSku
(Zalora's product key, our product_id), Name, Brand, Price, SpecialPrice,
PriceInDecimal, SpecialPriceInDecimal, ImageList, Breadcrumbs, ProductUrl
`p/<slug>-<id>` — paged by offset/limit; the dynamic.zacdn.com resizer wrapping the
full-size `static-<cc>.zacdn.com` original. These datajet facts are unattributed
index hits plus GFG's record sample. Category ids come from the older catalog API
on .com.my (women's shoes category_id=4 per docs/sites.md; men's 27 from an unattributed
hit) and are assumed to hold for datajet; they may differ per country and over
time, so they are a setting: `CLIPSHOE_ZALORA_CATEGORIES = {"men-shoes":
{"segment": "men", "categoryId": "<id>"}}` (add keys the same way).
Our assumption: what the product page carries (a schema.org JSON-LD `Product` with
description, color, material, image, offers, and a "Details" table of label/value
rows) — public Zalora page parsers read these, but no real page was recorded.

Live crawling: public scripts fetch the datajet API with plain HTTP (a browser UA
and `Accept: application/json`), but browser-copied requests carried PerimeterX
cookies (`_px3`, `_pxvid`), so product pages (and the API under load) may answer
a PerimeterX 403 challenge; a sustained crawl may then need those cookies from a
real browser or a browser download handler such as scrapy-playwright. Untested
against the live site. No rate limits are documented, so the project's polite
defaults apply (no custom_settings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import scrapy
from scrapy.http import Response

from scrapers.attributes import normalise_attributes
from scrapers.items import ProductItem
from scrapers.middlewares import MalformedResponse
from scrapers.spiders.base import ShopSpider
from scrapers.text import absolute_url, clean_str, html_to_text, to_float, unique

DEFAULT_DOMAIN = "zalora.com.my"
LISTING_PATH = "/v1/dynproducts/datajet/list"
PAGE_SIZE = 100  # as public scripts ask (the web client asks for 36): fewer listing calls
DEFAULT_CATEGORIES: dict[str, dict[str, str]] = {
    "women-shoes": {"segment": "women", "categoryId": "4"},
    "men-shoes": {"segment": "men", "categoryId": "27"},
}
CURRENCIES = {"zalora.com.my": "MYR", "zalora.sg": "SGD", "zalora.com.ph": "PHP",
              "zalora.com.hk": "HKD", "zalora.co.id": "IDR"}
# `https://dynamic.zacdn.com/<signature>=/<filters>/https://static-my.zacdn.com/p/x.jpg`
_RESIZED = re.compile(r"^https?://dynamic\.zacdn\.com/.+?/(https?://.+)$")


def full_size(url: object) -> str | None:
    """Absolute image URL; a resizer URL becomes the original it wraps."""
    absolute = absolute_url(url)
    match = _RESIZED.match(absolute) if absolute else None
    return match[1] if match else absolute


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def name_of(value: object) -> object:
    """schema.org allows `{"@type": "Brand", "name": x}` or a bare string."""
    return value.get("name") if isinstance(value, dict) else value


def listing_price(entry: dict[str, Any]) -> float | None:
    """The selling price: the special (sale) price when set, else the regular one."""
    return (to_float(entry.get("SpecialPriceInDecimal")) or to_float(entry.get("PriceInDecimal"))
            or to_float(entry.get("SpecialPrice")) or to_float(entry.get("Price")))


def json_ld(response: Response) -> dict[str, dict[str, Any]]:
    """The page's JSON-LD blocks by `@type` (first of each type wins)."""
    blocks: dict[str, dict[str, Any]] = {}
    for text in response.xpath('//script[@type="application/ld+json"]/text()').getall():
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MalformedResponse("json_ld", f"{response.url}: {exc}") from exc
        for block in as_list(data):
            if isinstance(block, dict) and isinstance(block.get("@type"), str):
                blocks.setdefault(block["@type"], block)
    return blocks


def detail_rows(response: Response) -> Iterator[tuple[str, str]]:
    """(label, value) pairs of the product page's "Details" table."""
    for row in response.css(".pvd-attribute-detail-flex tr"):
        yield row.xpath("string(td[1])").get(), row.xpath("string(td[2])").get()


class ZaloraSpider(ShopSpider):
    """Crawls one Zalora country: the listing gives ids, names, prices, breadcrumbs and
    images; the product page adds what the listing lacks (description, attributes)."""

    name = "zalora"
    default_categories = tuple(DEFAULT_CATEGORIES)

    @property
    def domain(self) -> str:
        return self.settings.get("CLIPSHOE_ZALORA_DOMAIN", DEFAULT_DOMAIN)

    @property
    def allowed_domains(self) -> list[str]:
        # zacdn.com is the image CDN: the offsite filter also applies to image downloads.
        return [self.domain, "zacdn.com"]

    @property
    def site_url(self) -> str:
        return f"https://www.{self.domain}/"

    def category_query(self, category: str) -> dict[str, str]:
        queries = {**DEFAULT_CATEGORIES, **self.settings.getdict("CLIPSHOE_ZALORA_CATEGORIES")}
        if category not in queries:
            raise ValueError(f"unknown zalora category {category!r}: define it in CLIPSHOE_ZALORA_CATEGORIES")
        return queries[category]

    def listing_request(self, category: str, page: int) -> scrapy.Request:
        query = {**self.category_query(category), "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE,
                 "shop": "m", "fullFacetCategory": "true", "image_format": "webp", "image_quality": 70}
        headers = {"Accept": "application/json", "Origin": self.site_url.rstrip("/"), "Referer": self.site_url}
        return scrapy.Request(f"https://api.{self.domain}{LISTING_PATH}?{urlencode(query)}", headers=headers,
                              callback=self.parse_listing, cb_kwargs={"category": category, "page": page})

    def product_id_and_url(self, entry: dict[str, Any]) -> tuple[str, str] | None:
        """(product id, page URL): the entry's ConfigSku (Zalora's product key) and its
        ProductUrl made absolute, or None when either is missing or malformed."""
        sku = entry.get("ConfigSku")
        sku = clean_str(sku) if isinstance(sku, str) else None
        url = absolute_url(entry.get("ProductUrl"), base=self.site_url)
        if not sku or not url or not urlsplit(url).path.startswith("/p/"):
            return None
        return sku, url

    def parse_listing(self, response: Response, category: str, page: int):
        payload = self.load_json(response)
        data = payload.get("data") if isinstance(payload, dict) else None
        products = self.entries(data, "Products")
        stats = self.crawler.stats
        stats.inc_value("clipshoe/skipped/bad_entry", len(data["Products"]) - len(products))  # non-dict entries
        for entry in products:
            id_and_url = self.product_id_and_url(entry)
            if id_and_url is None:
                stats.inc_value("clipshoe/skipped/bad_entry")
                continue
            product_id, url = id_and_url
            if self.wants_product(product_id):
                yield self.product_request(url, self.listing_item(product_id, url, entry), callback=self.parse_product)
        # Stop on an empty page, or once the offset passes the reported total.
        total = to_float(data.get("NumProductFound"))
        seen = (page - 1) * PAGE_SIZE + len(data["Products"])
        has_more = bool(data["Products"]) and (total is None or seen < total)
        yield from self.next_listing(category, page, has_more)

    def listing_item(self, product_id: str, url: str, entry: dict[str, Any]) -> ProductItem:
        """What a listing entry says of its product: all but the description and the
        attributes, which only the product page has."""
        breadcrumbs = (clean_str(name) for name in as_list(entry.get("Breadcrumbs")))
        return ProductItem(
            site=self.name,
            product_id=product_id,
            url=url,
            title=clean_str(entry.get("Name")) or "",
            brand=clean_str(entry.get("Brand")),
            category_path=[name for name in breadcrumbs if name],
            price=listing_price(entry),
            currency=CURRENCIES.get(self.domain, ""),
            image_urls=unique(full_size(url) for url in as_list(entry.get("ImageList"))),
        )

    def parse_product(self, response: Response, listing: ProductItem):
        ld = json_ld(response).get("Product", {})
        offer = next((o for o in as_list(ld.get("offers")) if isinstance(o, dict)), {})
        attributes = [("colour", ld.get("color")), ("material", ld.get("material")), *detail_rows(response)]
        yield ProductItem(
            site=self.name,
            product_id=listing.product_id,
            url=response.url,
            title=clean_str(ld.get("name")) or listing.title,
            description=html_to_text(ld.get("description")),
            brand=clean_str(name_of(ld.get("brand"))) or listing.brand,
            category_path=listing.category_path,
            attributes=normalise_attributes(attributes),
            price=to_float(offer.get("price")) or listing.price,
            currency=clean_str(offer.get("priceCurrency")) or listing.currency,
            # The page's gallery is the full set; the listing's images stand in without it.
            image_urls=unique(full_size(url) for url in as_list(ld.get("image"))) or listing.image_urls,
        )
