"""How varied the dataset is: pairs per shoe type, colour, brand, site, price band and
seller, per split, and how concentrated each of these is.

The seed asks for pairs "rich and varied in style, colour, brand". A crawl can meet
every quality rule and still be a few brands or one big shop photographed a thousand
times, which teaches CLIP those few looks; these numbers show that before training does.
Values are read as captions read them (clean_title, the category leaf), so a brand
counted here is the brand a caption names.

Seller: raw_products carries no seller column yet. The spread and concentration of
sellers are reported as soon as it does (a `seller` string column); until then the
dimension is left out rather than shown as one unknown seller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clipshoe_pipeline.curation.text import clean_category_path, clean_title
from clipshoe_pipeline.markdown import markdown_table
from clipshoe_pipeline.plots import pyplot, save_figure

SELLER = "seller"
# What the report reads of raw_products; SELLER too where a crawl wrote it.
ATTRIBUTE_COLUMNS = ("site", "product_id", "brand", "category_path", "attributes", "price", "currency")
DIMENSIONS = ("shoe_type", "colour", "brand", "site", "price_band", SELLER)
SPLITS = ("train", "test")
UNKNOWN = "(unknown)"
NOT_VND = "(not VND)"  # Zalora prices in MYR: no exchange rate is guessed
# Upper edges of the price bands (VND): budget, mid, upper-mid, premium, luxury shoes.
PRICE_BAND_EDGES_VND = (300_000, 700_000, 1_500_000, 3_000_000)
# product_attributes' output: the product's key and its value in every dimension but site.
ATTRIBUTES_SCHEMA = pa.schema([("site", pa.string()), ("product_id", pa.string()),
                               *((name, pa.string()) for name in DIMENSIONS if name != "site")])
TOP = 10  # the concentration measure: share of pairs of the TOP largest values
TABLE_ROWS = 20  # values listed per markdown table; the rest are summed in one row
PLOT_BARS = 10
_PATH_SEPARATOR = "\x1f"  # joins a category path into one string; no category name contains it


def _vnd(amount: int) -> str:
    return f"{amount / 1_000_000:g}M" if amount >= 1_000_000 else f"{amount // 1000}k"


PRICE_BANDS = (f"< {_vnd(PRICE_BAND_EDGES_VND[0])}",
               *(f"{_vnd(low)}–{_vnd(high)}" for low, high in zip(PRICE_BAND_EDGES_VND, PRICE_BAND_EDGES_VND[1:])),
               f"≥ {_vnd(PRICE_BAND_EDGES_VND[-1])}")


@dataclass(frozen=True)
class Spread:
    """One dimension of the dataset: pairs per value and split, and its concentration
    over the pairs whose value is known (an unknown brand is not a brand)."""

    dimension: str
    pairs: dict[str, dict[str, int]]  # value -> split -> pairs; most pairs first (price bands in band order)
    total: int
    known: int  # pairs whose value is known
    top_share: float  # pairs of the TOP largest known values / known pairs
    normalised_entropy: float  # Shannon entropy of the known values / log(their number): 1 is an even spread


def product_attributes(batches: Iterable[pa.RecordBatch]) -> pa.Table:
    """site, product_id, shoe_type, colour, brand, price_band and seller (null where
    raw_products has none) of each product, from record batches of raw_products (at
    least ATTRIBUTE_COLUMNS). Cleaning runs once per distinct value, not per product:
    brands, colours and category paths repeat across the catalog."""
    tables = []
    for batch in batches:
        seller = (batch.column(SELLER).cast(pa.string()) if SELLER in batch.schema.names
                  else pa.nulls(batch.num_rows, pa.string()))
        tables.append(pa.table({
            "site": batch.column("site"), "product_id": batch.column("product_id"),
            "shoe_type": _cleaned(pc.binary_join(batch.column("category_path"), _PATH_SEPARATOR), _category_leaf),
            "colour": _cleaned(pc.map_lookup(batch.column("attributes"), pa.scalar("colour"), "first"), clean_title),
            "brand": _cleaned(batch.column("brand"), clean_title),
            "price_band": _price_band(batch.column("price"), batch.column("currency")),
            SELLER: seller,
        }, schema=ATTRIBUTES_SCHEMA))
    return pa.concat_tables(tables) if tables else ATTRIBUTES_SCHEMA.empty_table()


def dataset_diversity(pairs: pa.Table, attributes: pa.Table) -> dict[str, Spread]:
    """The spread of `pairs` (CURATED_PAIRS_SCHEMA) over every dimension, from the
    `attributes` of their products (product_attributes). Seller only where some
    product has one."""
    joined = pairs.select(["site", "product_id", "split"]).join(attributes, ["site", "product_id"],
                                                                join_type="left outer")
    return {dimension: _spread(joined, dimension) for dimension in DIMENSIONS
            if dimension != SELLER or joined.column(SELLER).null_count < joined.num_rows}


def concentration_numbers(report: dict[str, Spread]) -> dict[str, float]:
    """The concentration of every dimension under stable keys, for the UI's plots over runs."""
    numbers = {}
    for dimension, spread in report.items():
        numbers[f"top{TOP}_{dimension}_share"] = round(spread.top_share, 4)
        numbers[f"{dimension}_entropy"] = round(spread.normalised_entropy, 4)
    return numbers


