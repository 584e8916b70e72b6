"""The catalog: views over the Parquet datasets, no table data, safe with concurrent writers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import duckdb
import pyarrow as pa

from clipshoe_pipeline.catalog_db import DATASETS, CatalogDB
from clipshoe_pipeline.parquet_io import raw_products_table, write_parquet_atomic
from clipshoe_pipeline.paths import DataPaths
from tests.builders import item_row


def write_site(paths: DataPaths, site: str, ids: list[str]) -> None:
    write_parquet_atomic(raw_products_table([item_row(i, site=site) for i in ids]), paths.raw_products_parquet(site))


def catalog_objects(paths: DataPaths) -> dict[str, str]:
    with duckdb.connect(str(paths.catalog_db), read_only=True) as connection:
        return dict(connection.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())


def test_every_dataset_is_a_view_over_its_files_and_the_catalog_holds_no_rows(paths, catalog):
    write_site(paths, "tiki", ["1", "2"])
    write_site(paths, "sendo", ["s1"])
    catalog.publish()
    assert catalog_objects(paths) == {"raw_products": "VIEW"}
    rows = catalog.query("SELECT site, count(*) AS n FROM raw_products GROUP BY site ORDER BY site")
    assert rows == [{"site": "sendo", "n": 1}, {"site": "tiki", "n": 2}]
    write_site(paths, "tiki", ["3"])  # a new crawl replaces the file: readers see it without publishing
    assert catalog.query("SELECT list(product_id) AS ids FROM raw_products WHERE site = 'tiki'") == [{"ids": ["3"]}]
    with duckdb.connect(str(paths.catalog_db), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)


def test_publishing_is_idempotent_writes_only_what_changed_and_drops_a_view_without_files(paths, catalog):
    write_site(paths, "tiki", ["1"])
    catalog.publish("raw_products")
    written = paths.catalog_db.stat().st_mtime_ns
    catalog.publish("raw_products")
    catalog.publish()  # datasets without files: nothing to create
    assert paths.catalog_db.stat().st_mtime_ns == written
    paths.raw_products_parquet("tiki").unlink()
    catalog.publish("raw_products")
    assert catalog.tables() == set()


def test_a_moved_data_dir_gets_views_pointing_at_its_own_files(tmp_path):
    old, new = DataPaths(tmp_path / "old"), DataPaths(tmp_path / "new")
    write_site(old, "tiki", ["1"])
    CatalogDB(data_dir=str(old.root)).publish()
    (tmp_path / "old").rename(tmp_path / "new")
    write_site(new, "tiki", ["1", "2"])
    catalog = CatalogDB(data_dir=str(new.root))
    catalog.publish()
    assert catalog.query("SELECT count(*) AS n FROM raw_products") == [{"n": 2}]


def test_a_file_written_before_a_column_existed_reads_it_as_null(paths, catalog):
    write_site(paths, "tiki", ["1"])
    write_parquet_atomic(raw_products_table([item_row("s1", site="sendo")]).append_column(
        "seller", pa.array(["shop 7"])), paths.raw_products_parquet("sendo"))
    catalog.publish()
    rows = catalog.query("SELECT site, seller FROM raw_products ORDER BY site")
    assert rows == [{"site": "sendo", "seller": "shop 7"}, {"site": "tiki", "seller": None}]


def test_batches_read_the_files_in_the_order_asked_for_with_optional_columns(paths, catalog):
    write_site(paths, "tiki", ["1", "2"])
    write_site(paths, "sendo", ["s1"])
    batches = list(catalog.batches("raw_products", ("site", "product_id"), optional=("seller",),
                                   order=["site=tiki", "site=sendo"]))
    assert [row["product_id"] for batch in batches for row in batch.to_pylist()] == ["1", "2", "s1"]
    assert all(batch.schema.names == ["site", "product_id"] for batch in batches)


def _write_metrics(data_dir: str, evaluation: str, rows: int) -> None:
    paths = DataPaths(Path(data_dir))
    table = pa.table({"model": [evaluation] * rows, "value": [0.5] * rows})
    write_parquet_atomic(table, paths.metrics_parquet(evaluation))
    CatalogDB(data_dir=str(paths.root)).publish("metrics")
    CatalogDB(data_dir=str(paths.root)).query("SELECT count(*) FROM metrics")


def test_concurrent_writers_of_an_append_only_dataset_keep_every_row(paths, catalog):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_metrics, args=(str(paths.root), f"eval-{i}", 10 + i)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    rows = catalog.query("SELECT model, count(*) AS n FROM metrics GROUP BY model ORDER BY model")
    assert rows == [{"model": f"eval-{i}", "n": 10 + i} for i in range(4)]


def test_every_catalog_name_of_the_contract_is_a_dataset():
    assert {"raw_products", "curated_pairs", "rejections", "metrics", "model_checkpoints"} <= set(DATASETS)
