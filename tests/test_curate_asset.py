"""curated_pairs end to end: the replay shop crawled through the Dagster crawl asset,
then curated; scored against the shop's planted ground truth."""

from __future__ import annotations

from collections import defaultdict

import dagster as dg
import pytest

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.definitions import defs
from replay_shop.catalog import Catalog
from replay_shop.server import running_shop
from scrapers.items import SITES

pytestmark = pytest.mark.slow


def materialize(job_name: str, instance, partition_key: str | None = None,
                run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=False,
                                    run_config=run_config)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    catalog = Catalog(seed=5, products_per_site=40)
    with pytest.MonkeyPatch.context() as patch, running_shop(catalog) as shop, \
            dg.DagsterInstance.ephemeral() as instance:
        patch.setenv("CLIPSHOE_DATA_DIR", str(data))
        to_shop = {"resources": {"crawler": {"config": {"replay_url": shop.url}}}}
        for site in SITES:
            materialize("crawl_job", instance, site, to_shop)
        first = materialize("curate_job", instance)
        again = materialize("curate_job", instance)
        db = CatalogDB(data_dir=str(data))
        yield catalog, first, again, db.query("SELECT * FROM curated_pairs"), \
            db.query("SELECT * FROM rejections WHERE stage = 'curate'")


def test_checks_pass_and_metadata_reports_the_run(curated):
    _, first, again, pairs, _ = curated
    checks = first.get_asset_check_evaluations()
    assert len(checks) == 5 and all(check.passed for check in checks)
    (materialization,) = first.asset_materializations_for_node("curated_pairs")
    metadata = materialization.metadata
    assert metadata["pairs_out"].value == len(pairs) > 0
    assert metadata["images_computed"].value > 0
    (rerun,) = again.asset_materializations_for_node("curated_pairs")
    assert rerun.metadata["images_computed"].value == 0, "unchanged images were processed again"
    assert rerun.metadata["images_cached"].value == metadata["images_computed"].value


def test_non_shoe_items_and_bad_images_are_rejected_with_their_reason(curated):
    catalog, _, _, pairs, rejections = curated
    by_product = defaultdict(set)
    by_image = {}
    for r in rejections:
        by_product[(r["site"], r["product_id"])].add(r["reason"])
        if r["image_url"]:
            by_image[r["image_url"]] = r["reason"]
    kept_products = {(p["site"], p["product_id"]) for p in pairs}
    for site in SITES:
        for product in catalog.products(site):
            key = (site, product.product_id)
            if not product.is_shoe:
                assert any(reason.startswith("non_shoe") for reason in by_product[key]), product.title
                assert key not in kept_products
            for image in product.images:
                if product.is_shoe and image.defect == "blank":
                    assert by_image.get(image.url) == "near_blank", image.url


def test_no_product_crosses_the_split(curated):
    _, _, _, pairs, _ = curated
    products = defaultdict(set)
    for pair in pairs:
        products[(pair["site"], pair["product_id"])].add(pair["split"])
    assert products and all(len(splits) == 1 for splits in products.values())


def test_planted_duplicates_are_merged_and_never_cross_the_split(curated):
    catalog, _, _, pairs, _ = curated
    picture = {image.url: image.picture_id for site in SITES for p in catalog.products(site) for image in p.images}
    kept = defaultdict(list)
    for pair in pairs:
        kept[picture[pair["image_url"]]].append(pair)
    repeated = {pid: rows for pid, rows in kept.items() if len(rows) > 1}
    assert not repeated, f"{len(repeated)} planted duplicates survived de-duplication"


def test_near_duplicate_rejections_never_drop_a_distinct_picture(curated):
    catalog, _, _, pairs, rejections = curated
    picture = {image.url: image.picture_id for site in SITES for p in catalog.products(site) for image in p.images}
    kept = {picture[pair["image_url"]] for pair in pairs}
    merged = [picture[r["image_url"]] for r in rejections if r["reason"] == "near_duplicate"]
    assert merged, "no planted duplicate was merged"
    lost = [pid for pid in merged if pid not in kept]
    assert not lost, f"{len(lost)} pictures were merged into another picture's cluster"
