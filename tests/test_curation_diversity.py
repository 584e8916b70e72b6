"""The dataset's diversity report and the per-product / per-seller caps of curation."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from clipshoe_pipeline.curation.config import CurationConfig
from clipshoe_pipeline.curation.assemble import (
    CAPPED_PER_PRODUCT,
    CAPPED_PER_SELLER,
    CURATED_PAIRS_SCHEMA,
    FEATURE_COLUMNS,
    curate,
)
from clipshoe_pipeline.curation.diversity import (
    ATTRIBUTES_SCHEMA,
    NOT_VND,
    PRICE_BANDS,
    SELLER,
    UNKNOWN,
    concentration_markdown,
    concentration_numbers,
    dataset_diversity,
    product_attributes,
    spread_markdown,
    write_plot,
)
from clipshoe_pipeline.curation.features import FEATURES_SCHEMA, STATUS_OK
from clipshoe_pipeline.curation.hashing import CROP_WINDOWS, THUMB_SIDE
from clipshoe_pipeline.parquet_io import RAW_PRODUCTS_SCHEMA

# (product_id, brand, category_path, colour, price, currency, sha256 of its images)
PRODUCTS = [
    ("1", "Nike", ["Giày dép nam", "Giày thể thao"], "Đen", 250_000.0, "VND", ["a1", "a2", "a3"]),
    ("2", "Nike", ["Giày dép nam", "Giày thể thao"], "Trắng", 900_000.0, "VND", ["b1"]),
    ("3", "[CHÍNH HÃNG] Adidas", ["Giày dép nữ", "Giày cao gót"], "Đỏ", 3_500_000.0, "VND", ["c1", "c2"]),
    ("4", None, ["Giày dép nữ", "Sandal"], None, None, "VND", ["d1"]),
    ("5", "Biti's", [], "Đen", 120.0, "MYR", ["e1"]),
]


def raw_products(sellers: list[str | None] | None = None) -> pa.Table:
    rows = [{"site": "tiki", "product_id": product_id, "url": f"https://tiki.vn/p{product_id}.html",
             "title": f"Giày {brand or ''} mẫu {product_id}", "brand": brand, "category_path": path,
             "attributes": {"colour": colour} if colour else {}, "price": price, "currency": currency,
             "image_urls": [f"https://salt.tikicdn.com/{sha}.jpg" for sha in images],
             "images": [{"url": f"https://salt.tikicdn.com/{sha}.jpg", "status": "ok", "sha256": sha, "path": sha}
                        for sha in images]}
            for product_id, brand, path, colour, price, currency, images in PRODUCTS]
    table = pa.Table.from_pylist(rows, schema=RAW_PRODUCTS_SCHEMA)
    return table if sellers is None else table.append_column(SELLER, pa.array(sellers, pa.string()))


def features(widths: dict[str, int]) -> pa.Table:
    """Feature rows of unrelated pictures (random hashes and colours: no near-duplicates),
    each `widths[sha]` wide and square, sorted by sha256 as curation expects."""
    rng = np.random.default_rng(0)
    rows = [{"sha256": sha, "status": STATUS_OK, "norm_path": f"{sha}.jpg", "norm_width": width, "norm_height": width,
             "phash": int(rng.integers(-2**63, 2**63 - 1)), "dhash": int(rng.integers(-2**63, 2**63 - 1)),
             "window_phash": rng.integers(-2**63, 2**63 - 1, len(CROP_WINDOWS)).tolist(),
             "window_dhash": rng.integers(-2**63, 2**63 - 1, len(CROP_WINDOWS)).tolist(),
             "thumbnail": rng.integers(0, 256, THUMB_SIDE * THUMB_SIDE, dtype=np.uint8).tobytes(),
             "mean_r": 20 * number, "mean_g": 255 - 20 * number, "mean_b": (97 * number) % 256}
            for number, (sha, width) in enumerate(sorted(widths.items()))]
    return pa.Table.from_pylist(rows, schema=FEATURES_SCHEMA).select(FEATURE_COLUMNS)


WIDTHS = {"a1": 300, "a2": 500, "a3": 400, "b1": 300, "c1": 200, "c2": 200, "d1": 300, "e1": 300}


def curated(config: CurationConfig, sellers: list[str | None] | None = None):
    products = raw_products(sellers)
    attributes = product_attributes(products.to_batches(max_chunksize=2))
    return curate(products.to_batches(), features(WIDTHS), "normalised", config,
                  sellers=attributes.select(["site", "product_id", SELLER])), attributes


def capped(result) -> list[tuple[str, str, str]]:
    rows = result.rejections.filter(pa.compute.starts_with(result.rejections.column("reason"), "capped")).to_pylist()
    return sorted((row["product_id"], row["image_url"].rsplit("/", 1)[1][:-4], row["reason"]) for row in rows)


def kept_images(result) -> list[str]:
    return sorted(result.pairs.column("image_sha256").to_pylist())


def test_attributes_are_read_as_captions_read_them():
    attributes = {row["product_id"]: row for row in product_attributes(raw_products().to_batches()).to_pylist()}
    assert attributes["1"]["shoe_type"] == "Giày thể thao" and attributes["1"]["colour"] == "Đen"
    assert attributes["3"]["brand"] == "Adidas", "promo brackets are not part of a brand"
    assert attributes["1"]["price_band"] == PRICE_BANDS[0] and attributes["3"]["price_band"] == PRICE_BANDS[-1]
    assert attributes["5"]["price_band"] == NOT_VND, "no exchange rate is guessed"
    assert attributes["4"]["brand"] is attributes["4"]["colour"] is attributes["4"]["price_band"] is None
    assert attributes["5"]["shoe_type"] is None and attributes["5"][SELLER] is None


def hand_built_pairs() -> pa.Table:
    """Ten pairs: product 1 four times (train), 2 three times (train), 3 twice (test), 4 once (test)."""
    rows = [("1", "train")] * 4 + [("2", "train")] * 3 + [("3", "test")] * 2 + [("4", "test")]
    return pa.table({"pair_id": [f"p{i}" for i in range(len(rows))], "site": ["tiki"] * len(rows),
                     "product_id": [product for product, _ in rows], "split": [split for _, split in rows]})


def test_spread_counts_pairs_per_value_and_split():
    report = dataset_diversity(hand_built_pairs(), product_attributes(raw_products().to_batches()))
    assert SELLER not in report, "no product has a seller: the dimension is left out, not one unknown seller"
    brand = report["brand"]
    assert brand.pairs == {"Nike": {"train": 7, "test": 0, "all": 7}, "Adidas": {"train": 0, "test": 2, "all": 2},
                           UNKNOWN: {"train": 0, "test": 1, "all": 1}}
    assert (brand.total, brand.known, brand.top_share) == (10, 9, 1.0)
    share = np.array([7, 2]) / 9
    assert brand.normalised_entropy == pytest.approx(-(share * np.log(share)).sum() / math.log(2))
    assert report["site"].normalised_entropy == 0.0, "one site: no spread"
    assert list(report["price_band"].pairs) == [PRICE_BANDS[0], PRICE_BANDS[2], PRICE_BANDS[-1], UNKNOWN]
    assert report["colour"].pairs["Đen"]["all"] == 4
    numbers = concentration_numbers(report)
    assert numbers["top10_brand_share"] == 1.0 and numbers["brand_entropy"] == round(brand.normalised_entropy, 4)
    assert "| Nike | 7 | 0 | 7 | 70.0% |" in spread_markdown(brand)
    assert "| brand | 2 | 90.0% | 100.0% |" in concentration_markdown(report)


def test_top_share_counts_only_the_ten_largest_values():
    # Twelve shops: shop0 has two pairs, the others one each.
    products = [str(n) for n in range(12)]
    pairs = pa.table({"pair_id": [f"p{n}" for n in range(13)], "site": ["tiki"] * 13,
                      "product_id": [*products, "0"], "split": ["train"] * 13})
    attributes = pa.table({name: pa.nulls(12, pa.string()) for name in ATTRIBUTES_SCHEMA.names}
                          | {"site": ["tiki"] * 12, "product_id": products, SELLER: [f"shop{n}" for n in range(12)]},
                          schema=ATTRIBUTES_SCHEMA)
    report = dataset_diversity(pairs, attributes)
    assert report[SELLER].top_share == pytest.approx(11 / 13)
    assert concentration_numbers(report)["top10_seller_share"] == round(11 / 13, 4)


def test_plot_is_written(tmp_path):
    report = dataset_diversity(hand_built_pairs(), product_attributes(raw_products().to_batches()))
    markdown = write_plot(report, tmp_path / "reports" / "diversity.png")
    assert (tmp_path / "reports" / "diversity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert markdown.startswith("![diversity](data:image/png;base64,")


def test_no_cap_by_default():
    result, _ = curated(CurationConfig())
    assert kept_images(result) == sorted(WIDTHS) and capped(result) == []


def test_product_cap_keeps_the_largest_images_and_rejects_the_rest():
    result, _ = curated(CurationConfig(max_pairs_per_product=1))
    # Product 1: a2 is the largest. Product 3: equal sizes and captions, so the smaller pair_id wins.
    kept = set(kept_images(result))
    assert {"a2", "b1", "d1", "e1"} <= kept and len(kept & {"c1", "c2"}) == 1
    (c_dropped,) = {"c1", "c2"} - kept
    assert capped(result) == sorted([("1", "a1", CAPPED_PER_PRODUCT), ("1", "a3", CAPPED_PER_PRODUCT),
                                     ("3", c_dropped, CAPPED_PER_PRODUCT)])
    again, _ = curated(CurationConfig(max_pairs_per_product=1))
    assert again.pairs.equals(result.pairs) and again.rejections.equals(result.rejections)
    assert result.pairs.schema == CURATED_PAIRS_SCHEMA
    two, _ = curated(CurationConfig(max_pairs_per_product=2))
    assert capped(two) == [("1", "a1", CAPPED_PER_PRODUCT)], "a2 (500) and a3 (400) are kept over a1 (300)"


def test_seller_cap_counts_what_the_product_cap_left_and_skips_unknown_sellers():
    # Products 1 and 2 share a shop; 3 and 4 have none; 5 has its own.
    sellers = ["shopA", "shopA", None, None, "shopB"]
    result, attributes = curated(CurationConfig(max_pairs_per_product=2, max_pairs_per_seller=2), sellers)
    # shopA's pairs after the product cap: a2 (500 wide), a3 (400), b1 (300).
    assert capped(result) == [("1", "a1", CAPPED_PER_PRODUCT), ("2", "b1", CAPPED_PER_SELLER)]
    assert kept_images(result) == ["a2", "a3", "c1", "c2", "d1", "e1"]
    report = dataset_diversity(result.pairs, attributes)
    assert report[SELLER].pairs["shopA"]["all"] == 2 and report[SELLER].known == 3


def test_seller_cap_without_sellers_fails_loudly():
    with pytest.raises(ValueError, match="no product has a seller"):
        curated(CurationConfig(max_pairs_per_seller=3))
