"""The replay shop's epochs: epoch 1 is the catalog as generated, each later one
plants price changes, new and removed products and re-uploaded images, recorded by
`changes()`; the shop serves them and answers conditional requests with 304."""

from __future__ import annotations

import http.client
import json
import re
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from replay_shop.catalog import Catalog, epoch_time
from replay_shop.server import running_shop
from tests.builders import REPLAY_PRODUCTS_PER_SITE, REPLAY_SEED, fake_renderers
from tests.test_replay_server import get

CHANGE_KINDS = ("price_changed", "added", "removed", "image_changed")


def ids(catalog: Catalog, site: str) -> list[str]:
    return [p.product_id for p in catalog.products(site)]


def listed_ids(catalog: Catalog, site: str) -> set[str]:
    return {p.product_id for c in catalog.renderers[site].categories for p in catalog.listing(site, c)}


@pytest.fixture(scope="module")
def epoch_two(replay_catalog) -> Catalog:
    return replay_catalog.at_epoch(2)


def test_epoch_one_is_the_catalog_as_generated(replay_catalog):
    later = Catalog(seed=REPLAY_SEED, products_per_site=REPLAY_PRODUCTS_PER_SITE, epoch=3)
    first = later.at_epoch(1)
    assert replay_catalog.epoch == first.epoch == 1
    for site in replay_catalog.sites:
        assert first.products(site) == replay_catalog.products(site)
    assert all(not change for site in first.changes(since=1).values() for change in site.values())
    truth = first.ground_truth()
    assert (truth["epoch"], truth["changes"]) == (1, {})
    with pytest.raises(ValueError):
        Catalog(epoch=0)


def test_every_site_gets_every_kind_of_change_deterministically_per_seed(replay_catalog, epoch_two):
    changes = epoch_two.changes()
    assert changes == Catalog(seed=REPLAY_SEED, products_per_site=REPLAY_PRODUCTS_PER_SITE, epoch=2).changes()
    assert changes != Catalog(seed=REPLAY_SEED + 1, products_per_site=REPLAY_PRODUCTS_PER_SITE, epoch=2).changes()
    json.dumps(changes)
    for site in epoch_two.sites:
        change = changes[site]
        assert all(change[kind] for kind in CHANGE_KINDS), (site, change)
        # ~10% repriced, ~5% added and removed, of 30 products
        assert (len(change["price_changed"]), len(change["added"]), len(change["removed"])) == (3, 2, 2)
        before = ids(replay_catalog, site)
        assert ids(epoch_two, site) == [i for i in before if i not in change["removed"]] + change["added"]
        assert not set(change["added"]) & set(before)
    # New ids follow each site's id scheme.
    assert all(i.isdigit() for site in ("tiki", "sendo", "shopee", "lazada") for i in changes[site]["added"])
    assert all(re.fullmatch(r"[A-Z]{2}\d{3}SH\d{2}[A-Z]{3}MY", i) for i in changes["zalora"]["added"])


def test_each_epoch_builds_on_the_one_before(epoch_two):
    third = epoch_two.at_epoch(3)
    assert third.changes(2) == epoch_two.changes()
    for site in third.sites:
        step = third.changes()[site]
        assert ids(third, site) == [i for i in ids(epoch_two, site) if i not in step["removed"]] + step["added"]
        assert not set(step["added"]) & {i for e in (1, 2) for i in ids(third.at_epoch(e), site)}  # never reused
        for product in epoch_two.products(site):
            now = third.product(site, product.product_id)
            if now is not None and product.product_id not in step["price_changed"]:
                assert now.price == product.price
        cumulative, first = third.changes(since=1)[site], ids(third.at_epoch(1), site)
        assert cumulative["added"] == [i for i in ids(third, site) if i not in first]
        assert cumulative["removed"] == [i for i in first if i not in ids(third, site)]
    assert set(third.ground_truth()["changes"]) == {"2", "3"}


