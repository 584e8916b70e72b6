"""What every shop spider must do, written once and run for each of the five shops
(their rows are in tests/spider_cases.py): the listing request it sends, what it
makes of a listing page (product requests, bad entries, the next page, the item and
page caps, resuming) and of a product page (a full item), how it takes empty,
malformed and blocked answers, what it keeps of a product whose page fails for good
(the item its listing entry makes), and a round trip through the site's replay renderer:
what the shop renders must come back out of the spider unchanged, for hand-made
records and for the replay catalog. Each shop's own parsing (fallbacks, edge cases,
the real recorded bodies, when present) is tested in tests/test_spider_<site>.py."""

from __future__ import annotations

import dataclasses
import json

import pytest
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from scrapers.blocks import detect_block
from scrapers.interface import read_crawl_output
from scrapers.items import ProductItem, validate
from scrapers.middlewares import PRODUCT_ID_META, BlockedRequest, MalformedResponse, MalformedResponseMiddleware
from tests import spider_harness as harness
from tests.spider_cases import CASES
from tests.spider_harness import (HTML, JSON, FakeCatalog, Storage, projected, response_for, results_of, run_callback,
                                  shop_reply, split)

per_site = pytest.mark.parametrize("case", CASES, ids=[case.site for case in CASES])


def per_body(bodies: str):
    """Each site's `bodies` (a tuple field of its case), one test each."""
    params = [pytest.param(case, body, id=f"{case.site}-{k}")
              for case in CASES for k, body in enumerate(getattr(case, bodies))]
    return pytest.mark.parametrize(("case", "body"), params)


# -- listing ----------------------------------------------------------------------
@per_site
def test_listing_request_is_the_real_url_with_its_headers(case):
    expected = case.listing
    request = case.make_spider().listing_request(expected.category, expected.page)
    assert request.url == expected.url
    assert {name: request.headers.get(name) for name in expected.headers} == expected.headers
    assert request.cb_kwargs == {"category": expected.category, "page": expected.page}


@per_site
def test_listing_page_asks_for_its_products_skips_bad_entries_and_pages_on(case):
    spider, expected = case.make_spider(), case.first_page
    requests, items = split(case.listing_page(spider))
    assert items == []
    assert [r.url for r in requests] == list(expected.urls)
    assert [r.meta[PRODUCT_ID_META] for r in requests if "page" not in r.cb_kwargs] == list(expected.product_ids)
    assert spider.crawler.stats.get_value("clipshoe/skipped/bad_entry") == expected.bad_entries


@per_site
def test_listing_respects_the_item_and_page_caps(case):
    """One product at most: the first, and no next page; one page at most: its products."""
    urls = list(case.first_page.urls)
    requests, _ = split(case.listing_page(case.make_spider(max_items=1)))
    assert [r.url for r in requests] == urls[:1]
    requests, _ = split(case.listing_page(case.make_spider(max_pages=1)))
    assert [r.url for r in requests] == urls[:-1]


@per_site
def test_listing_skips_products_already_collected(case):
    """Resuming: the first product is collected, the cap of one is reached with the second."""
    spider = case.make_spider(max_items=1)
    spider.already_collected = {case.first_page.product_ids[0]}
    requests, _ = split(case.listing_page(spider))
    assert [r.url for r in requests] == [case.first_page.urls[1]]
    assert spider.crawler.stats.get_value("clipshoe/skipped/already_collected") == 1


@per_site
def test_empty_listing_page_ends_the_category(case):
    request = case.make_spider().listing_request(case.category, 2)
    assert run_callback(request, case.empty_listing, content_type=case.listing_type) == []


@per_site
def test_malformed_body_is_retried_by_the_middleware(case):
    spider = case.make_spider()
    harness.assert_malformed_body_is_retried(spider, spider.listing_request(case.category, 1),
                                             case.fixture("malformed.json"))


@per_body("not_listings")
def test_listing_that_is_no_listing_is_malformed(case, body):
    with pytest.raises(MalformedResponse):
        run_callback(case.make_spider().listing_request(case.category, 1), body, content_type=case.listing_type)


# -- product page -------------------------------------------------------------------
@per_site
def test_product_page_gives_a_full_item(case):
    page, spider = case.product_page, case.make_spider()
    request = page.request(spider) if page.request else case.product_request(spider)
    [item] = run_callback(request, case.fixture(page.sample), content_type=case.product_type)
    assert isinstance(item, ProductItem)
    assert {name: getattr(item, name) for name in page.item} == page.item
    assert validate(item) == []


@per_body("not_products")
def test_product_answer_that_is_not_the_product_is_malformed(case, body):
    with pytest.raises(MalformedResponse):
        run_callback(case.product_request(case.make_spider()), body, content_type=case.product_type)


# -- a product page that fails for good ------------------------------------------------
FAILURES = ("http_404", "blocked", "malformed")
per_failure = pytest.mark.parametrize(("case", "failure"), [
    pytest.param(case, failure, id=f"{case.site}-{failure}") for case in CASES for failure in FAILURES])


