"""UT Zappos50K from a local copy in the official layout (docs/references.md), with its
quirks counted.

    $CLIPSHOE_ZAPPOS_DIR/ut-zap50k-images-square/<Category>/<SubCategory>/<Brand>/<PID>.<COLOR>.jpg
                        (or ut-zap50k-images/, used when the square variant is absent)
    $CLIPSHOE_ZAPPOS_DIR/ut-zap50k-data/meta-data.csv   CID=<PID>-<COLOR>, Category, ...

The dataset's licence forbids redistribution, so it is never bundled: `clipshoe zappos
fetch` (zappos_fetch.py) downloads it from its authors into the data dir; with no copy
the evaluation says "not configured" instead of producing numbers. Known
quirks (duplicate CIDs, images without a metadata row, rows without an image) are
skipped and counted in a `ZapposReport`, never fatal: the first row of a duplicated
CID is kept, and of several image files for one CID the first in path order.
Attribute values are normalised (split on ';', whitespace collapsed, empty parts
dropped, spellings that differ only in case merged into the most frequent one) so
one material does not become two classes.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_DIRS = ("ut-zap50k-images-square", "ut-zap50k-images")  # preferred first
METADATA_CSV = Path("ut-zap50k-data") / "meta-data.csv"
METADATA_ATTRIBUTES = ("Category", "SubCategory", "HeelHeight", "Insole", "Closure", "Gender", "Material",
                       "ToeStyle")
# Insole is left out: it cannot be seen on a photo of the outside of a shoe.
EVALUATED_ATTRIBUTES = ("Category", "SubCategory", "Gender", "Closure", "Material", "HeelHeight", "ToeStyle")
NOT_CONFIGURED = ("UT Zappos50K evaluation not configured: run `clipshoe zappos fetch` (into the data dir's "
                  "zappos/), or set CLIPSHOE_ZAPPOS_DIR (or the evaluation's zappos_dir) to a local copy "
                  "(official layout)")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ZapposItem:
    cid: str
    image_path: Path
    brand: str  # from the folder name; the metadata has no brand
    attributes: dict[str, tuple[str, ...]]  # attribute -> normalised values (empty: not given)


@dataclass
class ZapposReport:
    """What the reader found and skipped; logged next to the metrics."""

    image_dir: str = ""
    metadata_rows: int = 0
    image_files: int = 0
    items: int = 0
    duplicate_rows: int = 0  # rows repeating an earlier CID (dropped)
    duplicate_images: int = 0  # image files repeating an earlier CID (dropped)
    images_without_row: int = 0
    rows_without_image: int = 0
    empty_values: dict[str, int] = field(default_factory=dict)  # attribute -> items without a value


@dataclass(frozen=True)
class ZapposDataset:
    items: list[ZapposItem]
    report: ZapposReport


def load_zappos(root: Path) -> ZapposDataset:
    """The items of the copy at `root` that have both an image and a metadata row."""
    image_dir = next((root / name for name in IMAGE_DIRS if (root / name).is_dir()), None)
    if image_dir is None:
        raise FileNotFoundError(f"{root} holds none of {', '.join(IMAGE_DIRS)}")
    report = ZapposReport(image_dir=image_dir.name)
    rows = _metadata_rows(root / METADATA_CSV, report)
    images = _image_files(image_dir, report)
    report.images_without_row = len(images.keys() - rows.keys())
    report.rows_without_image = len(rows.keys() - images.keys())

    canonical = {attribute: _canonical_spellings(split_values(row.get(attribute)) for row in rows.values())
                 for attribute in METADATA_ATTRIBUTES}
    items = []
    for cid in sorted(rows.keys() & images.keys()):
        path = images[cid]
        attributes = {attribute: tuple(dict.fromkeys(canonical[attribute][value.casefold()]
                                                     for value in split_values(rows[cid].get(attribute))))
                      for attribute in METADATA_ATTRIBUTES}
        items.append(ZapposItem(cid=cid, image_path=path, brand=path.parent.name, attributes=attributes))
    report.items = len(items)
    report.empty_values = {attribute: sum(not item.attributes[attribute] for item in items)
                           for attribute in METADATA_ATTRIBUTES}
    return ZapposDataset(items=items, report=report)


def split_values(field_value: str | None) -> list[str]:
    """'Leather; Rubber ;' -> ['Leather', 'Rubber']: one metadata field's values."""
    parts = (_WHITESPACE.sub(" ", part).strip() for part in (field_value or "").split(";"))
    return [part for part in parts if part]


def _metadata_rows(path: Path, report: ZapposReport) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    # The names in it are ASCII; replacing a stray byte beats failing the whole evaluation.
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        for row in csv.DictReader(handle):
            report.metadata_rows += 1
            cid = (row.get("CID") or "").strip()
            if cid in rows:
                report.duplicate_rows += 1
            elif cid:
                rows[cid] = row
    return rows


def _image_files(image_dir: Path, report: ZapposReport) -> dict[str, Path]:
    images: dict[str, Path] = {}
    for path in sorted(image_dir.glob("*/*/*/*.jpg")):  # Category/SubCategory/Brand/file
        report.image_files += 1
        cid = path.stem.replace(".", "-")
        if cid in images:
            report.duplicate_images += 1
        else:
            images[cid] = path
    return images


def _canonical_spellings(values_per_row: Iterable[list[str]]) -> dict[str, str]:
    """casefolded value -> its most frequent spelling (ties: the alphabetically first)."""
    counts = Counter(value for values in values_per_row for value in values)
    canonical: dict[str, str] = {}
    for spelling, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        canonical.setdefault(spelling.casefold(), spelling)
    return canonical
