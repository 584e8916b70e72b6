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
positive in the top k; docs/references.md); the median rank is numpy's median of the 1-based ranks (a
half when the number of queries is even). Embeddings are used as given: the
encoder L2-normalises them, so scores are cosine similarities.

The matrix products are nearly all the work (6.6 TFLOP at 80k x 80k x 512). On a CPU
that multiplies bfloat16 natively they run ~2x faster in bf16, but bf16 scores are
off by a few 1e-3, enough to move ranks. So `precision="bf16"` uses the bf16
scores only to settle, with a proven error bound (`_screen_thresholds`), which
negatives are certainly above or certainly below a query's best positive; the few
within the bound of it (~0.1 % of the pairs on the benchmark's data), and all
positives, get their fp32 score from `_exact_scores`, bit-equal to the fp32 block
product's. Ranks are then those of `precision="fp32"`, which computes every score
with one fp32 matrix product per block: the reference, and the path on CUDA (where
it already takes ~1 s for 80k) and on CPUs without native bf16. (fp32 itself ranks
last-bit ties differently with very small blocks, whose products MKL rounds
differently; bf16 does not depend on the block size.)
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


def default_precision(device: str) -> str:
    """bf16 screening where the CPU has native bf16 matrix products (there it is ~2x
    the fp32 rate); fp32 elsewhere: emulated bf16 is slower than fp32, and on CUDA
    the fp32 path is already fast."""
    native_bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return "bf16" if torch.device(device).type == "cpu" and native_bf16 else "fp32"


def retrieval_metrics(text_embeddings: np.ndarray, image_embeddings: np.ndarray,
                      text_groups: Sequence | np.ndarray, image_groups: Sequence | np.ndarray, *,
                      ks: Sequence[int] = DEFAULT_KS, block_size: int = DEFAULT_BLOCK_SIZE,
                      device: str = "cpu", precision: str | None = None) -> RetrievalResult:
    """R@k and median rank in both directions. `text_groups[i]` / `image_groups[j]`
    (e.g. product keys) say which texts and images are positives of each other; every
    group must have at least one text and one image. `precision`: "fp32" or "bf16"
    (CPU only; exact, see the module docstring); default `default_precision(device)`."""
    precision = precision or default_precision(device)
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', not {precision!r}")
    if precision == "bf16" and torch.device(device).type != "cpu":
        raise ValueError("precision='bf16' runs on the CPU only")
    text_codes, image_codes = _group_codes(text_groups, image_groups)
    text_order = np.argsort(text_codes, kind="stable")
    image_order = np.argsort(image_codes, kind="stable")
    texts = np.ascontiguousarray(text_embeddings[text_order], dtype=np.float32)
    images = np.ascontiguousarray(image_embeddings[image_order], dtype=np.float32)
    sorted_text_codes, sorted_image_codes = text_codes[text_order], image_codes[image_order]
    text_runs, image_runs = _aligned_runs(sorted_text_codes, sorted_image_codes, block_size)
    count = _fp32_negatives if precision == "fp32" else _bf16_screened_negatives
    with torch.no_grad():
        text_negatives, image_negatives = count(texts, images, sorted_text_codes, sorted_image_codes,
                                                text_runs, image_runs, device)
    return RetrievalResult(text_to_image=_direction(text_negatives, text_order, ks),
                           image_to_text=_direction(image_negatives, image_order, ks))


def _fp32_negatives(texts: np.ndarray, images: np.ndarray, text_codes: np.ndarray, image_codes: np.ndarray,
                    text_runs: list[slice], image_runs: list[slice], device: str) -> tuple[np.ndarray, np.ndarray]:
    """Per text and per image (sorted order): negatives scoring >= its best positive,
    every score an fp32 matrix product."""
    texts_t, images_t = torch.from_numpy(texts).to(device), torch.from_numpy(images).to(device)
    text_negatives = torch.zeros(len(texts), dtype=torch.int64, device=device)
    image_negatives = torch.zeros(len(images), dtype=torch.int64, device=device)
    text_best = torch.empty(len(texts), device=device)
    image_best = torch.empty(len(images), device=device)
    for t, i in zip(text_runs, image_runs):  # diagonal blocks first: they set the bests
        scores = texts_t[t] @ images_t[i].T
        positive = torch.from_numpy(text_codes[t][:, None] == image_codes[i][None, :]).to(device)
        text_best[t], text_negatives[t] = best_positive_and_negatives_above(scores, positive, dim=1)
        image_best[i], image_negatives[i] = best_positive_and_negatives_above(scores, positive, dim=0)
    for a, t in enumerate(text_runs):
        for b, i in enumerate(image_runs):
            if a == b:
                continue
            scores = texts_t[t] @ images_t[i].T  # negatives only
            text_negatives[t] += count_at_least(scores, text_best[t], dim=1)
            image_negatives[i] += count_at_least(scores, image_best[i], dim=0)
    return text_negatives.cpu().numpy(), image_negatives.cpu().numpy()


def _bf16_screened_negatives(texts: np.ndarray, images: np.ndarray, text_codes: np.ndarray,
                             image_codes: np.ndarray, text_runs: list[slice], image_runs: list[slice],
                             device: str) -> tuple[np.ndarray, np.ndarray]:
    """The same counts as `_fp32_negatives`, from bf16 block products: a score the bf16
    product puts outside [lo, hi] of a query is certainly below / at-or-above its best
    positive; one inside is recomputed exactly. All bests are known up front (from
    the positives alone), so blocks can come in any order."""
    text_best, image_best = _best_positive_scores(texts, images, text_codes, image_codes, text_runs, image_runs)
    texts_bf16, images_bf16 = torch.from_numpy(texts).bfloat16(), torch.from_numpy(images).bfloat16()
    text_lo, text_hi = _screen_thresholds(text_best, texts, texts_bf16, images, images_bf16)
    image_lo, image_hi = _screen_thresholds(image_best, images, images_bf16, texts, texts_bf16)
    text_negatives = np.zeros(len(texts), dtype=np.int64)
    image_negatives = np.zeros(len(images), dtype=np.int64)
    # Buffers reused by every block: fresh 64 MiB arrays per block cost more in page
    # faults than the comparisons themselves.
    size = max(t.stop - t.start for t in text_runs) * max(i.stop - i.start for i in image_runs)
    product = torch.empty(size, dtype=torch.bfloat16)
    scores_buffer = torch.empty(size, dtype=torch.float32)
    above_text_lo, above_image_lo = np.empty(size, dtype=bool), np.empty(size, dtype=bool)
    for a, t in enumerate(text_runs):
        for b, i in enumerate(image_runs):
            m, n = t.stop - t.start, i.stop - i.start
            torch.mm(texts_bf16[t], images_bf16[i].T, out=product[:m * n].view(m, n))
            scores_tensor = scores_buffer[:m * n].view(m, n)
            scores_tensor.copy_(product[:m * n].view(m, n))  # exact: numpy compares float32, not bf16
            scores = scores_tensor.numpy()
            if a == b:  # positives are no negatives of anyone
                scores[text_codes[t][:, None] == image_codes[i][None, :]] = -np.inf
            rows_above = above_text_lo[:m * n].reshape(m, n)
            cols_above = above_image_lo[:m * n].reshape(m, n)
            np.greater_equal(scores, text_lo[t, None], out=rows_above)
            np.greater_equal(scores, image_lo[None, i], out=cols_above)
            # Everything below both thresholds is settled (not counted) in one pass;
            # the rest is sparse: ~ the queries' ranks plus the unsure band.
            flat = np.flatnonzero(np.logical_or(rows_above, cols_above, out=rows_above))
            rows, cols = np.divmod(flat, n)
            values = scores.ravel()[flat]
            rows += t.start
            cols += i.start
            text_sure = values > text_hi[rows]
            image_sure = values > image_hi[cols]
            text_unsure = (values >= text_lo[rows]) & ~text_sure
            image_unsure = (values >= image_lo[cols]) & ~image_sure
            unsure = text_unsure | image_unsure
            exact = _exact_scores(texts, images, rows[unsure], cols[unsure])
            text_counted = text_sure
            text_counted[unsure] |= text_unsure[unsure] & (exact >= text_best[rows[unsure]])
            image_counted = image_sure
            image_counted[unsure] |= image_unsure[unsure] & (exact >= image_best[cols[unsure]])
            text_negatives[t] += np.bincount(rows[text_counted] - t.start, minlength=m)
            image_negatives[i] += np.bincount(cols[image_counted] - i.start, minlength=n)
    return text_negatives, image_negatives


def _exact_scores(queries: np.ndarray, targets: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                  chunk: int = 4096) -> np.ndarray:
    """fp32 score of each pair (queries[rows[k]], targets[cols[k]]), bit-equal to the
    same entry of `_fp32_negatives`' block product. fp32 dot products round
    differently in the last bit with the order of summation, and a negative within
    ~1e-8 of a best positive then lands on the other side of it (seen: 2 of 40,000
    queries at 20k with numpy's pairwise sums). So pairs go 16 at a time through
    batched 16 x 16 fp32 products, of which the diagonal is kept: these match MKL's
    sgemm on blocks of the default size bit for bit (measured: smaller tiles, small
    blocks, einsum and numpy all round differently; tests/test_evaluation_retrieval.py
    checks last-bit ties against the fp32 path at the default block size).
    Error vs the real dot product <= gamma(dim) * sum |q_i c_i|, as for any order."""
    scores = np.empty(len(rows), dtype=np.float32)
    tile = 16
    for start in range(0, len(rows), chunk):  # bounded gathers
        part_rows, part_cols = rows[start:start + chunk], cols[start:start + chunk]
        pad = -len(part_rows) % tile  # repeat the last pair to fill the last tile
        part_rows = np.concatenate([part_rows, np.repeat(part_rows[-1:], pad)])
        part_cols = np.concatenate([part_cols, np.repeat(part_cols[-1:], pad)])
        # numpy's row gathers are ~10x faster than torch indexing here
        q = torch.from_numpy(queries[part_rows]).view(-1, tile, queries.shape[1])
        c = torch.from_numpy(targets[part_cols]).view(-1, tile, targets.shape[1])
        products = torch.bmm(q, c.transpose(1, 2)).diagonal(dim1=1, dim2=2).reshape(-1)
        scores[start:start + chunk] = products[:len(products) - pad].numpy()
    return scores


def _best_positive_scores(texts: np.ndarray, images: np.ndarray, text_codes: np.ndarray, image_codes: np.ndarray,
                          text_runs: list[slice], image_runs: list[slice],
                          row_chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Each text's and image's best positive score, by `_exact_scores` over all
    positive pairs (one diagonal block at a time, in row chunks: a block's pairs
    can be many when a group is big)."""
    text_best = np.full(len(texts), -np.inf, dtype=np.float32)
    image_best = np.full(len(images), -np.inf, dtype=np.float32)
    for t, i in zip(text_runs, image_runs):
        for start in range(t.start, t.stop, row_chunk):
            stop = min(start + row_chunk, t.stop)
            rows, cols = np.nonzero(text_codes[start:stop, None] == image_codes[None, i])
            rows += start
            cols += i.start
            scores = _exact_scores(texts, images, rows, cols)
            np.maximum.at(text_best, rows, scores)
            np.maximum.at(image_best, cols, scores)
    return text_best, image_best


def _screen_thresholds(best: np.ndarray, queries: np.ndarray, queries_bf16: torch.Tensor,
                       targets: np.ndarray, targets_bf16: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per query, float32 (lo, hi) such that, for every target c, the bf16 block
    product's score p of (q, c) and the exact fp32 score s = `_exact_scores` obey
    p > hi => s >= best and p < lo => s < best.

    Why: write q = q' + dq with q' = bf16(q) (|dq_i| <= 2^-8 |q_i|: bf16 keeps 8
    significant bits, round to nearest), likewise c. With r the real dot product,
    |r - q'.c'| = |q'.dc + dq.c' + dq.dc| <= |q'||dc| + |dq||c'| + |dq||dc|
    (Cauchy-Schwarz, with the actual norms of the rounding residuals, measured: ~2.5x
    tighter than the generic 2^-7 |q||c|). oneDNN forms each bf16 x bf16 product
    exactly in fp32 and accumulates in fp32: error <= gamma(dim) |q'||c'| for any
    summation order, gamma(k) = k u / (1 - k u), u = 2^-24; `_exact_scores` errs by
    <= gamma(dim) |q||c|. Their sum E bounds |a - s| for a = the fp32 accumulator; so
    a >= best + E => s >= best and a < best - E => s < best. The product is then
    rounded to bf16 once, p = round(a), |p - a| <= 2^-8 |a|; rounding is monotone,
    so a < best + E => p <= (best + E)(1 + 2^-8) (for positive values; |.| in
    general), and likewise below. Norms are maxima over all targets, computed in
    float64; a relative 2^-20 and an absolute 2^-100 cover float64 rounding and
    flushed subnormals, and the thresholds are rounded outwards to float32."""
    query_norm, query_residual = _rounding_norms(queries, queries_bf16)
    target_norm, target_residual = _rounding_norms(targets, targets_bf16)
    a_max, r_max = target_norm.max(), target_residual.max()
    unit = 2.0 ** -24 * queries.shape[1]
    gamma = unit / (1 - unit)
    bound = (query_norm * r_max + query_residual * a_max + query_residual * r_max
             + 2 * gamma * (query_norm + query_residual) * (a_max + r_max))
    bound = bound * (1 + 2.0 ** -20) + 2.0 ** -100 * (1 + (query_norm + query_residual) * (a_max + r_max))
    low, high = best - bound, best + bound  # float64
    low = low - 2.0 ** -8 * np.abs(low) - 2.0 ** -100
    high = high + 2.0 ** -8 * np.abs(high) + 2.0 ** -100
    low32, high32 = low.astype(np.float32), high.astype(np.float32)
    low32 = np.where(low32 > low, np.nextafter(low32, np.float32(-np.inf)), low32)
    high32 = np.where(high32 < high, np.nextafter(high32, np.float32(np.inf)), high32)
    return low32, high32


def _rounding_norms(vectors: np.ndarray, vectors_bf16: torch.Tensor,
                    chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """(|bf16(v)|, |v - bf16(v)|) per row, in float64 (in chunks: a float64 copy of
    80k x 512 would be 330 MB)."""
    norms = np.empty(len(vectors))
    residuals = np.empty(len(vectors))
    for start in range(0, len(vectors), chunk):
        part = slice(start, start + chunk)
        rounded = vectors_bf16[part].double().numpy()
        norms[part] = np.linalg.norm(rounded, axis=1)
        residuals[part] = np.linalg.norm(vectors[part] - rounded, axis=1)
    return norms, residuals


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
