"""raw_products Parquet: schema derived from ProductItem, atomic replacement."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipshoe_pipeline.parquet_io import RAW_PRODUCTS_SCHEMA, arrow_type, raw_products_table, write_parquet_atomic
from scrapers.items import FIELD_NAMES
from tests.builders import item_row


def test_schema_has_one_column_per_item_field_with_nullability_from_the_annotations():
    assert RAW_PRODUCTS_SCHEMA.names == list(FIELD_NAMES)
    assert RAW_PRODUCTS_SCHEMA.field("brand").nullable and RAW_PRODUCTS_SCHEMA.field("price").nullable
    assert not RAW_PRODUCTS_SCHEMA.field("product_id").nullable
    assert RAW_PRODUCTS_SCHEMA.field("attributes").type == pa.map_(pa.string(), pa.string())
    assert RAW_PRODUCTS_SCHEMA.field("images").type.value_type.field("status").type == pa.string()


def test_arrow_type_rejects_types_it_cannot_map():
    with pytest.raises(TypeError):
        arrow_type(set[str])


def test_rows_round_trip_through_parquet(tmp_path):
    path = tmp_path / "site=tiki" / "raw_products.parquet"
    rows = [item_row("1"), item_row("2", brand=None, price=None, attributes={})]
    write_parquet_atomic(raw_products_table(rows), path)
    back = pq.read_table(path).to_pylist()
    assert [r["product_id"] for r in back] == ["1", "2"]
    assert back[0]["attributes"] == [("colour", "đen")] and back[1]["brand"] is None
    assert back[0]["images"][0]["status"] == "ok"


def test_a_null_in_a_required_column_is_refused():
    with pytest.raises(ValueError, match="title"):
        raw_products_table([item_row("1", title=None)])


def test_a_failing_write_keeps_the_old_file_and_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "raw_products.parquet"
    write_parquet_atomic(raw_products_table([item_row("old")]), path)
    before = path.read_bytes()

    def write_half_then_fail(table, sink, **kwargs):
        sink.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(raw_products_table([item_row("new")]), path)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["raw_products.parquet"]
