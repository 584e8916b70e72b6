"""Where curated_pairs' per-image step (decode, normalise, hash, thumbnail, JPEG write)
runs: a process pool on the run's machine, or an existing Dask cluster.

Decoding a million pictures is hours of CPU on one machine and the step is
embarrassingly parallel, so a deployment can point it at a cluster without touching
the asset: set CLIPSHOE_DASK_ADDRESS to the scheduler (e.g. tcp://10.0.0.5:8786)
where the code location loads and runs, or configure `image_engine` in the UI. The
cluster's workers read and write the data dir's image stores themselves, so those
must be shared storage (see curation.dask_engine).
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from typing import TYPE_CHECKING

from clipshoe_pipeline.settings import DASK_ADDRESS, env_var_if_set

if TYPE_CHECKING:
    from clipshoe_pipeline.curation.features import Engine


class ImageEngine(dg.ConfigurableResource):
    """Chooses the features.Engine of the per-image step. The local pool's size stays
    in the run config (`workers` of CurateConfig), where existing runs set it."""

    dask_address: str | None = Field(
        default=None, description="Dask scheduler address, e.g. tcp://10.0.0.5:8786; None: a process pool "
                                  f"on the run's machine. Default: ${DASK_ADDRESS} when set.")
    chunk_size: int | None = Field(
        default=None, ge=1, description="Images per Dask task; None: curation.dask_engine.CHUNK_SIZE (the local "
                                        "pool sizes its own chunks).")

    def engine(self, workers: int | None) -> Engine:
        """The engine for a run whose config asked for `workers` local processes (None: one per CPU)."""
        # Imported by the run that uses them: both bring scipy and PIL (0.3 s) to every process loading the code.
        from clipshoe_pipeline.curation.dask_engine import CHUNK_SIZE, DaskCluster
        from clipshoe_pipeline.curation.features import LocalPool

        if self.dask_address is None:
            return LocalPool(workers)
        if workers is not None:
            # Ignoring it would hide that the run did not use the machine it was sized for.
            raise dg.Failure(
                f"run config asks for workers: {workers}, which sizes the local process pool, but image_engine "
                f"sends the per-image step to the Dask cluster {self.dask_address}, whose workers decide; drop "
                f"`workers` or unset {DASK_ADDRESS}")
        return DaskCluster(self.dask_address, self.chunk_size or CHUNK_SIZE)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"image_engine": ImageEngine(dask_address=env_var_if_set(DASK_ADDRESS))})
