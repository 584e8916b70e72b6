"""From crawled products and image features to the dataset's rows: the curation
decisions in one plain function, so they are tested without Dagster.

For every product: reject non-shoe items, build the caption. For every stored image
of a kept product: reject unusable images (curation.images reasons), then group
near-duplicate pictures across all sites and crawls into clusters and keep one
canonical pair per cluster (the largest image, then the longest caption). Optionally
cap the pairs of one product or one seller, so that none dominates the dataset. Finally
split train/test grouped by product and cluster. Every dropped product or image
becomes a rejection row with its reason: nothing is silently lost.

Products arrive as Arrow record batches and only one batch is ever held as Python
rows (captions and the shoe filter are Python string work); everything kept across
the catalog is columns: Arrow for text, numpy for hashes and thumbnails. So memory
grows with what de-duplication must hold, not with every field of every product.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clipshoe_pipeline.curation.clusters import duplicate_pairs
from clipshoe_pipeline.curation.components import connected_components
from clipshoe_pipeline.curation.config import CaptionConfig, CurationConfig, DedupConfig
from clipshoe_pipeline.curation.hashing import THUMB_SIDE
from clipshoe_pipeline.curation.features import STATUS_OK
from clipshoe_pipeline.curation.shoes import non_shoe_reason
from clipshoe_pipeline.curation.split import achieved_test_fraction, grouped_split
from clipshoe_pipeline.curation.text import as_list, build_caption, clean_category_path
from clipshoe_pipeline.rejections import CURATE_STAGE, REJECTED
from clipshoe_pipeline.stage_clock import StageClock

_Column = pa.Array | pa.ChunkedArray

NEAR_DUPLICATE = "near_duplicate"
NO_USABLE_IMAGE = "no_usable_image"
MISSING_FEATURES = "missing_features"
CAPPED_PER_PRODUCT = "capped_per_product"
CAPPED_PER_SELLER = "capped_per_seller"
# What curation reads of raw_products and of the image features.
PRODUCT_COLUMNS = ("site", "product_id", "url", "title", "description", "brand", "category_path", "attributes",
                   "images")
FEATURE_COLUMNS = ("sha256", "status", "reason", "norm_path", "norm_width", "norm_height", "phash", "dhash",
                   "window_phash", "window_dhash", "thumbnail", "mean_r", "mean_g", "mean_b")

_CHOSEN_COLUMNS = ("sha256", "norm_path", "norm_width", "norm_height", "phash", "dhash", "mean_r", "mean_g", "mean_b")

# The near-duplicate pairs that formed the clusters, persisted with the dataset so
# that its checks read them instead of searching again.
NEAR_DUPLICATES_SCHEMA = pa.schema([
    pa.field("sha256_a", pa.string(), nullable=False),  # the smaller of the two
    pa.field("sha256_b", pa.string(), nullable=False),
    pa.field("cluster_id", pa.int64(), nullable=False),
])

# The stored images of shoe products as curation offers them, one row per (product, distinct picture).
_OFFERED_IMAGES_SCHEMA = pa.schema([
    ("site", pa.string()), ("product_id", pa.string()), ("url", pa.string()), ("caption", pa.string()),
    ("category_leaf", pa.string()), ("image_url", pa.string()), ("sha256", pa.string()),
    ("product", pa.int64()),  # its number in the input
])

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
    # The shop's most specific category, cleaned as captions clean it (null: none): the
    # classes of the held-out zero-shot evaluation.
    pa.field("category_leaf", pa.string()),
    pa.field("url", pa.string(), nullable=False),  # the product page
    pa.field("split", pa.string(), nullable=False),  # train | test
])


@dataclass
class Curated:
    pairs: pa.Table  # CURATED_PAIRS_SCHEMA
    rejections: pa.Table  # REJECTED
    near_duplicates: pa.Table  # NEAR_DUPLICATES_SCHEMA
    cluster_examples: dict[int, list[str]]  # the largest merged clusters: cluster_id -> image paths, kept first
    products_in: int
    images_in: int
    test_fraction: float


@dataclass
class _Offered:
    """The usable images of shoe products, one row per (product, distinct picture), as columns."""

    site: pa.Array
    product_id: pa.Array
    url: pa.Array
    caption: pa.Array
    category_leaf: pa.Array
    image_url: pa.Array
    feature: np.ndarray  # row of the features table


def curate(products: Iterable[pa.RecordBatch], features: pa.Table, normalised_prefix: str,
           config: CurationConfig = CurationConfig(), examples: int = 5, clock: StageClock | None = None,
           sellers: pa.Table | None = None) -> Curated:
    """`products`: record batches of raw_products (at least PRODUCT_COLUMNS);
    `features`: curation.features rows for their stored images, sorted by sha256 (at
    least FEATURE_COLUMNS); `normalised_prefix`: the normalised store's path relative
    to the data root (image_path = prefix + norm_path). `examples`: how many of the
    largest merged clusters to name in `cluster_examples`. `clock` times the stages.
    `sellers`: site, product_id, seller (null: unknown) of the products, read only
    for `config.max_pairs_per_seller`."""
    clock = clock or StageClock()
    rejections: list[pa.Table] = []
    offered: list[pa.Table] = []
    products_in = images_in = 0
    with clock.stage("products"):
        for batch in products:
            images, offered_here, batch_rejections = _offered_images(batch.select(PRODUCT_COLUMNS).to_pylist(),
                                                                     config.caption, products_in)
            products_in += batch.num_rows
            images_in += offered_here
            rejections.append(batch_rejections)
            offered.append(images)
        # One lookup of the whole catalog's pictures in the features: a lookup builds a
        # hash set of the value set, so one per batch would grow with the square of it.
        usable = _usable(pa.concat_tables(offered) if offered else _OFFERED_IMAGES_SCHEMA.empty_table(), features,
                         rejections)
    kept, near_duplicates, examples_of = _one_per_cluster(usable, features, config.dedup, normalised_prefix,
                                                          rejections, examples, clock)
    with clock.stage("cap"):
        kept = _capped(kept, config, sellers, rejections)
    with clock.stage("split"):
        splits = grouped_split(_product_key(kept), kept.column("cluster_id").to_numpy(),
                               test_fraction=config.test_fraction, seed=config.split_seed)
        kept = kept.append_column("split", pa.array(splits, pa.string())).sort_by("pair_id")
    return Curated(pairs=kept.cast(CURATED_PAIRS_SCHEMA), rejections=pa.concat_tables(rejections) if rejections
                   else REJECTED.empty_table(), near_duplicates=near_duplicates,
                   cluster_examples=examples_of, products_in=products_in, images_in=images_in,
                   test_fraction=achieved_test_fraction(splits) if splits else 0.0)


def _offered_images(rows: list[dict], caption_config: CaptionConfig,
                    first_product: int) -> tuple[pa.Table, int, pa.Table]:
    """One batch of products (numbered from `first_product`): for every shoe its
    stored images (one per distinct picture, _OFFERED_IMAGES_SCHEMA) with the
    product's caption, how many stored images the shoes list, and the non-shoe
    rejections."""
    rejected = _RejectionRows()
    images = {name: [] for name in _OFFERED_IMAGES_SCHEMA.names}
    offered = 0
    for number, product in enumerate(rows, start=first_product):
        reason = non_shoe_reason(product)
        if reason:
            rejected.add(product, None, reason)
            continue
        caption = build_caption(product, caption_config)
        category_path = clean_category_path(product.get("category_path"))
        seen_in_product: set[str] = set()
        listed = 0
        for image in as_list(product.get("images")):
            if image["status"] != "ok":
                continue  # already a crawl-stage rejection
            offered += 1
            if image["sha256"] in seen_in_product:
                continue  # the same bytes under two URLs of one product: one picture
            seen_in_product.add(image["sha256"])
            listed += 1
            for key, value in (("site", product["site"]), ("product_id", product["product_id"]),
                               ("url", product["url"]), ("caption", caption),
                               ("category_leaf", category_path[-1] if category_path else None), ("image_url", image["url"]),
                               ("sha256", image["sha256"]), ("product", number)):
                images[key].append(value)
        if not listed:
            rejected.add(product, None, NO_USABLE_IMAGE)
    return pa.table(images, schema=_OFFERED_IMAGES_SCHEMA), offered, rejected.table()


def _usable(images: pa.Table, features: pa.Table, rejections: list[pa.Table]) -> _Offered:
    """The offered images that have features with status ok; the others are
    rejected with the feature's reason, and products left without any image too."""
    row = pc.fill_null(pc.index_in(images.column("sha256"), value_set=features.column("sha256")), -1).to_numpy()
    found = row >= 0
    ok = np.zeros(len(row), dtype=bool)
    status = features.column("status").take(pa.array(row[found]))
    ok[found] = pc.fill_null(pc.equal(status, STATUS_OK), False).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~ok)
    if len(bad):
        reasons = features.column("reason").take(pa.array(np.where(found, row, 0)[bad])).to_pylist()
        site, product_id, url, image_url = (images.column(name).take(pa.array(bad)).to_pylist()
                                            for name in ("site", "product_id", "url", "image_url"))
        rejected = _RejectionRows()
        for k, i in enumerate(bad):
            rejected.add_row(site[k], product_id[k], url[k], image_url[k], reasons[k] if found[i] else MISSING_FEATURES)
        product = images.column("product").to_numpy()
        with_usable = set(product[ok].tolist())
        for k, i in enumerate(bad):
            if product[i] not in with_usable:
                with_usable.add(product[i])  # one no_usable_image row per product
                rejected.add_row(site[k], product_id[k], url[k], None, NO_USABLE_IMAGE)
        rejections.append(rejected.table())
    keep = pa.array(np.flatnonzero(ok))
    return _Offered(*(images.column(name).take(keep).combine_chunks()
                      for name in ("site", "product_id", "url", "caption", "category_leaf", "image_url")),
                    feature=row[ok].astype(np.int64))


