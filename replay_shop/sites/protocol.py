"""The shapes a site renderer speaks: the request it is handed, the reply it gives,
what it reads of the catalog, and the renderer protocol itself."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from replay_shop.records import ShopProduct


@dataclass(frozen=True)
class ShopRequest:
    host: str  # e.g. "tiki.vn"
    path: str  # e.g. "/api/v2/products" (no query)
    query: dict[str, str] = field(default_factory=dict)  # first value of each parameter
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names


@dataclass(frozen=True)
class ShopReply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    product_id: str | None = None  # set on a product's detail answer: the server's per-product faults key on it
    missing_product: bool = False  # the site's own "not found" for a detail request (an id it does not list)

    @property
    def is_json(self) -> bool:
        return self.content_type.startswith("application/json")

    @property
    def kind(self) -> str:
        """Which kind of request the server counts this answer as: "detail" or "listing"."""
        return "detail" if self.product_id is not None or self.missing_product else "listing"


class ProductSource(Protocol):
    """What a renderer reads of the catalog it serves."""

    seed: int

    def listing(self, site: str, category: str) -> list[ShopProduct]:
        """The products a category lists, in listing order."""

    def product(self, site: str, product_id: str) -> ShopProduct | None:
        """One product, or None when the site has no such id."""


class SiteRenderer(Protocol):
    site: str
    hosts: tuple[str, ...]  # API and web-page hosts answered by `handle`
    image_hosts: tuple[str, ...]  # CDN hosts; the server serves catalog images there
    categories: tuple[str, ...]  # category keys the shop lists (the spider's defaults)
    currency: str

    def category_path(self, category: str) -> tuple[str, ...]:
        """Breadcrumb names of a category key, e.g. ("Giày - Dép nam",)."""

    def product_url(self, product_id: str, shop_id: str, slug: str) -> str:
        """The real product-page URL for a product."""

    def image_url(self, token: str) -> str:
        """The real full-size image URL for a 32-hex-digit image token."""

    def new_ids(self, rng: random.Random, brands: list[str]) -> tuple[list[str], list[str]]:
        """Product ids and shop ids in the site's own formats, one per product (of `brands`)."""

    def handle(self, catalog: ProductSource, request: ShopRequest) -> ShopReply | None:
        """Answer an API/page request; None means 404."""

    def block_reply(self) -> ShopReply:
        """What the site answers when it blocks a client."""
