"""Training throughput of the fine-tuning path: open_clip's trainer through our launcher.

Each case is a real launcher process (clipshoe_pipeline.training.launch, i.e.
open_clip_train.main with our epoch records and speed settings), on one of three inputs:

  (a) tensors    one batch already on the device, every step (benchmarks/tensor_input.py):
                 the ceiling of the model + optimizer step, nothing else measured;
      synthetic  open_clip's `--dataset-type synthetic`: its data loader over one blank
                 image (transform, tokenizer, collation, pinning, copy; no decoding);
  (b) real data  JPEGs from a normalised image store (ours: `--image-store DIR`, or
                 shoe pictures drawn here at the store's size), read through the CSV
                 loader with `--workers` processes — what a fine-tuning run gets.

Speed variants (`--variants`, measured side by side in one run, in the order given):
eager, fused (AdamW fused=True), compile (torch.compile default mode, open_clip's
--torchcompile), compile+fused, cudagraphs+fused (mode reduce-overhead), autotune+fused
(max-autotune-no-cudagraphs). Every variant runs on (a); synthetic and (b) run for the
fastest one, since what the loader costs does not depend on the variant. A variant that
fails is reported and the sweep goes on; `--budget-s` stops starting new cases once
that much time has passed, so the whole check fits a lent machine's time.

samples/s is each epoch's steady-state rate (the launcher leaves the first steps out);
the table gives the median over epochs after the first (which pays for compilation,
cuDNN autotuning and worker start-up). Peak memory is the trainer process tree's
proportional set size (workers included, shared pages counted once), sampled every
0.2 s; peak GPU memory is torch's max allocated.

GPU (targets on one H100: (a) >= 3000 samples/s, (b)/(a) >= 0.9):
    python benchmarks/train_throughput.py
CPU (proves the script works; tiny model):
    python benchmarks/train_throughput.py --cpu
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipshoe_pipeline.training.export import CSV_CAPTION_KEY, CSV_IMAGE_KEY, CSV_SEPARATOR  # noqa: E402
from clipshoe_pipeline.training.run import RunDir, RunSpec  # noqa: E402

TENSOR_LAUNCHER = Path(__file__).with_name("tensor_input.py")
STORE_SIDE = 320  # the normalised store's shorter side (curation.images.NormaliseConfig)


def draw_one(args: tuple[int, str]) -> str:
    """One synthetic shoe picture as the normalised store would hold it."""
    from replay_shop.pictures import COLOUR_RGB, PictureSpec, draw
    from replay_shop.vocab import SHOE_KINDS

    index, folder = args
    kinds, colours = list(SHOE_KINDS), list(COLOUR_RGB)
    kind, colour = kinds[index % len(kinds)], colours[(index // len(kinds)) % len(colours)]
    path = Path(folder) / f"{index:06d}.jpg"
    draw(PictureSpec(kind=kind, colour=colour, pose=index), size=STORE_SIDE).save(path, quality=90)
    return f"{path}\tgiày {kind.replace('_', ' ')} màu {colour}"


def image_list(store: Path | None, count: int, work: Path, processes: int) -> list[tuple[str, str]]:
    """(path, caption) of `count` store images, drawn into `work` when no store is given."""
    if store is not None:
        paths = sorted(str(p) for p in store.rglob("*.jpg"))[:count]
        if not paths:
            raise SystemExit(f"no JPEGs under {store}")
        return [(path, "giày") for path in paths]
    folder = work / "store"
    folder.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(processes) as pool:
        lines = list(pool.map(draw_one, [(i, str(folder)) for i in range(count)], chunksize=64))
    return [tuple(line.split("\t")) for line in lines]


def write_csv(images: list[tuple[str, str]], rows: int, path: Path) -> None:
    """`rows` rows cycling over the images (an epoch longer than the store, as at full scale)."""
    with open(path, "w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink, delimiter=CSV_SEPARATOR, lineterminator="\n")
        writer.writerow([CSV_IMAGE_KEY, CSV_CAPTION_KEY])
        writer.writerows(images[i % len(images)] for i in range(rows))


class TreePeakMemory:
    """Peak memory of a process and its children (data loader workers), as the sum of
    their proportional set sizes: forked workers share the parent's pages, which a sum
    of RSS would count once per worker (31-37 GiB for 14 workers on the H100 run)."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.is_set():
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            self.done.wait(0.2)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.peak


@dataclass(frozen=True)
class Variant:
    compile_mode: str | None
    fused_adamw: bool


