"""Where the pipeline keeps its data: one root, every other path derived from it.

The root is `$CLIPSHOE_DATA_DIR` (default `./data`, relative to the current working
directory), read when asked for rather than at import, so tests and the CLI can point
a whole run elsewhere with one environment variable. Paths are made absolute because
the crawl subprocess runs from the repository root, not from the caller's directory.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from clipshoe_pipeline.settings import DAGSTER_HOME, DATA_DIR, env

DEFAULT_DATA_DIR = "data"

# Instance settings for the default DAGSTER_HOME (see ensure_dagster_home).
_DAGSTER_YAML = """\
# Written by clipshoe_pipeline.paths.ensure_dagster_home; edit freely, it is not rewritten.
# Run history, event logs and schedules live in this folder, so they survive restarts.
storage:
  sqlite:
    base_dir: {home}
telemetry:
  enabled: false
concurrency:
  pools:
    # Pools limit steps across runs; ours is "gpu" (finetuned_clip): one training at a
    # time, since trainings share the GPUs and the training export folder.
    default_limit: 1
  runs:
    # One crawl per site: runs of a partition carry the tag dagster/partition=<site>,
    # and a limit per unique value keeps two runs of one site (which would share its
    # Scrapy JOBDIR and journal) out of each other's way while other sites run.
    tag_concurrency_limits:
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
# A run whose process crashed (not one whose step failed: the crawl's own RetryPolicy
# handles those) is started again; a crawl resumes from its job dir.
run_retries:
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false
# Notices runs whose process died, and frees the pool slots a cancelled or crashed run
# still held; without it a limit-1 pool ("gpu") can stay taken for good.
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 300
"""


@dataclass(frozen=True)
class DataPaths:
    """The data layout under one root (see README, "make demo")."""

    root: Path

    @classmethod
    def from_env(cls) -> DataPaths:
        return cls(Path(env(DATA_DIR) or DEFAULT_DATA_DIR).absolute())

    @property
    def images(self) -> Path:
        """The content-addressed image store shared by all sites."""
        return self.root / "images"

    def crawl_dir(self, site: str) -> Path:
        return self.root / "crawls" / site

    def crawl_jobdir(self, site: str) -> Path:
        """Scrapy JOBDIR plus the crawl journal; exists only while a crawl is unfinished."""
        return self.crawl_dir(site) / "job"

    def crawl_log(self, site: str) -> Path:
        """The last crawl's Scrapy log; outside the job dir so it outlives a success."""
        return self.crawl_dir(site) / "crawl.log"

    def crawl_listing_state(self, site: str) -> Path:
        """Per product of the site: its listing fingerprint and last full read, as the
        crawls so far left them; kept between crawls (scrapers.interface.update_listing_state)."""
        return self.crawl_dir(site) / "listings.jsonl"

    def crawl_known_products(self, site: str) -> Path:
        """The next crawl's CLIPSHOE_KNOWN_PRODUCTS, written before it starts."""
        return self.crawl_dir(site) / "known_products.jsonl"

    @property
    def image_index(self) -> Path:
        """Image URL -> stored image and when it was fetched (the crawl's CLIPSHOE_IMAGE_INDEX)."""
        return self.images / "index.sqlite"

    @property
    def http_cache(self) -> Path:
        """Product pages with their validators, for conditional requests (the crawl's HTTPCACHE_DIR)."""
        return self.root / "cache" / "http"

    @property
    def normalised_images(self) -> Path:
        """Normalised JPEGs (curation), keyed by the original's sha256."""
        return self.root / "normalised"

    @property
    def image_features_cache(self) -> Path:
        """Per-image features keyed by content hash: unchanged images are never re-processed."""
        return self.root / "cache" / "image_features.parquet"

    @property
    def parquet(self) -> Path:
        """The Parquet datasets, one folder each; the catalog's views read them (catalog_db)."""
        return self.root / "parquet"

    def raw_products_parquet(self, site: str) -> Path:
        return self.parquet / "raw_products" / f"site={site}" / "raw_products.parquet"

    def observations_parquet(self, site: str, crawl: str) -> Path:
        """One crawl's observations of a site's products (defs/crawl/history.py)."""
        return self.parquet / "product_observations" / f"site={site}" / f"{crawl}.parquet"

    def rejections_parquet(self, site: str, stage_group: str) -> Path:
        """One file per site and stage group ("crawl": the crawl and download stages,
        "curate"), replaced whole by the next run of that group."""
        return self.parquet / "rejections" / f"site={site}" / f"{stage_group}.parquet"

    @property
    def curated_pairs_parquet(self) -> Path:
        return self.parquet / "curated_pairs" / "curated_pairs.parquet"

    @property
    def near_duplicates_parquet(self) -> Path:
        """The near-duplicate pairs behind curated_pairs' clusters."""
        return self.parquet / "near_duplicates" / "near_duplicates.parquet"

    def checkpoint_record(self, run: str) -> Path:
        """One fine-tuning run's registered checkpoint (one row); a file per run, so two
        trainings never rewrite each other's rows."""
        return self.parquet / "model_checkpoints" / f"{run}.parquet"

    def metrics_parquet(self, evaluation: str) -> Path:
        """One evaluation's metric rows; a file per evaluation, so concurrent evaluations
        append without a lock."""
        return self.parquet / "metrics" / f"{evaluation}.parquet"

    @property
    def training_export(self) -> Path:
        """The train split in open_clip's input format (fine-tuning), replaced per export."""
        return self.root / "training" / "export"

    @property
    def training_runs(self) -> Path:
        """One folder per fine-tuning run (open_clip's logs and checkpoints, our records)."""
        return self.root / "training" / "runs"

    @property
    def reports(self) -> Path:
        """Plots and tables written beside the metrics, one folder per evaluation."""
        return self.root / "reports"

    @property
    def zappos(self) -> Path:
        """Where `clipshoe zappos fetch` puts UT Zappos50K, and where the evaluation
        looks for it when none is configured."""
        return self.root / "zappos"

    @property
    def catalog_db(self) -> Path:
        return self.root / "clipshoe.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"


