"""The main job, end to end against the replay shop.

`clipshoe demo` starts the synthetic shops (with faults on, as real shops have),
materializes every asset of the pipeline — the crawl of each site, curation,
fine-tuning (the tiny CPU model) and evaluation — in the persistent Dagster instance
under $CLIPSHOE_DATA_DIR, so the runs show up later in `clipshoe dev`, and ends with
tables read back from the DuckDB catalog, the metric tables last.
"""

from __future__ import annotations

import time
import warnings

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.evaluation.metrics_table import METRICS_SCHEMA, markdown_comparison
from clipshoe_pipeline.paths import data_paths, ensure_dagster_home
from clipshoe_pipeline.training.models import TINY_MODEL
from replay_shop.catalog import Catalog
from replay_shop.records import Faults
from replay_shop.server import running_shop

SUMMARY_SQL = """
SELECT p.site,
       count(*) AS items,
       sum(len(list_filter(p.images, lambda i: i.status = 'ok'))) AS images_ok,
       sum(len(list_filter(p.images, lambda i: i.status <> 'ok'))) AS images_failed,
       count(*) FILTER (WHERE p.brand IS NULL) AS no_brand,
       (SELECT count(*) FROM rejections r WHERE r.site = p.site AND r.stage = 'crawl') AS items_rejected
FROM raw_products p GROUP BY p.site ORDER BY p.site
"""


# The full event log is in the UI; the terminal gets one line per run and warnings.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


CHECKPOINT_SQL = "SELECT * FROM model_checkpoints ORDER BY created_at DESC LIMIT 1"
LATEST_METRICS_SQL = """
SELECT model, checkpoint, dataset, task, attribute, metric, k, value, n, evaluated_at
FROM metrics WHERE evaluated_at = (SELECT max(evaluated_at) FROM metrics)
"""

CURATED_SQL = """
SELECT site, count(*) AS pairs, count(*) FILTER (WHERE split = 'train') AS train,
       count(*) FILTER (WHERE split = 'test') AS test,
       (SELECT count(*) FROM rejections r WHERE r.site = c.site AND r.stage = 'curate') AS rejected_in_curation
FROM curated_pairs c GROUP BY site ORDER BY site
"""


# The demo trains and evaluates the tiny CPU model, offline and in minutes: it starts
# from random weights (labelled so in the metadata; with nothing learnt to keep, the
# text tower is not locked), the baseline it is compared with is that random
# initialisation, and no downloaded peer is scored.
DEMO_FINETUNE = {"model": TINY_MODEL, "pretrained": None, "allow_random_init": True, "lock_text": False, "epochs": 8,
                 "batch_size": 32, "lr": 2e-3, "warmup": 10, "workers": 1, "gpus": 0, "log_every_n_steps": 10}
DEMO_EVALUATE = {"baseline_model": TINY_MODEL, "baseline_pretrained": None, "baseline_random_init": True,
                 "peers": []}


def run_demo(*, seed: int, products_per_site: int, sites: list[str], faults: Faults) -> int:
    dagster_home = ensure_dagster_home()
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)  # Pipes internals, not ours
    from clipshoe_pipeline.definitions import defs  # after DAGSTER_HOME is settled

    catalog = Catalog(seed=seed, products_per_site=products_per_site)
    print(f"data: {data_paths().root}   dagster home: {dagster_home}")
    print("The replay shop's products and pictures are synthetic (seeded), not real shop data.\n")
    with running_shop(catalog, faults=faults) as shop, dg.DagsterInstance.get() as instance:
        to_shop = {"crawler": {"config": {"replay_url": shop.url}}}
        failed = [site for site in sites
                  if not _materialize(defs, instance, "crawl_job", f"crawl {site}", partition=site, resources=to_shop)]
        print(f"\nreplay shop served {shop.stats['requests']} requests, faults planted: {shop.stats['faults']}")
        for label, job, config in (("curate", "curate_job", None),
                                   ("fine-tune", "finetune_job", {"finetuned_clip": DEMO_FINETUNE}),
                                   ("evaluate", "evaluate_job", {"model_metrics": DEMO_EVALUATE})):
            if failed or not _materialize(defs, instance, job, label, ops=config):
                failed.append(label)
                break
    print_summary()
    if failed:
        print(f"\nfailed: {', '.join(failed)} — see the runs in the Dagster UI (make dev)")
    return 1 if failed else 0


def _materialize(defs: dg.Definitions, instance: dg.DagsterInstance, job: str, label: str, *,
                 partition: str | None = None, ops: dict | None = None, resources: dict | None = None) -> bool:
    started = time.monotonic()
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=False,
        run_config={**QUIET_CONSOLE, **({"ops": {op: {"config": c} for op, c in ops.items()}} if ops else {}),
                    **({"resources": resources} if resources else {})})
    status = "ok" if result.success else "FAILED"
    print(f"{label:<14} {status}  {time.monotonic() - started:5.1f} s  (run {result.run_id[:8]})")
    return result.success


def print_summary() -> None:
    catalog = CatalogDB()
    tables = catalog.tables()
    _print_rows(catalog.query(SUMMARY_SQL),
                ("site", "items", "images_ok", "images_failed", "no_brand", "items_rejected"))
    if "curated_pairs" in tables:
        _print_rows(catalog.query(CURATED_SQL), ("site", "pairs", "train", "test", "rejected_in_curation"))
    if "model_checkpoints" in tables:
        _print_rows(catalog.query(CHECKPOINT_SQL), ("model", "epoch", "val_mean_recall", "weights", "checkpoint"))
    if "metrics" in tables:
        latest = pa.Table.from_pylist(catalog.query(LATEST_METRICS_SQL), schema=METRICS_SCHEMA)
        for dataset in dict.fromkeys(latest.column("dataset").to_pylist()):
            print(f"\nmetrics on {dataset} (latest evaluation; deltas against the baseline):")
            print(markdown_comparison(latest.filter(pc.equal(latest.column("dataset"), dataset)), "baseline"))
    print(f"\ncatalog: {data_paths().catalog_db} (views {', '.join(sorted(tables))})")


def _print_rows(rows: list[dict], header: tuple[str, ...]) -> None:
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in header) + " |")


