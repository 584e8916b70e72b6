"""Incremental recrawls: an image stored before is not downloaded again, an unchanged
product's page is not read again, and an unchanged shop's recrawl leaves raw_products
as it was."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import scrapy
from PIL import Image
from scrapy.utils.test import get_crawler

from clipshoe_pipeline.defs.crawl.assets import publish_crawl, write_known_products
from replay_shop.catalog import Catalog
from replay_shop.server import running_shop
from scrapers.interface import (DETAILS_SKIPPED_STAT, DETAILS_STALE_STAT, IMAGES_REUSED_STAT, read_crawl_output,
                                update_listing_state)
from scrapers.items import ProductItem
from scrapers.journal import LISTINGS, KnownProducts, listing_fingerprint
from scrapers.middlewares import PRODUCT_ID_META, DetailPageCachePolicy
from scrapers.pipelines import ContentAddressedImagesPipeline, JournalPipeline
from scrapers.spiders.tiki import TikiSpider
from tests.builders import item_row, write_journal
from tests.crawl_harness import crawl
from tests.spider_harness import make_spider

URL = "https://salt.tikicdn.com/a.jpg"
OK_STATS = {"clipshoe/verdict": "ok", "clipshoe/items": 2, "finish_reason": "finished", "elapsed_time_seconds": 1.0}


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (200, 160), (20, 90, 200)).save(buf, "JPEG")
    return buf.getvalue()


# -- images: the URL -> content record ---------------------------------------------------
@pytest.fixture
def images(tmp_path):
    def pipeline(**settings):
        crawler = get_crawler(settings_dict={"CLIPSHOE_IMAGES_STORE": str(tmp_path / "images"),
                                             "CLIPSHOE_IMAGE_INDEX": str(tmp_path / "images" / "index.sqlite"),
                                             **settings})
        crawler.stats.open_spider()
        return ContentAddressedImagesPipeline.from_crawler(crawler)
    return pipeline


def test_a_stored_image_is_reused_from_the_index_without_a_request(images):
    stored = images().store_image(URL, jpeg())
    again = images()  # the next crawl
    assert again.media_to_download(scrapy.Request(URL), None) == stored
    assert again.stats.get_value(IMAGES_REUSED_STAT) == 1
    assert again.media_to_download(scrapy.Request("https://salt.tikicdn.com/other.jpg"), None) is None


def test_an_index_entry_past_the_maximum_age_or_without_its_file_is_downloaded_again(images, tmp_path):
    pipeline = images(CLIPSHOE_IMAGE_MAX_AGE_DAYS=30)
    stored = pipeline.store_image(URL, jpeg())
    old = (datetime.now(timezone.utc) - timedelta(days=31)).isoformat(timespec="seconds")
    pipeline.index.record(stored, fetched_at=old)
    assert images(CLIPSHOE_IMAGE_MAX_AGE_DAYS=30).media_to_download(scrapy.Request(URL), None) is None
    assert images(CLIPSHOE_IMAGE_MAX_AGE_DAYS=40).media_to_download(scrapy.Request(URL), None) == stored
    (tmp_path / "images" / stored["path"]).unlink()
    assert images(CLIPSHOE_IMAGE_MAX_AGE_DAYS=40).media_to_download(scrapy.Request(URL), None) is None


def test_an_item_that_comes_with_its_images_gets_the_stored_ones_back_and_retries_the_failed(images):
    pipeline = images()
    stored = pipeline.store_image(URL, jpeg())
    gone = "https://salt.tikicdn.com/gone.jpg"
    failed = {**dict.fromkeys(stored), "url": gone, "status": "failed", "reason": "timeout"}
    item = ProductItem(**item_row("1", image_urls=[URL, gone], images=[stored, failed]))
    first, second = pipeline.get_media_requests(item, None)
    assert (first.url, second.url) == (URL, gone)
    assert pipeline.media_to_download(first, None) == stored  # answered by the index: no request
    assert pipeline.media_to_download(second, None) is None  # downloaded again


# -- product pages: read again only when they can have changed -------------------------
def listing(**changes) -> ProductItem:
    return ProductItem(**{"site": "tiki", "product_id": "1", "url": "https://tiki.vn/p1.html", "title": "Giày 1",
                          "price": 350000.0, "image_urls": [URL], **changes})


def known_spider(tmp_path, read_days_ago: float, max_age_days: float = 7) -> TikiSpider:
    read_at = (datetime.now(timezone.utc) - timedelta(days=read_days_ago)).isoformat(timespec="seconds")
    path = tmp_path / "known.jsonl"
    path.write_text(json.dumps({"product_id": "1", "listing_fingerprint": listing_fingerprint(listing()),
                                "detail_read_at": read_at, "row": item_row("1", crawled_at=read_at)}) + "\n")
    return make_spider(TikiSpider, {"CLIPSHOE_KNOWN_PRODUCTS": str(path),
                                    "CLIPSHOE_DETAIL_MAX_AGE_DAYS": max_age_days})


def test_an_unchanged_listing_entry_yields_the_known_row_and_no_request(tmp_path):
    spider = known_spider(tmp_path, read_days_ago=2)
    item = spider.product_request("https://tiki.vn/api/v2/products/1", listing())
    assert isinstance(item, ProductItem)
    assert {**dataclasses.asdict(item), "crawled_at": None} == {**item_row("1"), "crawled_at": None}
    assert spider.crawler.stats.get_value(DETAILS_SKIPPED_STAT) == 1


@pytest.mark.parametrize("changed", [{"price": 300000.0}, {"title": "Giày 1 (mới)"}, {"image_urls": [URL, URL + "?2"]}])
def test_a_changed_listing_entry_requests_the_page(tmp_path, changed):
    spider = known_spider(tmp_path, read_days_ago=2)
    request = spider.product_request("https://tiki.vn/api/v2/products/1", listing(**changed))
    assert isinstance(request, scrapy.Request) and request.meta[PRODUCT_ID_META] == "1"
    assert not spider.crawler.stats.get_value(DETAILS_SKIPPED_STAT)


def test_an_unchanged_product_read_longer_ago_than_the_maximum_age_is_read_again(tmp_path):
    spider = known_spider(tmp_path, read_days_ago=8, max_age_days=7)
    assert isinstance(spider.product_request("https://tiki.vn/api/v2/products/1", listing()), scrapy.Request)
    assert spider.crawler.stats.get_value(DETAILS_STALE_STAT) == 1


def test_without_known_products_every_page_is_read(tmp_path):
    spider = make_spider(TikiSpider)
    assert isinstance(spider.product_request("https://tiki.vn/api/v2/products/1", listing()), scrapy.Request)


def test_the_listing_state_keeps_the_last_full_read_and_none_for_a_listing_only_item(tmp_path):
    spider = known_spider(tmp_path, read_days_ago=2)
    known = KnownProducts.of(spider.crawler)
    reused = spider.product_request("https://tiki.vn/api/v2/products/1", listing())
    assert known.listing_state(reused)["detail_read_at"] == known.known["1"]["detail_read_at"]
    spider.product_request("https://tiki.vn/api/v2/products/2", listing(product_id="2"))
    read = ProductItem(**item_row("2"))
    assert known.listing_state(read)["detail_read_at"] == read.crawled_at
    assert known.listing_state(dataclasses.replace(read, detail_unavailable="http_404")) is None


def test_the_journal_records_each_collected_products_listing_state(tmp_path):
    crawler = get_crawler(TikiSpider, {"JOBDIR": str(tmp_path / "job")})
    crawler.stats.open_spider()
    KnownProducts.of(crawler).unchanged(listing())
    pipeline = JournalPipeline.from_crawler(crawler)
    pipeline.open_spider()
    pipeline.process_item(ProductItem(**item_row("1")))
    crawler._clipshoe_journal.close()
    [state] = [json.loads(line) for line in (tmp_path / "job" / LISTINGS).read_text().splitlines()]
    assert state["listing_fingerprint"] == listing_fingerprint(listing())


def test_only_product_pages_are_cached_for_conditional_requests():
    policy = DetailPageCachePolicy(get_crawler().settings)
    assert policy.should_cache_request(scrapy.Request("https://tiki.vn/api/v2/products/1",
                                                      meta={PRODUCT_ID_META: "1"}))
    assert not policy.should_cache_request(scrapy.Request("https://tiki.vn/api/v2/products?page=1"))


# -- the asset: an unchanged recrawl publishes the same raw_products ----------------------
def test_republishing_the_known_rows_leaves_raw_products_byte_identical(paths, catalog):
    site, job = "tiki", paths.crawl_jobdir("tiki")
    first = [item_row("1", crawled_at="2025-01-01T00:00:00+00:00"),
             item_row("2", crawled_at="2025-01-01T00:00:01+00:00", attributes={})]
    write_journal(job, first, [], OK_STATS)
    (job / LISTINGS).write_text("".join(json.dumps({"product_id": row["product_id"], "listing_fingerprint": "f",
                                                    "detail_read_at": row["crawled_at"]}) + "\n" for row in first))
    publish_crawl(site, read_crawl_output(job), catalog, "run-1")
    before = paths.raw_products_parquet(site).read_bytes()

    known = KnownProducts.from_settings(get_crawler(settings_dict={
        "CLIPSHOE_KNOWN_PRODUCTS": str(write_known_products(site, paths))}).settings)
    assert set(known.known) == {"1", "2"}
    again = [dataclasses.asdict(known.item(entry)) for entry in known.known.values()]
    write_journal(job, again, [], OK_STATS)
    publish_crawl(site, read_crawl_output(job), catalog, "run-2")
    assert paths.raw_products_parquet(site).read_bytes() == before


def test_a_product_kept_from_its_listing_loses_its_listing_state(tmp_path):
    state = tmp_path / "listings.jsonl"
    state.write_text("".join(json.dumps({"product_id": pid, "listing_fingerprint": "f", "detail_read_at": "x"}) + "\n"
                             for pid in ("1", "2", "3")))
    job = tmp_path / "job"
    write_journal(job, [], [], OK_STATS)
    (job / LISTINGS).write_text(json.dumps({"product_id": "1", "listing_fingerprint": "g",
                                            "detail_read_at": "y"}) + "\n")
    update_listing_state(state, read_crawl_output(job), ["1", "2"])  # "2": collected from its listing alone
    entries = {e["product_id"]: e["listing_fingerprint"] for e in map(json.loads, state.read_text().splitlines())}
    assert entries == {"1": "g", "3": "f"}


# -- end to end: the second crawl of an unchanged shop fetches no page twice -------------
@pytest.mark.slow
def test_recrawling_an_unchanged_shop_requests_no_product_page_and_no_image(paths, catalog, tmp_path):
    site = "sendo"  # its product pages have a host of their own: the shop counts them apart
    shop_catalog = Catalog(seed=5, products_per_site=20)
    # One image store and index for both crawls, as the pipeline has.
    settings = {"CLIPSHOE_IMAGES_STORE": paths.images, "CLIPSHOE_IMAGE_INDEX": paths.image_index,
                "HTTPCACHE_ENABLED": True, "HTTPCACHE_DIR": paths.http_cache}
    runs = []
    for attempt in ("first", "second"):
        workdir = tmp_path / attempt
        workdir.mkdir()
        with running_shop(shop_catalog) as shop:
            result = crawl(site, shop.url, workdir, CLIPSHOE_KNOWN_PRODUCTS=write_known_products(site, paths),
                           **settings)
            served = json.loads(json.dumps(shop.stats))
        assert result.returncode == 0, result.log[-3000:]
        publish_crawl(site, read_crawl_output(workdir / "job"), catalog, f"run-{attempt}")
        runs.append((result, served, paths.raw_products_parquet(site).read_bytes()))

    (first, first_served, first_parquet), (second, second_served, second_parquet) = runs
    assert first_served["images"] > 0 and first_served["requests_by_host"].get("detail-api.sendo.vn")
    failed_images = sum(image["status"] != "ok" for item in first.items for image in item["images"])
    assert second_served["images"] == failed_images  # only the ones that failed are tried again
    assert "detail-api.sendo.vn" not in second_served["requests_by_host"]
    assert second.stats[DETAILS_SKIPPED_STAT] == len(first.items)
    drop = ("crawled_at",)
    assert sorted(({k: v for k, v in i.items() if k not in drop} for i in second.items), key=str) == sorted(
        ({k: v for k, v in i.items() if k not in drop} for i in first.items), key=str)
    assert second_parquet == first_parquet