def data_paths() -> DataPaths:
    return DataPaths.from_env()


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at `<data>/dagster_home` unless it is already set, and give
    that folder a dagster.yaml (run history kept there, one crawl per site) if it has none."""
    if not env(DAGSTER_HOME):
        os.environ[DAGSTER_HOME] = str(data_paths().dagster_home)  # for Dagster, and the processes we start
    home = Path(os.environ[DAGSTER_HOME]).absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_DAGSTER_YAML.format(home=home))
    elif missing := missing_instance_settings(config):
        # Written by an older version or edited: kept as it is, but said, since without
        # these limits two trainings or two crawls of one site can run at once, or a
        # crashed training keeps the GPU pool taken.
        print(f"note: {config} lacks {', '.join(missing)}; delete it to get the current defaults "
              "(run history lives in other files and is kept)", file=sys.stderr)
    return home


def missing_instance_settings(config: Path) -> list[str]:
    """Which of our dagster.yaml limits `config` lacks (in the current keys or the older
    `run_queue` / `default_op_concurrency_limit` ones Dagster still reads)."""
    settings = yaml.safe_load(config.read_text())
    settings = settings if isinstance(settings, dict) else {}
    concurrency = settings.get("concurrency") or {}
    tag_limits = [*((concurrency.get("runs") or {}).get("tag_concurrency_limits") or []),
                  *((settings.get("run_queue") or {}).get("tag_concurrency_limits") or [])]
    missing = []
    if (concurrency.get("pools") or {}).get("default_limit") is None and \
            concurrency.get("default_op_concurrency_limit") is None:
        missing.append("concurrency.pools.default_limit (one training at a time)")
    if not any(isinstance(limit, dict) and limit.get("key") == "dagster/partition" for limit in tag_limits):
        missing.append("the dagster/partition run tag limit (one crawl per site)")
    if not (settings.get("run_monitoring") or {}).get("enabled"):
        missing.append("run_monitoring (frees the pool slot of a crashed run)")
    return missing
