"""The catalog: DuckDB views over the Parquet datasets, and the one way to read them.

Parquet is the only copy of every table. `clipshoe.duckdb` holds no table data: each
dataset (`DATASETS`) is a view over its files (`read_parquet` of a glob, hive
partitions such as `site=` becoming columns), so a writer publishes by renaming a
finished Parquet file into place and every reader sees it at its next query. A
dataset written as one file per run (`metrics`, `model_checkpoints`) grows by adding
files, so concurrent writers never lose each other's rows.

DuckDB lets one process open a file read-write, or several read-only, never both; a
second writer fails rather than waits. Only view definitions are ever written, and
only when one is missing or points elsewhere (a dataset's first file, a moved data
directory), under an advisory file lock (`clipshoe.duckdb.lock`: exclusive to write
views, shared to read) that queues those rare writes behind running queries.

Readers: `query` (rows as dicts, for checks, reports and tests), `table` (a whole dataset with the Arrow types its writer gave it,
for training and evaluation) and `batches` (record batches of a dataset's files in a
stable order, for curation's streaming read of raw_products).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from clipshoe_pipeline.paths import DataPaths, data_paths

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class Dataset:
    """A folder under DataPaths.parquet and the glob of its files; with `derive`, a
    query over them (`{files}` in it is the files' table function)."""

    folder: str
    pattern: str
    hive: bool = False  # partition folders (key=value) become columns
    derive: str | None = None

    def files(self, parquet_root: Path) -> list[Path]:
        return sorted((parquet_root / self.folder).glob(self.pattern))

    def source(self, parquet_root: Path) -> str:
        """The table function the view selects from."""
        glob = (parquet_root / self.folder / self.pattern).as_posix().replace("'", "''")
        # union_by_name: a file written before a column existed reads it as null.
        files = f"read_parquet('{glob}', hive_partitioning = {str(self.hive).lower()}, union_by_name = true)"
        return f"({self.derive.format(files=files)})" if self.derive else files


# One row per product per distinct state, from the crawls' observations: a state starts
# when a product is first seen, changes (title, price, currency or image list) or comes
# back after missing a crawl, and ends (valid_to) at the first crawl of its site that saw
# it differently or not at all; valid_to is null for the current state of a listed product.
PRODUCT_HISTORY = """
WITH observed AS (
    SELECT site, product_id, crawl_started_at, title, price, currency, image_urls,
           dense_rank() OVER (PARTITION BY site ORDER BY crawl_started_at) AS crawl_no
    FROM {files}),
crawls AS (SELECT DISTINCT site, crawl_no, crawl_started_at FROM observed),
marked AS (
    SELECT *, coalesce(lag(crawl_no) OVER product <> crawl_no - 1
                       OR (title, price, currency, image_urls) IS DISTINCT FROM
                          lag((title, price, currency, image_urls)) OVER product, true) AS new_state
    FROM observed WINDOW product AS (PARTITION BY site, product_id ORDER BY crawl_no)),
states AS (
    SELECT site, product_id, any_value(title) AS title, any_value(price) AS price,
           any_value(currency) AS currency, any_value(image_urls) AS image_urls,
           min(crawl_started_at) AS valid_from, max(crawl_no) AS last_crawl_no
    FROM (SELECT *, sum(new_state::INTEGER) OVER (PARTITION BY site, product_id ORDER BY crawl_no) AS state_no
          FROM marked)
    GROUP BY site, product_id, state_no),
products AS (
    SELECT site, product_id, min(valid_from) AS first_seen, max(last_crawl_no) AS last_crawl_no
    FROM states GROUP BY site, product_id),
latest AS (SELECT site, max(crawl_no) AS crawl_no FROM crawls GROUP BY site)
SELECT s.site, s.product_id, s.title, s.price, s.currency, s.image_urls, s.valid_from,
       ended.crawl_started_at AS valid_to, p.first_seen, seen.crawl_started_at AS last_seen,
       p.last_crawl_no < latest.crawl_no AS disappeared
FROM states s
JOIN products p ON p.site = s.site AND p.product_id = s.product_id
JOIN latest ON latest.site = s.site
JOIN crawls seen ON seen.site = s.site AND seen.crawl_no = p.last_crawl_no
LEFT JOIN crawls ended ON ended.site = s.site AND ended.crawl_no = s.last_crawl_no + 1
"""


DATASETS = {
    "raw_products": Dataset("raw_products", "site=*/*.parquet", hive=True),
    "rejections": Dataset("rejections", "site=*/*.parquet", hive=True),
    "product_observations": Dataset("product_observations", "site=*/*.parquet", hive=True),
    "product_history": Dataset("product_observations", "site=*/*.parquet", hive=True, derive=PRODUCT_HISTORY),
    "curated_pairs": Dataset("curated_pairs", "*.parquet"),
    "near_duplicates": Dataset("near_duplicates", "*.parquet"),
    "model_checkpoints": Dataset("model_checkpoints", "*.parquet"),
    "metrics": Dataset("metrics", "*.parquet"),
}


class CatalogDB(dg.ConfigurableResource):
    """The data directory: its Parquet datasets read through DuckDB views, the views
    published, and (`paths`) where every asset writes its files, so that what an asset
    writes and what the catalog reads are always the same directory."""

    data_dir: str | None = None  # default: $CLIPSHOE_DATA_DIR (clipshoe_pipeline.settings), resolved per call

    @property
    def paths(self) -> DataPaths:
        return DataPaths(Path(self.data_dir).absolute()) if self.data_dir else data_paths()

    @property
    def database(self) -> Path:
        return self.paths.catalog_db

    @property
    def parquet_root(self) -> Path:
        return self.paths.parquet

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        import duckdb  # here: every run worker loads this module, most never query (0.2 s)

        database = self.database
        database.parent.mkdir(parents=True, exist_ok=True)
        with open(database.with_name(database.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)  # released when closed
            connection = duckdb.connect(str(database), read_only=not write)
            try:
                yield connection
            finally:
                connection.close()

    def publish(self, *names: str) -> None:
        """Make the catalog's view of each named dataset (all when none are named) match
        its files: created when the first file exists, dropped when none is left,
        untouched (no write at all) when it is already right. Idempotent."""
        wanted = {}
        for name in names or tuple(DATASETS):
            dataset = DATASETS[name]
            wanted[name] = dataset.source(self.parquet_root) if dataset.files(self.parquet_root) else None
        current = self._view_sources()
        stale = {name: source for name, source in wanted.items() if current.get(name) != source}
        if not stale:
            return
        with self._connect(write=True) as connection:
            for name, source in stale.items():
                if source is None:
                    connection.execute(f"DROP VIEW IF EXISTS {name}")
                    continue
                connection.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {source}")
                # DuckDB re-renders a view's SQL; the comment keeps the source as written, to compare.
                quoted = source.replace("'", "''")
                connection.execute(f"COMMENT ON VIEW {name} IS '{quoted}'")

    def _view_sources(self) -> dict[str, str]:
        if not self.database.exists():
            return {}
        with self._connect(write=False) as connection:
            return dict(connection.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())

    def tables(self) -> set[str]:
        """The datasets the catalog can query now (none before the first write)."""
        return set(self._view_sources()) & set(DATASETS)

    def query(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query, as dicts (for checks, reports and tests)."""
        with self._connect(write=False) as connection:
            cursor = connection.execute(sql, parameters)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def table(self, name: str) -> pa.Table:
        """A whole dataset as its files hold it (their own Arrow types, in path order)."""
        return pa.concat_tables([pq.read_table(path) for path in self.files(name)], promote_options="default")

    def files(self, name: str) -> list[Path]:
        """The Parquet files of a dataset, sorted by path."""
        return DATASETS[name].files(self.parquet_root)

    def batches(self, name: str, columns: Sequence[str], *, optional: Sequence[str] = (),
                batch_rows: int = 4096, order: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
        """Record batches of `columns` (and of `optional`, where a file has them) of a
        dataset, file by file. `order`: path fragments (e.g. "site=tiki") that put the
        files matching them first, in that order."""
        files = self.files(name)
        rank = {path: next((i for i, part in enumerate(order) if part in path.parts), len(order)) for path in files}
        for path in sorted(files, key=lambda p: (rank[p], p)):
            file = pq.ParquetFile(path)
            present = [column for column in optional if column in file.schema_arrow.names]
            yield from file.iter_batches(batch_size=batch_rows, columns=[*columns, *present])
