"""The one product schema every spider yields, and its validation.

Declared once here; the Parquet schema of `raw_products` (clipshoe_pipeline) is
derived from the same field list, so the crawl output and the catalog cannot drift.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

SITES = ("tiki", "sendo", "shopee", "lazada", "zalora")


@dataclass
class ProductItem:
    site: str
    product_id: str
    url: str  # the real product page, never the replay address
    title: str
    description: str = ""  # plain text; spiders strip HTML before yielding
    brand: str | None = None
    category_path: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)  # colour, material, gender, ...
    price: float | None = None
    currency: str = "VND"
    image_urls: list[str] = field(default_factory=list)  # absolute, full size, ordered, unique
    crawled_at: str = field(default_factory=lambda: utc_now_iso())
    # Filled by the image pipeline: one entry per image_urls entry, in order.
    images: list[dict[str, Any]] = field(default_factory=list)
    # Set when the product page failed for good (its failed-page reason: http_404,
    # blocked_http_403, malformed_json, ...) and the item holds what the listing entry
    # alone said; None when the page was read.
    detail_unavailable: str | None = None


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(ProductItem))


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class InvalidItem(ValueError):
    """An item that cannot be kept; `reason` is a short stable key used in stats."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _is_real_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.hostname not in (
        "127.0.0.1",
        "localhost",
    )


def validate(item: ProductItem) -> list[str]:
    """Raise InvalidItem for an item that must be dropped; return soft warnings.

    Warnings (e.g. a missing brand) are counted by the caller but keep the item:
    curation decides later whether the product is usable.
    """
    if item.site not in SITES:
        raise InvalidItem("unknown_site", repr(item.site))
    if not isinstance(item.product_id, str) or not item.product_id.strip():
        raise InvalidItem("missing_product_id")
    if not _is_real_url(item.url):
        raise InvalidItem("bad_url", repr(item.url))
    if not isinstance(item.title, str) or not item.title.strip():
        raise InvalidItem("missing_title")
    if not isinstance(item.image_urls, list) or not item.image_urls:
        raise InvalidItem("no_images")
    bad = [u for u in item.image_urls if not _is_real_url(u)]
    if bad:
        raise InvalidItem("bad_image_url", repr(bad[0]))
    if len(set(item.image_urls)) != len(item.image_urls):
        raise InvalidItem("duplicate_image_urls")
    if not isinstance(item.category_path, list) or not all(isinstance(c, str) for c in item.category_path):
        raise InvalidItem("bad_category_path")
    if not isinstance(item.attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in item.attributes.items()
    ):
        raise InvalidItem("bad_attributes")
    if item.price is not None and (not isinstance(item.price, (int, float)) or item.price < 0):
        raise InvalidItem("bad_price", repr(item.price))

    warnings = []
    if not item.brand:
        warnings.append("missing_brand")
    if not item.description:
        warnings.append("missing_description")
    if item.price is None:
        warnings.append("missing_price")
    if not item.category_path:
        warnings.append("missing_category_path")
    return warnings
