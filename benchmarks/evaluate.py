"""Retrieval R@k over 80k x 80k embeddings: chunked (ours) vs the full score matrix.

The data: random 512-d products; each gets 1-5 images and one caption per image
(so N texts x N images), every embedding its product's vector plus noise, then
L2-normalised, so recall is neither 0 nor 1. Cases, each in a fresh process so its
peak RSS is its own:
- plain: open_clip's get_clip_metrics way (full texts x images matrix, argsort per
  row, rank = first positive), both directions, on a subsample (default 10k: the
  full 80k matrix alone is 25.6 GB, its argsort 51 GB);
- chunked: clipshoe_pipeline.evaluation.retrieval on the same subsample; its ranks
  are compared with plain's query by query. They may differ only at exact ties
  (plain breaks them by memory order, chunked pessimistically) or where a block's
  product rounds a score differently in the last bit from the full product (seen
  with cuBLAS at 30k: a handful of queries);
- chunked on all N;
- products only: the same block matrix products on all N, nothing else: the
  floor of any exact float32 method (~6.6 TFLOP at 80k x 80k x 512).
Time is the median of --runs (the full-size case runs --large-runs times), data
generation excluded. Peak RSS is the process's high-water mark (data and torch
included); "before" is its RSS just before the metric; on CUDA the GPU's peak
allocation is shown too.

    python benchmarks/evaluate.py --n 80000 --dim 512 --subsample 10000 [--device cuda]
Target (issue #5): 80k x 80k in <= 60 s and <= 2 GiB peak on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KS = (1, 5, 10)


def embeddings(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(texts, images, product of each row): N captions and N images, 1-5 per product.
    float32 throughout so generating the data does not set the peak RSS."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, size=n)
    groups = np.repeat(np.arange(n), sizes)[:n]
    products = rng.standard_normal((groups[-1] + 1, dim), dtype=np.float32)

    def noisy() -> np.ndarray:
        vectors = products[groups] + 2.5 * rng.standard_normal((n, dim), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    return noisy(), noisy(), groups


def plain_ranks(texts, images, groups, device: str):
    """The full-matrix computation: scores, argsort, first positive per row."""
    import torch

    groups_t = torch.from_numpy(groups).to(device)
    scores = torch.from_numpy(texts).to(device) @ torch.from_numpy(images).to(device).T
    ranks = []
    for direction in (scores, scores.T):
        order = torch.argsort(direction, dim=1, descending=True)
        positive = groups_t[order] == groups_t[:, None]
        ranks.append((positive.int().argmax(dim=1) + 1).cpu().numpy())
        del order, positive
    return ranks


def chunked_ranks(texts, images, groups, device: str, block_size: int):
    from clipshoe_pipeline.evaluation.retrieval import retrieval_metrics

    result = retrieval_metrics(texts, images, groups, groups, ks=KS, block_size=block_size, device=device)
    return [result.text_to_image.ranks, result.image_to_text.ranks]


def products_only(texts, images, device: str, block_size: int) -> None:
    """The score matrix's matrix products and nothing else, block by block: the
    floor of any exact float32 method, so the table shows what counting adds."""
    import torch

    texts_t, images_t = torch.from_numpy(texts).to(device), torch.from_numpy(images).to(device)
    for text_start in range(0, len(texts_t), block_size):
        for image_start in range(0, len(images_t), block_size):
            _ = texts_t[text_start:text_start + block_size] @ images_t[image_start:image_start + block_size].T
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_case(case: str, n: int, dim: int, device: str, block_size: int, runs: int) -> dict:
    """In a fresh process: time `case` on fresh data, report ranks and memory."""
    import psutil
    import torch

    texts, images, groups = embeddings(n, dim, seed=n)
    before = psutil.Process().memory_info().rss
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        if case == "plain":
            ranks = plain_ranks(texts, images, groups, device)
        elif case == "chunked":
            ranks = chunked_ranks(texts, images, groups, device, block_size)
        else:
            products_only(texts, images, device, block_size)
            ranks = None
        times.append(time.perf_counter() - start)
    gpu_peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    return {"case": case, "n": n, "seconds": statistics.median(times), "runs": runs, "ranks": ranks,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "rss_before": before,
            "gpu_peak": gpu_peak}


def in_fresh_process(*args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_case, args)


def summary(ranks: np.ndarray) -> str:
    if not len(ranks):
        return "–"
    return " / ".join(f"{np.mean(ranks <= k):.3f}" for k in KS) + f", median {np.median(ranks):g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=80_000, help="texts and images (each)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--subsample", type=int, default=10_000, help="size of the plain-vs-chunked comparison")
    parser.add_argument("--runs", type=int, default=3, help="runs of each subsample case (median)")
    parser.add_argument("--large-runs", type=int, default=1, help="runs of the full-size case")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--block-size", type=int, default=None, help="default: 4096 on the CPU, 16384 on CUDA")
    args = parser.parse_args()
    block_size = args.block_size or (16384 if args.device.startswith("cuda") else 4096)

    results = [in_fresh_process("plain", args.subsample, args.dim, args.device, block_size, args.runs),
               in_fresh_process("chunked", args.subsample, args.dim, args.device, block_size, args.runs),
               in_fresh_process("chunked", args.n, args.dim, args.device, block_size, args.large_runs),
               in_fresh_process("products only", args.n, args.dim, args.device, block_size, args.large_runs)]
    mib = 1 << 20
    print(f"device {args.device}, dim {args.dim}, block {block_size}; R@1 / R@5 / R@10, median rank")
    print("| case | texts x images | runs | time s | peak RSS MiB | RSS before MiB | GPU peak MiB "
          "| text->image | image->text |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ranks = r["ranks"] or [np.array([])] * 2
        gpu = f"{r['gpu_peak'] / mib:.0f}" if r["gpu_peak"] is not None else "–"
        print(f"| {r['case']} | {r['n']} x {r['n']} | {r['runs']} | {r['seconds']:.2f} | {r['peak_rss'] / mib:.0f} "
              f"| {r['rss_before'] / mib:.0f} | {gpu} | {summary(ranks[0])} | {summary(ranks[1])} |")
    plain, chunked = results[0]["ranks"], results[1]["ranks"]
    differing = sum(int(np.count_nonzero(p != c)) for p, c in zip(plain, chunked))
    recall_gap = max(abs(np.mean(p <= k) - np.mean(c <= k)) for p, c in zip(plain, chunked) for k in KS)
    print(f"subsample {args.subsample}: queries ranked differently by chunked and plain: {differing} of "
          f"{2 * args.subsample} (largest R@k difference {recall_gap:.5f}); "
          f"chunked / plain time: {results[1]['seconds'] / results[0]['seconds']:.2f}")

if __name__ == "__main__":
    main()
