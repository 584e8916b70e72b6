"""From crawled products and image features to the dataset's rows: the curation
decisions in one plain function, so they are tested without Dagster.

For every product: reject non-shoe items, build the caption. For every stored image
of a kept product: reject unusable images (curation.images reasons), then group
near-duplicate pictures across all sites and crawls into clusters and keep one
canonical pair per cluster (the largest image, then the longest caption). Finally
split train/test grouped by product and cluster. Every dropped product or image
becomes a rejection row with its reason: nothing is silently lost.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from clipshoe_pipeline.curation.clusters import DedupConfig, duplicate_clusters
from clipshoe_pipeline.curation.hashing import CROP_WINDOWS, THUMB_SIDE
from clipshoe_pipeline.curation.features import STATUS_OK
from clipshoe_pipeline.curation.shoes import non_shoe_reason
from clipshoe_pipeline.curation.split import achieved_test_fraction, grouped_split
from clipshoe_pipeline.curation.text import CaptionConfig, as_list, build_caption

STAGE = "curate"
NEAR_DUPLICATE = "near_duplicate"
NO_USABLE_IMAGE = "no_usable_image"

CURATED_PAIRS_SCHEMA = pa.schema([
    pa.field("pair_id", pa.string(), nullable=False),  # stable: hash of site, product_id, image sha256
    pa.field("site", pa.string(), nullable=False),
    pa.field("product_id", pa.string(), nullable=False),
    pa.field("image_sha256", pa.string(), nullable=False),  # of the crawled original
    pa.field("image_url", pa.string(), nullable=False),  # where the shop serves the original
    pa.field("image_path", pa.string(), nullable=False),  # normalised JPEG, relative to the data root
    pa.field("width", pa.int64()),  # of the normalised image
    pa.field("height", pa.int64()),
    pa.field("phash", pa.int64(), nullable=False),
    pa.field("dhash", pa.int64(), nullable=False),
    pa.field("mean_rgb", pa.list_(pa.int16(), 3), nullable=False),  # the colour signal of de-duplication
    pa.field("cluster_id", pa.int64(), nullable=False),  # stable: from the cluster's smallest sha256
    pa.field("cluster_size", pa.int64(), nullable=False),  # pictures merged into this pair's cluster
    pa.field("caption", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),  # the product page
    pa.field("split", pa.string(), nullable=False),  # train | test
])


@dataclass(frozen=True)
class CurationConfig:
    dedup: DedupConfig = field(default_factory=DedupConfig)
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    test_fraction: float = 0.1
    split_seed: int = 0


@dataclass
class Curated:
    pairs: pa.Table  # CURATED_PAIRS_SCHEMA
    rejections: list[dict[str, Any]]  # site, product_id, url, image_url, stage, reason
    clusters: dict[int, list[str]]  # cluster_id -> pair image paths (clusters of 2+ pictures)
    products_in: int
    images_in: int
    test_fraction: float


def curate(products: Iterable[Mapping[str, Any]], features: pa.Table, normalised_prefix: str,
           config: CurationConfig = CurationConfig()) -> Curated:
    """`products`: raw_products rows; `features`: curation.features rows for their
    stored images; `normalised_prefix`: the normalised store's path relative to the data
    root (image_path = prefix + norm_path)."""
    feature_of = {row["sha256"]: row for row in features.to_pylist()}
    rejections: list[dict[str, Any]] = []
    candidates: list[dict[str, Any]] = []
    products_in = images_in = 0
    for product in products:
        products_in += 1
        reason = non_shoe_reason(product)
        if reason:
            rejections.append(_rejection(product, None, reason))
            continue
        caption = build_caption(product, config.caption)
        usable = 0
        seen_in_product: set[str] = set()
        for image in as_list(product.get("images")):
            if image["status"] != "ok":
                continue  # already a crawl-stage rejection
            images_in += 1
            sha = image["sha256"]
            if sha in seen_in_product:
                continue  # the same bytes under two URLs of one product: one picture
            seen_in_product.add(sha)
            feature = feature_of.get(sha)
            if feature is None or feature["status"] != STATUS_OK:
                rejections.append(_rejection(product, image["url"], feature["reason"] if feature else "missing_features"))
                continue
            usable += 1
            candidates.append(_pair(product, image["url"], caption, feature, normalised_prefix))
        if not usable:
            rejections.append(_rejection(product, None, NO_USABLE_IMAGE))

    kept, merged = _one_per_cluster(candidates, config.dedup, rejections)
    splits = grouped_split([f"{p['site']}:{p['product_id']}" for p in kept], [p["cluster_id"] for p in kept],
                           test_fraction=config.test_fraction, seed=config.split_seed)
    for pair, split in zip(kept, splits):
        pair["split"] = split
    kept.sort(key=lambda p: p["pair_id"])
    return Curated(pairs=pa.Table.from_pylist(kept, schema=CURATED_PAIRS_SCHEMA), rejections=rejections,
                   clusters=merged, products_in=products_in, images_in=images_in,
                   test_fraction=achieved_test_fraction(splits) if splits else 0.0)


def _one_per_cluster(candidates: list[dict[str, Any]], dedup: DedupConfig,
                     rejections: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, list[str]]]:
    """Cluster the candidates' pictures and keep the canonical pair of each cluster."""
    shas = sorted({c["image_sha256"] for c in candidates})
    index = {sha: i for i, sha in enumerate(shas)}
    first = {}
    for c in candidates:
        first.setdefault(c["image_sha256"], c)
    phash = np.array([first[s]["phash"] for s in shas], dtype=np.int64)
    dhash = np.array([first[s]["dhash"] for s in shas], dtype=np.int64)
    colour = np.array([first[s]["mean_rgb"] for s in shas], dtype=np.int16).reshape(len(shas), 3)
    windows = len(CROP_WINDOWS)
    window_phash = np.array([first[s]["_window_phash"] for s in shas], dtype=np.int64).reshape(len(shas), windows)
    window_dhash = np.array([first[s]["_window_dhash"] for s in shas], dtype=np.int64).reshape(len(shas), windows)
    thumbnails = np.frombuffer(b"".join(first[s]["_thumbnail"] for s in shas), dtype=np.uint8)
    roots = duplicate_clusters(phash, dhash, colour, dedup, window_phash, window_dhash,
                               thumbnails.reshape(len(shas), THUMB_SIDE, THUMB_SIDE))

    members: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for c in candidates:
        members[int(roots[index[c["image_sha256"]]])].append(c)
    kept, merged = [], {}
    for group in members.values():
        cluster_id = _stable_id(min(c["image_sha256"] for c in group))
        pictures = len({c["image_sha256"] for c in group})
        group.sort(key=lambda c: (-(c["width"] or 0) * (c["height"] or 0), -len(c["caption"]), c["pair_id"]))
        canonical = group[0]
        for other in group[1:]:
            rejections.append({"site": other["site"], "product_id": other["product_id"], "url": other["url"],
                               "image_url": other["image_url"], "stage": STAGE, "reason": NEAR_DUPLICATE})
        if len(group) > 1:
            merged[cluster_id] = [c["image_path"] for c in group]
        canonical.update(cluster_id=cluster_id, cluster_size=pictures)
        kept.append({k: v for k, v in canonical.items() if not k.startswith("_")})
    return kept, merged