def _one_per_cluster(usable: _Offered, features: pa.Table, dedup: DedupConfig, normalised_prefix: str,
                     rejections: list[pa.Table], examples: int,
                     clock: StageClock) -> tuple[pa.Table, pa.Table, dict[int, list[str]]]:
    """Cluster the usable pictures and keep the canonical pair of each cluster (the
    largest image, then the longest caption, then the smallest pair_id)."""
    with clock.stage("dedup"):
        pictures = np.unique(usable.feature)  # feature rows are sorted by sha256: so are the pictures
        signals = features.take(pa.array(pictures))
        pairs = _duplicate_pairs(signals, dedup)
        roots = connected_components(pairs, len(pictures))
    with clock.stage("canonical"):
        return _canonical(usable, features, normalised_prefix, rejections, examples, pictures, signals, pairs, roots)


def _duplicate_pairs(signals: pa.Table, dedup: DedupConfig) -> np.ndarray:
    """The near-duplicate pairs among the pictures whose feature rows are `signals`."""
    windows = len(signals.column("window_phash")[0]) if signals.num_rows else 0
    phash = signals.column("phash").to_numpy()
    dhash = signals.column("dhash").to_numpy()
    colour = np.stack([signals.column(c).to_numpy() for c in ("mean_r", "mean_g", "mean_b")], axis=1)
    return duplicate_pairs(phash, dhash, colour, dedup, _list_matrix(signals.column("window_phash"), windows),
                           _list_matrix(signals.column("window_dhash"), windows),
                           _thumbnails(signals.column("thumbnail")))