def test_the_catalog_shows_its_changes(replay_catalog, epoch_two):
    for site, change in epoch_two.changes().items():
        listed = listed_ids(epoch_two, site)
        assert listed == set(ids(epoch_two, site))
        for pid in change["removed"]:
            assert pid not in listed and epoch_two.product(site, pid) is None
        for pid in change["added"]:  # appended: after every product listed before
            listing = [p.product_id for p in epoch_two.listing(site, epoch_two.product(site, pid).category)]
            assert listing.index(pid) > max((k for k, i in enumerate(listing) if i not in change["added"]), default=-1)
        for pid, price in change["price_changed"].items():
            assert (replay_catalog.product(site, pid).price, epoch_two.product(site, pid).price) == (
                price["old"], price["new"])
        for url in change["image_changed"]:
            old, new = replay_catalog.image_for(url), epoch_two.image_for(url)
            assert old.url == new.url and old.picture_id != new.picture_id
            assert replay_catalog.image_bytes(old) != epoch_two.image_bytes(new)


def tiki_listing(shop) -> dict[int, int]:
    """Every listed Tiki product id -> its listing price, as the API shows them."""
    prices = {}
    for category in shop.catalog.renderers["tiki"].categories:
        _, _, body = get(shop, f"https://tiki.vn/api/v2/products?category={category}&limit=100")
        prices.update({entry["id"]: entry["price"] for entry in json.loads(body)["data"]})
    return prices


def tiki_detail(shop, product_id: str, headers: dict[str, str] | None = None):
    return get(shop, f"https://tiki.vn/api/v2/products/{product_id}", headers)


def test_the_shop_serves_the_changes_under_the_same_urls(replay_catalog):
    change = replay_catalog.at_epoch(2).changes()["tiki"]
    changed_image = change["image_changed"][0]
    with running_shop(replay_catalog) as shop:
        before = tiki_listing(shop)
        old_bytes = get(shop, changed_image)[2]
        removed_detail = tiki_detail(shop, change["removed"][0])[0]
        shop.set_epoch(2)
        after = tiki_listing(shop)
        new_bytes = get(shop, changed_image)[2]
        assert tiki_detail(shop, change["removed"][0])[0] == 404 and removed_detail == 200
        truth = json.loads(get_local(shop, "/_shop/ground_truth"))
    assert truth["changes"]["2"] == json.loads(json.dumps(replay_catalog.at_epoch(2).changes()))
    added, removed = set(after) - set(before), set(before) - set(after)
    assert (added, removed) == ({int(i) for i in change["added"]}, {int(i) for i in change["removed"]})
    assert {str(i): {"old": before[i], "new": after[i]} for i in set(before) & set(after)
            if before[i] != after[i]} == change["price_changed"]
    assert old_bytes and new_bytes and old_bytes != new_bytes


def get_local(shop, path: str, method: str = "GET") -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", shop.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.read() if response.status == 200 else str(response.status).encode()
    finally:
        connection.close()


def test_the_epoch_endpoint_moves_a_running_shop(fake_catalog):
    with running_shop(fake_catalog) as shop:
        assert json.loads(get_local(shop, "/_shop/epoch")) == {"epoch": 1}
        assert json.loads(get_local(shop, "/_shop/epoch?epoch=3", "POST")) == {"epoch": 3}
        assert shop.catalog.epoch == 3 and shop.catalog.seed == fake_catalog.seed
        assert get_local(shop, "/_shop/epoch?epoch=0", "POST") == b"400"
        assert json.loads(get_local(shop, "/_shop/ground_truth"))["epoch"] == 3


