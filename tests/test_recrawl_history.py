"""Two real crawls of an evolving replay shop through the asset: product_history holds
exactly the changes the shop planted between its epochs (its ground truth)."""

from __future__ import annotations

import dagster as dg
import pytest

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.definitions import defs
from clipshoe_pipeline.paths import data_paths
from replay_shop.catalog import Catalog
from replay_shop.records import Faults
from replay_shop.server import running_shop
from tests.crawl_harness import listed_ids

pytestmark = pytest.mark.slow
SITE = "tiki"


def crawl(shop_url: str, **settings: str) -> dg.ExecuteInProcessResult:
    run_config = {"resources": {"crawler": {"config": {"replay_url": shop_url}}},
                  "ops": {"raw_products": {"config": {"settings": settings}}}}
    return defs.resolve_job_def("crawl_job").execute_in_process(
        partition_key=SITE, instance=dg.DagsterInstance.ephemeral(), run_config=run_config)


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    (materialization,) = result.asset_materializations_for_node("raw_products")
    return {key: value.value for key, value in materialization.metadata.items()}


def test_after_epoch_2_the_history_records_exactly_the_planted_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(tmp_path / "data"))
    catalog = Catalog(seed=5, products_per_site=30)
    with running_shop(catalog, faults=Faults.none()) as shop:
        before = metadata(crawl(shop.url))["crawl_started_at"]
        shop.set_epoch(2)
        after = metadata(crawl(shop.url))["crawl_started_at"]
    planted = catalog.at_epoch(2).changes()[SITE]
    rows = CatalogDB().query(
        "SELECT product_id, price, strftime(valid_from, '%Y-%m-%dT%H:%M:%S+00:00') AS valid_from, "
        "strftime(valid_to, '%Y-%m-%dT%H:%M:%S+00:00') AS valid_to, disappeared FROM product_history "
        "WHERE site = $site ORDER BY product_id, valid_from", {"site": SITE})
    states: dict[str, list[dict]] = {}
    for row in rows:
        states.setdefault(row["product_id"], []).append(row)

    assert set(states) == listed_ids(catalog, SITE) | set(planted["added"])
    repriced = {pid for pid, versions in states.items() if len(versions) == 2}
    assert repriced == set(planted["price_changed"])
    for pid, change in planted["price_changed"].items():
        old, new = states[pid]
        assert (old["price"], old["valid_from"], old["valid_to"]) == (change["old"], before, after)
        assert (new["price"], new["valid_from"], new["valid_to"]) == (change["new"], after, None)
    assert {pid for pid, (*_, last) in states.items() if last["disappeared"]} == set(planted["removed"])
    for pid in planted["removed"]:
        assert states[pid] == [{**states[pid][0], "valid_from": before, "valid_to": after}]
    for pid in planted["added"]:
        assert [(s["valid_from"], s["valid_to"]) for s in states[pid]] == [(after, None)]
    unchanged = set(states) - repriced - set(planted["removed"]) - set(planted["added"])
    assert unchanged and all([(s["valid_from"], s["valid_to"]) for s in states[pid]] == [(before, None)]
                             for pid in unchanged)


def test_an_unchanged_recrawl_fetches_no_page_and_no_image_and_a_stale_one_revalidates(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(tmp_path / "data"))
    catalog = Catalog(seed=6, products_per_site=20)
    with running_shop(catalog, faults=Faults.none()) as shop:
        first = metadata(crawl(shop.url))
        raw = data_paths().raw_products_parquet(SITE).read_bytes()
        served = dict(shop.stats["requests_by_kind"])
        again = metadata(crawl(shop.url))
        assert shop.stats["requests_by_kind"]["detail"] == served["detail"]  # counted by the shop
        # Of the images, only those that failed (the shop plants a few bad ones) are tried again.
        assert first["images_failed"] > 0
        assert shop.stats["requests_by_kind"]["image"] == served["image"] + first["images_failed"]
        assert again["details_skipped_unchanged"] == again["items"]
        assert data_paths().raw_products_parquet(SITE).read_bytes() == raw
        stale = metadata(crawl(shop.url, CLIPSHOE_DETAIL_MAX_AGE_DAYS="0"))  # every page due: asked conditionally
        assert stale["details_refreshed_stale"] == stale["details_revalidated"] == stale["items"]
        assert shop.stats["not_modified"]["detail"] == stale["items"]
        assert data_paths().raw_products_parquet(SITE).read_bytes() == raw
    (counts,) = CatalogDB().query("SELECT count(*) AS states, count(*) FILTER (WHERE valid_to IS NULL) AS current "
                                  "FROM product_history")
    assert counts == {"states": len(listed_ids(catalog, SITE)), "current": len(listed_ids(catalog, SITE))}
