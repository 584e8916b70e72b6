"""The Dagster code location loads (fast, without torch), and the instance it expects
(DAGSTER_HOME, dagster.yaml limits) is set up."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from clipshoe_common import PROJECT_ROOT
from clipshoe_pipeline.paths import ensure_dagster_home
from scrapers.items import SITES


def test_definitions_load_with_the_crawl_job_partitioned_by_site():
    from clipshoe_pipeline.definitions import defs

    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("crawl_job")
    assert job.partitions_def.get_partition_keys() == list(SITES)
    assert {"crawler", "catalog", "image_engine"} <= set(defs.resources)
    checks = defs.resolve_asset_graph().asset_check_keys
    assert sorted(key.asset_key.to_user_string() for key in checks).count("raw_products") == 5
    assert sorted(key.asset_key.to_user_string() for key in checks).count("curated_pairs") == 5
    assert defs.resolve_job_def("curate_job").partitions_def is None


HEAVY_LIBRARIES = ("torch", "open_clip", "numba", "scipy", "scrapy", "twisted", "duckdb", "matplotlib", "dask")


def test_the_code_location_loads_without_the_heavy_libraries():
    """Every run worker and the code server import the code location, crawls included:
    torch (~1 s), numba and scipy (~0.5 s), Scrapy and DuckDB load only in the runs,
    processes or resources that use them (benchmarks/import_time.py has the seconds)."""
    script = (f"import sys, clipshoe_pipeline.definitions; "
              f"print(sorted(set({HEAVY_LIBRARIES!r}) & set(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True,
                            cwd=PROJECT_ROOT).stdout.strip()
    assert loaded == "[]"


def test_the_default_dagster_home_keeps_history_and_limits_one_run_per_site(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = ensure_dagster_home()
    assert home == tmp_path / "data" / "dagster_home" and (home / "dagster.yaml").exists()
    with dg.DagsterInstance.from_config(str(home)) as instance:  # the yaml is valid instance config
        concurrency = instance.get_concurrency_config()
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure  # step failures: the asset's RetryPolicy
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 300
    limits = concurrency.run_queue_config.tag_concurrency_limits
    assert limits == [{"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert concurrency.pool_config.default_pool_limit == 1  # one training (pool "gpu") at a time


def test_an_existing_dagster_yaml_is_kept_but_a_missing_limit_is_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # an older or edited file
    ensure_dagster_home()
    assert (tmp_path / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    note = capsys.readouterr().err
    assert "concurrency.pools.default_limit" in note and "dagster/partition" in note and "run_monitoring" in note
    (tmp_path / "dagster.yaml").unlink()
    ensure_dagster_home()  # the current defaults: nothing to say
    ensure_dagster_home()
    assert capsys.readouterr().err == ""
    (tmp_path / "dagster.yaml").write_text(  # the older keys Dagster still reads
        "concurrency:\n  default_op_concurrency_limit: 1\nrun_queue:\n  tag_concurrency_limits:\n"
        "    - key: dagster/partition\n      value: {applyLimitPerUniqueValue: true}\n      limit: 1\n"
        "run_monitoring:\n  enabled: true\n")
    ensure_dagster_home()
    assert capsys.readouterr().err == ""


def test_an_empty_dagster_home_counts_as_unset(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", "")  # `DAGSTER_HOME= make demo` must not use the working directory
    assert ensure_dagster_home() == tmp_path / "data" / "dagster_home"