def test_validated_sites_answer_304_to_matching_validators(replay_catalog):
    product = replay_catalog.products("tiki")[0]
    image = next(i for i in product.images if i.defect is None)
    with running_shop(replay_catalog) as shop:
        status, headers, body = tiki_detail(shop, product.product_id)
        etag, modified = headers["etag"], headers["last-modified"]
        assert status == 200 and etag.startswith('"') and parsedate_to_datetime(modified) == epoch_time(1)
        for validators in ({"If-None-Match": etag}, {"If-None-Match": f'W/{etag}, "other"'},
                           {"If-None-Match": "*"}, {"If-Modified-Since": modified}):
            status, not_modified, empty = tiki_detail(shop, product.product_id, validators)
            assert (status, empty, not_modified["etag"], not_modified["last-modified"]) == (304, b"", etag, modified)
        # If-None-Match decides alone when sent; an older copy is modified.
        assert tiki_detail(shop, product.product_id, {"If-None-Match": '"other"', "If-Modified-Since": modified})[
            ::2] == (200, body)
        earlier = format_datetime(epoch_time(0), usegmt=True)
        assert tiki_detail(shop, product.product_id, {"If-Modified-Since": earlier})[0] == 200

        status, image_headers, image_body = get(shop, image.url)
        assert status == 200 and image_body == replay_catalog.image_bytes(image)
        assert get(shop, image.url, {"If-None-Match": image_headers["etag"]})[::2] == (304, b"")

        sendo = replay_catalog.products("sendo")[0]
        sendo_url = "https://detail-api.sendo.vn/full/" + sendo.url.rsplit("/", 1)[1].removesuffix(".html")
        sendo_etag = get(shop, sendo_url)[1]["etag"]
        assert get(shop, sendo_url, {"If-None-Match": sendo_etag})[0] == 304

        shopee = replay_catalog.products("shopee")[0]
        shopee_url = f"https://shopee.vn/api/v4/pdp/get_pc?item_id={shopee.product_id}&shop_id={shopee.shop_id}"
        status, shopee_headers, _ = get(shop, shopee_url, {"If-None-Match": "*"})
        assert status == 200 and "etag" not in shopee_headers and "last-modified" not in shopee_headers
        assert shop.stats["not_modified"] == {"detail": 5, "image": 1}


def test_a_conditional_recrawl_refetches_only_what_changed(replay_catalog):
    """Crawl Tiki (listings, details, images), move to epoch 2 and recrawl with the
    validators seen: only changed and new details and images come with a body."""
    change = replay_catalog.at_epoch(2).changes()["tiki"]
    with running_shop(replay_catalog) as shop:
        seen: dict[str, dict[str, str]] = {}  # url -> validators of the copy kept

        def crawl() -> dict[str, int]:
            statuses = {}
            for product_id in tiki_listing(shop):
                url = f"https://tiki.vn/api/v2/products/{product_id}"
                urls = [url] + [image.url for image in shop.catalog.product("tiki", str(product_id)).images]
                for url in urls:
                    status, headers, _ = get(shop, url, seen.get(url))
                    statuses[url] = status
                    if status == 200:
                        seen[url] = {"If-None-Match": headers["etag"], "If-Modified-Since": headers["last-modified"]}
            return statuses

        first = crawl()
        before = json.loads(json.dumps(shop.stats))
        shop.set_epoch(2)
        for pid in change["removed"]:  # what a recrawl asks of products gone from the listing
            assert tiki_detail(shop, pid, seen[f"https://tiki.vn/api/v2/products/{pid}"])[0] == 404
        second = crawl()
        stats = shop.stats
    assert set(first.values()) == {200}
    refetched = {url for url, status in second.items() if status == 200}
    details = {f"https://tiki.vn/api/v2/products/{pid}" for pid in [*change["price_changed"], *change["added"]]}
    new_images = {image.url for pid in change["added"] for image in shop.catalog.product("tiki", pid).images}
    assert refetched == details | new_images | set(change["image_changed"])
    assert set(second.values()) == {200, 304}
    delta = {kind: stats["requests_by_kind"][kind] - before["requests_by_kind"][kind] for kind in
             ("listing", "detail", "image")}
    image_urls = [url for url in second if "tikicdn" in url]
    assert delta == {"listing": len(shop.catalog.renderers["tiki"].categories),
                     "detail": len(second) - len(image_urls) + len(change["removed"]), "image": len(image_urls)}
    assert stats["not_modified"]["detail"] - before["not_modified"]["detail"] == len(second) - len(
        image_urls) - len(details)
    assert stats["not_modified"]["image"] - before["not_modified"]["image"] == len(image_urls) - len(
        new_images | set(change["image_changed"]))


def test_fake_sites_share_the_epochs(fake_catalog):
    """The epochs need nothing of a renderer beyond the protocol."""
    later = fake_catalog.at_epoch(2)
    assert later.renderers == fake_catalog.renderers
    assert later.changes() == Catalog(seed=REPLAY_SEED, products_per_site=REPLAY_PRODUCTS_PER_SITE,
                                      renderers=fake_renderers(), epoch=2).changes()
