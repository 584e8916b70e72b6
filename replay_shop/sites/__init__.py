"""Per-site renderers: each turns the synthetic catalog into one shop's real
endpoints and response shapes (the spiders in scrapers/spiders/ parse the same shapes).

A renderer is a module-level object implementing `SiteRenderer`. The server routes
`/HOST/PATH?QUERY` to the renderer that lists HOST in `hosts`; images on
`image_hosts` are served by the server itself from the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from replay_shop.catalog import Catalog


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

    @property
    def is_json(self) -> bool:
        return self.content_type.startswith("application/json")


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

    def handle(self, catalog: "Catalog", request: ShopRequest) -> ShopReply | None:
        """Answer an API/page request; None means 404."""

    def block_reply(self) -> ShopReply:
        """What the site answers when it blocks a client."""


def renderers() -> dict[str, SiteRenderer]:
    """All five renderers by site name (imported lazily: each module is independent)."""
    from replay_shop.sites.lazada import RENDERER as lazada
    from replay_shop.sites.sendo import RENDERER as sendo
    from replay_shop.sites.shopee import RENDERER as shopee
    from replay_shop.sites.tiki import RENDERER as tiki
    from replay_shop.sites.zalora import RENDERER as zalora

    return {r.site: r for r in (tiki, sendo, shopee, lazada, zalora)}
