"""Retrieval R@k over 80k x 80k embeddings: chunked (ours) vs the full score matrix.

The data: random 512-d products; each gets 1-5 images and one caption per image
(so N texts x N images), every embedding its product's vector plus noise, then
L2-normalised, so recall is neither 0 nor 1. Cases, each in a fresh process so its
peak RSS is its own:
- plain: open_clip's get_clip_metrics way (full texts x images matrix, argsort per
  row, rank = first positive), both directions, on a subsample (default 10k: the
  full 80k matrix alone is 25.6 GB, its argsort 51 GB);
- chunked fp32 / chunked bf16: clipshoe_pipeline.evaluation.retrieval with
  precision="fp32" (every score an fp32 block product) and "bf16" (bf16 block
  products screened with an error bound, fp32 recomputed near each threshold; CPU
  only) on the same subsample; ranks are compared with plain's query by query. They
  may differ only at exact ties (plain breaks them by memory order, chunked
  pessimistically) or where a block's product rounds a score differently in the
  last bit from the full product (seen with cuBLAS at 30k: a handful of queries);
- the same two on all N; bf16's ranks must equal fp32's for every query;
- products only fp32 / bf16: the same block matrix products on all N, nothing
  else: the floor of each precision (~6.6 TFLOP at 80k x 80k x 512).
Time is the median of --runs (the full-size cases run --large-runs times), data
generation excluded; CPU s is the process's CPU time per run (all threads), which
other jobs on the machine inflate less than wall time. Peak RSS is the process's
high-water mark (data and torch included); "before" is its RSS just before the
metric; on CUDA the GPU's peak allocation is shown too.

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


def chunked_ranks(texts, images, groups, device: str, block_size: int, precision: str):
    from clipshoe_pipeline.evaluation.retrieval import retrieval_metrics

    result = retrieval_metrics(texts, images, groups, groups, ks=KS, block_size=block_size, device=device,
                               precision=precision)
    return [result.text_to_image.ranks, result.image_to_text.ranks]


def products_only(texts, images, device: str, block_size: int, precision: str) -> None:
    """The score matrix's matrix products and nothing else, block by block, in
    `precision`: the floor of each path, so the table shows what counting adds."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    texts_t = torch.from_numpy(texts).to(device, dtype)
    images_t = torch.from_numpy(images).to(device, dtype)
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
    times, cpu_times = [], []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        if case == "plain":
            ranks = plain_ranks(texts, images, groups, device)
        elif case.startswith("chunked"):
            ranks = chunked_ranks(texts, images, groups, device, block_size, precision=case.split()[-1])
        else:
            products_only(texts, images, device, block_size, precision=case.split()[-1])
            ranks = None
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    gpu_peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    return {"case": case, "n": n, "seconds": statistics.median(times), "cpu_seconds": statistics.median(cpu_times),
            "runs": runs, "ranks": ranks,
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

    precisions = ["fp32"] if args.device.startswith("cuda") else ["fp32", "bf16"]  # bf16 screening: CPU only
    results = [in_fresh_process("plain", args.subsample, args.dim, args.device, block_size, args.runs)]
    results += [in_fresh_process(f"chunked {p}", args.subsample, args.dim, args.device, block_size, args.runs)
                for p in precisions]
    results += [in_fresh_process(f"{case} {p}", args.n, args.dim, args.device, block_size, args.large_runs)
                for case in ("chunked", "products only") for p in precisions]
    mib = 1 << 20
    print(f"device {args.device}, dim {args.dim}, block {block_size}; R@1 / R@5 / R@10, median rank")
    print("| case | texts x images | runs | time s | CPU s | peak RSS MiB | RSS before MiB | GPU peak MiB "
          "| text->image | image->text |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ranks = r["ranks"] or [np.array([])] * 2
        gpu = f"{r['gpu_peak'] / mib:.0f}" if r["gpu_peak"] is not None else "–"
        print(f"| {r['case']} | {r['n']} x {r['n']} | {r['runs']} | {r['seconds']:.2f} | {r['cpu_seconds']:.1f} "
              f"| {r['peak_rss'] / mib:.0f} | {r['rss_before'] / mib:.0f} | {gpu} | {summary(ranks[0])} "
              f"| {summary(ranks[1])} |")
    by_case = {(r["case"], r["n"]): r for r in results}
    plain = by_case["plain", args.subsample]
    for p in precisions:
        chunked = by_case[f"chunked {p}", args.subsample]
        print(f"subsample {args.subsample}: queries ranked differently by chunked {p} and plain: "
              f"{differing(plain['ranks'], chunked['ranks'])} of {2 * args.subsample} (largest R@k difference "
              f"{recall_gap(plain['ranks'], chunked['ranks']):.5f}); time / plain: "
              f"{chunked['seconds'] / plain['seconds']:.2f}")
    if "bf16" in precisions:
        for n in (args.subsample, args.n):
            fp32, bf16 = by_case["chunked fp32", n], by_case["chunked bf16", n]
            print(f"{n}: queries ranked differently by bf16 and fp32: {differing(fp32['ranks'], bf16['ranks'])} "
                  f"of {2 * n}; bf16 / fp32 time {bf16['seconds'] / fp32['seconds']:.2f}, "
                  f"CPU {bf16['cpu_seconds'] / fp32['cpu_seconds']:.2f}")


def differing(ranks_a, ranks_b) -> int:
    return sum(int(np.count_nonzero(a != b)) for a, b in zip(ranks_a, ranks_b))


def recall_gap(ranks_a, ranks_b) -> float:
    return max(abs(np.mean(a <= k) - np.mean(b <= k)) for a, b in zip(ranks_a, ranks_b) for k in KS)


if __name__ == "__main__":
    main()