def _canonical(usable: _Offered, features: pa.Table, normalised_prefix: str, rejections: list[pa.Table],
               examples: int, pictures: np.ndarray, signals: pa.Table, pairs: np.ndarray,
               roots: np.ndarray) -> tuple[pa.Table, pa.Table, dict[int, list[str]]]:
    sha = signals.column("sha256")
    cluster_roots = np.unique(roots)
    cluster_id = np.array([_stable_id(value) for value in sha.take(pa.array(cluster_roots)).to_pylist()],
                          dtype=np.int64)[np.searchsorted(cluster_roots, roots)]
    near_duplicates = pa.table({"sha256_a": sha.take(pa.array(pairs[:, 0])), "sha256_b": sha.take(pa.array(pairs[:, 1])),
                                "cluster_id": pa.array(cluster_id[pairs[:, 0]], pa.int64())},
                               schema=NEAR_DUPLICATES_SCHEMA)

    picture = np.searchsorted(pictures, usable.feature)  # each pair's picture
    cluster_size = np.bincount(roots, minlength=len(pictures))[roots]
    # Only the columns the pairs carry: the hashes of windows and the thumbnails are most of a feature row.
    chosen = features.select(_CHOSEN_COLUMNS).take(pa.array(usable.feature))
    sha256 = chosen.column("sha256")
    pair_id = pa.array([hashlib.blake2b(f"{site}|{product}|{digest}".encode(), digest_size=8).hexdigest()
                        for site, product, digest in zip(usable.site.to_pylist(), usable.product_id.to_pylist(),
                                                         sha256.to_pylist())], pa.string())
    width, height = chosen.column("norm_width"), chosen.column("norm_height")
    root = roots[picture]
    order = _preference_order(root, width, height, usable.caption, pair_id)
    canonical = order[_starts_group(root[order])]
    merged = np.setdiff1d(order, canonical, assume_unique=True)
    rejections.append(_rejected(usable.site.take(merged), usable.product_id.take(merged), usable.url.take(merged),
                                usable.image_url.take(merged), NEAR_DUPLICATE))

    image_path = pc.binary_join_element_wise(pa.scalar(normalised_prefix), chosen.column("norm_path"), "/")
    examples_of = _examples(order, root, cluster_id[root], image_path, examples)
    colours = np.stack([chosen.column(c).to_numpy() for c in ("mean_r", "mean_g", "mean_b")], axis=1)
    kept = pa.table({
        "pair_id": pair_id.take(canonical), "site": usable.site.take(canonical),
        "product_id": usable.product_id.take(canonical), "image_sha256": sha256.take(canonical),
        "image_url": usable.image_url.take(canonical), "image_path": image_path.take(canonical),
        "width": width.take(canonical), "height": height.take(canonical),
        "phash": chosen.column("phash").take(canonical), "dhash": chosen.column("dhash").take(canonical),
        "mean_rgb": pa.FixedSizeListArray.from_arrays(pa.array(colours[canonical].ravel(), pa.int16()), 3),
        "cluster_id": pa.array(cluster_id[root[canonical]], pa.int64()),
        "cluster_size": pa.array(cluster_size[picture[canonical]], pa.int64()),
        "caption": usable.caption.take(canonical), "category_leaf": usable.category_leaf.take(canonical),
        "url": usable.url.take(canonical),
    })
    return kept, near_duplicates, examples_of


