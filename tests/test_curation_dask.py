"""The per-image step on a Dask cluster (a real one: two worker processes on
loopback) gives exactly the local pool's rows, cache and normalised JPEGs; a worker
that cannot see the stores fails the call instead of rejecting every image."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster

from clipshoe_pipeline.curation.dask_engine import DaskCluster, WorkerStepFailed
from clipshoe_pipeline.curation.features import LocalPool, image_features, run_counts
from clipshoe_pipeline.curation.images import NormaliseConfig
from tests.test_curation_hashing import Store, catalog_images  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as local:
        yield local.scheduler_address


def stores(tmp_path, images: list[bytes]) -> tuple[Store, Store]:
    local, remote = Store(tmp_path / "local"), Store(tmp_path / "dask")
    for data in images:
        local.add(data)
        remote.add(data)
    return local, remote


def normalised_files(store: Store) -> dict[str, bytes]:
    return {path.relative_to(store.normalised).as_posix(): path.read_bytes()
            for path in store.normalised.rglob("*.jpg")}


def test_dask_gives_the_local_pools_rows_cache_and_normalised_jpegs(tmp_path, catalog_images, cluster):
    local, remote = stores(tmp_path, catalog_images)
    # Two images a task: more chunks than the four in flight, so the window refills.
    engine = DaskCluster(cluster, chunk_size=2)
    expected = local.features(engine=LocalPool(workers=2))
    table = remote.features(engine=engine)
    assert run_counts(table) == {"computed": len(catalog_images), "cached": 0}
    assert table.replace_schema_metadata(None).equals(expected.replace_schema_metadata(None))
    assert pq.read_table(remote.cache).equals(pq.read_table(local.cache))
    assert normalised_files(remote) == normalised_files(local) != {}
    assert run_counts(remote.features(engine=engine)) == {"computed": 0, "cached": len(catalog_images)}


def test_a_worker_that_cannot_see_the_store_fails_the_call(tmp_path, catalog_images, cluster):
    store = Store(tmp_path)
    store.add(catalog_images[0])
    unshared = tmp_path / "on-the-client-only"
    with pytest.raises(WorkerStepFailed, match=f"{unshared} is not a directory on worker .* must be shared storage"):
        image_features(unshared, store.normalised, store.pairs, NormaliseConfig(), store.cache, DaskCluster(cluster))
    assert not store.cache.exists()