def fail_for_good(case, spider, request, failure: str) -> tuple[str, list]:
    """(the failed-page reason, what the spider yields instead) when `request` fails for
    good: an HTTP 404 or the site's block answer after retries (both reach the errback),
    or a body that is no product after retries (the parser middleware gives up; the
    spider must be made with RETRY_TIMES=0)."""
    if failure == "malformed":
        response = response_for(request, case.not_products[0], content_type=case.product_type)
        with pytest.raises(MalformedResponse) as malformed:
            results_of(request, response)
        middleware = MalformedResponseMiddleware(spider.crawler)
        return (f"malformed_{malformed.value.reason}",
                middleware.process_spider_exception(response, malformed.value, spider))
    if failure == "http_404":
        error, reason = HttpError(response_for(request, b"Not Found", 404)), "http_404"
    else:
        error, reason = BlockedRequest(case.block.reason, request.url), f"blocked_{case.block.reason}"
    failed = Failure(error)
    failed.request = request  # as Scrapy sets it before calling the errback
    return reason, spider.on_request_failed(failed)


@per_failure
def test_a_product_whose_page_fails_for_good_is_kept_from_its_listing(case, failure, tmp_path):
    spider = case.make_spider({"JOBDIR": str(tmp_path), "RETRY_TIMES": 0})
    storage = Storage(spider)
    reason, results = fail_for_good(case, spider, case.product_request(spider), failure)
    [item] = storage.keep(results)
    assert item.detail_unavailable == reason
    assert {name: getattr(item, name) for name in case.listing_only} == case.listing_only
    stats = spider.crawler.stats
    assert stats.get_value(f"clipshoe/detail_unavailable/{reason}") == 1
    assert stats.get_value(f"clipshoe/failed_pages/{reason}") == 1  # kept, and still a failed page
    journal = read_crawl_output(tmp_path)
    assert [row["detail_unavailable"] for row in journal.items()] == [reason]
    assert [(r["product_id"], r["reason"]) for r in journal.rejections()] == [(item.product_id, reason)]


@per_site
def test_a_product_whose_page_fails_for_good_and_whose_listing_has_no_image_is_rejected(case, tmp_path):
    record = dataclasses.replace(case.make_product(1, case.category), images=())
    spider = case.make_spider({"JOBDIR": str(tmp_path)})
    storage = Storage(spider)
    listing = spider.listing_request(case.category, 1)
    [request] = [r for r in results_of(listing, harness.replay(case.renderer, FakeCatalog([record]), listing))
                 if "page" not in r.cb_kwargs]
    _, results = fail_for_good(case, spider, request, "http_404")
    assert storage.keep(results) == []
    stats = spider.crawler.stats
    assert stats.get_value("clipshoe/dropped/no_images") == 1
    assert stats.get_value("clipshoe/detail_unavailable/http_404") is None
    journal = read_crawl_output(tmp_path)
    assert list(journal.items()) == []
    assert sorted(r["reason"] for r in journal.rejections()) == ["http_404", "no_images"]


# -- blocks -------------------------------------------------------------------------
@per_site
def test_block_answers_are_recognised(case):
    """Our sample of the site's block answer, and the renderer's."""
    request = case.make_spider().listing_request(case.category, 1)
    sample = case.block.sample
    response = response_for(request, case.fixture(sample), case.block.status,
                            content_type=HTML if sample.endswith(".html") else JSON)
    assert detect_block(response) == case.block.reason
    reply = case.renderer.block_reply()
    assert reply.status == case.block.status
    assert detect_block(response_for(request, reply.body, reply.status, content_type=reply.content_type)) \
        == case.block.reason


# -- the replay renderer ----------------------------------------------------------------
@per_site
def test_spider_and_renderer_agree_on_hosts_and_categories(case):
    harness.hosts_allowed(case.renderer, case.make_spider().allowed_domains)
    assert case.spider_class.default_categories == case.renderer.categories


@per_site
def test_renderer_answers_unknowns_without_crashing(case):
    catalog, unknowns = FakeCatalog([case.make_product(1, case.category)]), case.unknowns
    listing = shop_reply(case.renderer, catalog, unknowns.listing)
    assert listing.status == 200 and projected(json.loads(listing.body), unknowns.empty) == unknowns.empty
    missing = shop_reply(case.renderer, catalog, unknowns.missing_product)
    assert missing.status == unknowns.missing_status
    if unknowns.missing_body is not None:
        assert projected(json.loads(missing.body), unknowns.missing_body) == unknowns.missing_body
    assert shop_reply(case.renderer, catalog, unknowns.unrouted) is None


@per_site
def test_round_trip_reaches_every_listed_product_once(case, monkeypatch):
    """No dupefilter: each product is listed once, and must be fetched once."""
    trip = case.round_trip
    if trip.page_size is not None:
        module, size = trip.page_size
        monkeypatch.setattr(module, "PAGE_SIZE", size)
    (first, second), (n_first, n_second) = trip.categories, trip.sizes
    records = ([case.make_product(n, first) for n in range(n_first)]
               + [case.make_product(n, second) for n in range(n_first, n_first + n_second)])
    spider = case.make_spider(categories=f"{first},{second}")
    items, urls = harness.crawl(case.renderer, FakeCatalog(records), spider, dedupe=False)
    harness.assert_items_reproduce(items, records)
    assert [u for u in urls if trip.marker in u] == list(trip.pages)


@per_site
def test_round_trip_with_the_real_catalog(case):
    items, records = case.crawl_real_catalog()
    assert records and len(items) == len(records)
    harness.assert_items_reproduce(items, list(records.values()))