def _preference_order(group: np.ndarray, width: _Column, height: _Column, caption: _Column,
                      pair_id: _Column) -> np.ndarray:
    """Row indices by group, and within a group the preferred pair first: the largest
    image, then the longest caption, then the smallest pair_id (so every run agrees)."""
    area = pc.multiply(pc.fill_null(width, 0), pc.fill_null(height, 0)).to_numpy()
    caption_length = pc.utf8_length(caption).to_numpy()
    return np.lexsort((np.asarray(pair_id.to_pylist(), dtype=str), -caption_length, -area, group))


def _capped(kept: pa.Table, config: CurationConfig, sellers: pa.Table | None, rejections: list[pa.Table]) -> pa.Table:
    """The kept pairs under the product cap, then the seller cap (counting only pairs
    the product cap left)."""
    if config.max_pairs_per_product is not None:
        kept = _cap(kept, _product_key(kept), config.max_pairs_per_product, CAPPED_PER_PRODUCT, rejections)
    if config.max_pairs_per_seller is not None:
        if sellers is None or sellers.column("seller").null_count == sellers.num_rows:
            raise ValueError("max_pairs_per_seller is set but no product has a seller")
        seller = sellers.column("seller").take(pc.index_in(_product_key(kept), value_set=_product_key(sellers)))
        kept = _cap(kept, pc.binary_join_element_wise(kept.column("site"), seller, ":"), config.max_pairs_per_seller,
                    CAPPED_PER_SELLER, rejections)
    return kept


