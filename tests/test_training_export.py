"""The train split as open_clip's input: CSV and WebDataset formats, the held-out
validation subset, and the errors that stop a run before the trainer starts."""

from __future__ import annotations

import csv
import tarfile

import pyarrow.parquet as pq
import pytest

from clipshoe_pipeline.training.export import (
    CSV_CAPTION_KEY,
    CSV_IMAGE_KEY,
    ExportConfig,
    ExportError,
    export_training_data,
    split_validation,
)
from tests.builders import write_curated_pairs


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return root, write_curated_pairs(root, products=80).to_pylist()


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as source:
        return list(csv.DictReader(source, delimiter="\t"))


def test_csv_export_holds_every_train_pair_once_with_absolute_paths(curated, tmp_path):
    root, rows = curated
    data = export_training_data(rows, root, tmp_path / "export", ExportConfig(val_fraction=0.2))
    train, val = read_csv(data.train), read_csv(data.val)
    assert list(train[0]) == [CSV_IMAGE_KEY, CSV_CAPTION_KEY]
    assert data.dataset_type == "csv" and (data.train_pairs, data.val_pairs) == (len(train), len(val))
    train_split = [r for r in rows if r["split"] == "train"]
    by_path = {str((root / r["image_path"]).absolute()): r for r in train_split}
    exported = [r[CSV_IMAGE_KEY] for r in train + val]
    assert len(exported) == len(set(exported)) and set(exported) <= set(by_path)
    assert all(by_path[r[CSV_IMAGE_KEY]]["caption"] == r[CSV_CAPTION_KEY] for r in train + val)
    test_images = {str((root / r["image_path"]).absolute()) for r in rows if r["split"] == "test"}
    assert test_images and not test_images & set(exported)  # the test split stays unseen
    args = data.trainer_args()
    assert args[args.index("--dataset-type") + 1] == "csv" and args[args.index("--csv-separator") + 1] == "\t"


def test_validation_products_are_held_out_whole_and_once(curated):
    _, rows = curated
    train_rows = [r for r in rows if r["split"] == "train"]
    train, val = split_validation(train_rows, ExportConfig(val_fraction=0.3))
    val_products = [train_rows[i]["product_id"] for i in val]
    assert val and len(val_products) == len(set(val_products))  # one pair per product
    assert not set(val_products) & {train_rows[i]["product_id"] for i in train}
    assert not {train_rows[i]["cluster_id"] for i in val} & {train_rows[i]["cluster_id"] for i in train}
    capped_train, capped_val = split_validation(train_rows, ExportConfig(val_fraction=0.3, val_max_pairs=3))
    assert len(capped_val) <= 3 and len(capped_train) > len(train)  # groups beyond the cap train again
    assert split_validation(train_rows, ExportConfig(val_fraction=0.3)) == (train, val)  # deterministic


def test_large_exports_become_webdataset_shards(curated, tmp_path):
    root, rows = curated
    data = export_training_data(rows, root, tmp_path / "export",
                                ExportConfig(val_fraction=0.2, webdataset_min_pairs=10, shard_size=25))
    assert data.dataset_type == "webdataset" and data.train.endswith("shards/{00000..00004}.tar")
    members = []
    for shard in sorted((tmp_path / "export" / "shards").glob("*.tar")):
        with tarfile.open(shard) as archive:
            members += archive.getnames()
    keys = {name.rsplit(".", 1)[0] for name in members}
    assert len(members) == 2 * data.train_pairs == 2 * len(keys)
    assert {name.rsplit(".", 1)[1] for name in members} == {"jpg", "txt"}
    args = data.trainer_args()
    assert args[args.index("--train-num-samples") + 1] == str(data.train_pairs)


def test_a_failed_export_leaves_the_previous_one_whole(curated, tmp_path):
    root, rows = curated
    first = export_training_data(rows, root, tmp_path / "export", ExportConfig(val_fraction=0.2))
    before = (tmp_path / "export" / "train.csv").read_text()
    broken = [dict(r, image_path="normalised/missing.jpg") if i == 0 else r for i, r in enumerate(rows)]
    with pytest.raises(ExportError, match="missing on disk"):
        export_training_data(broken, root, tmp_path / "export", ExportConfig(val_fraction=0.2))
    assert (tmp_path / "export" / "train.csv").read_text() == before
    again = export_training_data(rows, root, tmp_path / "export", ExportConfig(val_fraction=0.2))
    assert again.snapshot == first.snapshot  # same data, same identity
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no staging left behind


def test_unusable_tables_are_refused_with_a_reason(curated, tmp_path):
    root, rows = curated
    with pytest.raises(ExportError, match="lack column"):
        export_training_data([{k: v for k, v in r.items() if k != "caption"} for r in rows], root, tmp_path / "e")
    with pytest.raises(ExportError, match="at least 2"):
        export_training_data([r for r in rows if r["split"] == "test"], root, tmp_path / "e")
    with pytest.raises(ValueError, match="val_fraction"):
        ExportConfig(val_fraction=1.5)


def test_the_fixture_table_is_what_curated_pairs_writes(curated):
    root, rows = curated
    assert pq.read_table(root / "parquet" / "curated_pairs" / "curated_pairs.parquet").num_rows == len(rows)
