"""The curation layer's asset: the image-text dataset every later asset trusts.

One unpartitioned asset downstream of every site partition of raw_products, because
near-duplicates must be found across all sites and crawls. Per-image work (decode,
normalise, hash) is cached by content hash, so a recrawl only pays for new pictures;
clustering, captions and the split are recomputed over the whole catalog each run
(seconds even at a million images).
"""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.curation import diversity as diversity_stats
from clipshoe_pipeline.curation.config import CurationConfig, NormaliseConfig
from clipshoe_pipeline.defs.crawl.assets import raw_products
from clipshoe_pipeline.defs.crawl.schedules import TIMEZONE
from clipshoe_pipeline.defs.curate.resources import ImageEngine
from clipshoe_pipeline.defs.dataclass_config import mirror
from clipshoe_pipeline.markdown import markdown_table
from clipshoe_pipeline.parquet_io import write_parquet_atomic
from clipshoe_pipeline.rejections import CURATE_STAGE, stamped
from clipshoe_pipeline.stage_clock import StageClock
from scrapers.items import SITES

EXAMPLE_CLUSTERS = 5
# Curation follows the crawls at the first daily tick after any crawl, so the Monday-night
# recrawls (crawl/schedules.py), five sites in a row, give one curation, not five; never
# while a crawl still runs. (on_cron would wait for crawls *after* the tick instead.)
CURATE_CRON = "0 7 * * *"
AFTER_NEW_CRAWLS = (
    dg.AutomationCondition.in_latest_time_window()
    & dg.AutomationCondition.cron_tick_passed(CURATE_CRON, TIMEZONE).since_last_handled()
    & dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    # A crawl whose blocking check failed (e.g. many failed pages) is not curated. (Not
    # all_deps_blocking_checks_passed: a check that has not run yet is no failure.)
    & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.any_checks_match(
        dg.AutomationCondition.check_failed(), blocking_only=True))
).with_label("daily after new crawls")
PRODUCT_BATCH_ROWS = 4096  # products held as Python rows at once (captions, the shoe filter)

CurationFields = mirror(CurationConfig)
NormaliseFields = mirror(NormaliseConfig)


class CurateConfig(dg.Config):
    """Curation knobs (the Launchpad's run config): the library's own config classes,
    whose defaults are the measured ones (benchmarks/dedup_quality.py for `dedup`)."""

    curation: CurationFields = CurationFields()
    images: NormaliseFields = NormaliseFields()
    workers: int | None = None  # image decoding processes of the local pool; None: one per CPU


