"""The synthetic catalog: deterministic per seed, every planted mess present and
recorded in the ground truth, pictures that decode and look like what they show."""

from __future__ import annotations

import io
import json
import re
import time
from collections import Counter

import pytest
from PIL import Image, ImageStat

from replay_shop.catalog import Catalog, MessRates
from replay_shop.pictures import DEFECT_KINDS
from tests.builders import REPLAY_PRODUCTS_PER_SITE, REPLAY_SEED, fake_renderers

MESS_TAGS = {"shared_picture", "colour_variant", "non_shoe", "bad_image", "html_text", "promo_spam", "null_brand",
             "listed_twice"}


def all_products(catalog: Catalog):
    return [p for site in catalog.sites for p in catalog.products(site)]


def decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def test_same_seed_same_catalog_and_bytes_other_seed_differs(fake_catalog):
    again = Catalog(seed=REPLAY_SEED, products_per_site=REPLAY_PRODUCTS_PER_SITE, renderers=fake_renderers())
    assert all_products(again) == all_products(fake_catalog)
    some_images = [image for p in fake_catalog.products("shopee")[:8] for image in p.images if image.defect != "huge"]
    for image in some_images:
        assert again.image_bytes(image) == fake_catalog.image_bytes(image)

    other = Catalog(seed=REPLAY_SEED + 1, products_per_site=REPLAY_PRODUCTS_PER_SITE, renderers=fake_renderers())
    assert [p.product_id for p in other.products("tiki")] != [p.product_id for p in fake_catalog.products("tiki")]
    first, other_first = fake_catalog.products("tiki")[0].images[0], other.products("tiki")[0].images[0]
    assert fake_catalog.image_bytes(first) != other.image_bytes(other_first)


def test_every_mess_kind_is_planted_and_in_the_ground_truth(fake_catalog):
    products = all_products(fake_catalog)
    assert MESS_TAGS <= {tag for p in products for tag in p.mess}
    truth = fake_catalog.ground_truth()
    json.dumps(truth)  # JSON-serialisable
    assert all(truth["defects"][kind] for kind in DEFECT_KINDS), truth["defects"]
    assert truth["duplicate_groups"]
    for site in fake_catalog.sites:
        entries = truth["sites"][site]["products"]
        assert [e["product_id"] for e in entries] == [p.product_id for p in fake_catalog.products(site)]
        for entry in entries:
            product = fake_catalog.product(site, entry["product_id"])
            assert entry["mess"] == list(product.mess) and entry["is_shoe"] == product.is_shoe
            assert product.category in entry["categories"]


def test_planted_mess_looks_as_promised(fake_catalog):
    products = all_products(fake_catalog)
    for product in products:
        assert ("non_shoe" in product.mess) == (not product.is_shoe)
        assert ("null_brand" in product.mess) == (product.brand is None)
    html_products = [p for p in products if "html_text" in p.mess]
    assert all("<script>" in p.description_html and "&amp;" in p.title for p in html_products)
    spam = [p for p in products if "promo_spam" in p.mess]
    assert all(re.search(r"09\d\d \d{3} \d{3}", p.description_html) for p in spam)
    assert any("[CHÍNH HÃNG]" in p.title or "FREESHIP" in p.title for p in spam)


def test_listed_twice_products_appear_in_two_listings_of_one_site(fake_catalog):
    twice = [p for p in all_products(fake_catalog) if "listed_twice" in p.mess]
    assert twice
    for product in twice:
        categories = fake_catalog.categories_of(product.site, product.product_id)
        assert len(set(categories)) == 2
        for category in categories:
            assert product in fake_catalog.listing(product.site, category)


def test_every_product_keeps_a_good_image_and_good_images_decode(fake_catalog):
    for product in all_products(fake_catalog):
        assert 1 <= len(product.images) <= 5
        good = [image for image in product.images if image.defect is None]
        assert good, product.product_id
        assert len({image.url for image in product.images}) == len(product.images)
    for product in fake_catalog.products("lazada"):
        for image in product.images:
            if image.defect is None:
                assert decoded(fake_catalog.image_bytes(image)).size[0] >= 150


def test_defect_images_are_broken_as_labelled(fake_catalog):
    defects = {image.defect: image for p in all_products(fake_catalog) for image in p.images if image.defect}
    body = {kind: fake_catalog.image_bytes(image) for kind, image in defects.items()}
    assert decoded(body["tiny"]).size == (40, 40)
    low, high = zip(*decoded(body["blank"]).getextrema())
    assert low == high
    with pytest.raises(OSError):
        decoded(body["corrupt"])
    assert len(body["huge"]) > 12 * 1024 * 1024
    assert body["zero_byte"] == b""
    assert body["not_image"].lstrip().lower().startswith(b"<!doctype html")


