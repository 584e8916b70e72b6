"""The crawl's parts on their own: item validation, text cleaning, the replay
rewrite, block detection, the middlewares and the crash-safe journal."""

from __future__ import annotations

import dataclasses

import pytest
from scrapy.http import TextResponse

from scrapers.attributes import normalise_attributes
from scrapers.blocks import detect_block
from scrapers.items import InvalidItem, ProductItem, validate
from scrapers.journal import Journal, read_jsonl
from scrapers.replay import replay_base, to_replay
from scrapers.text import absolute_url, clean_str, html_to_text, to_float, unique


def make_item(**overrides) -> ProductItem:
    base = dict(site="tiki", product_id="123", url="https://tiki.vn/giay-p123.html", title="Giày thể thao",
                image_urls=["https://salt.tikicdn.com/ts/product/aa/bb/cc/x.jpg"], brand="Biti's")
    base.update(overrides)
    return ProductItem(**base)


def test_valid_item_has_no_warnings():
    assert validate(make_item(description="Êm chân", price=350000.0, category_path=["Giày - Dép nam"])) == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"product_id": ""}, "missing_product_id"),
        ({"url": "http://127.0.0.1:8000/tiki.vn/x"}, "bad_url"),
        ({"url": "/relative"}, "bad_url"),
        ({"title": "  "}, "missing_title"),
        ({"image_urls": []}, "no_images"),
        ({"image_urls": ["//cdn/x.jpg"]}, "bad_image_url"),
        ({"image_urls": ["https://a/x.jpg", "https://a/x.jpg"]}, "duplicate_image_urls"),
        ({"attributes": {"colour": 3}}, "bad_attributes"),
        ({"price": -1}, "bad_price"),
        ({"site": "amazon"}, "unknown_site"),
    ],
)
def test_invalid_items_name_their_reason(overrides, reason):
    with pytest.raises(InvalidItem) as exc:
        validate(make_item(**overrides))
    assert exc.value.reason == reason


def test_null_brand_is_a_counted_warning_not_a_drop():
    assert "missing_brand" in validate(make_item(brand=None))


def test_html_to_text_drops_scripts_and_keeps_lines():
    html = "<p>Giày &amp;amp; dép</p><script>alert('x')</script><style>p{}</style>Êm<br>nhẹ&nbsp;&nbsp;bền"
    assert html_to_text(html) == "Giày & dép\nÊm\nnhẹ bền"
    assert html_to_text(None) == "" and html_to_text("None") == ""


def test_clean_str_maps_placeholders_to_none():
    assert clean_str(" <b>Nike</b> ") == "Nike"
    for placeholder in (None, "", "None", "0", "No Brand"):
        assert clean_str(placeholder) is None


def test_url_helpers():
    assert absolute_url("//vn-live-01.slatic.net/p/a.jpg") == "https://vn-live-01.slatic.net/p/a.jpg"
    assert absolute_url("p/x-1", "https://www.zalora.com.my/") == "https://www.zalora.com.my/p/x-1"
    assert absolute_url("") is None
    assert unique(["b", None, "a", "b"]) == ["b", "a"]
    assert to_float("S$ 79.00") == 79.0 and to_float(None) is None and to_float(True) is None


def test_attributes_are_canonical():
    attrs = normalise_attributes([("Màu sắc", "Đen"), ("Chất liệu", "Da bò"), ("Màu", "Trắng"),
                                  ("Giới tính", "Nam"), ("Đế", "<b>Cao su</b>"), ("x", None)])
    assert attrs == {"colour": "Đen, Trắng", "material": "Da bò", "gender": "Nam", "đế": "Cao su"}


def test_replay_rewrite_keeps_host_path_and_query():
    base = "http://127.0.0.1:8765"
    assert to_replay("https://tiki.vn/api/v2/products?category=1686&page=2", base) == (
        "http://127.0.0.1:8765/tiki.vn/api/v2/products?category=1686&page=2"
    )
    assert to_replay("https://shopee.vn", base) == "http://127.0.0.1:8765/shopee.vn/"


def test_replay_base_reads_the_setting_only(monkeypatch):
    monkeypatch.setenv("CLIPSHOE_REPLAY_URL", "http://127.0.0.1:9/")
    assert replay_base({}) is None
    assert replay_base({"CLIPSHOE_REPLAY_URL": ""}) is None
    assert replay_base({"CLIPSHOE_REPLAY_URL": "http://127.0.0.1:7/"}) == "http://127.0.0.1:7"
    with pytest.raises(ValueError):
        replay_base({"CLIPSHOE_REPLAY_URL": "127.0.0.1:7"})


def _response(url: str, body: bytes, status: int = 200) -> TextResponse:
    return TextResponse(url, body=body, status=status, encoding="utf-8")


def test_block_pages_are_recognised():
    assert detect_block(_response("https://shopee.vn/api/v4/pdp/get_pc?item_id=1",
                                  b'{"error":90309999,"action_type":2,"tracking_id":"x"}')) == "shopee_90309999"
    assert detect_block(_response("https://shopee.vn/api/v4/pdp/get_pc", b'{"error":null,"data":{}}')) is None
    assert detect_block(_response("https://www.lazada.vn/giay/?ajax=true",
                                  b'{"rgv587_flag":"sm","url":"/_____tmd_____/punish"}')) == "lazada_captcha"
    assert detect_block(_response("https://tiki.vn/api/v2/products", b"{}", status=403)) == "http_403"
    assert detect_block(_response("https://tiki.vn/api/v2/products", b'{"error": 0, "data": [90309999]}')) is None
    # A block answer from a CDN host is still a block answer.
    assert detect_block(_response("https://down-vn.img.susercontent.com/file/x",
                                  b'{"error":90309999}')) == "shopee_90309999"


