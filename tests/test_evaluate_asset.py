"""model_metrics end to end: the baseline and a fine-tuned tiny CLIP evaluated through
the assets on a Zappos-format fixture and the held-out split, into DuckDB `metrics`;
missing weights and a missing Zappos copy reported, never scored."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pyarrow as pa
import pytest

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.definitions import defs
from clipshoe_pipeline.defs.evaluate.checks import (model_metrics_rates_in_range,
                                                    model_metrics_same_queries_for_every_model)
from clipshoe_pipeline.evaluation.metrics_table import METRICS_SCHEMA
from clipshoe_pipeline.parquet_io import write_parquet_atomic
from clipshoe_pipeline.paths import DataPaths
from clipshoe_pipeline.settings import ZAPPOS_DIR
from clipshoe_pipeline.evaluation.zappos import NOT_CONFIGURED
from clipshoe_pipeline.training.models import TINY_MODEL
from tests.builders import TINY, build_zappos_fixture, open_clip_folder, write_curated_pairs

pytestmark = pytest.mark.slow

WHEN = datetime(2026, 11, 27, tzinfo=timezone.utc)
TINY_BASELINE = {"baseline_model": TINY_MODEL, "baseline_pretrained": None, "baseline_random_init": True, "peers": []}


def run_job(instance, job: str, op: str, config: dict) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, run_config={"ops": {op: {"config": config}}}, raise_on_error=False)


def metadata_of(result: dg.ExecuteInProcessResult) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node("model_metrics")[0].metadata.items()}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # see test_finetune_asset
    monkeypatch.delenv(ZAPPOS_DIR, raising=False)
    write_curated_pairs(tmp_path, products=90, images_per_product=3)
    return tmp_path


def test_baseline_and_finetuned_side_by_side_on_zappos_and_the_held_out_split(data_dir, monkeypatch):
    build_zappos_fixture(data_dir / "zappos")
    monkeypatch.setenv(ZAPPOS_DIR, str(data_dir / "zappos"))
    with dg.DagsterInstance.ephemeral() as instance:
        trained = run_job(instance, "finetune_job", "finetuned_clip", {**TINY, "epochs": 2})
        assert trained.success
        first = run_job(instance, "evaluate_job", "model_metrics", TINY_BASELINE)
        assert first.success, [e.message for e in first.all_events if e.is_failure]
        again = run_job(instance, "evaluate_job", "model_metrics", TINY_BASELINE)
        assert again.success

    db = CatalogDB(data_dir=str(data_dir))
    latest = db.query("SELECT * FROM metrics WHERE evaluated_at = (SELECT max(evaluated_at) FROM metrics)")
    assert {r["model"] for r in latest} == {"baseline", "finetuned"}
    assert {(r["dataset"], r["task"]) for r in latest} >= {
        ("clipshoe-test", "retrieval"), ("ut-zappos50k", "zeroshot_classification/en"),
        ("ut-zappos50k", "zeroshot_classification/vi")}
    zappos_attributes = {r["attribute"] for r in latest if r["dataset"] == "ut-zappos50k"}
    assert {"Category", "SubCategory", "Gender", "Material"} <= zappos_attributes
    assert all(0.0 <= r["value"] <= 1.0 for r in latest if "recall" in r["metric"] or r["metric"] == "acc")
    # Both models were scored on the same queries.
    n_of = {(r["model"], r["dataset"], r["task"], r["attribute"], r["metric"], r["k"]): r["n"] for r in latest}
    assert all(n_of.get(("finetuned", *key[1:])) == n for key, n in n_of.items() if key[0] == "baseline")
    (history,) = db.query("SELECT count(DISTINCT evaluated_at) AS runs FROM metrics")
    assert history["runs"] == 2  # each evaluation appends

    checks = {c.check_name: c.passed for c in again.get_asset_check_evaluations()}
    assert checks == {"model_metrics_rates_in_range": True, "model_metrics_same_queries_for_every_model": True}
    metadata = metadata_of(again)
    assert metadata["zappos"]["items"] == 5 and metadata["zappos"]["duplicate_rows"] == 1
    assert metadata["zappos"]["images_without_row"] == 1 and metadata["zappos"]["rows_without_image"] == 1
    comparison = metadata["comparison_clipshoe-test"]
    assert "| baseline | finetuned |" in comparison and ("(+" in comparison or "(-" in comparison)  # deltas
    assert isinstance(metadata["finetuned/clipshoe-test/image_retrieval_recall@5"], float)
    assert "data:image/png;base64," in metadata["plots"]
    assert (data_dir / "cache").exists() and any((data_dir / "cache").rglob("*.parquet"))  # fine-tuned embeddings cached


def test_missing_weights_and_zappos_are_reported_not_scored(data_dir):
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_job(instance, "evaluate_job", "model_metrics", {
            **TINY_BASELINE, "peers": [{"name": "uncached-peer", "model": "ViT-B-32", "pretrained": "openai"}]})
        assert result.success
        metadata = metadata_of(result)
        assert metadata["zappos"] == NOT_CONFIGURED
        assert "not in the local cache" in metadata["not_evaluated"]["uncached-peer"]
        assert metadata["models"] == "baseline"

        nothing = run_job(instance, "evaluate_job", "model_metrics", {"baseline_model": "ViT-B-32"})
        assert not nothing.success  # the default baseline's weights are not here, and nothing else is
    assert not any(r["dataset"] == "ut-zappos50k" for r in CatalogDB(data_dir=str(data_dir)).query("SELECT dataset FROM metrics"))


def test_checks_catch_impossible_rates_and_uneven_query_counts(tmp_path):
    db = CatalogDB(data_dir=str(tmp_path))
    rows = pa.Table.from_pylist([
        {"model": model, "checkpoint": "c", "dataset": "d", "task": "retrieval", "attribute": None,
         "metric": "image_retrieval_recall", "k": 1, "value": value, "n": n, "evaluated_at": WHEN}
        for model, value, n in (("baseline", 0.5, 10), ("finetuned", 1.5, 9))], schema=METRICS_SCHEMA)
    write_parquet_atomic(rows, DataPaths(tmp_path).metrics_parquet("one-evaluation"))
    db.publish("metrics")
    assert not model_metrics_rates_in_range(catalog=db).passed
    assert not model_metrics_same_queries_for_every_model(catalog=db).passed


def test_category_leaves_come_from_the_pairs_and_products_without_one_have_none():
    from clipshoe_pipeline.defs.evaluate.assets import category_leaves

    pairs = pa.table({"site": ["tiki", "tiki", "sendo"], "product_id": ["1", "2", "1"],
                      "category_leaf": ["Giày thể thao", None, "Giày tây"]})
    assert category_leaves(pairs) == {("tiki", "1"): "Giày thể thao", ("sendo", "1"): "Giày tây"}


def test_zappos_is_found_through_the_run_config_too(data_dir):
    build_zappos_fixture(data_dir / "zappos")
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_job(instance, "evaluate_job", "model_metrics",
                         {**TINY_BASELINE, "zappos_dir": str(data_dir / "zappos"), "languages": ["en"]})
    assert result.success
    assert metadata_of(result)["zappos"]["items"] == 5


def test_a_peer_from_a_local_open_clip_folder_is_scored_beside_the_baseline(data_dir):
    """How a peer such as Marqo-FashionCLIP is brought to a machine without network:
    its Hugging Face repository's files in a folder, named local-dir:/path."""

    open_clip_folder(data_dir / "peer")
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_job(instance, "evaluate_job", "model_metrics", {
            **TINY_BASELINE, "peers": [{"name": "folder-peer", "model": f"local-dir:{data_dir / 'peer'}"}]})
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert metadata_of(result)["models"] == "baseline, folder-peer"
    rows = CatalogDB(data_dir=str(data_dir)).query(
        "SELECT DISTINCT model, checkpoint FROM metrics ORDER BY model")
    assert [r["model"] for r in rows] == ["baseline", "folder-peer"]
    assert rows[1]["checkpoint"].endswith("peer/open_clip_model.safetensors")  # the weights it was scored with


def test_nothing_to_evaluate_on_and_an_absent_gpu_fail_saying_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(ZAPPOS_DIR, raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        nothing = run_job(instance, "evaluate_job", "model_metrics", TINY_BASELINE)
        write_curated_pairs(tmp_path, products=10, images_per_product=1)
        no_gpu = run_job(instance, "evaluate_job", "model_metrics", {**TINY_BASELINE, "device": "cuda"})
    assert "nothing to evaluate on" in failure_message(nothing)
    import torch

    if torch.cuda.is_available():
        assert no_gpu.success
    else:
        assert "torch sees no GPU" in failure_message(no_gpu)


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    return " ".join(str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure)
