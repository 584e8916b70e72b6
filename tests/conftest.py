"""Shared pytest fixtures: a small replay catalog and a running replay shop.

`replay_catalog`/`replay_shop` use the real site renderers (what spiders are tested
against). `fake_catalog`/`fake_shop` use `FakeRenderer`, a minimal stand-in for a
site renderer, so the replay core (catalog, pictures, server) is tested on its own,
independent of the five per-site modules.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest

from replay_shop.catalog import DEFAULT_SITES, Catalog
from replay_shop.records import Faults
from replay_shop.server import ReplayShop, running_shop
from replay_shop.sites.protocol import ProductSource, ShopReply, ShopRequest
from replay_shop.sites.common import distinct_numbers

REPLAY_SEED = 7
REPLAY_PRODUCTS_PER_SITE = 30
FAKE_PAGE_SIZE = 10


@pytest.fixture(scope="session")
def replay_catalog() -> Catalog:
    return Catalog(seed=REPLAY_SEED, products_per_site=REPLAY_PRODUCTS_PER_SITE)


@pytest.fixture
def replay_shop(replay_catalog) -> Iterator[ReplayShop]:
    with running_shop(replay_catalog, faults=Faults.none()) as shop:
        yield shop


class FakeRenderer:
    """A tiny site renderer: a JSON listing API at `/api/products?category=&page=`,
    a JSON product API at `/api/products/{id}`, images on `img.<site>.example`."""

    currency = "VND"
    categories = ("giay-nam", "giay-nu", "giay-cao-got")
    _paths = {"giay-nam": ("Giày - Dép nam",), "giay-nu": ("Giày - Dép nữ",),
              "giay-cao-got": ("Giày - Dép nữ", "Giày cao gót")}

    def __init__(self, site: str):
        self.site = site
        self.hosts = (f"{site}.example",)
        self.image_hosts = (f"img.{site}.example",)

    def category_path(self, category: str) -> tuple[str, ...]:
        return self._paths[category]

    def product_url(self, product_id: str, shop_id: str, slug: str) -> str:
        return f"https://{self.hosts[0]}/{slug}-p{product_id}.html"

    def image_url(self, token: str) -> str:
        return f"https://{self.image_hosts[0]}/{token[:2]}/{token}.jpg"

    def new_ids(self, rng: random.Random, brands: list[str]) -> tuple[list[str], list[str]]:
        return distinct_numbers(rng, 10_000, 99_999, len(brands)), distinct_numbers(rng, 10_000, 99_999, len(brands))

    def handle(self, catalog: ProductSource, request: ShopRequest) -> ShopReply | None:
        if request.path == "/api/products":
            listed = catalog.listing(self.site, request.query.get("category", ""))
            page = int(request.query.get("page", "1"))
            chunk = listed[(page - 1) * FAKE_PAGE_SIZE:page * FAKE_PAGE_SIZE]
            return _json({"data": [{"id": p.product_id, "name": p.title} for p in chunk], "page": page})
        if request.path.startswith("/api/products/"):
            product = catalog.product(self.site, request.path.rsplit("/", 1)[1])
            if product is None:
                return None
            return _json({"id": product.product_id, "images": [i.url for i in product.images]})
        return None

    def block_reply(self) -> ShopReply:
        return ShopReply(status=200, body=b'{"error": 90309999, "action_type": 2}')


def _json(payload: object) -> ShopReply:
    return ShopReply(body=json.dumps(payload, ensure_ascii=False).encode())


def fake_renderers() -> dict[str, FakeRenderer]:
    return {site: FakeRenderer(site) for site in DEFAULT_SITES}


@pytest.fixture(scope="session")
def fake_catalog() -> Catalog:
    """A catalog over fake renderers."""
    return Catalog(seed=REPLAY_SEED, products_per_site=REPLAY_PRODUCTS_PER_SITE, renderers=fake_renderers())


@pytest.fixture
def fake_shop(fake_catalog) -> Iterator[ReplayShop]:
    with running_shop(fake_catalog, faults=Faults.none()) as shop:
        yield shop
