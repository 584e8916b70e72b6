"""One feature record per stored image, cached by content hash.

`image_features` reads each image from the content-addressed store, normalises it
(curation.images), writes the normalised JPEG to its own content-addressed store
(`<normalised_dir>/<sha[:2]>/<sha>.jpg`, keyed by the ORIGINAL's sha256, written
atomically and only if absent) and computes the hashes, thumbnail and colour that
near-duplicate search uses (curation.hashing). Rejected images get a row too, with
their reason, so nothing is silently lost.

The cache is a Parquet file of these rows keyed by sha256: an image whose sha256 is
already there is not read, decoded or hashed again, so a recrawl only pays for new
pictures. The cache remembers the NormaliseConfig (and FEATURES_VERSION) it was
computed with and is ignored when either differs, since rows from other settings
would be wrong, not stale. The work itself runs on an `Engine`: a process pool on
this machine (`LocalPool`, the default) or a Dask cluster (curation.dask_engine).
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import ImageStat

from clipshoe_pipeline.curation.config import NormaliseConfig
from clipshoe_pipeline.curation.hashing import perceptual_hashes, thumbnail, window_hashes
from clipshoe_pipeline.curation.images import Rejected, normalise
from clipshoe_pipeline.parquet_io import write_parquet_atomic
from clipshoe_common.files import write_once

# Bump when the computation changes without NormaliseConfig changing: old cache rows are then dropped.
FEATURES_VERSION = 3  # 2: crop-window hashes; 3: verification thumbnail
STATUS_OK = "ok"
STATUS_REJECTED = "rejected"
# Not an image defect but a store one; never cached, so the image is retried once it is back.
MISSING_FILE = "missing_file"

FEATURES_SCHEMA = pa.schema([
    pa.field("sha256", pa.string(), nullable=False),  # of the stored original
    pa.field("status", pa.string(), nullable=False),  # ok | rejected
    pa.field("reason", pa.string()),  # curation.images.Reason value or missing_file; null when ok
    pa.field("width", pa.int64()),  # original, upright (EXIF applied); null if unreadable
    pa.field("height", pa.int64()),
    pa.field("bytes", pa.int64()),
    pa.field("format", pa.string()),  # JPEG, PNG, GIF, WEBP, ...
    pa.field("norm_path", pa.string()),  # relative to the normalised store; null when rejected
    pa.field("norm_width", pa.int64()),
    pa.field("norm_height", pa.int64()),
    pa.field("phash", pa.int64()),  # curation.hashing bit layout, two's complement
    pa.field("dhash", pa.int64()),
    # The same hashes of curation.hashing.CROP_WINDOWS, in that order: re-cropped copies.
    pa.field("window_phash", pa.list_(pa.int64())),
    pa.field("window_dhash", pa.list_(pa.int64())),
    # curation.hashing.thumbnail: the grey THUMB_SIDE^2 bytes that verify hash matches.
    pa.field("thumbnail", pa.binary()),
    # Mean colour of the normalised image, 0-255. int16, not uint8, so that
    # differences taken in numpy do not wrap around.
    pa.field("mean_r", pa.int16()),
    pa.field("mean_g", pa.int16()),
    pa.field("mean_b", pa.int16()),
])
_CONFIG_KEY = b"clipshoe.features_config"
_COMPUTED_KEY = b"clipshoe.computed"
_CACHED_KEY = b"clipshoe.cached"
Job = tuple[str, str]  # (sha256, path relative to the image store)
_TASKS_PER_WORKER = 8  # chunks per worker: big enough to amortise pickling, small enough to balance load


def normalised_relpath(sha256: str) -> str:
    """Where an image's normalised JPEG lives, relative to the normalised store."""
    return f"{sha256[:2]}/{sha256}.jpg"


def default_workers() -> int:
    """The CPUs this process may run on (2 on the reference machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def image_features(store_dir: Path, normalised_dir: Path, sha256_path_pairs: Iterable[Job],
                   config: NormaliseConfig, cache_path: Path, engine: Engine | None = None) -> pa.Table:
    """A FEATURES_SCHEMA row per distinct sha256 in `sha256_path_pairs` ((sha256, path
    relative to `store_dir`)), sorted by sha256. Rows come from the cache when
    present; the rest are computed by `engine` (default: LocalPool(), a process per CPU) and
    added to the cache. `run_counts(table)` says how many of each."""
    wanted = dict(sha256_path_pairs)  # one stored path per picture: identical bytes, any will do
    cache = _read_cache(Path(cache_path), config)
    hits = _cached_rows(cache, wanted, Path(normalised_dir))
    hit_set = set(hits.column("sha256").to_pylist())
    todo = [(sha, path) for sha, path in wanted.items() if sha not in hit_set]
    computed = pa.Table.from_pylist(
        (engine or LocalPool()).records(todo, Path(store_dir), Path(normalised_dir), config),
        schema=FEATURES_SCHEMA)
    if todo:
        _write_cache(cache, computed, Path(cache_path), config)
    table = pa.concat_tables([hits, computed]).sort_by("sha256")
    return table.replace_schema_metadata({_COMPUTED_KEY: str(len(todo)), _CACHED_KEY: str(len(hits))})


def run_counts(table: pa.Table) -> dict[str, int]:
    """{"computed": n, "cached": m} of the image_features call that returned `table`."""
    metadata = table.schema.metadata or {}
    return {"computed": int(metadata.get(_COMPUTED_KEY, 0)), "cached": int(metadata.get(_CACHED_KEY, 0))}


# -- per image (runs in the engine's workers) ---------------------------------------


def image_record(sha256: str, path: Path, normalised_dir: Path, config: NormaliseConfig) -> dict[str, Any]:
    """The FEATURES_SCHEMA row of one stored image; writes its normalised JPEG."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {"sha256": sha256, "status": STATUS_REJECTED, "reason": MISSING_FILE}
    result = normalise(data, config)
    original = {"sha256": sha256, "width": result.width, "height": result.height, "bytes": result.bytes,
                "format": result.format}
    if isinstance(result, Rejected):
        return original | {"status": STATUS_REJECTED, "reason": str(result.reason)}
    norm_path = normalised_relpath(sha256)
    write_once(normalised_dir / norm_path, result.jpeg)
    phash, dhash = perceptual_hashes(result.grey)
    window_phash, window_dhash = window_hashes(result.grey)
    mean_r, mean_g, mean_b = (round(channel) for channel in ImageStat.Stat(result.image).mean)
    return original | {"status": STATUS_OK, "reason": None, "norm_path": norm_path,
                       "norm_width": result.image.width, "norm_height": result.image.height,
                       "phash": phash, "dhash": dhash, "window_phash": window_phash,
                       "window_dhash": window_dhash, "thumbnail": thumbnail(result.grey),
                       "mean_r": mean_r, "mean_g": mean_g, "mean_b": mean_b}


