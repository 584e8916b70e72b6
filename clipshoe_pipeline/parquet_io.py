"""Parquet as the pipeline writes it, and the Arrow schema of `raw_products`, derived
from scrapers.items.ProductItem.

Parquet is the source of truth that DuckDB and curation read, possibly while a new
crawl is being written, so every file is written atomically. The schema is computed from the item dataclass, so adding a
field to ProductItem adds a column (or fails loudly here if its type has no mapping).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from clipshoe_common.files import atomic_file
from scrapers.items import FIELD_NAMES, ProductItem

ROW_GROUP_ROWS = 122_880  # DuckDB's own row group size

_SCALAR_TYPES = {str: pa.string(), float: pa.float64(), int: pa.int64(), bool: pa.bool_()}

# One result per image, as scrapers.pipelines.ContentAddressedImagesPipeline writes it.
IMAGE_RESULT_TYPE = pa.struct([
    ("url", pa.string()),
    ("status", pa.string()),  # ok | failed
    ("path", pa.string()),  # relative to the image store
    ("sha256", pa.string()),
    ("bytes", pa.int64()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("format", pa.string()),
    ("reason", pa.string()),  # why it failed
])
# `list[dict[str, Any]]` says nothing about columns; the pipeline's result dicts do.
_FIELD_TYPE_OVERRIDES = {"images": pa.list_(IMAGE_RESULT_TYPE)}


def arrow_type(hint: Any) -> tuple[pa.DataType, bool]:
    """(Arrow type, nullable) for a Python type hint such as `str | None` or `list[str]`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"no Arrow type for the union {hint!r}")
        return arrow_type(present[0])[0], len(present) < len(args)
    if hint in _SCALAR_TYPES:
        return _SCALAR_TYPES[hint], False
    if origin is list:
        return pa.list_(arrow_type(args[0])[0]), False
    if origin is dict:
        return pa.map_(arrow_type(args[0])[0], arrow_type(args[1])[0]), False
    raise TypeError(f"no Arrow type for {hint!r}")


def _item_schema() -> pa.Schema:
    hints = typing.get_type_hints(ProductItem)
    fields = []
    for name in FIELD_NAMES:
        if name in _FIELD_TYPE_OVERRIDES:
            fields.append(pa.field(name, _FIELD_TYPE_OVERRIDES[name], nullable=False))
        else:
            fields.append(pa.field(name, *arrow_type(hints[name])))
    return pa.schema(fields)


RAW_PRODUCTS_SCHEMA = _item_schema()


def raw_products_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Journal rows (ProductItem dicts) as a table in RAW_PRODUCTS_SCHEMA."""
    table = pa.Table.from_pylist(list(rows), schema=RAW_PRODUCTS_SCHEMA)
    # from_pylist does not enforce `not null`; a null there is a bug upstream, not data.
    for field in RAW_PRODUCTS_SCHEMA:
        if not field.nullable and table.column(field.name).null_count:
            raise ValueError(f"raw_products column {field.name!r} must not be null")
    return table


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` as one zstd Parquet file, atomically (clipshoe_common.files)."""
    with atomic_file(path) as sink:
        # DuckDB reads a Parquet file one row group per thread: pyarrow's default of
        # ~1M rows per group would load a million-row table on one core.
        pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
