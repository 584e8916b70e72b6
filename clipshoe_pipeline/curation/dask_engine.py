"""The per-image step of curation on a Dask cluster (`dask.distributed`).

`DaskCluster` is a features.Engine: it sends chunks of (sha256, relpath) jobs to the
cluster's workers as tasks, each running features.image_records, and puts the rows
back in job order, as the local pool returns them. Only jobs and rows travel: the
workers read the originals and write the normalised JPEGs themselves, at the paths
the client passes. So the image store and the normalised store must be shared
storage (NFS, a cluster file system), mounted at the same path on the client and on
every worker, and the workers must run this project's code at the client's version
(their tasks are this module's functions, pickled by name).

At most a few chunks per worker thread are in flight at a time: a catalog of millions
of images never becomes millions of futures on the client or tasks on the scheduler.
A chunk that fails on a worker (or whose worker keeps dying) fails the whole call
with the worker's error and the chunk's first image, so no image is silently dropped.
"""

from __future__ import annotations

import dataclasses
import math
import socket
from itertools import islice
from pathlib import Path
from typing import Any

from clipshoe_pipeline.curation.features import Job, image_records, job_chunks
from clipshoe_pipeline.curation.config import NormaliseConfig

CHUNK_SIZE = 64  # images per task: about a second of decoding, so the scheduler's ~1 ms per task is noise
_CHUNKS_PER_THREAD = 2  # one running and one waiting, so no thread idles while a result travels back


class WorkerStepFailed(RuntimeError):
    """A chunk of the per-image step failed on the cluster."""


@dataclasses.dataclass(frozen=True)
class DaskCluster:
    """An existing Dask cluster, reached through its scheduler."""

    address: str  # e.g. tcp://10.0.0.5:8786
    chunk_size: int = CHUNK_SIZE

    def records(self, jobs: list[Job], store_dir: Path, normalised_dir: Path,
                config: NormaliseConfig) -> list[dict[str, Any]]:
        # Imported here: a second and a half that every code-location load would pay otherwise.
        from distributed import Client, as_completed

        if not jobs:  # a re-run that the cache answers needs no cluster
            return []
        # Made here so that a worker that does not see it can only mean unshared storage.
        normalised_dir.mkdir(parents=True, exist_ok=True)
        results: list[list[dict[str, Any]] | None] = [None] * math.ceil(len(jobs) / self.chunk_size)
        chunks = enumerate(job_chunks(jobs, self.chunk_size))
        with Client(self.address, set_as_default=False) as client:
            # Sized once: workers that join later get tasks too, but the window stays this size.
            window = _CHUNKS_PER_THREAD * max(1, sum(client.nthreads().values()))
            in_flight: dict[Any, tuple[int, list[Job]]] = {}

            def submit(index: int, chunk: list[Job]) -> Any:
                future = client.submit(_remote_records, chunk, store_dir, normalised_dir, config, pure=False)
                in_flight[future] = (index, chunk)
                return future

            finished = as_completed([submit(*indexed) for indexed in islice(chunks, window)], loop=client.loop)
            for future in finished:
                index, chunk = in_flight.pop(future)
                try:
                    results[index] = future.result()
                except Exception as error:
                    raise WorkerStepFailed(
                        f"per-image step failed on the Dask cluster {self.address} for a chunk of {len(chunk)} "
                        f"images starting at {chunk[0][1]}: {type(error).__name__}: {error}") from error
                if (indexed := next(chunks, None)) is not None:
                    finished.add(submit(*indexed))
        return [row for rows in results for row in rows]


def _remote_records(jobs: list[Job], store_dir: Path, normalised_dir: Path,
                    config: NormaliseConfig) -> list[dict[str, Any]]:
    """One task, on a worker: image_records, once the worker is known to see both stores
    (a missing store would otherwise turn every image into a missing_file rejection)."""
    for directory in (store_dir, normalised_dir):
        if not directory.is_dir():
            raise NotADirectoryError(
                f"{directory} is not a directory on worker host {socket.gethostname()}: the image store and "
                "the normalised store must be shared storage, mounted at the same path on every worker")
    return image_records(jobs, store_dir, normalised_dir, config)