def concentration_markdown(report: dict[str, Spread]) -> str:
    rows = [[s.dimension, len(s.pairs) - (UNKNOWN in s.pairs), _percent(s.known, s.total), f"{s.top_share:.1%}",
             f"{s.normalised_entropy:.3f}"] for s in report.values()]
    if SELLER not in report:
        rows.append([SELLER, "(no product has a seller: not crawled yet)", "", "", ""])
    return markdown_table(["dimension", "values", "known", f"top-{TOP} share", "normalised entropy"], rows,
                          numeric_from=1)


def spread_markdown(spread: Spread) -> str:
    """Pairs per value and split; beyond TABLE_ROWS values the rest are summed in one row."""
    listed = list(spread.pairs.items())
    shown, rest = listed[:TABLE_ROWS], listed[TABLE_ROWS:]
    if rest:
        shown.append((f"({len(rest)} other values)",
                      {split: sum(counts[split] for _, counts in rest) for split in (*SPLITS, "all")}))
    return markdown_table([spread.dimension, *SPLITS, "all", "share"],
                          ([value, *(counts[split] for split in SPLITS), counts["all"], _percent(counts["all"], spread.total)]
                           for value, counts in shown), numeric_from=1)


def write_plot(report: dict[str, Spread], path: Path) -> str:
    """One PNG: per dimension, the pairs of its PLOT_BARS largest values, train and test
    stacked. Returns markdown that shows it (plots.save_figure)."""
    plt = pyplot()
    columns = 3
    rows = math.ceil(len(report) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis, spread in zip(axes.ravel(), report.values()):
        values = list(spread.pairs)[:PLOT_BARS][::-1]  # largest at the top
        left = np.zeros(len(values))
        for split in SPLITS:
            counts = np.array([spread.pairs[value][split] for value in values])
            axis.barh(values, counts, left=left, label=split)
            left += counts
        axis.set_title(f"{spread.dimension} (top-{TOP} share {spread.top_share:.0%})", fontsize=9)
        axis.tick_params(labelsize=7)
    for axis in axes.ravel()[len(report):]:
        axis.axis("off")
    axes[0][0].legend(fontsize=7)
    return save_figure(figure, path)


def _spread(joined: pa.Table, dimension: str) -> Spread:
    counted = (pa.table({"value": pc.fill_null(joined.column(dimension), UNKNOWN), "split": joined.column("split")})
               .group_by(["value", "split"]).aggregate([([], "count_all")]))
    pairs: dict[str, dict[str, int]] = {}
    for value, split, count in zip(*(counted.column(name).to_pylist() for name in ("value", "split", "count_all"))):
        pairs.setdefault(value, dict.fromkeys((*SPLITS, "all"), 0))[split] = count
    for counts in pairs.values():
        counts["all"] = sum(counts[split] for split in SPLITS)
    band = {name: number for number, name in enumerate((*PRICE_BANDS, NOT_VND, UNKNOWN))}
    order = ((lambda value: band[value]) if dimension == "price_band"
             else (lambda value: (value == UNKNOWN, -pairs[value]["all"], value)))
    pairs = {value: pairs[value] for value in sorted(pairs, key=order)}
    known = np.array([counts["all"] for value, counts in pairs.items() if value != UNKNOWN], dtype=np.int64)
    return Spread(dimension=dimension, pairs=pairs, total=joined.num_rows, known=int(known.sum()),
                  top_share=float(np.sort(known)[::-1][:TOP].sum() / known.sum()) if known.sum() else 0.0,
                  normalised_entropy=_normalised_entropy(known))


def _normalised_entropy(counts: np.ndarray) -> float:
    """Entropy over log(number of values): comparable across dimensions with different numbers of values."""
    if len(counts) < 2:
        return 0.0
    share = counts / counts.sum()
    return float(-(share * np.log(share)).sum() / math.log(len(counts)))


def _cleaned(values: pa.Array, clean: Callable[[str], str]) -> pa.Array:
    """`clean` applied once per distinct value; empty results become null (unknown)."""
    encoded = pc.dictionary_encode(values)
    cleaned = pa.array([clean(value) or None for value in encoded.dictionary.to_pylist()], pa.string())
    return cleaned.take(encoded.indices)


def _category_leaf(joined_path: str) -> str | None:
    path = clean_category_path(joined_path.split(_PATH_SEPARATOR))
    return path[-1] if path else None


def _price_band(price: pa.Array, currency: pa.Array) -> pa.Array:
    band = np.searchsorted(PRICE_BAND_EDGES_VND, pc.fill_null(price, 0.0).to_numpy(zero_copy_only=False),
                           side="right")
    labels = np.array(PRICE_BANDS, dtype=object)[band]
    labels[~pc.equal(currency, "VND").fill_null(False).to_numpy(zero_copy_only=False)] = NOT_VND
    labels[price.is_null().to_numpy(zero_copy_only=False)] = None
    return pa.array(labels, pa.string())


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"