def _pair(product: Mapping[str, Any], image_url: str, caption: str, feature: Mapping[str, Any],
          normalised_prefix: str) -> dict[str, Any]:
    sha = feature["sha256"]
    return {
        "pair_id": hashlib.blake2b(f"{product['site']}|{product['product_id']}|{sha}".encode(),
                                   digest_size=8).hexdigest(),
        "site": product["site"], "product_id": product["product_id"], "image_sha256": sha,
        "image_path": f"{normalised_prefix}/{feature['norm_path']}",
        "width": feature["norm_width"], "height": feature["norm_height"],
        "phash": feature["phash"], "dhash": feature["dhash"], "caption": caption, "url": product["url"],
        "image_url": image_url, "mean_rgb": [feature["mean_r"], feature["mean_g"], feature["mean_b"]],
        # Only for clustering; "_" keys are dropped from the kept rows.
        "_window_phash": feature["window_phash"], "_window_dhash": feature["window_dhash"],
        "_thumbnail": feature["thumbnail"],
    }


def _stable_id(sha256: str) -> int:
    """A signed int64 from a sha256: the same cluster gets the same id on every run."""
    return int.from_bytes(bytes.fromhex(sha256[:16]), "big", signed=True)


def _rejection(product: Mapping[str, Any], image_url: str | None, reason: str) -> dict[str, Any]:
    return {"site": product["site"], "product_id": product["product_id"], "url": product.get("url"),
            "image_url": image_url, "stage": STAGE, "reason": reason}


def rejection_counts(rejections: Iterable[Mapping[str, Any]]) -> Counter:
    return Counter(r["reason"].split(":", 1)[0] if r["reason"].startswith("non_shoe") else r["reason"]
                   for r in rejections)