@dg.asset(
    deps=[dg.AssetDep(raw_products, partition_mapping=dg.AllPartitionMapping())],
    kinds={"python", "parquet"},
    group_name="curate",
    automation_condition=AFTER_NEW_CRAWLS,
)
def curated_pairs(context: dg.AssetExecutionContext, config: CurateConfig, catalog: CatalogDB,
                  image_engine: ImageEngine) -> dg.MaterializeResult:
    """The dataset: one (normalised image, caption) pair per distinct picture of a shoe,
    with its near-duplicate cluster and a train/test split that no product and no
    near-duplicate crosses. Without it the model would learn from socks and promo
    spam, see the same photo many times, and be tested on pictures it trained on.
    Written to Parquet: `curated_pairs`, `near_duplicates` (the pairs behind the
    clusters, for the checks) and every site's curate-stage `rejections`."""
    # The steps' numba kernels and scipy load here, in the run that curates: every run
    # worker and the code location server import this module, most never curate.
    from clipshoe_pipeline.curation.assemble import (
        CURATED_PAIRS_SCHEMA,
        FEATURE_COLUMNS,
        PRODUCT_COLUMNS,
        curate,
        rejection_counts,
    )
    from clipshoe_pipeline.curation.features import image_features, run_counts

    paths = catalog.paths
    if not catalog.files("raw_products"):
        raise dg.Failure("no raw_products Parquet found: materialize raw_products first")
    clock = StageClock()
    with clock.stage("features"):
        features = image_features(paths.images, paths.normalised_images, _stored_images(catalog),
                                  config.images.build(), paths.image_features_cache,
                                  image_engine.engine(config.workers))
    counts = run_counts(features)
    context.log.info(f"image features: {counts['computed']} computed, {counts['cached']} from the cache")

    with clock.stage("attributes"):
        attributes = diversity_stats.product_attributes(
            _product_batches(catalog, diversity_stats.ATTRIBUTE_COLUMNS, optional=(diversity_stats.SELLER,)))
    curated = curate(_product_batches(catalog, PRODUCT_COLUMNS), features.select(FEATURE_COLUMNS),
                     paths.normalised_images.relative_to(paths.root).as_posix(), config.curation.build(),
                     examples=EXAMPLE_CLUSTERS, clock=clock,
                     sellers=attributes.select(["site", "product_id", diversity_stats.SELLER]))
    del features
    with clock.stage("write"):
        rejections = stamped(curated.rejections, context.run.run_id)
        for site in SITES:  # every site's file, an empty one too: it replaces the last run's
            write_parquet_atomic(rejections.filter(pc.equal(rejections.column("site"), site)),
                                 paths.rejections_parquet(site, CURATE_STAGE))
        write_parquet_atomic(curated.near_duplicates, paths.near_duplicates_parquet)
        write_parquet_atomic(curated.pairs, paths.curated_pairs_parquet)
        catalog.publish("curated_pairs", "near_duplicates", "rejections")
        loaded = curated.pairs.num_rows

    with clock.stage("diversity"):
        diversity = diversity_stats.dataset_diversity(curated.pairs, attributes)
        diversity_png = paths.reports / f"curated_pairs-{context.run.run_id}" / "diversity.png"
        diversity_plot = diversity_stats.write_plot(diversity, diversity_png)
    splits = Counter(curated.pairs.column("split").to_pylist())
    sizes = Counter(curated.pairs.column("cluster_size").to_pylist())
    return dg.MaterializeResult(metadata={
        "dagster/row_count": loaded,
        "dagster/column_schema": dg.TableSchema(columns=[
            dg.TableColumn(f.name, str(f.type), constraints=dg.TableColumnConstraints(nullable=f.nullable))
            for f in CURATED_PAIRS_SCHEMA]),
        "products_in": curated.products_in,
        "images_in": curated.images_in,
        "pairs_out": loaded,
        "train_pairs": splits.get("train", 0),
        "test_pairs": splits.get("test", 0),
        "test_fraction": round(curated.test_fraction, 4),
        "images_computed": counts["computed"],
        "images_cached": counts["cached"],
        "rejections": curated.rejections.num_rows,
        "rejections_by_reason": dg.MetadataValue.md(_counts_table("reason", rejection_counts(curated.rejections))),
        "cluster_sizes": dg.MetadataValue.md(_counts_table("pictures in cluster", sizes)),
        "near_duplicate_pairs": curated.near_duplicates.num_rows,
        "concentration": dg.MetadataValue.md(diversity_stats.concentration_markdown(diversity)),
        **diversity_stats.concentration_numbers(diversity),  # stable keys, e.g. top10_brand_share
        **{f"pairs_per_{name}": dg.MetadataValue.md(diversity_stats.spread_markdown(spread))
           for name, spread in diversity.items()},
        "diversity_plot": dg.MetadataValue.md(diversity_plot),
        "diversity_plot_path": dg.MetadataValue.path(str(diversity_png)),
        "stage_seconds": dg.MetadataValue.md(clock.markdown()),
        # Under stable keys, for the UI's plots and the scale benchmarks.
        **{f"seconds_{name}": round(seconds, 3) for name, (seconds, _) in clock.stages.items()},
        **{f"peak_rss_mib_{name}": round(peak) for name, (_, peak) in clock.stages.items()},
        "merged_cluster_examples": dg.MetadataValue.md(_examples(curated.cluster_examples, paths.root)),
        "parquet_path": dg.MetadataValue.path(str(paths.curated_pairs_parquet)),
    })


def _stored_images(catalog: CatalogDB) -> list[tuple[str, str]]:
    """(sha256, path in the image store) of every image the crawls stored, sorted, read as columns."""
    stored = [pa.table({"sha256": [], "path": []}, schema=pa.schema([("sha256", pa.string()), ("path", pa.string())]))]
    for batch in _product_batches(catalog, ("images",)):
        images = pc.list_flatten(batch.column("images"))
        ok = images.filter(pc.equal(pc.struct_field(images, "status"), "ok"))
        stored.append(pa.table({"sha256": pc.struct_field(ok, "sha256"), "path": pc.struct_field(ok, "path")}))
    distinct = pa.concat_tables(stored).group_by(["sha256", "path"]).aggregate([]).sort_by([("sha256", "ascending"),
                                                                                         ("path", "ascending")])
    return list(zip(distinct.column("sha256").to_pylist(), distinct.column("path").to_pylist()))


def _product_batches(catalog: CatalogDB, columns: tuple[str, ...],
                     optional: tuple[str, ...] = ()) -> Iterator[pa.RecordBatch]:
    """`columns` of raw_products, and those of `optional` a file has (crawls before a
    column existed lack it), site by site in SITES order."""
    return catalog.batches("raw_products", columns, optional=optional, batch_rows=PRODUCT_BATCH_ROWS,
                           order=[f"site={site}" for site in SITES])


def _counts_table(label: str, counts: Counter) -> str:
    return markdown_table([label, "count"], sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def _examples(clusters: dict[int, list[str]], root: Path) -> str:
    if not clusters:
        return "(no near-duplicates merged)"
    biggest = sorted(clusters.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:EXAMPLE_CLUSTERS]
    return markdown_table(["cluster", "kept", "merged into it"], (
        [cluster_id, f"`{root / paths[0]}`", "<br>".join(f"`{root / p}`" for p in paths[1:])]
        for cluster_id, paths in biggest))


curate_job = dg.define_asset_job(
    "curate_job", selection=[curated_pairs],
    description="Build the image-text dataset from every site's raw_products.",
)
