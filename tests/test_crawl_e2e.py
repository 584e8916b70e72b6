"""Each spider against the replay shop with faults on: every listed product is
collected exactly once, faults show up in the stats, nothing crashes."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import dagster as dg
import pytest

from replay_shop.catalog import Catalog
from replay_shop.records import Faults
from replay_shop.server import running_shop
from clipshoe_pipeline.defs.crawl.assets import CrawlConfig, failed_pages_check
from scrapers.interface import read_crawl_output
from scrapers.items import SITES
from tests.crawl_harness import crawl, crawl_popen, listed_ids

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def catalog():
    return Catalog(seed=11, products_per_site=40)


@pytest.mark.parametrize("site", SITES)
def test_crawl_collects_every_listed_product_once_despite_faults(site, catalog, tmp_path):
    with running_shop(catalog, faults=Faults.default_on()) as shop:  # one shop per crawl: its fault counts
        result = crawl(site, shop.url, tmp_path)
        served = dict(shop.stats["faults"])
    assert result.returncode == 0, result.log[-3000:]

    ids = [item["product_id"] for item in result.items]
    assert Counter(ids).most_common(1)[0][1] == 1, "a product was collected twice"
    assert set(ids) == listed_ids(catalog, site)

    for item in result.items:
        assert "127.0.0.1" not in item["url"] and item["url"].startswith("https://")
        assert all(u.startswith("https://") and "127.0.0.1" not in u for u in item["image_urls"])
        assert "<script" not in item["description"] and "<" not in item["title"]
        assert len(item["images"]) == len(item["image_urls"])

    assert_bad_images_rejected_with_reasons(catalog, site, result.rejections)

    stats = result.stats
    assert stats["clipshoe/verdict"] == "ok"
    assert stats.get("clipshoe/images/ok", 0) > 0
    assert_faults_reported(served, stats)


def assert_faults_reported(served: dict, stats: dict) -> None:
    """Every fault the shop served shows up in the crawl's stats, each costing one retry
    (the shop never faults a URL more often than the crawler retries)."""
    assert served.get("http_429", 0) + served.get("http_500", 0) + served.get("block", 0) > 0
    assert stats.get("retry/reason_count/http_429", 0) == served.get("http_429", 0)
    assert stats.get("retry/reason_count/http_500", 0) == served.get("http_500", 0)
    assert stats.get("clipshoe/blocked/count", 0) == served.get("block", 0)
    assert stats.get("clipshoe/malformed/json", 0) == served.get("malformed_json", 0)
    truncated = sum(v for k, v in stats.items() if k.startswith("retry/reason_count/") and "DataLoss" in k
                    or k.startswith("retry/reason_count/") and "DownloadFailed" in k)
    assert truncated == served.get("truncated_image", 0)
    retryable = sum(v for k, v in served.items() if k != "slow")
    assert stats.get("retry/count", 0) == retryable
    assert not stats.get("retry/max_reached")


PLANTED_DEFECT_REASONS = {"zero_byte": "empty", "not_image": "not_an_image", "huge": "too_large",
                          "tiny": "too_small", "corrupt": "corrupt"}  # blank images are curation's job


def assert_bad_images_rejected_with_reasons(catalog, site, rejections):
    """Planted bad images get their reason; no good image is lost to a transient fault."""
    listed = listed_ids(catalog, site)
    defects = {image.url: image.defect for p in catalog.products(site) if p.product_id in listed
               for image in p.images}
    reasons = {r["image_url"]: r["reason"] for r in rejections if r["stage"] == "download"}
    for url, defect in defects.items():
        if defect in PLANTED_DEFECT_REASONS:
            assert reasons.get(url) == PLANTED_DEFECT_REASONS[defect], (url, defect)
    good_lost = {url: reason for url, reason in reasons.items() if defects.get(url) is None}
    assert not good_lost, f"good images rejected: {list(good_lost.items())[:3]}"


def test_products_whose_pages_are_lost_for_good_are_collected_from_their_listing(catalog, tmp_path):
    """Zalora answering some product pages with a 404 and some with PerimeterX's 403 on
    every attempt: every listed product is still collected, those from their listing
    entry alone with their reason, and the crawl counts what the shop served."""
    site, retries = "zalora", 2
    with running_shop(catalog, faults=Faults(detail_http_404=0.15, detail_block=0.15)) as shop:
        result = crawl(site, shop.url, tmp_path, RETRY_TIMES=retries)
        served = dict(shop.stats["faults"])
        lost = {product_id: shop.lost_detail(site, product_id) for product_id in listed_ids(catalog, site)}
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["clipshoe/verdict"] == "ok"

    reasons = {None: None, "detail_http_404": "http_404", "detail_block": "blocked_http_403"}
    expected = {product_id: reasons[kind] for product_id, kind in lost.items()}
    ids = [item["product_id"] for item in result.items]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected)
    assert {item["product_id"]: item["detail_unavailable"] for item in result.items} == expected
    for item in result.items:
        assert item["title"] and item["image_urls"] and len(item["images"]) == len(item["image_urls"])
        if item["detail_unavailable"]:  # the listing has neither
            assert item["description"] == "" and item["attributes"] == {}

    gone, blocked = (sum(kind == fault for kind in lost.values()) for fault in ("detail_http_404", "detail_block"))
    assert gone and blocked
    stats = result.stats
    assert stats["clipshoe/detail_unavailable/http_404"] == stats["clipshoe/failed_pages/http_404"] == gone
    assert stats["clipshoe/detail_unavailable/blocked_http_403"] == blocked
    assert stats["clipshoe/failed_pages/blocked_http_403"] == stats["clipshoe/blocked/gave_up"] == blocked
    assert served["detail_http_404"] == gone  # a 404 is not retried
    assert served["detail_block"] == stats["clipshoe/blocked/count"] == blocked * (1 + retries)
    failed = {(r["product_id"], r["reason"]) for r in result.rejections if r["stage"] == "crawl"}
    assert failed == {(product_id, reason) for product_id, reason in expected.items() if reason}
    # Still failed pages, for the failed-page check as for any other.
    ratios = failed_pages_check(read_crawl_output(tmp_path / "job"), CrawlConfig()).metadata["ratio_by_reason"].data
    assert ratios["http_404"] == round(gone / stats["clipshoe/pages"], 4)


def test_blocked_throughout_fails_loudly(catalog, tmp_path):
    blocked_forever = Faults(block=1.0, max_per_url=10**9)
    with running_shop(catalog, faults=blocked_forever) as shop:
        result = crawl("shopee", shop.url, tmp_path, RETRY_TIMES=1)
    assert result.returncode != 0
    assert result.stats["clipshoe/verdict"] == "blocked"
    assert result.stats["clipshoe/blocked/count"] > 0
    failed = sum(v for k, v in result.stats.items() if k.startswith("clipshoe/failed_pages/"))
    assert failed and result.stats["clipshoe/pages"] == failed  # every page failed, and each counts as a page
    assert "blocked" in result.log and not result.items


def test_a_planted_parser_regression_turns_the_failed_page_check_red(catalog, tmp_path):
    with running_shop(catalog, faults=Faults.none()) as shop:
        result = crawl("tiki", shop.url, tmp_path, SPIDER_MODULES="tests.planted_regression")
    broken = {p for p in listed_ids(catalog, "tiki") if int(p) % 2}
    assert broken and result.items  # the rest still parses: the verdict alone would say ok
    assert result.stats["clipshoe/verdict"] == "ok"
    assert result.stats["clipshoe/failed_pages/parser_error"] == len(broken)
    assert result.stats["clipshoe/parser_errors/parse_product/KeyError"] == len(broken)
    assert "Spider error processing" in result.log and "no_such_field" in result.log  # with its traceback
    assert {r["product_id"] for r in result.rejections if r["reason"] == "parser_error"} == broken
    check = failed_pages_check(read_crawl_output(tmp_path / "job"), CrawlConfig())
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["ratio_by_reason"].data["parser_error"] > CrawlConfig().failed_pages_error_ratio


def test_a_second_crawl_of_the_same_jobdir_is_refused(catalog, tmp_path):
    # Every answer 1 s late: the first crawl must still hold the job while the second starts.
    with running_shop(catalog, faults=Faults(slow=1.0, slow_seconds=1.0)) as shop:
        first = crawl_popen("tiki", shop.url, tmp_path)
        try:
            deadline = time.monotonic() + 30
            while not (tmp_path / "job" / "crawl.running").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            second = crawl("tiki", shop.url, tmp_path, timeout=60)
        finally:
            first.kill()
            first.wait()
    assert second.returncode != 0
    assert "another crawl is running" in second.log


def test_sigkill_then_restart_finishes_without_duplicates_or_gaps(tmp_path):
    catalog = Catalog(seed=5, products_per_site=160)
    site = "tiki"
    with running_shop(catalog, faults=Faults(slow=0.5, slow_seconds=0.05)) as shop:
        process = crawl_popen(site, shop.url, tmp_path, CONCURRENT_REQUESTS_PER_DOMAIN=4)
        journal = tmp_path / "job" / "items.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count("\n") < 20):
            time.sleep(0.05)
        assert process.poll() is None, "crawl finished before it could be killed: make it slower"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        killed_at = journal.read_text().count("\n")

        result = crawl(site, shop.url, tmp_path)

    assert result.returncode == 0, result.log[-3000:]
    assert "stopped uncleanly" in result.log
    ids = [item["product_id"] for item in result.items]
    assert len(ids) == len(set(ids)), "duplicates after resume"
    assert set(ids) == listed_ids(catalog, site), "products missing after resume"
    assert result.stats["clipshoe/resumed_items"] == killed_at
    assert result.stats.get("clipshoe/skipped/already_collected", 0) >= killed_at
