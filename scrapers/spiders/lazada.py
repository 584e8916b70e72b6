"""Lazada (lazada.vn): category listings through the `?ajax=true` JSON
(`mods.listItems`, `mainInfo`), product details from the product page's embedded
`var __moduleData__ = {...}` and, where that is missing, `var pdpTrackingData = "..."`.
See docs/sites.md; no real Lazada body was found, so this follows the documented
field names and the replay shop (replay_shop/sites/lazada.py).

Live crawling: plain HTTP works only briefly. Lazada answers bursts of listing XHRs
with the `rgv587_flag` slider captcha (x5sec), which scrapers.blocks detects and
the retry middleware backs off from, but a captcha is never solved here. A
sustained live crawl needs long delays (burplist used 20 s), a session cookie
(`x5sec`) obtained in a real browser, or a browser download handler such as
scrapy-playwright / an unblocking API (scrapy-zyte-api). None of this was tested
against the live site.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy.http import Response

from scrapers.attributes import normalise_attributes
from scrapers.items import ProductItem
from scrapers.middlewares import MalformedResponse
from scrapers.spiders.base import ShopSpider
from scrapers.text import absolute_url, clean_str, html_to_text, to_float, unique

HOST = "www.lazada.vn"
# Alibaba-CDN resize suffix: `<hash>.jpg_200x200q80.jpg_.webp` is a thumbnail of `<hash>.jpg`.
_RESIZED = re.compile(r"(\.(?:jpe?g|png|webp))_\d+x\d+q\d+\.(?:jpe?g|png|webp)(?:_\.webp)?$", re.IGNORECASE)
_NOT_ATTRIBUTES = {"brand", "sku"}  # the brand has its own field; the SKU is an id
_DECODER = json.JSONDecoder()


def full_size_image(url: object) -> str | None:
    """Absolute https image URL with the thumbnail suffix removed."""
    absolute = absolute_url(url)
    return _RESIZED.sub(r"\1", absolute) if absolute else None


def canonical_product_url(url: object) -> str | None:
    """Absolute https product URL without the listing's tracking query (`?search=1`)."""
    absolute = absolute_url(url, f"https://{HOST}/")
    if absolute is None:
        return None
    parts = urlsplit(absolute)
    return urlunsplit(("https", parts.netloc, parts.path, "", ""))


def embedded_json(page: str, variable: str) -> Any:
    """The JSON value assigned by `var <variable> = ...;` in an inline script, or None."""
    marker = re.search(rf"\bvar\s+{re.escape(variable)}\s*=\s*", page)
    if marker is None:
        return None
    try:
        return _DECODER.raw_decode(page, marker.end())[0]
    except ValueError as exc:
        raise MalformedResponse("embedded_json", f"{variable}: {exc}") from exc


def tracking_data(page: str) -> dict[str, Any]:
    """`pdpTrackingData`: a JS string holding JSON (pdt_name, pdt_price, pdt_category, ...)."""
    value = embedded_json(page, "pdpTrackingData")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise MalformedResponse("embedded_json", f"pdpTrackingData: {exc}") from exc
    return value if isinstance(value, dict) else {}


def first(*values: Any) -> Any:
    """The first value that is present and not empty."""
    return next((v for v in values if v not in (None, "", [], {})), None)


def has_more_pages(main_info: Any, page: int, listed: int) -> bool:
    """More pages while this one listed something and `page * pageSize < totalResults`
    (both strings on Lazada); without the counters the first empty page ends it."""
    if not listed:
        return False
    main_info = main_info if isinstance(main_info, dict) else {}
    total, size = to_float(main_info.get("totalResults")), to_float(main_info.get("pageSize"))
    if total is None or not size:
        return True
    return page * size < total


