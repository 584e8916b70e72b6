"""The UT Zappos50K reader on a fixture in the official layout with the dataset's
quirks, and the whole zero-shot evaluation on it with the tiny random model."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from clipshoe_pipeline.evaluation.metrics_table import metrics_table
from clipshoe_pipeline.evaluation.suites import EvaluatedModel, zappos_metrics
from clipshoe_pipeline.evaluation.zappos import load_zappos, split_values
from clipshoe_pipeline.training.weights import resolve_weights
from tests.builders import build_zappos_fixture

@pytest.fixture
def zappos_root(tmp_path) -> Path:
    build_zappos_fixture(tmp_path / "zappos")
    return tmp_path / "zappos"


def test_reader_counts_every_quirk(zappos_root):
    dataset = load_zappos(zappos_root)
    report = dataset.report
    assert report.image_dir == "ut-zap50k-images-square"
    assert (report.metadata_rows, report.image_files, report.items) == (7, 7, 5)
    assert report.duplicate_rows == 1 and report.duplicate_images == 1
    assert report.images_without_row == 1 and report.rows_without_image == 1
    assert report.empty_values["ToeStyle"] == 2 and report.empty_values["Insole"] == 5
    assert [item.cid for item in dataset.items] == ["100-1", "100-2", "200-7", "300-1", "400-4"]


def test_reader_keeps_first_row_and_normalises_values(zappos_root):
    items = {item.cid: item for item in load_zappos(zappos_root).items}
    assert items["100-1"].attributes["SubCategory"] == ("Ankle",)  # the first row of the duplicate
    assert items["100-1"].brand == "Acme Co."
    assert items["100-2"].attributes["Material"] == ("Leather",)  # case variant merged into the common one
    assert items["300-1"].attributes["Material"] == ("Synthetic", "Leather")
    assert items["200-7"].attributes["Gender"] == ("Men", "Boys")
    assert items["200-7"].image_path.parent.parent.name == "Loafers"  # first in path order
    assert split_values(" Leather ;;  Patent   Leather; ") == ["Leather", "Patent Leather"]


def test_plain_image_folder_when_square_is_absent(tmp_path):
    build_zappos_fixture(tmp_path, image_dir="ut-zap50k-images")
    assert load_zappos(tmp_path).report.image_dir == "ut-zap50k-images"
    with pytest.raises(FileNotFoundError):
        load_zappos(tmp_path / "elsewhere")


@pytest.mark.slow
def test_zero_shot_end_to_end_with_the_tiny_model(zappos_root, tmp_path):
    evaluated_at = datetime(2026, 11, 27, tzinfo=timezone.utc)
    random_weights = resolve_weights("clipshoe-tiny", None, allow_random_init=True)
    model = EvaluatedModel.load("tiny", "clipshoe-tiny", random_weights, evaluated_at, cache_dir=tmp_path / "cache")
    rows = zappos_metrics(load_zappos(zappos_root), model)
    table = metrics_table(rows)
    assert set(table.column("task").to_pylist()) == {"zeroshot_classification/en", "zeroshot_classification/vi"}
    attributes = set(table.column("attribute").to_pylist())
    assert attributes == {"Category", "SubCategory", "Gender", "Closure", "Material", "HeelHeight", "ToeStyle"}
    for row in rows:
        assert 0.0 <= row.value <= 1.0 and not math.isnan(row.value)
        assert row.metric in {"acc", "balanced_accuracy"}
    category_acc = {(r.task, r.k): r for r in rows if r.attribute == "Category" and r.metric == "acc"}
    assert sorted(k for _, k in category_acc) == [1, 1, 3, 3]  # 4 categories: no Acc@5
    assert {r.n for r in rows if r.attribute == "ToeStyle"} == {3}  # two items have no toe style
    assert not (tmp_path / "cache").exists()  # a random model's embeddings are not cached
