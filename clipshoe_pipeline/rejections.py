"""Rejections: one row per product, page or image a stage did not keep, with why.

Every stage that drops something (the crawl's failed pages and images, curation's
non-shoes, near-duplicates and caps) records it in this one shape, so nothing is lost
without a row that says so. A stage builds `REJECTED` rows; publishing stamps them
with the run that made them (`REJECTIONS_SCHEMA`, the `rejections` dataset).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

REJECTED = pa.schema([
    ("site", pa.string()), ("product_id", pa.string()), ("url", pa.string()), ("image_url", pa.string()),
    ("stage", pa.string()), ("reason", pa.string()),
])
CURATE_STAGE = "curate"  # the `stage` of curation's rows (the crawl's come from its journal)
REJECTIONS_SCHEMA = REJECTED.append(pa.field("run_id", pa.string())).append(
    pa.field("recorded_at", pa.timestamp("us", tz="UTC")))


def rejected_rows(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Dicts with REJECTED's keys (a crawl journal's rejection lines) as a table."""
    return pa.Table.from_pylist([{name: row.get(name) for name in REJECTED.names} for row in rows], schema=REJECTED)


def stamped(rejected: pa.Table, run_id: str) -> pa.Table:
    """REJECTED rows as they are published: with the run and the time."""
    n = rejected.num_rows
    stamps = [pa.array([run_id] * n), pa.array([datetime.now(timezone.utc)] * n)]
    return pa.Table.from_arrays([*rejected.select(REJECTED.names).cast(REJECTED).columns, *stamps],
                                schema=REJECTIONS_SCHEMA)