VARIANTS = {
    "eager": Variant(None, False),
    "fused": Variant(None, True),
    "compile": Variant("default", False),
    "compile+fused": Variant("default", True),
    "cudagraphs+fused": Variant("reduce-overhead", True),
    "autotune+fused": Variant("max-autotune-no-cudagraphs", True),
}


def run_case(variant: str, case: str, data_args: list[str], args: argparse.Namespace, work: Path) -> dict:
    """One launcher process; its result, or the reason it failed."""
    trainer_args = ["--model", args.model, "--batch-size", str(args.batch_size), "--precision", args.precision,
                    "--epochs", str(args.epochs), "--lr", "5e-6", "--wd", "0.1", "--warmup", "10",
                    "--workers", str(args.workers), "--device", args.device, "--save-frequency", "0",
                    "--log-every-n-steps", "20", *data_args, *args.extra]
    speed = VARIANTS[variant]
    spec = RunSpec(model=args.model, trainer_args=trainer_args, lineage={"benchmark": case},
                   gpus=1 if args.device == "cuda" else 0, compile_mode=speed.compile_mode,
                   fused_adamw=speed.fused_adamw)
    run = RunDir(work / "runs" / f"{variant}-{case}-{spec.name}")
    shutil.rmtree(run.path, ignore_errors=True)  # a reused --work must not resume or mix in old epochs
    run.write_spec(spec)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    launcher = [str(TENSOR_LAUNCHER)] if case == "tensors" else ["-m", "clipshoe_pipeline.training.launch"]
    process = subprocess.Popen([sys.executable, *launcher, str(run.path)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    memory = TreePeakMemory(process.pid)
    try:
        _, stderr = process.communicate(timeout=args.case_timeout_s)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        _, stderr = process.communicate()
        stderr += f"\ntimed out after {args.case_timeout_s:.0f} s (--case-timeout-s)"
    peak_memory = memory.stop()
    result = {"variant": variant, "case": case, "wall_s": time.perf_counter() - started,
              "peak_pss_gib": peak_memory / 2**30}
    records = run.epochs()
    rates = [r["samples_per_s"] for r in records if r.get("samples_per_s")]
    if process.returncode or not rates:
        lines = [line for line in stderr.splitlines() if line.strip()]
        print(f"{variant} / {case}: trainer failed ({process.returncode}); log {run.trainer_log}\n"
              + "\n".join(lines[-30:]), file=sys.stderr)
        return {**result, "failed": lines[-1][:200] if lines else f"exit {process.returncode}"}
    return {**result, "samples_per_s": statistics.median(rates[1:] or rates), "epoch_rates": rates,
            "steps_per_epoch": records[0]["steps"], "peak_gpu_mem_gib": records[-1].get("peak_gpu_mem_gib")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="tiny model on the CPU (a smoke run)")
    parser.add_argument("--model", default=None, help="default ViT-B-32 (GPU) / clipshoe-tiny (--cpu)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 256 (GPU) / 32 (--cpu)")
    parser.add_argument("--precision", default=None, help="default amp_bf16 (GPU) / fp32 (--cpu)")
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch; default 120 (GPU) / 10 (--cpu)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=None, help="distinct images; default 8192 (GPU) / 256")
    parser.add_argument("--workers", type=int, default=None, help="data loader processes; default cores - 2")
    parser.add_argument("--image-store", type=Path, default=None, help="read JPEGs from here instead of drawing")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--variants", default=None,
                        help=f"comma-separated, of {', '.join(VARIANTS)}; default compile,compile+fused,"
                             "cudagraphs+fused (GPU) / eager,fused (--cpu)")
    parser.add_argument("--budget-s", type=float, default=None, help="start no case after this many seconds")
    parser.add_argument("--case-timeout-s", type=float, default=None, help="stop a case that runs longer")
    parser.add_argument("extra", nargs="*", help="further open_clip_train flags, after --")
    args = parser.parse_args()
    gpu = not args.cpu
    args.device = "cuda" if gpu else "cpu"
    args.model = args.model or ("ViT-B-32" if gpu else "clipshoe-tiny")
    args.batch_size = args.batch_size or (256 if gpu else 32)
    args.precision = args.precision or ("amp_bf16" if gpu else "fp32")
    args.steps = args.steps or (120 if gpu else 10)
    args.images = args.images or (8192 if gpu else 256)
    args.workers = args.workers if args.workers is not None else max(1, (os.cpu_count() or 2) - 2)
    variants = (args.variants or ("compile,compile+fused,cudagraphs+fused" if gpu else "eager,fused")).split(",")
    if unknown := [v for v in variants if v not in VARIANTS]:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    if gpu and not _cuda_available():
        parser.error("no CUDA GPU visible: this benchmark is for a GPU; --cpu (make bench-train CPU=1) "
                     "runs it on the CPU with the tiny model, to prove it works")
    if args.work:
        sweep(args, variants, gpu, args.work)
    else:  # a scratch folder of drawn images and run folders, gone afterwards
        with tempfile.TemporaryDirectory(prefix="clipshoe-train-bench-") as scratch:
            sweep(args, variants, gpu, Path(scratch))


