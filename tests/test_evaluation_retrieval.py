"""Retrieval metrics: hand-checked ranks with ties and several positives, the
chunked computation equal to an independent full-matrix reference, and the bf16
screened path equal to the fp32 one, near-ties included."""

from __future__ import annotations

import numpy as np
import pytest

from clipshoe_pipeline.evaluation.retrieval import _screen_thresholds, retrieval_metrics

PRECISIONS = ["fp32", "bf16"]


def reference_ranks(queries: np.ndarray, targets: np.ndarray, query_groups, target_groups) -> np.ndarray:
    """Full score matrix; each row sorted by score descending, negatives before
    positives among equal scores; rank = position of the first positive."""
    scores = queries.astype(np.float64) @ targets.astype(np.float64).T
    target_groups = np.asarray(target_groups)
    ranks = []
    for row, group in zip(scores, query_groups):
        positive = target_groups == group
        order = np.lexsort((positive, -row))  # last key is primary
        ranks.append(int(np.flatnonzero(positive[order])[0]) + 1)
    return np.array(ranks)


def grid_embeddings(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Small integers: every dot product is exact in float32 whatever the summation
    order, so exact ties survive blocking and the two computations must agree."""
    return rng.integers(-2, 3, size=(n, dim)).astype(np.float32)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_hand_checked_ties_and_multiple_positives(precision):
    # Images on the axes make every score readable: score(text, image j) = text[j].
    images = np.eye(4, dtype=np.float32)
    image_groups = ["a", "a", "b", "c"]
    texts = np.array([[0.5, 0.9, 0.9, 0.1],   # a: best positive 0.9 tied with negative b -> rank 2
                      [0.2, 0.3, 0.7, 0.3],   # b: top -> rank 1
                      [0.8, 0.8, 0.8, 0.8],   # c: all tied -> rank 4 (pessimistic)
                      [0.9, 0.1, 0.2, 0.5]],  # a: the other positive wins -> rank 1
                     dtype=np.float32)
    text_groups = ["a", "b", "c", "a"]
    result = retrieval_metrics(texts, images, text_groups, image_groups, ks=(1, 2, 3), precision=precision)
    assert result.text_to_image.ranks.tolist() == [2, 1, 4, 1]
    assert result.text_to_image.recall == {1: 0.5, 2: 0.75, 3: 0.75}
    assert result.text_to_image.median_rank == 1.5
    # Image columns: image0 (a) texts 0.5,0.2,0.8,0.9 -> positives 0.5/0.9: best 0.9, rank 1.
    # image1 (a): 0.9,0.3,0.8,0.1 -> best 0.9 -> rank 1. image2 (b): 0.9,0.7,0.8,0.2 -> 0.7 -> rank 3.
    # image3 (c): 0.1,0.3,0.8,0.5 -> 0.8 -> rank 1.
    assert result.image_to_text.ranks.tolist() == [1, 1, 3, 1]
    assert result.image_to_text.recall == {1: 0.75, 2: 0.75, 3: 1.0}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_collapsed_model_gets_the_worst_rank(precision):
    texts, images = np.ones((3, 2), dtype=np.float32), np.ones((3, 2), dtype=np.float32)
    result = retrieval_metrics(texts, images, [0, 1, 2], [0, 1, 2], precision=precision)
    assert result.text_to_image.ranks.tolist() == [3, 3, 3]
    assert result.image_to_text.recall[1] == 0.0


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("block_size", [1, 5, 16, 1000])
@pytest.mark.parametrize("seed", [0, *(pytest.param(seed, marks=pytest.mark.slow) for seed in (1, 2))])
def test_chunked_equals_full_matrix_with_ties(seed, block_size, precision):
    rng = np.random.default_rng(seed)
    groups = 40
    image_groups = np.concatenate([np.arange(groups), rng.integers(0, groups, 60)])  # 1-5 images each
    text_groups = np.concatenate([np.arange(groups), rng.integers(0, groups, 20)])
    rng.shuffle(image_groups), rng.shuffle(text_groups)  # the function must not rely on order
    texts, images = grid_embeddings(rng, len(text_groups), 6), grid_embeddings(rng, len(image_groups), 6)
    result = retrieval_metrics(texts, images, text_groups, image_groups, block_size=block_size, precision=precision)
    expected_t2i = reference_ranks(texts, images, text_groups, image_groups)
    expected_i2t = reference_ranks(images, texts, image_groups, text_groups)
    assert result.text_to_image.ranks.tolist() == expected_t2i.tolist()
    assert result.image_to_text.ranks.tolist() == expected_i2t.tolist()
    for k in (1, 5, 10):
        assert result.text_to_image.recall[k] == pytest.approx(np.mean(expected_t2i <= k))
        assert result.image_to_text.recall[k] == pytest.approx(np.mean(expected_i2t <= k))
    assert result.image_to_text.median_rank == np.median(expected_i2t)


def test_chunked_equals_full_matrix_on_normalised_embeddings():
    rng = np.random.default_rng(7)
    products = rng.normal(size=(120, 32))
    image_groups = np.repeat(np.arange(120), rng.integers(1, 4, 120))
    images = products[image_groups] + 0.8 * rng.normal(size=(len(image_groups), 32))
    texts = products + 0.8 * rng.normal(size=products.shape)
    images = (images / np.linalg.norm(images, axis=1, keepdims=True)).astype(np.float32)
    texts = (texts / np.linalg.norm(texts, axis=1, keepdims=True)).astype(np.float32)
    keys = [f"site:{i}" for i in range(120)]  # string groups, as product keys are
    result = retrieval_metrics(texts, images, keys, [keys[g] for g in image_groups], block_size=50)
    assert result.text_to_image.ranks.tolist() == reference_ranks(texts, images, keys,
                                                                  [keys[g] for g in image_groups]).tolist()
    assert result.text_to_image.recall[10] > result.text_to_image.recall[1] > 0.1  # signal, not noise


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def near_tie_embeddings(rng: np.random.Generator, groups: int = 60, dim: int = 512):
    """Normalised embeddings where many negatives score within bf16's error of a
    query's best positive: copies of a group's image moved off it by 1e-8 to 4e-3
    (plus exact duplicates), and copies moved orthogonally to the query, whose real
    score equals the positive's, so only fp32's last bit decides. dim 512 so the
    matrix products run the production kernels."""
    products = rng.normal(size=(groups, dim))
    text_groups = np.concatenate([np.arange(groups), rng.integers(0, groups, groups // 2)])  # several per group
    texts = unit(products[text_groups] + rng.normal(size=(len(text_groups), dim)))
    image_groups = np.concatenate([np.arange(groups), rng.integers(0, groups, groups)])
    images = unit(products[image_groups] + rng.normal(size=(len(image_groups), dim)))
    copies, copy_groups = [], []
    for query in range(groups):  # texts 0..groups-1: text g is in group g
        positive = images[query]  # image g is in group g too
        other = (query + 1 + rng.integers(groups - 1)) % groups
        for scale in (0.0, 0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 4e-3):
            copies.append(positive + scale * rng.normal(size=dim).astype(np.float32))
            copy_groups.append(other)
        for _ in range(4):
            noise = rng.normal(size=dim)
            noise -= (noise @ texts[query]) * texts[query]
            copies.append(positive + 1e-6 * noise.astype(np.float32))
            copy_groups.append(other)
    images = np.concatenate([images, np.array(copies, dtype=np.float32)])
    image_groups = np.concatenate([image_groups, copy_groups])
    return texts, images, text_groups, image_groups


@pytest.mark.parametrize("block_size", [37, 4096])
@pytest.mark.parametrize("seed", range(2))
def test_bf16_equals_fp32_on_near_ties(seed, block_size):
    """The reference is fp32 with the default block size: MKL rounds products of
    small blocks differently, so fp32 with block_size=37 ranks ~40 % of these
    queries differently (last-bit ties); bf16 must not depend on the block size."""
    rng = np.random.default_rng(seed)
    texts, images, text_groups, image_groups = near_tie_embeddings(rng)
    order = rng.permutation(len(images))  # the function must not rely on order
    images, image_groups = images[order], image_groups[order]
    fp32 = retrieval_metrics(texts, images, text_groups, image_groups, precision="fp32")
    bf16 = retrieval_metrics(texts, images, text_groups, image_groups, block_size=block_size, precision="bf16")
    assert bf16.text_to_image.ranks.tolist() == fp32.text_to_image.ranks.tolist()
    assert bf16.image_to_text.ranks.tolist() == fp32.image_to_text.ranks.tolist()
    assert bf16.text_to_image.median_rank == fp32.text_to_image.median_rank
    # The near-ties are real: many queries have negatives at or above their best positive.
    assert np.mean(fp32.text_to_image.ranks > 1) > 0.5


def test_screen_thresholds_bound_the_bf16_error():
    """Every bf16 product score above hi (below lo) must have its fp32 score at or
    above (below) the threshold, here for thresholds right at the fp32 scores."""
    import torch

    rng = np.random.default_rng(3)
    queries, targets = unit(rng.normal(size=(300, 512))), unit(rng.normal(size=(400, 512)))
    queries_t, targets_t = torch.from_numpy(queries), torch.from_numpy(targets)
    exact = (queries_t @ targets_t.T).numpy()
    screened = (queries_t.bfloat16() @ targets_t.bfloat16().T).float().numpy()
    best = exact[:, 0]  # threshold = each query's score with target 0
    lo, hi = _screen_thresholds(best, queries, queries_t.bfloat16(), targets, targets_t.bfloat16())
    assert not np.any((screened > hi[:, None]) & (exact < best[:, None]))
    assert not np.any((screened < lo[:, None]) & (exact >= best[:, None]))
    assert np.all(hi - lo < 0.02)  # narrow enough to leave few scores to recompute


def test_precision_is_checked():
    embeddings = np.eye(2, dtype=np.float32)
    with pytest.raises(ValueError, match="precision must be"):
        retrieval_metrics(embeddings, embeddings, [0, 1], [0, 1], precision="fp16")
    with pytest.raises(ValueError, match="CPU only"):
        retrieval_metrics(embeddings, embeddings, [0, 1], [0, 1], device="cuda", precision="bf16")


def test_a_query_without_positives_is_an_error():
    embeddings = np.eye(2, dtype=np.float32)
    with pytest.raises(ValueError, match="1 groups have no image"):
        retrieval_metrics(embeddings, embeddings, ["a", "b"], ["a", "c"])
