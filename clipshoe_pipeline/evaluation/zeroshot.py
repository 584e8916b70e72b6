"""Zero-shot classification as CLIP_benchmark computes it (docs/references.md), with
multi-valued truth.

Classifier: for each class, every prompt template is filled with the class's text,
encoded, L2-normalised, averaged, and the mean re-normalised. Images are scored
against the classes (CLIP_benchmark scales logits by 100; ranks do not change, so
we don't). A row may have several true values (UT Zappos50K's `Material` of
"Leather;Rubber"): its rank is that of its best-ranked true class, so it counts a
hit on any true value. Balanced accuracy (CLIP_benchmark's mean_per_class_recall)
is the mean over classes of the top-1 hit rate of the rows having that class among
their values; a multi-valued row counts towards each of its classes. Acc@k is
reported only for k below the number of classes (at k = #classes it is 1 by
construction).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from clipshoe_pipeline.evaluation.ranking import first_positive_ranks, hit_rates

DEFAULT_KS = (1, 3, 5)
TextEncoder = Callable[[list[str]], np.ndarray]  # texts -> (n, d) float32 embeddings


@dataclass(frozen=True)
class ZeroShotResult:
    accuracy: dict[int, float]  # k -> Acc@k, only k < n_classes
    balanced_accuracy: float
    n: int  # rows evaluated (rows with at least one true value)
    n_classes: int


def build_classifier(class_texts: Sequence[str], templates: Sequence[str], encode_texts: TextEncoder) -> np.ndarray:
    """(n_classes, d) float32: per class, the re-normalised mean of its normalised
    prompt embeddings. All prompts go to the encoder in one call, which batches."""
    prompts = [template.format(text) for text in class_texts for template in templates]
    embeddings = _normalised(np.asarray(encode_texts(prompts), dtype=np.float32))
    per_class = embeddings.reshape(len(class_texts), len(templates), -1).mean(axis=1)
    return _normalised(per_class)


def zeroshot_classification(image_embeddings: np.ndarray, truths: Sequence[Collection[str]],
                            classes: Sequence[str], classifier: np.ndarray, *,
                            ks: Sequence[int] = DEFAULT_KS) -> ZeroShotResult:
    """Acc@k and balanced accuracy of `classifier` (rows in `classes` order) on the
    images; `truths[i]` holds image i's true class values. Rows without a value are
    skipped (an attribute missing from the metadata is not a wrong answer)."""
    class_index = {name: c for c, name in enumerate(classes)}
    unknown = {value for truth in truths for value in truth} - class_index.keys()
    if unknown:
        raise ValueError(f"true values that are not classes: {sorted(unknown)[:5]}")
    labelled = [i for i, truth in enumerate(truths) if truth]
    if not labelled:
        raise ValueError("no row has a true value")
    truth_mask = np.zeros((len(labelled), len(classes)), dtype=bool)
    for row, i in enumerate(labelled):
        truth_mask[row, [class_index[value] for value in truths[i]]] = True
    logits = torch.from_numpy(np.asarray(image_embeddings[labelled], dtype=np.float32)) @ torch.from_numpy(
        np.asarray(classifier, dtype=np.float32)).T
    ranks = first_positive_ranks(logits, torch.from_numpy(truth_mask))
    return ZeroShotResult(accuracy=hit_rates(ranks, [k for k in ks if k < len(classes)]),
                          balanced_accuracy=balanced_accuracy(ranks, truth_mask),
                          n=len(labelled), n_classes=len(classes))


def balanced_accuracy(ranks: np.ndarray, truth_mask: np.ndarray) -> float:
    """Mean over classes that have rows of the top-1 hit rate among those rows."""
    hits = (ranks == 1).astype(np.float64)
    rows_per_class = truth_mask.sum(axis=0)
    present = rows_per_class > 0
    recall = (hits @ truth_mask)[present] / rows_per_class[present]
    return float(recall.mean())


def _normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
