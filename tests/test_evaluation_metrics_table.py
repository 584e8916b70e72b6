"""Metric rows: the Arrow schema of the `metrics` table, the markdown comparison, and
the held-out split evaluation end to end with the tiny random model."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from clipshoe_pipeline.curation.assemble import CURATED_PAIRS_SCHEMA
from clipshoe_pipeline.evaluation.metrics_table import (METRICS_SCHEMA, RunLabel, markdown_comparison,
                                                        metrics_table, retrieval_rows, zeroshot_rows)
from clipshoe_pipeline.evaluation.retrieval import retrieval_metrics
from clipshoe_pipeline.evaluation.suites import EvaluatedModel, held_out_metrics
from clipshoe_pipeline.evaluation.zeroshot import ZeroShotResult
from clipshoe_pipeline.training.weights import resolve_weights

EVALUATED_AT = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)


def run(model: str) -> RunLabel:
    return RunLabel(model=model, checkpoint=f"{model}.pt", evaluated_at=EVALUATED_AT)


def test_rows_follow_the_metrics_contract():
    retrieval = retrieval_metrics(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32), [0, 1], [0, 1])
    zeroshot = ZeroShotResult(accuracy={1: 0.5, 3: 0.75}, balanced_accuracy=0.4, n=8, n_classes=4)
    table = metrics_table([*retrieval_rows(retrieval, run("base"), "clipshoe-test"),
                           *zeroshot_rows(zeroshot, run("base"), "ut-zappos50k", "vi", "Category")])
    assert table.schema == METRICS_SCHEMA
    assert table.column_names == ["model", "checkpoint", "dataset", "task", "attribute", "metric", "k", "value",
                                  "n", "evaluated_at"]
    rows = {(r["task"], r["metric"], r["k"]): r for r in table.to_pylist()}
    assert rows[("retrieval", "image_retrieval_recall", 1)]["value"] == 1.0
    assert rows[("retrieval", "text_retrieval_median_rank", None)]["attribute"] is None
    assert rows[("zeroshot_classification/vi", "acc", 3)]["value"] == 0.75
    assert rows[("zeroshot_classification/vi", "balanced_accuracy", None)]["n"] == 8
    # DuckDB reads the table as is (the catalog's metrics view reads these rows from Parquet).
    connection = duckdb.connect()
    connection.register("metrics_rows", table)
    assert connection.execute("SELECT count(*) FROM metrics_rows WHERE k IS NULL").fetchone() == (3,)


def test_markdown_shows_deltas_against_the_baseline():
    rows = []
    for model, value in (("fine-tune", 0.25), ("base", 0.2)):
        rows += zeroshot_rows(ZeroShotResult({1: value}, value / 2, 10, 4), run(model), "ut-zappos50k", "en", "Gender")
    lines = markdown_comparison(metrics_table(rows), baseline_model="base").splitlines()
    assert lines[0] == "| dataset | task | attribute | metric | k | base | fine-tune |"
    assert lines[2] == "| ut-zappos50k | zeroshot_classification/en | Gender | acc | 1 | 0.200 | 0.250 (+0.050) |"
    assert lines[3].endswith("| 0.100 | 0.125 (+0.025) |")


@pytest.mark.slow
def test_held_out_split_end_to_end_with_the_tiny_model(tmp_path):
    pairs = []
    for i, (product, colour, leaf, split) in enumerate([("1", "red", "Giày cao gót", "test"),
                                                        ("1", "pink", "Giày cao gót", "test"),
                                                        ("2", "black", "Giày thể thao", "test"),
                                                        ("3", "white", "Dép", "test"),
                                                        ("4", "blue", "Dép", "train")]):
        Image.new("RGB", (64, 64), colour).save(tmp_path / f"{i}.jpg")
        pairs.append({"pair_id": str(i), "site": "tiki", "product_id": product, "image_sha256": f"sha{i}",
                      "image_url": "https://img/x.jpg", "image_path": f"{i}.jpg", "width": 64, "height": 64,
                      "phash": 0, "dhash": 0, "mean_rgb": [0, 0, 0], "cluster_id": i, "cluster_size": 1,
                      "caption": f"{leaf} {product}", "url": "https://tiki.vn/p", "split": split})
    table = pa.Table.from_pylist(pairs, schema=CURATED_PAIRS_SCHEMA)
    leaves = {("tiki", p["product_id"]): p["caption"].rsplit(" ", 1)[0] for p in pairs}
    random_weights = resolve_weights("clipshoe-tiny", None, allow_random_init=True)
    model = EvaluatedModel.load("tiny", "clipshoe-tiny", random_weights, EVALUATED_AT, cache_dir=None)
    rows = held_out_metrics(table, tmp_path, model, category_leaf_of=leaves, languages=("vi",))
    by_key = {(r.task, r.metric, r.k): r for r in rows}
    assert by_key[("retrieval", "image_retrieval_recall", 1)].n == 3  # one caption per test product
    assert by_key[("retrieval", "text_retrieval_recall", 10)].value == 1.0  # 3 captions: always in the top 10
    assert 1 <= by_key[("retrieval", "text_retrieval_median_rank", None)].value <= 3
    assert by_key[("zeroshot_classification/vi", "acc", 1)].n == 4  # the train image is not evaluated
    assert ("zeroshot_classification/vi", "acc", 3) not in by_key  # 3 leaves: Acc@3 is trivially 1
