"""The `metrics` rows of an evaluation as CLIP_benchmark result files.

CLIP_benchmark's `clip_benchmark eval` (1.6.2, `cli.run`) writes one JSON document
per run, that is per (model, pretrained, dataset, language, task):
`{"dataset", "model", "pretrained", "task", "metrics", "language"}`, where `model` is
the open_clip architecture and `pretrained` its weights (a tag or a checkpoint
path); `clip_benchmark build` merges such files into one CSV. Written in that shape,
our numbers sit beside published CLIP_benchmark runs in its own tooling. From the
rows of `metrics_table`:
- dataset: ours, followed by the attribute for zero-shot ("ut-zappos50k/Category"):
  each attribute is a classification of its own, as each CLIP_benchmark dataset is;
- model, pretrained: the two halves of our `checkpoint` ("ViT-B-32:laion2b_s34b_b79k");
- task, language: `zeroshot_classification` with the prompts' language, or
  `zeroshot_retrieval` with the captions' (the shops write Vietnamese);
- metrics: CLIP_benchmark's names: `acc1`, `acc5` (`acc{k}` for each of our k),
  `mean_per_class_recall` (our balanced_accuracy), `image_retrieval_recall@k`
  (text->image) and `text_retrieval_recall@k` (image->text); the median ranks, which
  it does not compute, keep our names. Where CLIP_benchmark writes `acc5` as NaN
  (fewer than 5 classes), there is no `acc5`: the table has no Acc@k for k >= the
  number of classes.
The definitions are CLIP_benchmark's, the arithmetic is not quite: ours is fp32 with
ties ranked against the positive (`ranking`), its default mixed precision (bf16 on
a CPU) with ties in `torch.topk`'s order (tests/test_clip_benchmark_agreement.py).

Files are named by the table's `model` (our name for the evaluated model), not by
CLIP_benchmark's `{dataset}_{pretrained}_{model}_...`: a baseline and its fine-tunes
share an architecture, and a fine-tune's `pretrained` is a path ending in epoch_N.pt.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from clipshoe_common.files import write_json_atomic
from clipshoe_pipeline.evaluation.metrics_table import RETRIEVAL_TASK, zeroshot_task
from clipshoe_pipeline.training.models import SCHEMA_PREFIXES

CLASSIFICATION_TASK = "zeroshot_classification"
RETRIEVAL_BENCHMARK_TASK = "zeroshot_retrieval"
CAPTION_LANGUAGE = "vi"  # the held-out split's captions: Vietnamese shops' product titles
_RENAMED = {"balanced_accuracy": "mean_per_class_recall"}
_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BenchmarkRun:
    """One CLIP_benchmark-like run: `document` is its JSON; `model_label` is the
    table's `model`, which names its file."""

    model_label: str
    document: dict[str, Any]

    @property
    def file_name(self) -> str:
        """`<dataset>__<model>__<task>__<language>.json`, each part reduced to
        letters, digits, '.', '-' and '_' (so "ut-zappos50k/Category" stays one file)."""
        parts = (self.document["dataset"], self.model_label, self.document["task"], self.document["language"])
        return "__".join(_UNSAFE_IN_FILE_NAMES.sub("_", part) for part in parts) + ".json"


def benchmark_runs(table: pa.Table) -> list[BenchmarkRun]:
    """The rows of a `metrics` table (METRICS_SCHEMA) grouped into CLIP_benchmark runs,
    in the order the table first names them. The table must hold one evaluation: a
    metric met twice in a run is an error."""
    metrics_of: dict[tuple[str, str, str, str, str], dict[str, float]] = {}
    for row in table.to_pylist():
        dataset = row["dataset"] if row["attribute"] is None else f"{row['dataset']}/{row['attribute']}"
        run_key = (row["model"], row["checkpoint"], dataset, *_task_and_language(row["task"]))
        metrics = metrics_of.setdefault(run_key, {})
        name = _metric_name(row["metric"], row["k"])
        if name in metrics:
            raise ValueError(f"{name} twice for {run_key}: the table holds more than one evaluation of it")
        metrics[name] = row["value"]
    runs = []
    for (model_label, checkpoint, dataset, task, language), metrics in metrics_of.items():
        model, pretrained = _model_and_weights(checkpoint)
        runs.append(BenchmarkRun(model_label, {"dataset": dataset, "model": model, "pretrained": pretrained,
                                               "task": task, "metrics": metrics, "language": language}))
    return runs


def write_benchmark_json(table: pa.Table, folder: Path) -> list[Path]:
    """One file per run of `benchmark_runs(table)` in `folder` (created if missing),
    each written atomically; returns their paths. Nothing is written when two runs
    would share a file name."""
    runs = benchmark_runs(table)
    names = [run.file_name for run in runs]
    clashes = sorted(name for name, count in Counter(names).items() if count > 1)
    if clashes:
        raise ValueError(f"several runs would be written to {clashes}: one model name with several checkpoints, "
                         "or names that differ only in characters unsafe in file names")
    paths = [folder / name for name in names]
    for run, path in zip(runs, paths):
        write_json_atomic(path, run.document)
    return paths


def _task_and_language(task: str) -> tuple[str, str]:
    """CLIP_benchmark's task and language of one of our `task` values."""
    if task == RETRIEVAL_TASK:
        return RETRIEVAL_BENCHMARK_TASK, CAPTION_LANGUAGE
    language = task.partition("/")[2]
    if not language or task != zeroshot_task(language):
        raise ValueError(f"unknown task {task!r}: neither {RETRIEVAL_TASK!r} nor {zeroshot_task('<language>')!r}")
    return CLASSIFICATION_TASK, language


def _metric_name(metric: str, k: int | None) -> str:
    if k is None:
        return _RENAMED.get(metric, metric)
    return f"acc{k}" if metric == "acc" else f"{metric}@{k}"


def _model_and_weights(checkpoint: str) -> tuple[str, str]:
    """(open_clip model name, weights) of a `checkpoint` value, f"{model}:{weights}"
    (suites.EvaluatedModel.load), where an `hf-hub:`/`local-dir:` model name holds a
    colon of its own."""
    schema = next((prefix for prefix in SCHEMA_PREFIXES if checkpoint.startswith(prefix)), "")
    model, separator, weights = checkpoint[len(schema):].partition(":")
    if not separator:
        raise ValueError(f"checkpoint {checkpoint!r} is not 'model:weights'")
    return schema + model, weights
