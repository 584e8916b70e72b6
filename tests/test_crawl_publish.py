"""raw_products turns a crawl's output into Parquet, catalog views, metadata and the
failed-page check (hand-written journals: no subprocess, no shop)."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow.parquet as pq
import pytest

from clipshoe_common import PROJECT_ROOT
from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.crawl.assets import CrawlConfig, failed_pages_check, publish_crawl, raw_products
from clipshoe_pipeline.defs.crawl.checks import (
    raw_products_have_real_urls,
    raw_products_images_accounted_for,
    raw_products_unique_per_site,
)
from clipshoe_pipeline.defs.crawl.resources import ScrapyCrawler
from clipshoe_pipeline.paths import DataPaths
from scrapers.interface import STATS_FILE, read_crawl_output
from scrapers.journal import ITEMS
from tests.builders import item_row, write_journal

OK_STATS = {"clipshoe/verdict": "ok", "clipshoe/items": 3, "downloader/request_count": 40, "retry/count": 4,
            "clipshoe/blocked/count": 1, "retry/max_reached": 1, "clipshoe/pages": 30,
            "clipshoe/failed_pages/malformed_json": 1,
            "finish_reason": "finished", "elapsed_time_seconds": 8.0}


def failed_image(url: str, reason: str) -> dict:
    return {"url": url, "status": "failed", "path": None, "sha256": None, "bytes": None,
            "width": None, "height": None, "format": None, "reason": reason}


def journal_items() -> list[dict]:
    imageless = item_row("3", image_urls=["https://salt.tikicdn.com/z.jpg"],
                         images=[failed_image("https://salt.tikicdn.com/z.jpg", "too_small")])
    return [item_row("1"), item_row("2", brand=None, price=None), item_row("1", title="a repeat"), imageless]


def journal_rejections() -> list[dict]:
    return [{"site": "tiki", "product_id": "3", "url": "https://tiki.vn/p3.html",
             "image_url": "https://salt.tikicdn.com/z.jpg", "stage": "download", "reason": "too_small"},
            {"site": "tiki", "product_id": None, "url": "https://tiki.vn/api/v2/products?page=2",
             "image_url": None, "stage": "crawl", "reason": "malformed_json"}]


# -- publish_crawl: a crawl's output -> Parquet + catalog views + metadata ----------------
def test_publish_writes_deduplicated_parquet_its_rejections_views_and_metadata(paths, catalog):
    job, parquet = paths.crawl_jobdir("tiki"), paths.raw_products_parquet("tiki")
    write_journal(job, journal_items(), journal_rejections(), OK_STATS)

    metadata = publish_crawl("tiki", read_crawl_output(job), catalog, "run-1").metadata

    assert [r["product_id"] for r in pq.read_table(parquet).to_pylist()] == ["1", "2", "3"]
    assert catalog.query("SELECT count(*) AS n FROM raw_products")[0]["n"] == 3
    assert catalog.query("SELECT count(*) AS n FROM rejections WHERE run_id = 'run-1'")[0]["n"] == 2
    assert pq.read_table(paths.rejections_parquet("tiki", "crawl")).num_rows == 2
    assert metadata["pages"] == 30 and metadata["pages_failed_by_reason"].data == {"malformed_json": 1}
    assert metadata["dagster/row_count"] == 3 and metadata["items"] == 3 and metadata["duplicates_dropped"] == 1
    assert (metadata["images_ok"], metadata["images_failed"]) == (2, 1)
    assert metadata["images_failed_by_reason"].data == {"too_small": 1}
    assert (metadata["requests_retried"], metadata["requests_blocked"], metadata["requests_failed"]) == (4, 1, 1)
    assert metadata["requests_per_s"] == 5.0 and metadata["finish_reason"] == "finished"
    assert "| Giày 1 | Biti's | 350,000 VND | 1/1 |" in metadata["preview"].md_str
    assert [c.name for c in metadata["dagster/column_schema"].columns][:2] == ["site", "product_id"]
    assert metadata["parquet_path"].path == str(parquet)


@pytest.mark.parametrize(("stats", "message"), [
    ({"clipshoe/verdict": "blocked", "clipshoe/blocked/count": 12, "clipshoe/blocked/shopee_90309999": 12},
     "blocked the crawler throughout: 12 block pages"),
    ({"clipshoe/verdict": "empty", "finish_reason": "finished"}, "collected no items"),
    (None, "did not finish"),
])
def test_a_crawl_that_collected_nothing_fails_and_publishes_nothing(paths, catalog, stats, message):
    job, parquet = paths.crawl_jobdir("tiki"), paths.raw_products_parquet("tiki")
    write_journal(job, [], [], stats)
    with pytest.raises(dg.Failure, match=message):
        publish_crawl("tiki", read_crawl_output(job), catalog, "run-1")
    assert not parquet.exists() and not paths.catalog_db.exists()


def test_products_of_another_site_are_refused_before_anything_is_written(paths, catalog):
    job = paths.crawl_jobdir("tiki")
    write_journal(job, [item_row("1"), item_row("s1", site="sendo")], [], OK_STATS)
    with pytest.raises(dg.Failure, match="other sites: \\['sendo'\\]"):
        publish_crawl("tiki", read_crawl_output(job), catalog, "run-1")
    assert not paths.raw_products_parquet("tiki").exists() and not paths.catalog_db.exists()


def test_a_second_crawl_updates_the_sites_latest_state_replaces_its_rejections_and_leaves_other_sites_alone(
        paths, catalog):
    for site, ids in (("tiki", ["1", "2"]), ("sendo", ["s1"]), ("tiki", ["2", "3"])):
        job = paths.crawl_jobdir(site)
        rejected = [{**journal_rejections()[0], "site": site, "product_id": ids[0]}]
        write_journal(job, [item_row(i, site=site) for i in ids], rejected, OK_STATS)
        publish_crawl(site, read_crawl_output(job), catalog, f"run-{site}-{ids[0]}")
    rows = catalog.query("SELECT site, list(product_id ORDER BY product_id) AS ids FROM raw_products GROUP BY site "
                         "ORDER BY site")
    # "1" vanished from the second tiki crawl: kept at its last state (product_history marks it)
    assert [(r["site"], r["ids"]) for r in rows] == [("sendo", ["s1"]), ("tiki", ["1", "2", "3"])]
    rejections = catalog.query("SELECT site, product_id, run_id FROM rejections ORDER BY site")
    assert [(r["site"], r["product_id"], r["run_id"]) for r in rejections] == [
        ("sendo", "s1", "run-sendo-s1"), ("tiki", "2", "run-tiki-2")]


# -- the failed-page check ------------------------------------------------------------

@pytest.mark.parametrize(("failed", "passed", "severity"), [
    ({}, True, dg.AssetCheckSeverity.WARN),
    ({"clipshoe/failed_pages/http_404": 1, "clipshoe/failed_pages/timeout": 2}, True, dg.AssetCheckSeverity.WARN),
    ({"clipshoe/failed_pages/parser_error": 10}, False, dg.AssetCheckSeverity.WARN),
    ({"clipshoe/failed_pages/parser_error": 40, "clipshoe/failed_pages/http_404": 1}, False,
     dg.AssetCheckSeverity.ERROR),
])
def test_the_failed_page_check_warns_then_fails_as_one_reasons_share_grows(tmp_path, failed, passed, severity):
    write_journal(tmp_path, [], [], {**OK_STATS, "clipshoe/pages": 100, "clipshoe/failed_pages/malformed_json": 0,
                                     **failed})
    result = failed_pages_check(read_crawl_output(tmp_path), CrawlConfig())
    assert (result.passed, result.severity) == (passed, severity)
    assert result.metadata["pages"].value == 100


# -- the asset and its checks, with the subprocess replaced -------------------------------

class JournalOnlyCrawler(ScrapyCrawler):
    """Stands in for the Scrapy subprocess: the journal is already in the job dir; the
    'crawl' writes the final stats and, with `exit_code`, fails like the process would."""

    stats: dict | None = OK_STATS
    exit_code: int = 0

    def crawl(self, context, site, paths, *, settings, spider_args):
        if self.stats is not None:
            (paths.crawl_jobdir(site) / STATS_FILE).write_text(json.dumps(self.stats))
        if self.exit_code:
            paths.crawl_log(site).write_text("INFO: started\nERROR: Spider error processing <GET https://tiki.vn>\n")
            raise RuntimeError(f"External execution process failed with code {self.exit_code}")


def materialize_tiki(paths: DataPaths, crawler: ScrapyCrawler, monkeypatch) -> dg.ExecuteInProcessResult:
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(paths.root))
    return dg.materialize(
        [raw_products, raw_products_unique_per_site, raw_products_images_accounted_for, raw_products_have_real_urls],
        partition_key="tiki", resources={"crawler": crawler, "catalog": CatalogDB()}, raise_on_error=False)


def test_asset_publishes_passes_its_checks_and_clears_the_job_dir(paths, monkeypatch):
    write_journal(paths.crawl_jobdir("tiki"), journal_items(), journal_rejections(), stats=None)
    result = materialize_tiki(paths, JournalOnlyCrawler(), monkeypatch)
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "raw_products_unique_per_site": True, "raw_products_images_accounted_for": True,
        "raw_products_have_real_urls": True, "raw_products_failed_page_ratio": True}


def test_a_crawl_with_many_failed_pages_fails_its_check_and_blocks_what_follows(paths, monkeypatch):
    write_journal(paths.crawl_jobdir("tiki"), journal_items(), journal_rejections(), stats=None)
    broken = {**OK_STATS, "clipshoe/pages": 40, "clipshoe/failed_pages/parser_error": 30}
    result = materialize_tiki(paths, JournalOnlyCrawler(stats=broken), monkeypatch)
    (evaluation,) = [e for e in result.get_asset_check_evaluations()
                     if e.check_name == "raw_products_failed_page_ratio"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["ratio_by_reason"].data["parser_error"] == 0.75
    assert not result.success  # blocking: curation in the same run would not start
    assert not paths.crawl_jobdir("tiki").exists()
    assert paths.raw_products_parquet("tiki").exists()


def test_a_replay_address_in_the_data_fails_the_blocking_url_check(paths, monkeypatch):
    leaked = item_row("9", image_urls=["http://127.0.0.1:8765/salt.tikicdn.com/a.jpg"])
    write_journal(paths.crawl_jobdir("tiki"), [leaked], [], stats=None)
    result = materialize_tiki(paths, JournalOnlyCrawler(), monkeypatch)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["raw_products_have_real_urls"].passed


class CrashingOnceCrawler(JournalOnlyCrawler):
    """Dies part-way on its first attempt (no final stats), then finishes: a transient failure."""

    def crawl(self, context, site, paths, *, settings, spider_args):
        if not paths.crawl_log(site).exists():
            paths.crawl_log(site).write_text("INFO: started\nERROR: Spider error processing <GET https://tiki.vn>\n")
            raise RuntimeError("External execution process failed with code 1")
        assert (paths.crawl_jobdir(site) / ITEMS).exists()  # the retry resumes the first attempt's journal
        super().crawl(context, site, paths, settings=settings, spider_args=spider_args)


@pytest.mark.slow  # waits out the crawl's retry delay (10 s, jittered)
def test_a_crawl_that_failed_part_way_is_retried_and_resumes_its_kept_job_dir(paths, monkeypatch):
    write_journal(paths.crawl_jobdir("tiki"), journal_items(), [], stats=None)
    result = materialize_tiki(paths, CrashingOnceCrawler(), monkeypatch)
    (retry,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    reported = str(retry.event_specific_data.error)
    assert "Spider error processing" in reported and "re-run resumes" in reported  # the log's tail
    assert result.success and paths.raw_products_parquet("tiki").exists()


def test_a_blocked_crawl_fails_clearly_and_removes_its_job_dir_so_a_retry_starts_fresh(paths, monkeypatch):
    write_journal(paths.crawl_jobdir("tiki"), [], [], stats=None)
    blocked = {"clipshoe/verdict": "blocked", "clipshoe/blocked/count": 30, "downloader/request_count": 31}
    result = materialize_tiki(paths, JournalOnlyCrawler(stats=blocked, exit_code=3), monkeypatch)
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "blocked the crawler throughout: 30 block pages out of 31 requests" in failure.description
    assert not paths.crawl_jobdir("tiki").exists()
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]  # for good


def test_the_crawler_runs_scrapy_from_the_project_root_with_resource_and_run_settings(paths, monkeypatch):
    launched = {}

    def fake_run(client, *, command, context):
        launched.update(command=command, cwd=client.cwd)
        (paths.crawl_jobdir("tiki") / STATS_FILE).write_text(json.dumps(OK_STATS))

    monkeypatch.setattr(dg.PipesSubprocessClient, "run", fake_run)
    write_journal(paths.crawl_jobdir("tiki"), journal_items(), [], stats=None)
    crawler = ScrapyCrawler(replay_url="http://127.0.0.1:9", settings={"DOWNLOAD_DELAY": "2", "RETRY_TIMES": "1"})
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(paths.root))
    config = {"max_items": 5, "categories": ["1686", "1687"], "settings": {"RETRY_TIMES": "0"}}
    resources = {"crawler": crawler, "catalog": CatalogDB()}
    result = dg.materialize([raw_products], partition_key="tiki", resources=resources,
                            run_config={"ops": {"raw_products": {"config": config}}})
    assert result.success
    command = " ".join(launched["command"])
    assert launched["cwd"] == str(PROJECT_ROOT)
    assert f"scrapy crawl tiki -s JOBDIR={paths.crawl_jobdir('tiki')}" in command
    assert "CLIPSHOE_REPLAY_URL=http://127.0.0.1:9" in command and f"LOG_FILE={paths.crawl_log('tiki')}" in command
    assert "DOWNLOAD_DELAY=2" in command and "RETRY_TIMES=0" in command and "RETRY_TIMES=1" not in command
    assert "-a max_items=5" in command and "-a categories=1686,1687" in command and "max_pages" not in command


def test_a_product_whose_images_all_failed_without_a_recorded_reason_is_flagged(paths, monkeypatch):
    imageless = item_row("7", images=[failed_image("https://salt.tikicdn.com/a.jpg", "timeout")])
    write_journal(paths.crawl_jobdir("tiki"), [imageless], [], stats=None)
    result = materialize_tiki(paths, JournalOnlyCrawler(), monkeypatch)
    (evaluation,) = [e for e in result.get_asset_check_evaluations()
                     if e.check_name == "raw_products_images_accounted_for"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["without_a_recorded_reason"].value == 1
    assert result.success  # a warning, not a blocking failure


def test_rejections_are_deduplicated_and_recovered_failures_dropped():
    from clipshoe_pipeline.defs.crawl.assets import current_rejections

    failed_page = {"site": "tiki", "product_id": "1", "url": "https://tiki.vn/api/v2/products/1",
                   "image_url": None, "stage": "crawl", "reason": "http_500"}
    dropped = {"site": "tiki", "product_id": "7", "url": "https://tiki.vn/p7.html",
               "image_url": None, "stage": "crawl", "reason": "missing_title"}
    # Killed and resumed: product 7 was rejected twice; product 1 failed, then was collected.
    rejections, recovered = current_rejections([failed_page, dropped, dict(dropped)], [item_row("1")])
    assert rejections == [dropped] and recovered == 1


def test_an_item_kept_from_its_listing_keeps_its_failed_page_on_record(paths, catalog):
    failed_page = {"site": "tiki", "product_id": "1", "url": "https://tiki.vn/api/v2/products/1", "image_url": None,
                   "stage": "crawl", "reason": "http_404"}
    write_journal(paths.crawl_jobdir("tiki"), [item_row("1", detail_unavailable="http_404")], [failed_page], OK_STATS)
    metadata = publish_crawl("tiki", read_crawl_output(paths.crawl_jobdir("tiki")), catalog, "run-1").metadata
    assert metadata["failures_recovered_on_resume"] == 0 and metadata["items_from_listing"] == 1
    assert catalog.query("SELECT product_id, reason FROM rejections") == [{"product_id": "1", "reason": "http_404"}]
