"""The evaluations an asset runs, each returning metric rows: zero-shot on UT
Zappos50K per attribute, and retrieval plus category-leaf zero-shot on the held-out
test split of `curated_pairs`.

Kept free of Dagster so they are tested and benchmarked as plain calls; the asset
loads the model (`EvaluatedModel.load`), calls these and writes the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clipshoe_pipeline.evaluation.embeddings import (
    ENCODE_BATCH_SIZE,
    ClipEncoder,
    EmbeddingCache,
    checkpoint_id,
    file_sha256,
)
from clipshoe_pipeline.evaluation.metrics_table import MetricRow, RunLabel, retrieval_rows, zeroshot_rows
from clipshoe_pipeline.evaluation.templates import LANGUAGES, class_text, templates_for
from clipshoe_pipeline.evaluation.zappos import EVALUATED_ATTRIBUTES, ZapposDataset
from clipshoe_pipeline.training.weights import WeightsSource

ZAPPOS_DATASET = "ut-zappos50k"
TEST_SPLIT_DATASET = "clipshoe-test"
CATEGORY_LEAF = "category_leaf"


@dataclass(frozen=True)
class EvaluatedModel:
    """An encoder with the label its rows carry and, unless it is randomly
    initialised, the embedding cache it reads and fills."""

    encoder: ClipEncoder
    run: RunLabel
    cache: EmbeddingCache | None
    checkpoint_id: str | None

    @classmethod
    def load(cls, display_name: str, model_name: str, weights: WeightsSource, evaluated_at: datetime, *,
             cache_dir: Path | None, device: str = "cpu", batch_size: int = ENCODE_BATCH_SIZE) -> EvaluatedModel:
        encoder = ClipEncoder.load(model_name, weights.value, device=device, batch_size=batch_size)
        run = RunLabel(model=display_name, checkpoint=f"{model_name}:{weights.identity or 'random-init'}",
                       evaluated_at=evaluated_at)
        return cls(encoder=encoder, run=run, cache=EmbeddingCache(cache_dir) if cache_dir else None,
                   checkpoint_id=checkpoint_id(model_name, weights.identity))

    def image_embeddings(self, shas: Sequence[str], paths: Sequence[Path]) -> np.ndarray:
        if self.cache is None or self.checkpoint_id is None:
            return self.encoder.encode_images(list(paths))
        embeddings, _ = self.cache.image_embeddings(self.checkpoint_id, shas, paths, self.encoder.encode_images)
        return embeddings


def zappos_metrics(dataset: ZapposDataset, model: EvaluatedModel, *, languages: Sequence[str] = LANGUAGES,
                   attributes: Sequence[str] = EVALUATED_ATTRIBUTES) -> list[MetricRow]:
    """Zero-shot Acc@k and balanced accuracy per attribute and prompt language."""
    paths = [item.image_path for item in dataset.items]
    embeddings = model.image_embeddings([file_sha256(path) for path in paths], paths)
    rows = []
    for attribute in attributes:
        truths = [item.attributes[attribute] for item in dataset.items]
        rows += _zeroshot_rows(embeddings, truths, attribute, model, ZAPPOS_DATASET, languages)
    return rows


def held_out_metrics(pairs: pa.Table, data_root: Path, model: EvaluatedModel, *,
                     category_leaf_of: Mapping[tuple[str, str], str] | None = None,
                     languages: Sequence[str] = LANGUAGES) -> list[MetricRow]:
    """Retrieval on the `split == "test"` rows of `pairs` (curated_pairs) and, given
    `category_leaf_of` ((site, product_id) -> the shop's category leaf), zero-shot
    classification with the leaves as classes. Queries of text->image are the
    distinct captions of each product; all images of a product are its positives.
    (Not named test_*: pytest would collect it where a test imports it.)"""
    # Here and in _zeroshot_rows, not at the top: the metrics import torch, and the
    # code location (which imports this module) loads without it.
    from clipshoe_pipeline.evaluation.retrieval import retrieval_metrics

    test = pairs.filter(pc.equal(pairs.column("split"), "test")).to_pylist()
    if not test:
        raise ValueError("curated_pairs has no test rows")
    products = [(row["site"], row["product_id"]) for row in test]
    product_keys = [f"{site}:{product_id}" for site, product_id in products]
    embeddings = model.image_embeddings([row["image_sha256"] for row in test],
                                        [data_root / row["image_path"] for row in test])
    queries = list(dict.fromkeys(zip(product_keys, (row["caption"] for row in test))))
    caption_embeddings = model.encoder.encode_texts([caption for _, caption in queries])
    result = retrieval_metrics(caption_embeddings, embeddings, [key for key, _ in queries], product_keys,
                               device=model.encoder.device)
    rows = retrieval_rows(result, model.run, TEST_SPLIT_DATASET)
    if category_leaf_of is not None:
        truths = [(leaf,) if (leaf := category_leaf_of.get(product)) else () for product in products]
        rows += _zeroshot_rows(embeddings, truths, CATEGORY_LEAF, model, TEST_SPLIT_DATASET, languages)
    return rows


def _zeroshot_rows(embeddings: np.ndarray, truths: Sequence[Collection[str]], attribute: str,
                   model: EvaluatedModel, dataset: str, languages: Sequence[str]) -> list[MetricRow]:
    from clipshoe_pipeline.evaluation.zeroshot import build_classifier, zeroshot_classification

    classes = sorted({value for truth in truths for value in truth})
    if len(classes) < 2:  # nothing to choose between
        return []
    rows = []
    for language in languages:
        classifier = build_classifier([class_text(attribute, value, language) for value in classes],
                                      templates_for(attribute, language), model.encoder.encode_texts)
        result = zeroshot_classification(embeddings, truths, classes, classifier)
        rows += zeroshot_rows(result, model.run, dataset, language, attribute)
    return rows
