"""raw_products for real: the Dagster asset runs the Scrapy subprocess through Pipes
against the replay shop and publishes Parquet + DuckDB, checks included."""

from __future__ import annotations

import dagster as dg
import pyarrow.parquet as pq
import pytest

from clipshoe_pipeline.definitions import defs
from clipshoe_pipeline.paths import data_paths
from replay_shop.catalog import Catalog
from replay_shop.records import Faults
from replay_shop.server import running_shop
from tests.crawl_harness import listed_ids

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def run_crawl_job(site: str, shop_url: str, crawl_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """crawl_job for `site`, its crawler resource pointed at the replay shop."""
    run_config = {"resources": {"crawler": {"config": {"replay_url": shop_url}}}}
    if crawl_config:
        run_config["ops"] = {"raw_products": {"config": crawl_config}}
    return defs.resolve_job_def("crawl_job").execute_in_process(
        partition_key=site, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, run_config=run_config)


def test_crawl_asset_publishes_every_listed_product(data_dir):
    catalog = Catalog(seed=3, products_per_site=30)
    with running_shop(catalog, faults=Faults.default_on()) as shop:
        result = run_crawl_job("sendo", shop.url)
    assert result.success
    expected = listed_ids(catalog, "sendo")

    (materialization,) = result.asset_materializations_for_node("raw_products")
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == len(expected)
    assert metadata["requests_retried"].value > 0
    assert "| title | brand | price | images |" in metadata["preview"].value

    paths = data_paths()
    table = pq.read_table(paths.raw_products_parquet("sendo"))
    assert set(table.column("product_id").to_pylist()) == expected
    assert not paths.crawl_jobdir("sendo").exists(), "a finished crawl leaves no job dir behind"
    assert all(check.passed for check in result.get_asset_check_evaluations())
    assert len(result.get_asset_check_evaluations()) == 5  # four checks and the failed-page ratio


def test_blocked_crawl_fails_the_asset_with_a_clear_message(data_dir):
    catalog = Catalog(seed=3, products_per_site=10)
    with running_shop(catalog, faults=Faults(block=1.0, max_per_url=10**9)) as shop:
        result = run_crawl_job("shopee", shop.url, {"settings": {"RETRY_TIMES": "1"}})
    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    assert "blocked the crawler throughout" in failure.event_specific_data.error.message
    assert not data_paths().raw_products_parquet("shopee").exists()
