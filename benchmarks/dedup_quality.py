"""Near-duplicate precision/recall against the replay shop's planted duplicates.

Builds the synthetic catalog of all five sites, takes every image without a planted
defect, computes what curation computes (normalised image -> pHash, dHash, crop
window hashes, thumbnail, mean colour) and scores the duplicate decision at pair
level: two images are duplicates iff they show the same ShopImage.picture_id. Prints
a sweep of the radii and the verification threshold, the recall per transform (crops
are the hard positives) and the false merges of colour variants (the hard
negatives), for choosing DedupConfig's defaults.

    python benchmarks/dedup_quality.py --products 400
Issue #3 asks for precision >= 0.98 and recall >= 0.95 at the default radius.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ImageStat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clipshoe_pipeline.curation.clusters import duplicate_pairs  # noqa: E402
from clipshoe_pipeline.curation.config import DedupConfig
from clipshoe_pipeline.curation.hashing import THUMB_SIDE, perceptual_hashes, thumbnail, window_hashes  # noqa: E402
from clipshoe_pipeline.curation.images import Normalised, normalise  # noqa: E402
from replay_shop.catalog import Catalog  # noqa: E402


@dataclass
class PlantedImages:
    """The catalog's non-defective images with their signals and ground truth."""

    phash: np.ndarray
    dhash: np.ndarray
    window_phash: np.ndarray  # (n, windows): curation.hashing.window_hashes
    window_dhash: np.ndarray
    thumbnails: np.ndarray  # (n, THUMB_SIDE, THUMB_SIDE) uint8: curation.hashing.thumbnail
    colour: np.ndarray  # (n, 3) mean RGB of the normalised image
    picture: np.ndarray  # ShopImage.picture_id
    transform: np.ndarray
    sha256: np.ndarray
    variant_group: np.ndarray  # "" when the product has no colour variants

    def truth(self) -> set[tuple[int, int]]:
        """Every pair (i < j) showing the same picture."""
        groups: dict[str, list[int]] = {}
        for index, picture in enumerate(self.picture):
            groups.setdefault(picture, []).append(index)
        return {pair for members in groups.values() for pair in itertools.combinations(members, 2)}

    def pairs(self, config: DedupConfig = DedupConfig()) -> np.ndarray:
        """The pairs curation would call duplicates under `config`."""
        return duplicate_pairs(self.phash, self.dhash, self.colour, config, self.window_phash, self.window_dhash,
                               self.thumbnails)


@dataclass
class Score:
    precision: float
    recall: float
    true_pairs: int
    false_pairs: int
    missed_pairs: int


def planted_images(seed: int, products_per_site: int) -> PlantedImages:
    catalog = Catalog(seed=seed, products_per_site=products_per_site)
    rows = []
    for site in catalog.sites:
        for product in catalog.products(site):
            for image in product.images:
                if image.defect:
                    continue
                data = catalog.image_bytes(image)
                normalised = normalise(data)
                if not isinstance(normalised, Normalised):
                    raise SystemExit(f"a planted good image was rejected: {image.url} ({normalised.reason})")
                phash, dhash = perceptual_hashes(normalised.image)
                colour = [round(c) for c in ImageStat.Stat(normalised.image).mean]
                rows.append((phash, dhash, colour, image.picture_id, image.transform,
                             hashlib.sha256(data).hexdigest(), product.variant_group or "",
                             *window_hashes(normalised.image), thumbnail(normalised.image)))
    columns = list(zip(*rows))
    return PlantedImages(phash=np.array(columns[0], dtype=np.int64), dhash=np.array(columns[1], dtype=np.int64),
                         window_phash=np.array(columns[7], dtype=np.int64),
                         window_dhash=np.array(columns[8], dtype=np.int64),
                         thumbnails=np.frombuffer(b"".join(columns[9]), dtype=np.uint8).reshape(
                             len(rows), THUMB_SIDE, THUMB_SIDE),
                         colour=np.array(columns[2], dtype=np.int16), picture=np.array(columns[3]),
                         transform=np.array(columns[4]), sha256=np.array(columns[5]),
                         variant_group=np.array(columns[6]))


