"""Checks on `curated_pairs`, run after every curation. The first four block the
assets downstream (a leaky split or a broken row would corrupt training or its
metrics); the reject rate only warns, because a shop can legitimately list junk."""

import dagster as dg
from PIL import Image

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.curate.assets import curated_pairs
from clipshoe_pipeline.rejections import CURATE_STAGE

SAMPLE = 5
MAX_REJECT_RATE = 0.5  # per site, curate-stage rejections over products + images in


@dg.asset_check(asset=curated_pairs, blocking=True)
def curated_pairs_no_cross_split_duplicates(catalog: CatalogDB) -> dg.AssetCheckResult:
    """No near-duplicate pair of kept images sits on both sides of the split, and no
    product does either. Read from the `near_duplicates` table curation wrote with
    the dataset (the pairs its clusters were built from), so the check costs a join,
    not a second search; it fails if the clusters, the one-pair-per-cluster choice or
    the grouped split ever disagree with the pairs that were found."""
    crossing = catalog.query("""
        SELECT a.pair_id AS pair_a, b.pair_id AS pair_b
        FROM near_duplicates d
        JOIN curated_pairs a ON a.image_sha256 = d.sha256_a
        JOIN curated_pairs b ON b.image_sha256 = d.sha256_b
        WHERE a.split <> b.split ORDER BY ALL""")
    products = catalog.query("""
        SELECT site, product_id FROM curated_pairs GROUP BY ALL HAVING count(DISTINCT split) > 1 ORDER BY ALL""")
    (found,) = catalog.query("SELECT count(*) AS n FROM near_duplicates")
    return dg.AssetCheckResult(passed=not crossing and not products, metadata={
        "near_duplicate_pairs": found["n"], "crossing_split": len(crossing), "products_crossing_split": len(products),
        "sample": dg.MetadataValue.json([[r["pair_a"], r["pair_b"]] for r in crossing[:SAMPLE]] + products[:SAMPLE])})


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
    root = catalog.paths.root
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
        WITH rejected AS (SELECT site, count(*) AS n FROM rejections WHERE stage = '{CURATE_STAGE}' GROUP BY site),
             offered AS (SELECT site, count(*) + sum(len(list_filter(images, lambda i: i.status = 'ok'))) AS n
                         FROM raw_products GROUP BY site)
        SELECT o.site, coalesce(r.n, 0) AS rejected, o.n AS offered,
               round(coalesce(r.n, 0) / o.n, 4) AS rate
        FROM offered o LEFT JOIN rejected r USING (site) ORDER BY o.site""")
    high = [r for r in rates if r["rate"] > MAX_REJECT_RATE]
    return dg.AssetCheckResult(passed=not high, severity=dg.AssetCheckSeverity.WARN, metadata={
        "max_rate": MAX_REJECT_RATE, "rates": dg.MetadataValue.json(rates)})
