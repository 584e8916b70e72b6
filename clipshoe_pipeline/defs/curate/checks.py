"""Checks on `curated_pairs`, run after every curation. The first four block the
assets downstream (a leaky split or a broken row would corrupt training or its
metrics); the reject rate only warns, because a shop can legitimately list junk."""

from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.curation.assemble import STAGE
from clipshoe_pipeline.curation.clusters import DedupConfig, duplicate_pairs
from clipshoe_pipeline.curation.hashing import THUMB_SIDE
from clipshoe_pipeline.defs.curate.assets import curated_pairs
from clipshoe_pipeline.paths import data_paths

SAMPLE = 5
MAX_REJECT_RATE = 0.5  # per site, curate-stage rejections over products + images in


@dg.asset_check(asset=curated_pairs, blocking=True)
def curated_pairs_no_cross_split_duplicates(catalog: CatalogDB) -> dg.AssetCheckResult:
    """No near-duplicate pair of images sits on both sides of the split: searched
    again over the kept pairs with the full detector (hashes, crop windows and the
    thumbnail verification, read back from the feature cache), independently of the
    clusters and the grouping that built the split. The detector is the measured
    default (DedupConfig()), whatever the run's knobs: a run configured to look for
    fewer duplicates must not thereby also hide the leaks it lets through."""
    rows = catalog.query("SELECT pair_id, split, image_sha256, phash, dhash, mean_rgb FROM curated_pairs "
                         "ORDER BY pair_id")
    if not rows:
        return dg.AssetCheckResult(passed=True, metadata={"pairs": 0})
    features = _cached_features(data_paths().image_features_cache, {r["image_sha256"] for r in rows})
    missing = sorted({r["image_sha256"] for r in rows} - features.keys())
    if missing:
        return dg.AssetCheckResult(passed=False, metadata={
            "reason": "kept images without cached features", "sample": dg.MetadataValue.json(missing[:SAMPLE])})
    ordered = [features[r["image_sha256"]] for r in rows]
    pairs = duplicate_pairs(
        np.array([r["phash"] for r in rows], dtype=np.int64), np.array([r["dhash"] for r in rows], dtype=np.int64),
        np.array([r["mean_rgb"] for r in rows], dtype=np.int16).reshape(len(rows), 3), DedupConfig(),
        window_phash=np.array([f["window_phash"] for f in ordered], dtype=np.int64),
        window_dhash=np.array([f["window_dhash"] for f in ordered], dtype=np.int64),
        thumbnails=np.frombuffer(b"".join(f["thumbnail"] for f in ordered), dtype=np.uint8).reshape(
            len(rows), THUMB_SIDE, THUMB_SIDE))
    crossing = [(rows[i]["pair_id"], rows[j]["pair_id"]) for i, j in pairs if rows[i]["split"] != rows[j]["split"]]
    return dg.AssetCheckResult(passed=not crossing, metadata={
        "near_duplicate_pairs": len(pairs), "crossing_split": len(crossing),
        "sample": dg.MetadataValue.json(crossing[:SAMPLE])})


def _cached_features(cache: Path, shas: set[str]) -> dict[str, dict]:
    table = pq.read_table(cache, columns=["sha256", "window_phash", "window_dhash", "thumbnail"])
    table = table.filter(pc.is_in(table.column("sha256"), value_set=pa.array(sorted(shas), pa.string())))
    return {row["sha256"]: row for row in table.to_pylist()}


@dg.asset_check(asset=curated_pairs, blocking=True)
def curated_pairs_unique_ids(catalog: CatalogDB) -> dg.AssetCheckResult:
    """pair_id is unique: training and evaluation join on it."""
    repeated = catalog.query("SELECT pair_id, count(*) AS n FROM curated_pairs GROUP BY 1 HAVING n > 1")
    return dg.AssetCheckResult(passed=not repeated, metadata={"repeated_ids": len(repeated)})


@dg.asset_check(asset=curated_pairs, blocking=True)
def curated_pairs_captions_non_empty(catalog: CatalogDB) -> dg.AssetCheckResult:
    """Every pair has a caption: a pair without text teaches the model nothing."""
    (row,) = catalog.query("SELECT count(*) AS n FROM curated_pairs WHERE coalesce(trim(caption), '') = ''")
    return dg.AssetCheckResult(passed=row["n"] == 0, metadata={"empty_captions": row["n"]})


@dg.asset_check(asset=curated_pairs, blocking=True)
def curated_pairs_images_decode(catalog: CatalogDB) -> dg.AssetCheckResult:
    """Every image_path exists and decodes: the trainer must never meet a broken file."""
    root = data_paths().root
    broken = []
    rows = catalog.query("SELECT pair_id, image_path FROM curated_pairs")
    for row in rows:
        try:
            with Image.open(root / row["image_path"]) as image:
                image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            broken.append({"pair_id": row["pair_id"], "image_path": row["image_path"], "error": str(exc)})
    return dg.AssetCheckResult(passed=not broken, metadata={
        "checked": len(rows), "broken": len(broken), "sample": dg.MetadataValue.json(broken[:SAMPLE])})


@dg.asset_check(asset=curated_pairs)
def curated_pairs_reject_rate(catalog: CatalogDB) -> dg.AssetCheckResult:
    """Per site, the share of curate-stage rejections stays under a bound: a jump
    means a shop changed its pages or a rule misfires."""
    rates = catalog.query(f"""
        WITH rejected AS (SELECT site, count(*) AS n FROM rejections WHERE stage = '{STAGE}' GROUP BY site),
             offered AS (SELECT site, count(*) + sum(len(list_filter(images, lambda i: i.status = 'ok'))) AS n
                         FROM raw_products GROUP BY site)
        SELECT o.site, coalesce(r.n, 0) AS rejected, o.n AS offered,
               round(coalesce(r.n, 0) / o.n, 4) AS rate
        FROM offered o LEFT JOIN rejected r USING (site) ORDER BY o.site""")
    high = [r for r in rates if r["rate"] > MAX_REJECT_RATE]
    return dg.AssetCheckResult(passed=not high, severity=dg.AssetCheckSeverity.WARN, metadata={
        "max_rate": MAX_REJECT_RATE, "rates": dg.MetadataValue.json(rates)})