def test_duplicate_groups_share_a_picture_across_sites(fake_catalog):
    truth = fake_catalog.ground_truth()
    site_of_url = {image.url: p.site for p in all_products(fake_catalog) for image in p.images}
    spans_sites = False
    for picture_id, urls in truth["duplicate_groups"].items():
        images = [fake_catalog.image_for(url) for url in urls]
        assert {image.picture_id for image in images} == {picture_id}
        spans_sites |= len({site_of_url[url] for url in urls}) > 1
    assert spans_sites
    transforms = {fake_catalog.image_for(u).transform for urls in truth["duplicate_groups"].values() for u in urls}
    assert transforms - {"original"}


def test_colour_variants_share_a_group_but_not_pictures(fake_catalog):
    groups: dict[str, list] = {}
    for product in all_products(fake_catalog):
        if product.variant_group:
            groups.setdefault(product.variant_group, []).append(product)
    assert groups
    for members in groups.values():
        assert len(members) >= 2
        assert len({(p.shoe_type, p.material, p.gender) for p in members}) == 1
        assert len({p.colour for p in members}) >= 2
        pictures = [image.picture_id for p in members for image in p.images]
        assert len(pictures) == len(set(pictures))


def test_pictures_follow_the_product_colour(fake_catalog):
    def brightness(colour: str) -> float:
        product = next(p for p in all_products(fake_catalog)
                       if p.colour == colour and p.is_shoe and p.shoe_type in ("sneaker", "boot", "loafer", "oxford",
                                                                               "running", "ballet_flat"))
        image = next(i for i in product.images if i.defect is None and i.transform != "watermark")
        picture = decoded(fake_catalog.image_bytes(image)).convert("RGB")
        width, height = picture.size
        middle = picture.crop((width // 4, height // 4, width * 3 // 4, height * 3 // 4))  # where the shoe is
        return sum(ImageStat.Stat(middle).mean) / 3

    assert brightness("trắng") - brightness("đen") > 25


def test_listings_fit_the_category(fake_catalog):
    for product in fake_catalog.listing("tiki", "giay-nam"):
        assert product.gender in ("nam", "unisex")
        assert product.shoe_type not in ("high_heel", "ballet_flat")
    assert all(p.shoe_type == "high_heel" for p in fake_catalog.listing("tiki", "giay-cao-got") if p.is_shoe)


def test_each_site_renderer_spells_its_own_ids(replay_catalog):
    for site in ("tiki", "sendo", "shopee", "lazada"):
        assert all(p.product_id.isdigit() for p in replay_catalog.products(site))
    assert all(p.shop_id.isdigit() for site in ("shopee", "lazada") for p in replay_catalog.products(site))
    assert all(re.fullmatch(r"[A-Z]{2}\d{3}SH\d{2}[A-Z]{3}MY", p.product_id)
               for p in replay_catalog.products("zalora"))
    for site in replay_catalog.sites:
        ids = [p.product_id for p in replay_catalog.products(site)]
        assert len(ids) == len(set(ids)) == REPLAY_PRODUCTS_PER_SITE


def test_image_lookup_and_ground_truth_file(fake_catalog, tmp_path):
    product = fake_catalog.products("sendo")[3]
    assert fake_catalog.image_for(product.images[0].url) == product.images[0]
    assert fake_catalog.image_for("https://img.sendo.example/nope.jpg") is None
    path = fake_catalog.write_ground_truth(tmp_path / "truth" / "gt.json")
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(fake_catalog.ground_truth()))


def test_generation_is_fast_and_mess_can_be_switched_off():
    started = time.perf_counter()
    big = Catalog(seed=1, products_per_site=4000, sites=("shopee",), renderers=fake_renderers())
    assert len(big.products("shopee")) == 4000
    assert time.perf_counter() - started < 2.0
    clean = Catalog(seed=1, products_per_site=50, mess=MessRates(*([0.0] * 8)), renderers=fake_renderers())
    assert not [p for p in all_products(clean) if p.mess]
    assert clean.ground_truth()["duplicate_groups"] == {}


def test_catalog_works_with_the_real_renderers(request):
    replay_catalog = request.getfixturevalue("replay_catalog")
    counts = Counter()
    for site, renderer in replay_catalog.renderers.items():
        for product in replay_catalog.products(site):
            assert product.url.startswith("https://") and "127.0.0.1" not in product.url
            assert product.category in renderer.categories
            for image in product.images:
                assert image.url.startswith("https://") and replay_catalog.image_for(image.url) == image
                counts[site] += 1
        assert sum(len(replay_catalog.listing(site, c)) for c in renderer.categories) >= REPLAY_PRODUCTS_PER_SITE
    assert set(counts) == set(replay_catalog.sites)
