"""The DuckDB catalog (`clipshoe.duckdb`) and its single writer.

DuckDB lets one process open a database file read-write, or several read-only, never
both: a second writer does not wait, it fails with "Could not set lock on file".
Crawls of different sites run in parallel processes, so every write goes through
`CatalogDB`, which opens a short-lived connection per call under an advisory file
lock (`clipshoe.duckdb.lock`): exclusive for writes, shared for reads. Writers from
any process — Dagster runs, the CLI, tests — queue on the lock for the few hundred
milliseconds a write takes instead of crashing; the slow work (crawling, writing
Parquet) happens outside it. Tables are loaded from Parquet, the source of truth, in
bulk; nothing is inserted row by row.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa

from clipshoe_pipeline.paths import data_paths

CRAWL_STAGES = ("crawl", "download")
# DuckDB's FSST string compression was half the CPU of loading curated_pairs (hex
# hashes, URLs, captions: 3.8 CPU-s per million rows with it, 1.8 without), which kept
# bulk loads under 500k rows/s on 2 cores. The price is a larger catalog file (about
# 2.4x for curated_pairs); Parquet stays the compact source of truth.
WRITE_SETTINGS = "SET disabled_compression_methods = 'dict_fsst'"

REJECTIONS_DDL = """
CREATE TABLE IF NOT EXISTS rejections (
    site VARCHAR NOT NULL,
    product_id VARCHAR,
    url VARCHAR,
    image_url VARCHAR,
    stage VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
)
"""
_REJECTIONS_SCHEMA = pa.schema([
    ("site", pa.string()), ("product_id", pa.string()), ("url", pa.string()),
    ("image_url", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
    ("run_id", pa.string()), ("recorded_at", pa.timestamp("us", tz="UTC")),
])
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class CatalogDB(dg.ConfigurableResource):
    """Typed reads and writes of the DuckDB catalog, one short connection per call."""

    path: str | None = None  # default: $CLIPSHOE_DATA_DIR/clipshoe.duckdb, resolved per call

    @property
    def database(self) -> Path:
        return Path(self.path) if self.path else data_paths().catalog_db

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        database = self.database
        database.parent.mkdir(parents=True, exist_ok=True)
        with open(database.with_name(database.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)  # released when closed
            connection = duckdb.connect(str(database), read_only=not write)
            if write:
                connection.execute(WRITE_SETTINGS)
            try:
                yield connection
            finally:
                connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect(write=True) as connection:
            connection.begin()
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def replace_site_rows(self, table: str, site: str, parquet_path: Path) -> int:
        """Make `table`'s rows for `site` exactly the rows of `parquet_path`, in one
        transaction (readers see the old rows or the new ones). Creates the table from
        the file's schema on first use. Returns the number of rows loaded."""
        _check_identifier(table)
        source = str(parquet_path)
        with self._transaction() as connection:
            connection.execute(f"CREATE TABLE IF NOT EXISTS {table} AS "
                               "SELECT * FROM read_parquet(?) LIMIT 0", [source])
            (strangers,) = connection.execute("SELECT count(*) FROM read_parquet(?) WHERE site <> ?",
                                              [source, site]).fetchone()
            if strangers:  # they would be added without their old rows being removed
                raise ValueError(f"{parquet_path} holds {strangers} rows of sites other than {site!r}")
            connection.execute(f"DELETE FROM {table} WHERE site = ?", [site])
            connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?)", [source])
            (loaded,) = connection.execute(f"SELECT count(*) FROM {table} WHERE site = ?", [site]).fetchone()
        return loaded

    def replace_table(self, table: str, parquet_path: Path) -> int:
        """Make `table` exactly the rows of `parquet_path` (a derived table such as
        curated_pairs, rebuilt whole each run), in one transaction. Returns the row count."""
        _check_identifier(table)
        with self._transaction() as connection:
            connection.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_parquet(?)",
                               [str(parquet_path)])
            (loaded,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
        return loaded

    def replace_site_rejections(self, site: str, run_id: str, rows: Sequence[Mapping[str, Any]] | pa.Table,
                                stages: Sequence[str] = CRAWL_STAGES) -> int:
        """Make `rows` (site, product_id, url, image_url, stage, reason; dicts or an
        Arrow table) the site's rejections for `stages`, recorded under `run_id`: like
        `raw_products`, they describe the site's current snapshot, so a new crawl
        replaces the last one's."""
        rows = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(
            list(rows), schema=_REJECTIONS_SCHEMA.remove(7).remove(6))
        foreign = {tuple(key.values()) for key in rows.select(["site", "stage"]).group_by(["site", "stage"])
                   .aggregate([]).to_pylist()} - {(site, stage) for stage in stages}
        if foreign:
            raise ValueError(f"rejections outside site {site!r} / stages {tuple(stages)}: {sorted(foreign)}")
        recorded_at = datetime.now(timezone.utc)
        incoming = (rows.select(_REJECTIONS_SCHEMA.names[:6])
                    .append_column("run_id", pa.array([run_id] * rows.num_rows, pa.string()))
                    .append_column("recorded_at", pa.array([recorded_at] * rows.num_rows, pa.timestamp("us", tz="UTC")))
                    .cast(_REJECTIONS_SCHEMA))
        with self._transaction() as connection:
            connection.execute(REJECTIONS_DDL)
            connection.execute("DELETE FROM rejections WHERE site = ? AND list_contains(?, stage)",
                               [site, list(stages)])
            connection.register("incoming_rejections", incoming)
            connection.execute("INSERT INTO rejections BY NAME SELECT * FROM incoming_rejections")
        return incoming.num_rows

    def tables(self) -> set[str]:
        """Names of the catalog's tables (none before the first write)."""
        if not self.database.exists():
            return set()
        return {row["table_name"] for row in self.query("SELECT table_name FROM duckdb_tables()")}

    def query(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query, as dicts (for checks, reports and tests)."""
        with self._connect(write=False) as connection:
            cursor = connection.execute(sql, parameters)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _check_identifier(name: str) -> None:
    # Table names cannot be bound as parameters; accept only plain identifiers.
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain table name: {name!r}")