def sweep(args: argparse.Namespace, variants: list[str], gpu: bool, work: Path) -> None:
    """Every variant on tensors, then the fastest on real data and open_clip's synthetic loader."""
    samples = args.steps * args.batch_size

    started = time.perf_counter()
    images = image_list(args.image_store, args.images, work, max(1, os.cpu_count() or 1))
    write_csv(images, samples, work / "train.csv")
    prepared = time.perf_counter() - started
    synthetic = ["--dataset-type", "synthetic", "--train-num-samples", str(samples)]
    cases = {"tensors": synthetic, "synthetic": synthetic,
             "real_data": ["--dataset-type", "csv", "--train-data", str(work / "train.csv"),
                           "--csv-separator", CSV_SEPARATOR]}

    def within_budget() -> bool:
        return args.budget_s is None or time.perf_counter() - started < args.budget_s

    results, skipped = [], []

    def measure(variant: str, case: str) -> dict | None:
        if not within_budget():
            skipped.append(f"{variant}/{case}")
            return None
        results.append(run_case(variant, case, cases[case], args, work))
        print(f"measured: {_row(results[-1], results[0])}", file=sys.stderr, flush=True)
        save()  # after every case: a machine taken back mid-sweep still leaves what was measured
        return results[-1] if "samples_per_s" in results[-1] else None

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps({"device": device, "args": {k: str(v) for k, v in vars(args).items()},
                                             "results": results, "ratio_to_tensors": ratios, "skipped": skipped},
                                            indent=2))

    device, ratios = _device_name(gpu), {}
    ceilings = [r for r in (measure(variant, "tensors") for variant in variants) if r]
    fastest = max(ceilings, key=lambda r: r["samples_per_s"], default=None)
    if fastest:
        for case in ("real_data", "synthetic"):  # the target first, should time run short
            if loaded := measure(fastest["variant"], case):
                ratios[case] = loaded["samples_per_s"] / fastest["samples_per_s"]
                save()
    else:
        skipped += ["real_data", "synthetic"]
        print("no variant measured on tensors: real data and synthetic not run (no ceiling to compare with)")
        save()
    print(f"\ndevice: {device}; model {args.model}, batch {args.batch_size}, {args.precision}, "
          f"{args.steps} steps x {args.epochs} epochs, {args.workers} workers, {len(images)} distinct images "
          f"({'store ' + str(args.image_store) if args.image_store else f'drawn at {STORE_SIDE} px'}, "
          f"prepared in {prepared:.0f} s)")
    print("| variant | case | samples/s (median) | vs first | per epoch | peak GPU mem GiB | peak PSS GiB | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(_row(r, results[0]))
    if ratios:
        print(f"\n| {fastest['variant']}: samples/s against the tensors ceiling | ratio |\n|---|---|")
        for case, ratio in ratios.items():
            print(f"| {case} / tensors | {ratio:.2f} |")
    if skipped:
        print(f"skipped: {', '.join(skipped)}")


def _row(result: dict, first: dict) -> str:
    head = f"| {result['variant']} | {result['case']} |"
    if "failed" in result:
        return f"{head} failed: {result['failed']} | | | | {result['peak_pss_gib']:.2f} | {result['wall_s']:.0f} |"
    vs_first = f"{result['samples_per_s'] / first['samples_per_s']:.2f}x" if first.get("samples_per_s") else ""
    gpu_mem = f"{result['peak_gpu_mem_gib']:.1f}" if result["peak_gpu_mem_gib"] is not None else "-"
    return (f"{head} {result['samples_per_s']:.0f} | {vs_first} | "
            f"{' / '.join(f'{x:.0f}' for x in result['epoch_rates'])} | {gpu_mem} | "
            f"{result['peak_pss_gib']:.2f} | {result['wall_s']:.0f} |")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _device_name(gpu: bool) -> str:
    import torch

    name = torch.cuda.get_device_name(0) if gpu and torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    return f"{name}, torch {torch.__version__}"


if __name__ == "__main__":
    main()
