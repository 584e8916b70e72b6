"""Shared pytest fixtures: a data directory and its catalog, a small replay catalog,
a running replay shop, replay pictures.

`replay_catalog`/`replay_shop` use the real site renderers (what spiders are tested
against). `fake_catalog`/`fake_shop` use `builders.FakeRenderer`, a minimal stand-in for a
site renderer, so the replay core (catalog, pictures, server) is tested on its own,
independent of the five per-site modules.
"""

from __future__ import annotations

import os

# Before huggingface_hub is imported (it reads this once): no test may reach the real hub.
# Tests of downloads serve a loopback hub and switch this off for themselves (tests/hub_server.py).
os.environ["HF_HUB_OFFLINE"] = "1"

from collections.abc import Iterator  # noqa: E402

import pytest

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.paths import DataPaths
from replay_shop.catalog import Catalog
from replay_shop.records import Faults
from replay_shop.server import ReplayShop, running_shop
from tests.builders import REPLAY_PRODUCTS_PER_SITE, REPLAY_SEED, fake_renderers


@pytest.fixture
def paths(tmp_path) -> DataPaths:
    """An empty data directory."""
    return DataPaths(tmp_path)


@pytest.fixture
def catalog(paths) -> CatalogDB:
    """The catalog of `paths`."""
    return CatalogDB(data_dir=str(paths.root))


@pytest.fixture(scope="session")
def replay_catalog() -> Catalog:
    return Catalog(seed=REPLAY_SEED, products_per_site=REPLAY_PRODUCTS_PER_SITE)


@pytest.fixture(scope="session")
def catalog_images() -> list[bytes]:
    """Ten good replay pictures and one planted blank, tiny and corrupt image each."""
    catalog = Catalog(seed=1, products_per_site=30)
    good, bad = [], {}
    for site in catalog.sites:
        for product in catalog.products(site):
            for image in product.images:
                if image.defect in ("blank", "tiny", "corrupt"):
                    bad.setdefault(image.defect, catalog.image_bytes(image))
                elif image.defect is None and len(good) < 10:
                    good.append(catalog.image_bytes(image))
    return good + list(bad.values())


@pytest.fixture
def replay_shop(replay_catalog) -> Iterator[ReplayShop]:
    with running_shop(replay_catalog, faults=Faults.none()) as shop:
        yield shop


@pytest.fixture(scope="session")
def fake_catalog() -> Catalog:
    """A catalog over fake renderers."""
    return Catalog(seed=REPLAY_SEED, products_per_site=REPLAY_PRODUCTS_PER_SITE, renderers=fake_renderers())


@pytest.fixture
def fake_shop(fake_catalog) -> Iterator[ReplayShop]:
    with running_shop(fake_catalog, faults=Faults.none()) as shop:
        yield shop