def _cap(kept: pa.Table, key: _Column, cap: int, reason: str, rejections: list[pa.Table]) -> pa.Table:
    """At most `cap` pairs per value of `key` (null: not capped), the preferred first;
    the others become rejections with `reason`."""
    key = key.combine_chunks() if isinstance(key, pa.ChunkedArray) else key  # one dictionary for all rows
    group = pc.dictionary_encode(pc.fill_null(key, "")).indices.to_numpy()
    order = _preference_order(group, kept.column("width"), kept.column("height"), kept.column("caption"),
                              kept.column("pair_id"))
    position = np.arange(len(order))
    rank = np.empty(len(order), dtype=np.int64)  # of each pair within its group, the preferred 0
    rank[order] = position - np.maximum.accumulate(np.where(_starts_group(group[order]), position, 0))
    over = (rank >= cap) & pc.is_valid(key).to_numpy(zero_copy_only=False)
    dropped = kept.filter(pa.array(over))
    rejections.append(_rejected(dropped.column("site"), dropped.column("product_id"), dropped.column("url"),
                                dropped.column("image_url"), reason))
    return kept.filter(pa.array(~over))


def _starts_group(sorted_group: np.ndarray) -> np.ndarray:
    """Where each run of equal values of `sorted_group` begins."""
    starts = np.ones(len(sorted_group), dtype=bool)
    starts[1:] = sorted_group[1:] != sorted_group[:-1]
    return starts


def _product_key(table: pa.Table) -> pa.ChunkedArray:
    """"site:product_id" per row: product ids are unique only within a site."""
    return pc.binary_join_element_wise(table.column("site"), table.column("product_id"), ":")


def _rejected(site: _Column, product_id: _Column, url: _Column, image_url: _Column, reason: str) -> pa.Table:
    """Curate-stage rejections of these images, all for `reason`."""
    return pa.table({"site": site, "product_id": product_id, "url": url, "image_url": image_url,
                     "stage": pa.array([CURATE_STAGE] * len(site), pa.string()),
                     "reason": pa.array([reason] * len(site), pa.string())}, schema=REJECTED)


def _examples(order: np.ndarray, root: np.ndarray, cluster_id: np.ndarray, image_path: pa.Array,
              count: int) -> dict[int, list[str]]:
    """The `count` clusters with the most pairs (2 or more), largest first: cluster_id -> image paths, kept first."""
    roots, first, sizes = np.unique(root[order], return_index=True, return_counts=True)
    merged = np.flatnonzero(sizes > 1)
    largest = merged[np.lexsort((cluster_id[order][first[merged]], -sizes[merged]))][:count]
    return {int(cluster_id[order][first[k]]): image_path.take(pa.array(order[first[k]:first[k] + sizes[k]]))
            .to_pylist() for k in largest}


def _list_matrix(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A list<int64> column of equal-length lists as an (n, width) array."""
    flat = pc.list_flatten(column).to_numpy()
    return flat.reshape(len(column), width)


def _thumbnails(column: pa.ChunkedArray) -> np.ndarray:
    side = THUMB_SIDE * THUMB_SIDE
    fixed = column.cast(pa.binary(side)).combine_chunks()
    return np.frombuffer(fixed.buffers()[1], dtype=np.uint8, count=len(fixed) * side,
                         offset=fixed.offset * side).reshape(len(fixed), THUMB_SIDE, THUMB_SIDE)


def _stable_id(sha256: str) -> int:
    """A signed int64 from a sha256: the same cluster gets the same id on every run."""
    return int.from_bytes(bytes.fromhex(sha256[:16]), "big", signed=True)


class _RejectionRows:
    """Rejections of one batch, gathered as columns."""

    def __init__(self):
        self.columns: dict[str, list] = {name: [] for name in REJECTED.names}

    def add(self, product: dict, image_url: str | None, reason: str) -> None:
        self.add_row(product["site"], product["product_id"], product.get("url"), image_url, reason)

    def add_row(self, site: str, product_id: str, url: str | None, image_url: str | None, reason: str) -> None:
        for name, value in zip(REJECTED.names, (site, product_id, url, image_url, CURATE_STAGE, reason)):
            self.columns[name].append(value)

    def table(self) -> pa.Table:
        return pa.table(self.columns, schema=REJECTED)


def rejection_counts(rejections: pa.Table) -> Counter:
    """Rejections per reason; the non-shoe reasons counted as one, whatever keyword or category named them."""
    return Counter(reason.split(":", 1)[0] if reason.startswith("non_shoe") else reason
                   for reason in rejections.column("reason").to_pylist())
