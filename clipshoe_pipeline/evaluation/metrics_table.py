"""Metric rows in the long format of the `metrics` table, and a comparison table.

One row per number (`model, checkpoint, dataset, task, attribute, metric, k, value,
n, evaluated_at`), so new attributes, datasets or k need no schema change and
models compare with one GROUP BY. Conventions:
- task: `retrieval`, or `zeroshot_classification/<language>` (the prompt language:
  the same attribute is evaluated with English and Vietnamese templates);
- metric: CLIP_benchmark's names where it has one: `image_retrieval_recall`
  (text->image) and `text_retrieval_recall` (image->text) with k, their
  `*_median_rank`, `acc` with k, and `balanced_accuracy` (its mean_per_class_recall);
- attribute: the classified attribute, null for retrieval; k: null where none;
- n: the number of queries or classified images behind the value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from clipshoe_pipeline.markdown import markdown_table

if TYPE_CHECKING:  # the metric modules import torch; building rows from their results needs none
    from clipshoe_pipeline.evaluation.retrieval import DirectionResult, RetrievalResult
    from clipshoe_pipeline.evaluation.zeroshot import ZeroShotResult

RETRIEVAL_TASK = "retrieval"
METRICS_SCHEMA = pa.schema([
    pa.field("model", pa.string(), nullable=False),
    pa.field("checkpoint", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("task", pa.string(), nullable=False),
    pa.field("attribute", pa.string()),
    pa.field("metric", pa.string(), nullable=False),
    pa.field("k", pa.int32()),
    pa.field("value", pa.float64(), nullable=False),
    pa.field("n", pa.int64(), nullable=False),
    pa.field("evaluated_at", pa.timestamp("us", tz="UTC"), nullable=False),
])
_KEY = ("dataset", "task", "attribute", "metric", "k")


@dataclass(frozen=True)
class RunLabel:
    """Which model an evaluation ran: `model` is the name tables show (e.g. "ViT-B-32
    laion2b" or "clipshoe fine-tune"), `checkpoint` the weights it loaded."""

    model: str
    checkpoint: str
    evaluated_at: datetime  # timezone-aware


@dataclass(frozen=True)
class MetricRow:
    model: str
    checkpoint: str
    dataset: str
    task: str
    attribute: str | None
    metric: str
    k: int | None
    value: float
    n: int
    evaluated_at: datetime


def zeroshot_task(language: str) -> str:
    return f"zeroshot_classification/{language}"


def retrieval_rows(result: RetrievalResult, run: RunLabel, dataset: str) -> list[MetricRow]:
    return [*_direction_rows(result.text_to_image, "image_retrieval", run, dataset),
            *_direction_rows(result.image_to_text, "text_retrieval", run, dataset)]


def _direction_rows(result: DirectionResult, name: str, run: RunLabel, dataset: str) -> list[MetricRow]:
    def row(metric: str, k: int | None, value: float) -> MetricRow:
        return MetricRow(run.model, run.checkpoint, dataset, RETRIEVAL_TASK, None, metric, k, value, result.n,
                         run.evaluated_at)

    return [*(row(f"{name}_recall", k, value) for k, value in result.recall.items()),
            row(f"{name}_median_rank", None, result.median_rank)]


def zeroshot_rows(result: ZeroShotResult, run: RunLabel, dataset: str, language: str,
                  attribute: str) -> list[MetricRow]:
    def row(metric: str, k: int | None, value: float) -> MetricRow:
        return MetricRow(run.model, run.checkpoint, dataset, zeroshot_task(language), attribute, metric, k, value,
                         result.n, run.evaluated_at)

    return [*(row("acc", k, value) for k, value in result.accuracy.items()),
            row("balanced_accuracy", None, result.balanced_accuracy)]


def metrics_table(rows: Iterable[MetricRow]) -> pa.Table:
    """The rows as an Arrow table in METRICS_SCHEMA (for write_parquet_atomic and
    CatalogDB's bulk loads)."""
    return pa.Table.from_pylist([asdict(row) for row in rows], schema=METRICS_SCHEMA)


def markdown_comparison(table: pa.Table, baseline_model: str) -> str:
    """One line per (dataset, task, attribute, metric, k), one column per model with
    the baseline first; other models show their difference to it. Higher is better
    except for median ranks."""
    rows = table.to_pylist()
    models = list(dict.fromkeys([baseline_model, *(row["model"] for row in rows)]))
    value_of = {(*(row[key] for key in _KEY), row["model"]): row["value"] for row in rows}
    keys = sorted({tuple(row[key] for key in _KEY) for row in rows}, key=lambda key: tuple(map(_sortable, key)))
    def line(key: tuple) -> list[str]:
        baseline = value_of.get((*key, baseline_model))
        cells = [_cell(value_of.get((*key, model)), None if model == baseline_model else baseline) for model in models]
        return [*("" if part is None else str(part) for part in key), *cells]

    return markdown_table([*_KEY, *models], map(line, keys))


def _cell(value: float | None, baseline: float | None) -> str:
    if value is None:
        return "–"
    if baseline is None:
        return f"{value:.3f}"
    return f"{value:.3f} ({value - baseline:+.3f})"


def _sortable(part: str | int | None) -> tuple[bool, str | int]:
    return (part is not None, part if part is not None else "")
