"""Text<->image retrieval metrics over the whole test split, in bounded memory.

CLIP_benchmark and open_clip build the full texts x images score matrix: 80k x 80k
is 25.6 GB of float32. Here texts and images are sorted by group (a product: every
image of a product is a positive for each of its captions and vice versa) and cut
into the same runs of whole groups, so the score matrix falls into square blocks
and all positives lie in the diagonal blocks. A diagonal block gives every query's
best positive score (both directions at once); every other block holds only
negatives, and is reduced to per-row and per-column counts of scores at or above
those bests. Each score is computed once (one matrix product's worth of work for
both directions), and memory holds one block (64 MiB at the default 4096).

Ranks follow `ranking` (ties pessimistic); R@k is CLIP_benchmark's hit rate (any
positive in the top k); the median rank is numpy's median of the 1-based ranks (a
half when the number of queries is even). Embeddings are used as given: the
encoder L2-normalises them, so scores are cosine similarities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from clipshoe_pipeline.evaluation.ranking import best_positive_and_negatives_above, count_at_least, hit_rates

DEFAULT_KS = (1, 5, 10)
DEFAULT_BLOCK_SIZE = 4096


@dataclass(frozen=True)
class DirectionResult:
    """One retrieval direction: queries ranked against all targets."""

    ranks: np.ndarray  # per query, in the caller's order: 1-based rank of its best positive
    recall: dict[int, float]  # k -> fraction of queries with a positive in the top k
    median_rank: float

    @property
    def n(self) -> int:
        return len(self.ranks)


@dataclass(frozen=True)
class RetrievalResult:
    text_to_image: DirectionResult  # CLIP_benchmark's image_retrieval
    image_to_text: DirectionResult  # CLIP_benchmark's text_retrieval


def retrieval_metrics(text_embeddings: np.ndarray, image_embeddings: np.ndarray,
                      text_groups: Sequence | np.ndarray, image_groups: Sequence | np.ndarray, *,
                      ks: Sequence[int] = DEFAULT_KS, block_size: int = DEFAULT_BLOCK_SIZE,
                      device: str = "cpu") -> RetrievalResult:
    """R@k and median rank in both directions. `text_groups[i]` / `image_groups[j]`
    (e.g. product keys) say which texts and images are positives of each other; every
    group must have at least one text and one image."""
    text_codes, image_codes = _group_codes(text_groups, image_groups)
    text_order = np.argsort(text_codes, kind="stable")
    image_order = np.argsort(image_codes, kind="stable")
    texts = torch.from_numpy(np.ascontiguousarray(text_embeddings[text_order], dtype=np.float32)).to(device)
    images = torch.from_numpy(np.ascontiguousarray(image_embeddings[image_order], dtype=np.float32)).to(device)
    sorted_text_codes, sorted_image_codes = text_codes[text_order], image_codes[image_order]
    text_runs, image_runs = _aligned_runs(sorted_text_codes, sorted_image_codes, block_size)

    text_negatives = torch.zeros(len(texts), dtype=torch.int64, device=device)
    image_negatives = torch.zeros(len(images), dtype=torch.int64, device=device)
    text_best = torch.empty(len(texts), device=device)
    image_best = torch.empty(len(images), device=device)
    with torch.no_grad():
        for t, i in zip(text_runs, image_runs):  # diagonal blocks first: they set the bests
            scores = texts[t] @ images[i].T
            positive = torch.from_numpy(sorted_text_codes[t][:, None] == sorted_image_codes[i][None, :]).to(device)
            text_best[t], text_negatives[t] = best_positive_and_negatives_above(scores, positive, dim=1)
            image_best[i], image_negatives[i] = best_positive_and_negatives_above(scores, positive, dim=0)
        for a, t in enumerate(text_runs):
            for b, i in enumerate(image_runs):
                if a == b:
                    continue
                scores = texts[t] @ images[i].T  # negatives only
                text_negatives[t] += count_at_least(scores, text_best[t], dim=1)
                image_negatives[i] += count_at_least(scores, image_best[i], dim=0)

    return RetrievalResult(text_to_image=_direction(text_negatives.cpu().numpy(), text_order, ks),
                           image_to_text=_direction(image_negatives.cpu().numpy(), image_order, ks))


def _group_codes(text_groups: Sequence | np.ndarray,
                 image_groups: Sequence | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes shared by both sides; checks that every query has a positive."""
    text_values, image_values = np.asarray(text_groups), np.asarray(image_groups)
    _, codes = np.unique(np.concatenate([text_values, image_values]), return_inverse=True)
    text_codes, image_codes = codes[:len(text_values)], codes[len(text_values):]
    texts_alone = np.setdiff1d(text_codes, image_codes).size
    images_alone = np.setdiff1d(image_codes, text_codes).size
    if texts_alone or images_alone:
        raise ValueError(f"every group needs a text and an image: {texts_alone} groups have no image, "
                         f"{images_alone} no text")
    return text_codes, image_codes


def _aligned_runs(text_codes: np.ndarray, image_codes: np.ndarray,
                  block_size: int) -> tuple[list[slice], list[slice]]:
    """Slices of the sorted texts and images covering the same whole groups, each
    about `block_size` long on its longer side (longer only for a group that big)."""
    groups, text_starts = np.unique(text_codes, return_index=True)
    image_starts = np.searchsorted(image_codes, groups)
    text_ends = np.append(text_starts[1:], len(text_codes))
    image_ends = np.append(image_starts[1:], len(image_codes))
    text_runs, image_runs = [], []
    first = 0
    for last in range(len(groups)):
        closing = last == len(groups) - 1
        if not closing:  # close the run before the next group would overflow it
            longer = max(text_ends[last + 1] - text_starts[first], image_ends[last + 1] - image_starts[first])
            closing = longer > block_size
        if closing:
            text_runs.append(slice(int(text_starts[first]), int(text_ends[last])))
            image_runs.append(slice(int(image_starts[first]), int(image_ends[last])))
            first = last + 1
    return text_runs, image_runs


def _direction(negatives_sorted: np.ndarray, order: np.ndarray, ks: Sequence[int]) -> DirectionResult:
    ranks = np.empty_like(negatives_sorted)
    ranks[order] = negatives_sorted + 1  # back to the caller's order
    return DirectionResult(ranks=ranks, recall=hit_rates(ranks, ks), median_rank=float(np.median(ranks)))