class LazadaSpider(ShopSpider):
    """Category listing JSON -> product page HTML -> ProductItem."""

    name = "lazada"
    # The CDN hosts too: image downloads must not be dropped as off-site.
    allowed_domains = ["lazada.vn", "slatic.net", "lazcdn.com"]
    default_categories = (
        "giay-sneaker-nam",
        "giay-nam-thoi-trang",
        "giay-nu-thoi-trang",
        "giay-the-thao-cho-nam",
        "giay-the-thao-da-ngoai-nu",
    )
    # Lazada captchas bursts quickly (rgv587_flag); burplist needed ~20 s between
    # requests, so one request at a time with long, adaptive gaps. Replay runs
    # override these with `-s`.
    custom_settings = {
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_DELAY": 10.0,
        "AUTOTHROTTLE_START_DELAY": 10.0,
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
    }

    def listing_request(self, category: str, page: int) -> scrapy.Request:
        category_url = f"https://{HOST}/{category}/"
        return scrapy.Request(
            f"{category_url}?ajax=true&isFirstRequest=true&page={page}",
            # The XHR is answered as JSON only when asked for JSON from the category page.
            headers={"Accept": "application/json", "Referer": category_url},
            callback=self.parse_listing,
            cb_kwargs={"category": category, "page": page},
        )

    def parse_listing(self, response: Response, category: str, page: int) -> Iterator[scrapy.Request]:
        data = self.load_json(response)
        mods = data.get("mods") if isinstance(data, dict) else None
        entries = self.entries(mods, "listItems")
        listed = len(mods["listItems"])
        bad = listed - len(entries)  # non-object entries, dropped by entries()
        for entry in entries:
            listing = self.listing_item(entry)
            if listing is None:
                bad += 1
            elif self.wants_product(listing.product_id):
                yield self.product_request(listing.url, listing, callback=self.parse_product)
        if bad:
            self.crawler.stats.inc_value("clipshoe/skipped/bad_entry", bad)
        yield from self.next_listing(category, page, has_more_pages(data.get("mainInfo"), page, listed))

    def listing_item(self, entry: dict[str, Any]) -> ProductItem | None:
        """What a `listItems` entry says of its product: name, brand, price, one picture
        and the highlights as description; None for an entry without id or page URL."""
        item_id = entry.get("itemId", entry.get("nid"))
        if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or not str(item_id).strip():
            return None
        url = canonical_product_url(entry.get("productUrl"))
        if url is None:
            return None
        highlights = entry.get("description")
        return ProductItem(
            site=self.name,
            product_id=str(item_id).strip(),
            url=url,
            title=clean_str(entry.get("name")) or "",
            description="\n".join(filter(None, map(html_to_text, highlights if isinstance(highlights, list) else []))),
            brand=clean_str(entry.get("brandName")),
            price=to_float(entry.get("price")),
            currency="VND",
            image_urls=unique([full_size_image(entry.get("image"))]),
        )

    def parse_product(self, response: Response, listing: ProductItem) -> Iterator[ProductItem]:
        page = response.text
        module = embedded_json(page, "__moduleData__")
        fields = module["data"]["root"]["fields"] if module is not None else {}
        sku_infos = fields.get("skuInfos") or {}
        primary = fields.get("primaryKey") or {}
        sku_id = str(primary.get("skuId") or "")
        sku_info = sku_infos.get("0") or sku_infos.get(sku_id) or {}  # "0": the item-level entry
        tracking = sku_info.get("dataLayer") or tracking_data(page)
        if not fields and not tracking:
            raise MalformedResponse("pdp_data", f"{response.url}: neither __moduleData__ nor pdpTrackingData")
        product = fields.get("product") or {}
        brand = product.get("brand")
        sale_price = (sku_info.get("price") or {}).get("salePrice") or {}

        yield ProductItem(
            site=self.name,
            product_id=str(primary.get("itemId") or listing.product_id),
            url=canonical_product_url(product.get("link") or response.url),
            title=clean_str(first(product.get("title"), tracking.get("pdt_name"))) or listing.title,
            # The long description; the highlights when a seller left it empty.
            description=html_to_text(product.get("desc")) or html_to_text(product.get("highlights"))
            or listing.description,
            brand=clean_str(first(brand.get("name") if isinstance(brand, dict) else brand,
                                  tracking.get("brand_name"))) or listing.brand,
            category_path=[name for name in map(clean_str, tracking.get("pdt_category") or []) if name],
            attributes=self._attributes(fields, sku_id),
            price=to_float(sale_price.get("value")) or listing.price,
            currency="VND",
            image_urls=self._image_urls(fields, sku_id, sku_info, listing),
        )

    @staticmethod
    def _attributes(fields: dict[str, Any], sku_id: str) -> dict[str, str]:
        """The spec table of the shown SKU plus its variant options (e.g. Màu sắc)."""
        specifications = fields.get("specifications") or {}
        spec = specifications.get(sku_id) or next(iter(specifications.values()), {})
        pairs = list((spec.get("features") or {}).items())
        sku_base = (fields.get("productOption") or {}).get("skuBase") or {}
        for prop in sku_base.get("properties") or []:
            # Nested values are size-system tabs ("EU", "Int"), not option values.
            pairs += [(prop.get("name"), value.get("name")) for value in prop.get("values") or []
                      if "value" not in value]
        return {key: value for key, value in normalise_attributes(pairs).items() if key not in _NOT_ATTRIBUTES}

    @staticmethod
    def _image_urls(fields: dict[str, Any], sku_id: str, sku_info: dict[str, Any],
                    listing: ProductItem) -> list[str]:
        """Gallery pictures (videos skipped), full size; the SKU or listing picture
        only when the page has no gallery."""
        galleries = fields.get("skuGalleries") or {}
        gallery = galleries.get("0") or galleries.get(sku_id) or []
        urls = [full_size_image(media.get("src")) for media in gallery if media.get("type", "img") == "img"]
        return unique(urls) or unique([full_size_image(sku_info.get("image")), *listing.image_urls])