def image_records(jobs: list[Job], store_dir: Path, normalised_dir: Path,
                  config: NormaliseConfig) -> list[dict[str, Any]]:
    """The rows of `jobs`, in order, computed in this process: one engine task's work."""
    return [image_record(sha256, store_dir / relpath, normalised_dir, config) for sha256, relpath in jobs]


# -- engines: where image_records runs ---------------------------------------------


class Engine(Protocol):
    """Where the per-image step runs."""

    def records(self, jobs: list[Job], store_dir: Path, normalised_dir: Path,
                config: NormaliseConfig) -> list[dict[str, Any]]:
        """The image_record rows of `jobs`, in the order of `jobs`."""


@dataclasses.dataclass(frozen=True)
class LocalPool:
    """Processes on this machine: decoding is CPU-bound, and the GIL rules out threads."""

    workers: int | None = None  # None: default_workers()

    def records(self, jobs: list[Job], store_dir: Path, normalised_dir: Path,
                config: NormaliseConfig) -> list[dict[str, Any]]:
        workers = self.workers or default_workers()
        if workers <= 1 or len(jobs) <= 1:
            return image_records(jobs, store_dir, normalised_dir, config)
        chunk_size = max(1, math.ceil(len(jobs) / (workers * _TASKS_PER_WORKER)))
        task = partial(image_records, store_dir=store_dir, normalised_dir=normalised_dir, config=config)
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=_pool_context()) as pool:
            return [row for rows in pool.map(task, job_chunks(jobs, chunk_size)) for row in rows]


def job_chunks(jobs: list[Job], size: int) -> Iterator[list[Job]]:
    """`jobs` in consecutive slices of `size`, made one at a time."""
    return (jobs[start:start + size] for start in range(0, len(jobs), size))


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver, not fork: the caller (a Dagster run) has threads, and forking a
    # threaded process can deadlock the child on a lock some thread held. The server
    # imports the main module (Python's default) and this one once, if it is not
    # running yet, so workers fork with them loaded instead of each importing
    # numpy, scipy and Pillow on start-up.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    return context


# -- cache ----------------------------------------------------------------------------


def _config_key(config: NormaliseConfig) -> bytes:
    return json.dumps({"version": FEATURES_VERSION, **dataclasses.asdict(config)}, sort_keys=True).encode()


def _read_cache(cache_path: Path, config: NormaliseConfig) -> pa.Table:
    """The cached rows, or none if the file is absent or from other settings."""
    empty = FEATURES_SCHEMA.empty_table()
    if not cache_path.exists():
        return empty
    cache = pq.read_table(cache_path)
    if (cache.schema.metadata or {}).get(_CONFIG_KEY) != _config_key(config):
        return empty
    cache = cache.replace_schema_metadata(None)
    return cache if cache.schema.equals(FEATURES_SCHEMA) else empty


def _cached_rows(cache: pa.Table, wanted: dict[str, str], normalised_dir: Path) -> pa.Table:
    """Cached rows for wanted images, except kept images whose normalised JPEG has
    gone (those are recomputed, so every returned norm_path exists)."""
    hits = cache.filter(pc.is_in(cache.column("sha256"), value_set=pa.array(list(wanted), pa.string())))
    present = [path is None or (normalised_dir / path).exists() for path in hits.column("norm_path").to_pylist()]
    return hits.filter(pa.array(present, pa.bool_()))


def _write_cache(cache: pa.Table, computed: pa.Table, cache_path: Path, config: NormaliseConfig) -> None:
    cacheable = computed.filter(pc.not_equal(pc.fill_null(computed.column("reason"), ""), MISSING_FILE))
    kept = cache.filter(pc.invert(pc.is_in(cache.column("sha256"), value_set=cacheable.column("sha256"))))
    merged = pa.concat_tables([kept, cacheable]).sort_by("sha256")
    write_parquet_atomic(merged.replace_schema_metadata({_CONFIG_KEY: _config_key(config)}), cache_path)
