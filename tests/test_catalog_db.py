"""The DuckDB catalog writer: per-site replacement, idempotent rejections."""

from __future__ import annotations

import pytest

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.parquet_io import raw_products_table, write_parquet_atomic
from tests.test_parquet_io import item_row


@pytest.fixture
def catalog(tmp_path) -> CatalogDB:
    return CatalogDB(path=str(tmp_path / "clipshoe.duckdb"))


def site_file(tmp_path, site: str, ids: list[str]):
    path = tmp_path / f"site={site}" / "raw_products.parquet"
    write_parquet_atomic(raw_products_table([item_row(i, site=site) for i in ids]), path)
    return path


def ids_by_site(catalog: CatalogDB) -> dict[str, list[str]]:
    rows = catalog.query("SELECT site, list(product_id ORDER BY product_id) AS ids FROM raw_products GROUP BY site")
    return {row["site"]: row["ids"] for row in rows}


def test_replacing_a_site_twice_keeps_one_copy_and_leaves_other_sites_alone(catalog, tmp_path):
    assert catalog.replace_site_rows("raw_products", "sendo", site_file(tmp_path, "sendo", ["s1"])) == 1
    assert catalog.replace_site_rows("raw_products", "tiki", site_file(tmp_path, "tiki", ["1", "2"])) == 2
    assert catalog.replace_site_rows("raw_products", "tiki", site_file(tmp_path, "tiki", ["2", "3"])) == 2
    assert ids_by_site(catalog) == {"sendo": ["s1"], "tiki": ["2", "3"]}


def test_a_file_with_another_sites_rows_is_refused_and_nothing_changes(catalog, tmp_path):
    catalog.replace_site_rows("raw_products", "tiki", site_file(tmp_path, "tiki", ["1"]))
    with pytest.raises(ValueError, match="other than 'tiki'"):
        catalog.replace_site_rows("raw_products", "tiki", site_file(tmp_path, "sendo", ["s1"]))
    assert ids_by_site(catalog) == {"tiki": ["1"]}


def test_table_names_must_be_plain_identifiers(catalog, tmp_path):
    with pytest.raises(ValueError):
        catalog.replace_site_rows("raw_products; DROP TABLE x", "tiki", site_file(tmp_path, "tiki", ["1"]))


def rejection(product_id: str, stage: str = "download", site: str = "tiki") -> dict:
    return {"site": site, "product_id": product_id, "url": f"https://tiki.vn/p{product_id}.html",
            "image_url": "https://salt.tikicdn.com/x.jpg", "stage": stage, "reason": "too_small"}


def test_a_sites_rejections_follow_its_latest_crawl_and_other_sites_are_kept(catalog):
    assert catalog.replace_site_rejections("tiki", "run-1", [rejection("1"), rejection("2", "crawl")]) == 2
    catalog.replace_site_rejections("sendo", "run-1", [rejection("9", site="sendo")])
    catalog.replace_site_rejections("tiki", "run-2", [rejection("3")])
    catalog.replace_site_rejections("tiki", "run-2", [rejection("3"), rejection("4")])
    rows = catalog.query("SELECT site, run_id, product_id FROM rejections ORDER BY site, product_id")
    assert [(r["site"], r["run_id"], r["product_id"]) for r in rows] == [
        ("sendo", "run-1", "9"), ("tiki", "run-2", "3"), ("tiki", "run-2", "4")]


def test_rejections_of_another_site_or_stage_are_refused(catalog):
    with pytest.raises(ValueError, match="outside"):
        catalog.replace_site_rejections("tiki", "run-1", [rejection("1", site="sendo")])
    with pytest.raises(ValueError, match="outside"):
        catalog.replace_site_rejections("tiki", "run-1", [rejection("1", stage="curate")])


def _replace_repeatedly(database: str, site: str, parquet: str) -> None:
    for _ in range(5):
        CatalogDB(path=database).replace_site_rows("raw_products", site, parquet)


def test_writers_in_parallel_processes_wait_for_each_other_instead_of_failing(catalog, tmp_path):
    import multiprocessing

    sites = ["tiki", "sendo", "shopee"]
    files = {site: str(site_file(tmp_path, site, [f"{site}-1", f"{site}-2"])) for site in sites}
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_replace_repeatedly, args=(catalog.path, site, files[site])) for site in sites]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert ids_by_site(catalog) == {site: [f"{site}-1", f"{site}-2"] for site in sites}