def test_journal_survives_a_torn_last_line(tmp_path):
    journal = Journal(tmp_path)
    journal.append_item(dataclasses.asdict(make_item(product_id="1")))
    journal.close()
    with (tmp_path / "items.jsonl").open("ab") as f:
        f.write(b'{"product_id": "2", "ti')  # killed mid-write
    assert Journal(tmp_path).collected_ids() == {"1"}
    journal = Journal(tmp_path)
    journal.append_item(dataclasses.asdict(make_item(product_id="3")))
    journal.close()
    assert [row["product_id"] for row in read_jsonl(tmp_path / "items.jsonl")] == ["1", "3"]


def test_journal_is_off_without_a_directory():
    journal = Journal.from_settings({})
    journal.reject(site="tiki", stage="crawl", reason="x")
    assert journal.collected_ids() == set()


def test_session_headers_and_cookies_apply_to_their_domain_only():
    from scrapy import Request

    from scrapers.middlewares import SessionMiddleware

    middleware = SessionMiddleware({"shopee.vn": {"headers": {"x-csrftoken": "t"}, "cookies": {"SPC_EC": "c"}}})
    api = Request("https://shopee.vn/api/v4/pdp/get_pc?item_id=1")
    other = Request("https://tiki.vn/api/v2/products/1")
    for request in (api, other):
        middleware.process_request(request)
    assert api.headers.get("x-csrftoken") == b"t" and api.cookies == {"SPC_EC": "c"}
    assert b"x-csrftoken" not in other.headers and other.cookies == {}


def test_text_prices_with_thousands_separators():
    assert to_float("1.299.000₫") == 1299000.0
    assert to_float("1,299,000") == 1299000.0
    assert to_float("79.00") == 79.0


def test_the_parser_middleware_retries_malformed_bodies_and_leaves_parser_bugs_to_scrapy():
    """A product page still malformed after its retries is kept as its listing item; a
    parser bug never is: it must stay loud."""
    from scrapy import Request, Spider
    from scrapy.utils.test import get_crawler

    from scrapers.middlewares import MalformedResponse, MalformedResponseMiddleware
    from scrapers.signals import page_failed

    crawler = get_crawler(Spider, {"RETRY_TIMES": 1})
    crawler.spider = Spider.from_crawler(crawler, name="tiki")
    announced = []
    crawler.signals.connect(lambda **kw: announced.append(kw["reason"]), signal=page_failed, weak=False)
    middleware = MalformedResponseMiddleware(crawler)
    stats = crawler.stats

    def page(url: str, callback, listing: ProductItem):
        response = _response(url, b"{}")
        response.request = Request(url, callback=callback, cb_kwargs={"listing": listing})
        middleware.process_spider_input(response)
        return response

    def parse_product(response, listing):
        return []

    first, second = make_item(product_id="1"), make_item(product_id="2")
    malformed = page("https://tiki.vn/api/v2/products/1", parse_product, first)
    retry = middleware.process_spider_exception(malformed, MalformedResponse("json"))
    assert [r.url for r in retry] == [malformed.url] and stats.get_value("clipshoe/pages") == 0
    again = page(malformed.url, parse_product, first)
    again.request = retry[0]
    # Retries spent: the listing's item, marked.
    assert middleware.process_spider_exception(again, MalformedResponse("json")) == [
        dataclasses.replace(first, detail_unavailable="malformed_json")]
    bug = page("https://tiki.vn/api/v2/products/2", parse_product, second)
    assert middleware.process_spider_exception(bug, KeyError("price")) is None  # Scrapy logs and counts it
    assert stats.get_value("clipshoe/pages") == 2
    assert stats.get_value("clipshoe/failed_pages/malformed_json") == 1
    assert stats.get_value("clipshoe/failed_pages/parser_error") == 1
    assert stats.get_value("clipshoe/parser_errors/parse_product/KeyError") == 1
    assert announced == ["malformed_json", "parser_error"]


def test_a_page_that_fails_for_good_counts_among_the_pages_its_ratio_is_taken_over():
    from scrapy.spidermiddlewares.httperror import HttpError
    from scrapy.utils.test import get_crawler
    from twisted.python.failure import Failure

    from clipshoe_pipeline.defs.crawl.assets import CrawlConfig, failed_pages_check
    from scrapers.interface import CrawlOutput
    from scrapers.spiders.tiki import TikiSpider

    crawler = get_crawler(TikiSpider)
    spider = TikiSpider.from_crawler(crawler)
    request = spider.product_request("https://tiki.vn/api/v2/products/1", make_item(product_id="1"))
    response = _response(request.url, b"", status=404)
    response.request = request
    failure = Failure(HttpError(response))
    failure.request = request  # as Scrapy sets it before calling the errback
    # Never reached a callback: the parser middleware never saw it. Its listing item is
    # kept, and the page still counts as failed.
    [kept] = spider.on_request_failed(failure)
    assert kept.detail_unavailable == "http_404"

    output = CrawlOutput(job=None, stats=crawler.stats.get_stats())
    assert output.pages == 1 and output.failed_pages == {"http_404": 1}
    assert failed_pages_check(output, CrawlConfig()).metadata["ratio_by_reason"].data == {"http_404": 1.0}