def score(found: np.ndarray, truth: set[tuple[int, int]]) -> Score:
    found_set = set(map(tuple, found.tolist()))
    hits = len(found_set & truth)
    false = len(found_set) - hits
    return Score(precision=hits / len(found_set) if found_set else 1.0, recall=hits / len(truth) if truth else 1.0,
                 true_pairs=hits, false_pairs=false, missed_pairs=len(truth) - hits)


def transform_recall(images: PlantedImages, found: np.ndarray,
                     truth: set[tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """(found, planted) duplicate pairs involving each transform."""
    found_set = set(map(tuple, found.tolist()))
    counts: dict[str, list[int]] = {}
    for i, j in truth:
        for kind in {images.transform[i], images.transform[j]}:
            tally = counts.setdefault(str(kind), [0, 0])
            tally[0] += (i, j) in found_set
            tally[1] += 1
    return {kind: (hit, total) for kind, (hit, total) in sorted(counts.items())}


def colour_variant_merges(images: PlantedImages, found: np.ndarray) -> int:
    """Found pairs joining two different pictures of one model's colour variants."""
    i, j = found[:, 0], found[:, 1]
    group_i, group_j = images.variant_group[i], images.variant_group[j]
    return int(((group_i == group_j) & (group_i != "") & (images.picture[i] != images.picture[j])).sum())


def sweep() -> list[DedupConfig]:
    """A short sweep around the default: the unverified hash rule of old, then each
    knob of the default moved on its own (the crop index is the slow part)."""
    default = DedupConfig()
    unverified = DedupConfig(phash_radius=4, dhash_radius=8, colour_distance=6, crop_phash_radius=6,
                             crop_dhash_radius=5, verify_distance=None)
    moves = [{"verify_distance": value} for value in (None, 2.0, 2.5, 3.5, 5.0)]
    moves += [{"colour_distance": None}, {"phash_radius": 6, "dhash_radius": 12}, {"crop_dhash_radius": 8},
              {"crop_phash_radius": 4}, {"crop_phash_radius": None}]
    return [unverified, default] + [dataclasses.replace(default, **move) for move in moves]


def _setting(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--products", type=int, default=400, help="products per site")
    args = parser.parse_args()

    images = planted_images(args.seed, args.products)
    truth = images.truth()
    identical = sum(images.sha256[i] == images.sha256[j] for i, j in truth)
    print(f"{len(images.phash)} images, {len(set(images.picture))} distinct pictures, {len(truth)} planted "
          f"duplicate pairs ({identical} byte-identical), {len(np.unique(images.phash))} distinct pHashes\n")

    print("| pHash r | dHash r | crop pHash r | crop dHash r | verify | colour | found pairs | precision | recall "
          "| crop recall | colour-variant merges |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    found_by = {}
    for config in sweep():
        found = found_by[config] = images.pairs(config)
        result = score(found, truth)
        crop_hit, crop_total = transform_recall(images, found, truth)["crop"]
        print(f"| {config.phash_radius} | {config.dhash_radius} | {_setting(config.crop_phash_radius)} | "
              f"{_setting(config.crop_dhash_radius if config.crop_phash_radius is not None else None)} | "
              f"{_setting(config.verify_distance)} | {_setting(config.colour_distance)} | {len(found)} | "
              f"{result.precision:.3f} | {result.recall:.3f} | {crop_hit / crop_total:.3f} | "
              f"{colour_variant_merges(images, found)} |")

    default = DedupConfig()
    found = found_by[default]
    result = score(found, truth)
    print(f"\nDefault {default}: precision {result.precision:.3f}, recall {result.recall:.3f} "
          f"({result.true_pairs} found, {result.false_pairs} false, {result.missed_pairs} missed)\n")
    print("| transform | recall at the default | pairs |")
    print("|---|---:|---:|")
    for kind, (hit, total) in transform_recall(images, found, truth).items():
        print(f"| {kind} | {hit / total:.3f} | {total} |")


if __name__ == "__main__":
    main()
