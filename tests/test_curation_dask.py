"""The per-image step on a Dask cluster (a real one: two worker processes on
loopback) gives exactly the local pool's rows, cache and normalised JPEGs, and
curated_pairs run on it the local pool's dataset; the image_engine resource takes the
cluster from CLIPSHOE_DASK_ADDRESS; a worker that cannot see the stores fails the
call instead of rejecting every image."""

from __future__ import annotations

import dagster as dg
import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.curation.dask_engine import DaskCluster, WorkerStepFailed
from clipshoe_pipeline.curation.features import LocalPool, image_features, run_counts
from clipshoe_pipeline.curation.config import NormaliseConfig
from clipshoe_pipeline.defs.curate.assets import curated_pairs
from clipshoe_pipeline.defs.curate.resources import ImageEngine, resources
from clipshoe_pipeline.settings import DASK_ADDRESS
from clipshoe_pipeline.parquet_io import raw_products_table, write_parquet_atomic
from clipshoe_pipeline.paths import DataPaths
from tests.builders import Store, item_row


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


@pytest.mark.slow
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


def write_raw_products(root, images: list[bytes]) -> None:
    """One tiki shoe per image, its picture in root's image store, as a crawl leaves them."""
    paths = DataPaths(root)
    store = Store(root)
    rows = []
    for number, data in enumerate(images):
        sha = store.add(data)
        url = f"https://salt.tikicdn.com/{sha[:12]}.jpg"
        rows.append(item_row(str(number), image_urls=[url], images=[{
            "url": url, "status": "ok", "path": store.pairs[-1][1], "sha256": sha, "bytes": len(data),
            "width": None, "height": None, "format": "JPEG", "reason": None}]))
    write_parquet_atomic(raw_products_table(rows), paths.raw_products_parquet("tiki"))


def curate(root, images: list[bytes], image_engine: ImageEngine, monkeypatch) -> dg.ExecuteInProcessResult:
    write_raw_products(root, images)
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(root))
    result = dg.materialize([curated_pairs], resources={"catalog": CatalogDB(), "image_engine": image_engine})
    assert result.success
    return result


@pytest.mark.slow
def test_curated_pairs_on_the_cluster_named_by_the_env_var(tmp_path, catalog_images, cluster, monkeypatch):
    monkeypatch.setenv(DASK_ADDRESS, cluster)
    on_cluster = resources().resources["image_engine"]
    result = curate(tmp_path / "dask", catalog_images, on_cluster, monkeypatch)
    curate(tmp_path / "local", catalog_images, ImageEngine(), monkeypatch)
    (materialization,) = result.asset_materializations_for_node("curated_pairs")
    assert materialization.metadata["images_computed"].value == len(catalog_images)
    pairs = [pq.read_table(DataPaths(tmp_path / side).curated_pairs_parquet) for side in ("dask", "local")]
    assert pairs[0].num_rows > 0 and pairs[0].equals(pairs[1])


def test_without_the_env_var_the_local_pool_runs_with_the_run_configs_workers(monkeypatch):
    monkeypatch.delenv(DASK_ADDRESS, raising=False)
    assert resources().resources["image_engine"].engine(3) == LocalPool(3)


def test_a_local_worker_count_with_a_cluster_is_refused():
    with pytest.raises(dg.Failure, match="workers: 3, which sizes the local process pool"):
        ImageEngine(dask_address="tcp://127.0.0.1:8786").engine(3)
