"""A small curated_pairs dataset written directly (no crawl): pictures whose kind and
colour the captions name, so a tiny CLIP can learn something from it in seconds."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pyarrow as pa

from clipshoe_pipeline.curation.split import grouped_split
from clipshoe_pipeline.parquet_io import write_parquet_atomic
from clipshoe_pipeline.paths import DataPaths
from replay_shop.pictures import COLOUR_RGB, PictureSpec, draw
from replay_shop.vocab import SHOE_KINDS

PICTURE_SIDE = 96


def write_curated_pairs(root: Path, products: int = 120, images_per_product: int = 2,
                        test_fraction: float = 0.1) -> pa.Table:
    """Write `products` x `images_per_product` pairs (normalised JPEGs + the Parquet
    table under `root`, as curated_pairs would) and return the table."""
    paths = DataPaths(root)
    looks = itertools.cycle(itertools.product(SHOE_KINDS, COLOUR_RGB))
    rows = []
    for product in range(products):
        kind, colour = next(looks)
        for pose in range(images_per_product):
            image = draw(PictureSpec(kind=kind, colour=colour, pose=product * 10 + pose), size=PICTURE_SIDE)
            relative = Path("normalised") / f"{product:04d}-{pose}.jpg"
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            image.save(root / relative, quality=90)
            pair_id = hashlib.sha256(f"tiki:{product}:{pose}".encode()).hexdigest()[:16]
            rows.append({"pair_id": pair_id, "site": "tiki", "product_id": str(product), "image_path": str(relative),
                         "image_sha256": hashlib.sha256((root / relative).read_bytes()).hexdigest(),
                         "cluster_id": product * 10 + pose, "caption": f"giày {kind.replace('_', ' ')} màu {colour}",
                         "category_leaf": kind.replace("_", " ")})
    splits = grouped_split([f"tiki:{r['product_id']}" for r in rows], [r["cluster_id"] for r in rows], test_fraction)
    table = pa.Table.from_pylist([dict(row, split=side) for row, side in zip(rows, splits)])
    write_parquet_atomic(table, paths.curated_pairs_parquet)
    return table
