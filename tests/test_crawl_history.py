"""Recrawls keep history: each crawl's observations, raw_products as the latest state
per product, and product_history with one row per product per distinct state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq

from clipshoe_pipeline.defs.crawl.assets import publish_crawl
from scrapers.interface import read_crawl_output
from tests.builders import item_row, write_journal

STATS = {"clipshoe/verdict": "ok", "clipshoe/items": 1, "finish_reason": "finished"}
MONDAY = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)


def crawl(paths, catalog, week: int, products: dict[str, dict]) -> None:
    """Publish a crawl of tiki in `week` that saw `products` (id -> changed fields)."""
    at = (MONDAY + timedelta(weeks=week)).isoformat(timespec="seconds")
    rows = [item_row(pid, crawled_at=at, **changes) for pid, changes in products.items()]
    job = paths.crawl_jobdir("tiki")
    write_journal(job, rows, [], STATS)
    publish_crawl("tiki", read_crawl_output(job), catalog, f"run-{week}")


def history(catalog) -> list[dict]:
    return catalog.query("SELECT product_id, price, valid_from, valid_to, first_seen, last_seen, disappeared "
                         "FROM product_history ORDER BY product_id, valid_from")


def week(n: int) -> datetime:
    return MONDAY + timedelta(weeks=n)


def test_an_unchanged_recrawl_adds_no_history_row_and_leaves_raw_products_identical(paths, catalog):
    crawl(paths, catalog, 0, {"1": {}, "2": {}})
    before = pq.read_table(paths.raw_products_parquet("tiki"))
    crawl(paths, catalog, 1, {"1": {}, "2": {}})
    assert pq.read_table(paths.raw_products_parquet("tiki")).equals(before)
    assert [(row["product_id"], row["valid_from"], row["valid_to"]) for row in history(catalog)] == [
        ("1", week(0), None), ("2", week(0), None)]
    assert {row["last_seen"] for row in history(catalog)} == {week(1)}
    (counts,) = catalog.query("SELECT count(*) AS n, count(DISTINCT crawl_started_at) AS crawls FROM product_observations")
    assert counts == {"n": 4, "crawls": 2}


def test_price_changes_new_and_vanished_products_and_returns_are_states(paths, catalog):
    crawl(paths, catalog, 0, {"1": {}, "2": {}})
    crawl(paths, catalog, 1, {"1": {"price": 299000.0}, "3": {}})  # 1 repriced, 2 gone, 3 new
    crawl(paths, catalog, 2, {"1": {"price": 299000.0}, "2": {}, "3": {"image_urls": ["https://salt.tikicdn.com/b.jpg"]}})
    rows = history(catalog)
    assert [(r["product_id"], r["price"], r["valid_from"], r["valid_to"]) for r in rows] == [
        ("1", 350000.0, week(0), week(1)), ("1", 299000.0, week(1), None),
        ("2", 350000.0, week(0), week(1)), ("2", 350000.0, week(2), None),  # back after missing a crawl
        ("3", 350000.0, week(1), week(2)), ("3", 350000.0, week(2), None)]  # a new image list
    assert {r["product_id"]: r["first_seen"] for r in rows} == {"1": week(0), "2": week(0), "3": week(1)}
    assert not any(r["disappeared"] for r in rows)


def test_a_vanished_product_keeps_its_last_state_in_raw_products_and_is_marked_in_history(paths, catalog):
    crawl(paths, catalog, 0, {"1": {}, "2": {"title": "Giày cũ"}})
    crawl(paths, catalog, 1, {"1": {"price": 1.0}})
    latest = {row["product_id"]: row for row in catalog.query("SELECT product_id, title, price FROM raw_products")}
    assert latest == {"1": {"product_id": "1", "title": "Giày 1", "price": 1.0},
                      "2": {"product_id": "2", "title": "Giày cũ", "price": 350000.0}}
    gone = [r for r in history(catalog) if r["product_id"] == "2"]
    assert gone == [{"product_id": "2", "price": 350000.0, "valid_from": week(0), "valid_to": week(1),
                     "first_seen": week(0), "last_seen": week(0), "disappeared": True}]


def test_publishing_the_same_crawl_again_replaces_its_observations(paths, catalog):
    crawl(paths, catalog, 0, {"1": {}})
    crawl(paths, catalog, 0, {"1": {}, "2": {}})  # a resumed crawl, published again: same first item time
    assert len(list((paths.parquet / "product_observations").rglob("*.parquet"))) == 1
    assert catalog.query("SELECT count(*) AS n FROM product_observations") == [{"n": 2}]


def test_a_product_read_from_its_listing_only_keeps_what_its_page_said_before(paths, catalog):
    crawl(paths, catalog, 0, {"1": {"description": "Da thật, đế cao su"}})
    crawl(paths, catalog, 1, {"1": {"description": "", "attributes": {}, "price": 1.0,
                                    "detail_unavailable": "http_404"}})
    (row,) = catalog.query("SELECT description, attributes, price, detail_unavailable FROM raw_products")
    assert (row["description"], row["price"], row["detail_unavailable"]) == ("Da thật, đế cao su", 1.0, "http_404")
    assert row["attributes"] == {"colour": "đen"}


def test_a_page_that_failed_once_changes_no_state_but_its_price(paths, catalog):
    crawl(paths, catalog, 0, {"1": {"image_urls": ["https://salt.tikicdn.com/a.jpg", "https://salt.tikicdn.com/b.jpg"]}})
    crawl(paths, catalog, 1, {"1": {"title": "Giày 1 (listing)", "detail_unavailable": "blocked_http_403"}})
    crawl(paths, catalog, 2, {"1": {"title": "Giày 1 (listing)", "price": 1.0, "detail_unavailable": "http_404"}})
    assert [(r["price"], r["valid_from"], r["valid_to"]) for r in history(catalog)] == [
        (350000.0, week(0), week(2)), (1.0, week(2), None)]
    (row,) = catalog.query("SELECT title, len(image_urls) AS images, detail_unavailable FROM raw_products")
    assert row == {"title": "Giày 1", "images": 2, "detail_unavailable": "http_404"}
