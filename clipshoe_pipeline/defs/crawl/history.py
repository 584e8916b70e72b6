"""The shops over time: every crawl's observations, and the latest state they add up to.

A crawl of a site appends one file of observations (what the listing said of each
product: title, price, currency, image list), named after the crawl, so re-publishing
the same crawl replaces its own file and nothing else. `raw_products` stays the latest
state per product: the crawl's items, plus the last known state of products the crawl
no longer saw (they vanished from the listing; their images and captions remain good
training data, and `product_history` says they are gone). The `product_history` view
(catalog_db) derives one row per product per distinct state from the observations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

# What a listing-only row (its page failed) takes over from the product's earlier row.
LISTING_OVERRIDES = ("price", "currency", "detail_unavailable", "crawled_at")
OBSERVED_FIELDS = ("product_id", "title", "price", "currency", "image_urls")
OBSERVATIONS_SCHEMA = pa.schema([
    ("crawl_started_at", pa.timestamp("s", tz="UTC")), ("product_id", pa.string()), ("title", pa.string()),
    ("price", pa.float64()), ("currency", pa.string()), ("image_urls", pa.list_(pa.string())),
])


def crawl_started_at(crawled: list[dict[str, Any]]) -> datetime:
    """The crawl's identity: when its first item was collected. A resumed crawl keeps
    its first items, so every attempt of one crawl gets the same name."""
    return datetime.fromisoformat(min(row["crawled_at"] for row in crawled))


def crawl_file_name(started: datetime) -> str:
    return started.strftime("%Y%m%dT%H%M%SZ")


def observations(crawled: list[dict[str, Any]], started: datetime) -> pa.Table:
    """One row per product the crawl collected, in OBSERVATIONS_SCHEMA."""
    return pa.Table.from_pylist([{"crawl_started_at": started, **{name: row[name] for name in OBSERVED_FIELDS}}
                                 for row in crawled], schema=OBSERVATIONS_SCHEMA)


def latest_state(crawled: list[dict[str, Any]], previous: pa.Table | None) -> list[dict[str, Any]]:
    """The site's raw_products rows after this crawl: each crawled product, but its
    previous row where nothing but `crawled_at` changed (an unchanged recrawl leaves the
    file as it was), then the previous rows of the products this crawl did not see.
    `previous` is the site's raw_products file before the crawl."""
    before = {row["product_id"]: row for row in previous.to_pylist()} if previous is not None else {}
    rows = [_unchanged(row, before.get(row["product_id"])) for row in crawled]
    seen = {row["product_id"] for row in crawled}
    return rows + [row for product_id, row in before.items() if product_id not in seen]


def _unchanged(row: dict[str, Any], earlier: dict[str, Any] | None) -> dict[str, Any]:
    if earlier is None:
        return row
    if row.get("detail_unavailable"):
        # Only the listing was read this time: what the product page said before (its
        # title, gallery, description...) still stands; the listing's price is current.
        row = {**earlier, **{name: row[name] for name in LISTING_OVERRIDES if row.get(name) is not None}}
    return earlier if {**earlier, "crawled_at": row["crawled_at"]} == row else row
