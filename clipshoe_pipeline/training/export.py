"""The train split in open_clip's training input, plus a held-out validation subset.

open_clip_train reads either a CSV (image path + caption per row; fine up to some
hundred thousand pairs, held in memory by pandas) or WebDataset tar shards
(`key.jpg` + `key.txt`, streamed; what large runs use). `export_training_data`
writes whichever fits the size, with the exact flags the trainer needs.

Validation. Checkpoints are chosen by retrieval recall on pairs the model never
trained on, so some train-split products are held out. They are chosen by the same
grouping as the train/test split (curation.split: product and near-duplicate
cluster, transitively), so no copy of a validation picture is trained on. Each held
out product contributes one pair: open_clip's validation scores image i against
caption i only, and a product's photos share one caption, so two photos of a product
would count a correct match as a miss.

Everything is written under a temp name and renamed, so a crash leaves either the old
export or none; the export's identity (`snapshot`) is a hash of what was written,
and names the training run that uses it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipshoe_common.files import replace_dir
from clipshoe_pipeline.curation.split import TEST, group_of_rows, grouped_split

CSV_IMAGE_KEY = "filepath"  # open_clip's defaults (--csv-img-key / --csv-caption-key)
CSV_CAPTION_KEY = "title"
CSV_SEPARATOR = "\t"
SHARD_PATTERN = "{:05d}.tar"
REQUIRED_COLUMNS = ("pair_id", "site", "product_id", "image_path", "cluster_id", "caption", "split")


@dataclass(frozen=True)
class ExportConfig:
    val_fraction: float = 0.05  # of train-split product groups held out for checkpoint selection
    val_max_pairs: int = 2000  # open_clip's validation builds one N x N matrix: keep N small
    webdataset_min_pairs: int = 200_000  # from this many training pairs on, write tar shards
    shard_size: int = 10_000  # pairs per WebDataset shard
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be within (0, 1), got {self.val_fraction}")
        if self.val_max_pairs < 1 or self.shard_size < 1 or self.webdataset_min_pairs < 1:
            raise ValueError("val_max_pairs, shard_size and webdataset_min_pairs must be positive")


@dataclass(frozen=True)
class TrainingData:
    """An export on disk and the trainer flags that read it."""

    root: Path
    dataset_type: str  # csv | webdataset
    train: str  # a CSV path, or a brace pattern over the shards
    val: Path  # always a CSV: small
    train_pairs: int
    val_pairs: int
    snapshot: str  # sha256 over the exported (pair_id, caption) rows, train then val

    def trainer_args(self) -> list[str]:
        # Shards: auto, with which open_clip picks the loader per file extension, so the
        # validation CSV is read as a CSV (an explicit type applies to both files).
        dataset_type = "auto" if self.dataset_type == "webdataset" else self.dataset_type
        args = ["--dataset-type", dataset_type, "--train-data", self.train, "--val-data", str(self.val),
                "--csv-img-key", CSV_IMAGE_KEY, "--csv-caption-key", CSV_CAPTION_KEY,
                "--csv-separator", CSV_SEPARATOR]
        if self.dataset_type == "webdataset":
            args += ["--train-num-samples", str(self.train_pairs)]
        return args


class ExportError(ValueError):
    """The curated table cannot be trained on as it is (said why)."""


def split_validation(rows: Sequence[Mapping[str, Any]], config: ExportConfig) -> tuple[list[int], list[int]]:
    """(training row indices, validation row indices) of train-split rows; see module doc."""
    keys = [f"{row['site']}:{row['product_id']}" for row in rows]
    clusters = [int(row["cluster_id"]) for row in rows]
    sides = grouped_split(keys, clusters, config.val_fraction, seed=f"validation:{config.seed}")
    held_out: dict[int, dict[str, int]] = {}  # group -> product key -> its first pair's row
    groups = group_of_rows(keys, clusters)
    for index in sorted(range(len(rows)), key=lambda i: rows[i]["pair_id"]):  # deterministic picks
        if sides[index] == TEST:
            held_out.setdefault(groups[index], {}).setdefault(keys[index], index)
    val_groups, val = set(), []
    for group, firsts in held_out.items():
        # Whole groups or nothing: a group cut in two would train on its own validation pictures.
        if len(val) + len(firsts) <= config.val_max_pairs:
            val_groups.add(group)
            val.extend(firsts.values())
    # Held-out groups beyond the cap go back to training; a validation product's other
    # photos stay out of it (same product, same caption: training on them would leak).
    train = [i for i in range(len(rows)) if groups[i] not in val_groups]
    return train, sorted(val)


def export_training_data(pairs: Sequence[Mapping[str, Any]], data_root: Path, out_dir: Path,
                         config: ExportConfig = ExportConfig()) -> TrainingData:
    """Write the train split of `pairs` (curated_pairs rows; image_path relative to
    `data_root`) to `out_dir` as open_clip training input; replaces an older export."""
    missing = [column for column in REQUIRED_COLUMNS if pairs and column not in pairs[0]]
    if missing:
        raise ExportError(f"curated pairs lack column(s) {missing}")
    train_rows = [row for row in pairs if row["split"] == "train"]
    if len(train_rows) < 2:
        raise ExportError(f"{len(train_rows)} train pairs: a contrastive batch needs at least 2")
    train_index, val_index = split_validation(train_rows, config)
    if not val_index:
        raise ExportError("no validation pairs could be held out: raise val_fraction or add products")
    absent = [row["image_path"] for row in train_rows if not (data_root / row["image_path"]).is_file()]
    if absent:
        raise ExportError(f"{len(absent)} curated image(s) are missing on disk, e.g. {data_root / absent[0]}: "
                          "re-materialize curated_pairs")

    train = [_sample(train_rows[i], data_root) for i in train_index]
    val = [_sample(train_rows[i], data_root) for i in val_index]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        _write_csv(val, staging / "val.csv")
        if len(train) >= config.webdataset_min_pairs:
            dataset_type, train_spec = "webdataset", _write_shards(train, staging / "shards", config.shard_size)
        else:
            dataset_type, train_spec = "csv", "train.csv"
            _write_csv(train, staging / "train.csv")
        replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TrainingData(root=out_dir, dataset_type=dataset_type, train=str(out_dir / train_spec),
                        val=out_dir / "val.csv", train_pairs=len(train), val_pairs=len(val),
                        snapshot=_snapshot(train, val))


def _sample(row: Mapping[str, Any], data_root: Path) -> dict[str, str]:
    # Captions are single-line already (curation.text); tabs would break the CSV.
    return {"key": row["pair_id"], "image": str((data_root / row["image_path"]).absolute()),
            "caption": " ".join(str(row["caption"]).split())}


def _write_csv(samples: Sequence[Mapping[str, str]], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink, delimiter=CSV_SEPARATOR, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow([CSV_IMAGE_KEY, CSV_CAPTION_KEY])
        writer.writerows([sample["image"], sample["caption"]] for sample in samples)


def _write_shards(samples: Sequence[Mapping[str, str]], folder: Path, shard_size: int) -> str:
    folder.mkdir()
    shards = range(0, len(samples), shard_size)
    for number, start in enumerate(shards):
        with tarfile.open(folder / SHARD_PATTERN.format(number), "w") as shard:
            for sample in samples[start:start + shard_size]:
                shard.add(sample["image"], arcname=f"{sample['key']}.jpg")
                _add_bytes(shard, f"{sample['key']}.txt", sample["caption"].encode("utf-8"))
    last = len(shards) - 1
    return f"shards/{{{0:05d}..{last:05d}}}.tar" if last else "shards/00000.tar"


def _add_bytes(shard: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    shard.addfile(info, io.BytesIO(payload))


def _snapshot(train: Sequence[Mapping[str, str]], val: Sequence[Mapping[str, str]]) -> str:
    digest = hashlib.sha256()
    for part, samples in (("train", train), ("val", val)):
        for sample in samples:
            digest.update(f"{part}\t{sample['key']}\t{sample['caption']}\n".encode())
    return digest.hexdigest()
