"""The content-addressed image store: every bad image gets a reason, good ones are
stored once under their SHA-256."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image
from scrapy.utils.test import get_crawler

from scrapers.items import ProductItem
from scrapers.middlewares import BlockedRequest, failure_reason
from scrapers.pipelines import ContentAddressedImagesPipeline


def jpeg(size=(200, 160), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def pipeline(tmp_path):
    crawler = get_crawler(settings_dict={"CLIPSHOE_IMAGES_STORE": str(tmp_path / "images"),
                                         "JOBDIR": str(tmp_path / "job"),
                                         "CLIPSHOE_IMAGE_MAX_BYTES": 50_000,
                                         "CLIPSHOE_IMAGE_MIN_SIDE": 80})
    crawler.stats.open_spider()
    return ContentAddressedImagesPipeline.from_crawler(crawler)


def test_good_image_is_stored_by_content_hash(pipeline, tmp_path):
    body = jpeg()
    first = pipeline.store_image("https://salt.tikicdn.com/a.jpg", body)
    second = pipeline.store_image("https://down-vn.img.susercontent.com/file/b", body)
    digest = hashlib.sha256(body).hexdigest()
    assert first["status"] == "ok" and first["path"] == f"{digest[:2]}/{digest}.jpg"
    assert (first["width"], first["height"], first["format"]) == (200, 160, "JPEG")
    assert second["path"] == first["path"]
    assert (tmp_path / "images" / first["path"]).read_bytes() == body
    assert len(list((tmp_path / "images").rglob("*.jpg"))) == 1
    assert not list((tmp_path / "images").rglob("*.tmp"))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"<html><body>404 not found</body></html>", "not_an_image"),
        (jpeg(size=(40, 40)), "too_small"),
        (jpeg(size=(1200, 1200)) + b"\0" * 60_000, "too_large"),
        (jpeg()[:-200], "corrupt"),  # cut short: no end-of-image marker
    ],
)
def test_bad_images_get_a_reason(pipeline, body, reason):
    result = pipeline.store_image("https://cdn.example/x.jpg", body)
    assert (result["status"], result["reason"]) == ("failed", reason)


def test_item_completed_keeps_order_and_records_failures(pipeline, tmp_path):
    item = ProductItem(site="tiki", product_id="9", url="https://tiki.vn/p9.html", title="Giày",
                       image_urls=["https://c/1.jpg", "https://c/2.jpg", "https://c/3.jpg"])
    ok = pipeline.store_image("https://c/3.jpg", jpeg())
    bad = pipeline.store_image("https://c/1.jpg", b"")
    item = pipeline.item_completed([(True, ok), (True, bad)], item, info=None)
    assert [(i["url"], i["status"]) for i in item.images] == [
        ("https://c/1.jpg", "failed"), ("https://c/2.jpg", "failed"), ("https://c/3.jpg", "ok")]
    assert item.images[1]["reason"] == "pipeline_error"
    pipeline.journal.close()
    rejections = (tmp_path / "job" / "rejections.jsonl").read_text().splitlines()
    assert len(rejections) == 2 and '"stage": "download"' in rejections[0]
    stats = pipeline.stats.get_stats()
    assert stats["clipshoe/images/ok"] == 1 and stats["clipshoe/images/failed/empty"] == 1


def test_download_failures_are_named():
    from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError, IgnoreRequest, ResponseDataLossError
    from scrapy.http import Response
    from scrapy.spidermiddlewares.httperror import HttpError

    # Scrapy cancels an over-limit stream with an empty message: the type decides.
    assert failure_reason(DownloadCancelledError()) == "too_large"
    assert failure_reason(DownloadTimeoutError()) == "timeout"
    assert failure_reason(ResponseDataLossError()) == "truncated"
    assert failure_reason(HttpError(Response("https://tiki.vn/x", status=404), "Ignoring")) == "http_404"
    assert failure_reason(BlockedRequest("shopee_90309999", "https://shopee.vn/x")) == "blocked_shopee_90309999"
    assert failure_reason(IgnoreRequest("Forbidden by robots.txt")) == "filtered"
