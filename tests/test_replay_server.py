"""The replay shop's HTTP server: routing, images, planted faults (capped per URL,
deterministic), stats, speed, and the `clipshoe replay-shop` command."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest

from clipshoe_common import PROJECT_ROOT
from clipshoe_pipeline.cli import build_parser
from replay_shop.records import Faults
from replay_shop.server import ROBOTS_TXT, running_shop
from tests.builders import FakeRenderer



def get(shop, real_url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET a real URL through the shop, as the replay download handler sends it."""
    parts = urlsplit(real_url)
    wire = f"/{parts.netloc}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection("127.0.0.1", shop.port, timeout=10)
    try:
        connection.request("GET", wire, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def listing_url(category: str = "giay-nam", page: int = 1, site: str = "tiki") -> str:
    return f"https://{site}.example/api/products?category={category}&page={page}"


def good_image(catalog, site: str = "tiki"):
    return next(i for p in catalog.products(site) for i in p.images if i.defect is None)


def test_robots_txt_for_every_known_host(fake_shop):
    for renderer in fake_shop.catalog.renderers.values():
        for host in renderer.hosts + renderer.image_hosts:
            assert get(fake_shop, f"https://{host}/robots.txt")[::2] == (200, ROBOTS_TXT.encode())
    assert get(fake_shop, "https://unknown.example/robots.txt")[0] == 404


def test_images_are_served_with_their_bytes_and_content_type(fake_shop):
    catalog = fake_shop.catalog
    image = good_image(catalog)
    status, headers, body = get(fake_shop, image.url)
    assert (status, headers["content-type"], body) == (200, "image/jpeg", catalog.image_bytes(image))
    defects = {i.defect: i for p in catalog.products("sendo") + catalog.products("tiki") for i in p.images if i.defect}
    if "not_image" in defects:
        status, headers, body = get(fake_shop, defects["not_image"].url)
        assert status == 200 and headers["content-type"] == "image/jpeg" and body.startswith(b"<!DOCTYPE html>")


def test_unknown_things_are_404(fake_shop):
    assert get(fake_shop, "https://img.tiki.example/00/doesnotexist.jpg")[0] == 404
    assert get(fake_shop, "https://tiki.example/api/products/123")[0] == 404
    assert get(fake_shop, "https://tiki.example/no/such/page")[0] == 404
    assert get(fake_shop, "https://nowhere.example/api/products")[0] == 404
    assert fake_shop.stats["not_found"] == 4


def test_renderer_answers_pass_through(fake_shop):
    status, headers, body = get(fake_shop, listing_url("giay-nu", 1) + "&page=9")  # first value wins
    assert status == 200 and headers["content-type"].startswith("application/json")
    ids = [entry["id"] for entry in json.loads(body)["data"]]
    assert ids == [p.product_id for p in fake_shop.catalog.listing("tiki", "giay-nu")[:len(ids)]]


def test_stats_and_ground_truth_endpoints(fake_shop):
    get(fake_shop, listing_url())
    get(fake_shop, good_image(fake_shop.catalog).url)
    stats = _local_json(fake_shop, "/_shop/stats")
    assert stats["requests_by_host"] == {"tiki.example": 1, "img.tiki.example": 1}
    assert stats["requests"] == 2 and stats["images"] == 1 and stats["faults"] == {}
    assert stats["requests_by_kind"] == {"listing": 1, "detail": 0, "image": 1}
    assert stats["not_modified"] == {"detail": 0, "image": 0}
    truth = _local_json(fake_shop, "/_shop/ground_truth")
    assert truth == json.loads(json.dumps(fake_shop.catalog.ground_truth()))


def _local_json(shop, path: str):
    connection = http.client.HTTPConnection("127.0.0.1", shop.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


def proper(status: int, body: bytes, expected: bytes) -> bool:
    return status == 200 and body == expected


def fetch_until_proper(shop, url: str, expected: bytes, limit: int) -> int:
    """Attempts needed for a proper answer (a truncated body counts as a failed attempt)."""
    for attempt in range(1, limit + 1):
        try:
            status, _, body = get(shop, url)
        except http.client.IncompleteRead:
            continue
        if proper(status, body, expected):
            return attempt
    raise AssertionError(f"{url} not answered properly within {limit} attempts")


def test_every_url_answers_properly_within_the_fault_cap(fake_catalog):
    harsh = Faults(http_429=0.2, http_500=0.2, block=0.2, malformed_json=0.2, truncated_image=0.2, max_per_url=2)
    urls = [listing_url(c, page) for c in FakeRenderer.categories for page in (1, 2)]
    images = [i for p in fake_catalog.products("tiki")[:10] for i in p.images if i.defect is None]
    with running_shop(fake_catalog, faults=Faults.none()) as reference:
        expected = {url: get(reference, url)[2] for url in urls}
    expected.update({image.url: fake_catalog.image_bytes(image) for image in images})
    with running_shop(fake_catalog, faults=harsh) as shop:
        attempts = [fetch_until_proper(shop, url, body, harsh.max_per_url + 1) for url, body in expected.items()]
        faults = dict(shop.stats["faults"])
    assert max(attempts) > 1, "no fault was planted at these rates"
    assert {"http_429", "http_500", "block"} <= set(faults) and sum(faults.values()) == sum(a - 1 for a in attempts)


def test_fault_answers_look_like_the_real_thing(fake_catalog):
    image = good_image(fake_catalog)
    with running_shop(fake_catalog, faults=Faults(http_429=1.0, max_per_url=1)) as shop:
        status, headers, _ = get(shop, listing_url())
        assert (status, headers["retry-after"]) == (429, "0")
        assert get(shop, listing_url())[0] == 200  # the cap: next answer is proper
    with running_shop(fake_catalog, faults=Faults(block=1.0)) as shop:
        status, _, body = get(shop, listing_url())
        assert (status, body) == (200, FakeRenderer("tiki").block_reply().body)
    with running_shop(fake_catalog, faults=Faults(malformed_json=1.0, max_per_url=1)) as shop:
        _, _, cut = get(shop, listing_url())
        _, _, whole = get(shop, listing_url())
        assert whole.startswith(cut) and len(cut) == len(whole) // 2
        with pytest.raises(ValueError):
            json.loads(cut)
        assert get(shop, image.url)[2] == fake_catalog.image_bytes(image)  # not JSON: never malformed
    with running_shop(fake_catalog, faults=Faults(truncated_image=1.0, max_per_url=1)) as shop:
        with pytest.raises(http.client.IncompleteRead):
            get(shop, image.url)
        assert get(shop, image.url)[2] == fake_catalog.image_bytes(image)
        assert get(shop, listing_url())[0] == 200  # not an image: never truncated
        assert shop.stats["faults"] == {"truncated_image": 1}


def test_slow_answers_are_proper_and_uncapped(fake_catalog):
    with running_shop(fake_catalog, faults=Faults(slow=1.0, slow_seconds=0.15, max_per_url=1)) as shop:
        started = time.perf_counter()
        assert get(shop, listing_url())[0] == 200 and get(shop, listing_url())[0] == 200
        assert time.perf_counter() - started >= 0.3
        assert shop.stats["faults"] == {"slow": 2}


def test_fault_decisions_are_deterministic(fake_catalog):
    faults = Faults(http_429=0.3, http_500=0.3, max_per_url=3)

    def statuses() -> list[int]:
        with running_shop(fake_catalog, faults=faults) as shop:
            return [get(shop, listing_url(page=page))[0] for page in (1, 2, 3) for _ in range(4)]

    first = statuses()
    assert first == statuses() and set(first) > {200}


def test_detail_faults_hold_for_good_per_product_and_spare_the_listings(fake_catalog):
    products = fake_catalog.products("tiki")[:40]
    faults = Faults(detail_http_404=0.25, detail_block=0.25, http_500=0.5)  # the per-URL faults yield to them
    block = FakeRenderer("tiki").block_reply().body
    with running_shop(fake_catalog, faults=faults) as shop:
        lost = {p.product_id: shop.lost_detail("tiki", p.product_id) for p in products}
        for product in products:
            answers = {get(shop, f"https://tiki.example/api/products/{product.product_id}")[::2] for _ in range(4)}
            if lost[product.product_id] == "detail_http_404":
                assert answers == {(404, b"Not Found")}
            elif lost[product.product_id] == "detail_block":
                assert answers == {(200, block)}
            else:
                assert 200 in {status for status, _ in answers}  # within the per-URL cap
        assert 200 in {get(shop, listing_url())[0] for _ in range(3)}  # a listing is never lost for good
        served = dict(shop.stats["faults"])
    counts = Counter(lost.values())
    assert counts["detail_http_404"] and counts["detail_block"] and counts[None]
    assert (served["detail_http_404"], served["detail_block"]) == (4 * counts["detail_http_404"],
                                                                   4 * counts["detail_block"])
    with running_shop(fake_catalog, faults=faults) as again:  # deterministic per seed
        assert {p.product_id: again.lost_detail("tiki", p.product_id) for p in products} == lost
    with running_shop(fake_catalog) as off:  # off by default
        assert {off.lost_detail("tiki", p.product_id) for p in products} == {None}


def test_many_small_json_requests_per_second(fake_shop):
    product = fake_shop.catalog.products("tiki")[0]
    connection = http.client.HTTPConnection("127.0.0.1", fake_shop.port, timeout=10)  # keep-alive
    count = 600
    started = time.perf_counter()
    for _ in range(count):
        connection.request("GET", f"/tiki.example/api/products/{product.product_id}")
        response = connection.getresponse()
        assert response.status == 200 and response.read()
    rate = count / (time.perf_counter() - started)
    connection.close()
    assert rate > 300, f"{rate:.0f} requests/s"  # ~3000/s on one core; lenient for loaded machines


def test_replay_shop_command_parses_its_options():
    args = build_parser().parse_args(["replay-shop", "--port", "0", "--seed", "3", "--faults", "default"])
    assert (args.port, args.seed, args.faults, args.products_per_site, args.host) == (0, 3, "default", 200,
                                                                                      "127.0.0.1")
    assert args.epoch == 1 and build_parser().parse_args(["replay-shop", "--epoch", "3"]).epoch == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["replay-shop", "--epoch", bad])


def test_replay_shop_command_serves_until_interrupted(tmp_path):
    truth = tmp_path / "truth.json"
    process = subprocess.Popen(
        [sys.executable, "-c", "from clipshoe_pipeline.cli import main; raise SystemExit(main())", "replay-shop",
         "--port", "0", "--products-per-site", "5", "--epoch", "2", "--ground-truth", str(truth)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
        url = lines[-1].split("serving at ")[1].split()[0]
        port = urlsplit(url).port
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/_shop/stats")
        assert connection.getresponse().status == 200
        connection.close()  # a kept-alive connection would leave the server a connection to drain on shutdown
        written = json.loads(truth.read_text(encoding="utf-8"))
        assert (written["products_per_site"], written["epoch"], list(written["changes"])) == (5, 2, ["2"])
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
