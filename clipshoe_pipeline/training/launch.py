"""The training process: open_clip's own trainer (docs/references.md), plus what it
lacks here.

Run as `python -m clipshoe_pipeline.training.launch RUN_DIR` (or under `torchrun
--nproc_per_node N -m ...` for several GPUs); the Dagster asset does this through
Pipes. open_clip_train.main does the training — data loading, AMP, DDP, the cosine
schedule, checkpoints, `--resume latest`. What we add, around it rather than in it:

1. Registration of our model configs (clipshoe-tiny), which open_clip keeps per process.
2. Epoch records: open_clip logs loss and throughput as text and returns nothing, so
   its `train_one_epoch` and `evaluate` are wrapped (the names main() calls) to record
   per epoch the mean training loss, steady-state samples/s, peak GPU memory and the
   validation recalls, into `epochs.jsonl`, streamed to Dagster when under Pipes.
3. The best checkpoint by held-out recall (`best.pt`: weights + lineage), saved when an
   epoch beats the previous best, since open_clip keeps only the latest train state.
4. Speed settings open_clip has no flag for: the torch.compile mode behind its
   `--torchcompile` (e.g. reduce-overhead: CUDA graphs), and AdamW with fused=True.

Before resuming, a checkpoint left truncated by a killed save is removed, because
`--resume latest` would pick it and fail to unpickle it.

This is the one module that replaces names inside open_clip (`HOOKED_TRAINER_NAMES`);
tests/test_finetune_config.py checks that they still exist with the arguments we pass.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from clipshoe_common.files import atomic_file
from clipshoe_pipeline.training.models import register_model_configs
from clipshoe_pipeline.training.run import SELECTION_NAME, RunDir, RunSpec, selection_score

PIPES_CONTEXT_ENV = "DAGSTER_PIPES_CONTEXT"  # dagster_pipes.DAGSTER_PIPES_CONTEXT_ENV_VAR, without importing it
# The attributes of open_clip_train.main replaced while main() runs, and why: the
# epoch records (train_one_epoch, evaluate) and the AdamW kernel (optim).
HOOKED_TRAINER_NAMES = ("train_one_epoch", "evaluate", "optim")
WARMUP_STEPS = 5  # steps left out of samples/s: worker start-up and the first allocations


def is_rank_zero() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class LossMeter(torch.nn.Module):
    """The trainer's loss, passed through unchanged, with its mean and step times kept.
    Sums stay on the device: reading them each step would stall the GPU."""

    def __init__(self, loss: torch.nn.Module):
        super().__init__()
        self.loss = loss
        self.total: torch.Tensor | None = None
        self.steps = 0
        self.step_times: list[float] = []

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.loss(*args, **kwargs)
        value = sum(out.values()) if isinstance(out, dict) else out
        value = value.detach().float()
        self.total = value if self.total is None else self.total + value
        self.steps += 1
        self.step_times.append(time.perf_counter())
        return out

    def mean(self) -> float | None:
        return None if self.total is None else float(self.total) / self.steps


class EpochRecorder:
    """Wraps open_clip_train.main's train_one_epoch and evaluate (see module doc)."""

    def __init__(self, run: RunDir, pipes: Any | None):
        self.run = run
        self.pipes = pipes
        self.best = max((r[SELECTION_NAME] for r in run.epochs() if r.get(SELECTION_NAME) is not None),
                        default=None)
        self.record: dict[str, Any] = {}

    def hooks(self, trainer_main: Any) -> dict[str, Any]:
        """Replacements for `hooked`: trainer_main's own functions, recording each epoch."""
        train_one_epoch, evaluate = trainer_main.train_one_epoch, trainer_main.evaluate

        def train_recorded(model, data, loss, epoch, optimizer, scaler, scheduler, dist_model, args, **kw):
            meter = LossMeter(loss)
            cuda = str(args.device).startswith("cuda")
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            result = train_one_epoch(model, data, meter, epoch, optimizer, scaler, scheduler, dist_model, args, **kw)
            if cuda:
                torch.cuda.synchronize()
            self.record = {"epoch": epoch + 1, "train_loss": meter.mean(), "steps": meter.steps,
                           "epoch_seconds": time.perf_counter() - started,
                           "samples_per_s": _steady_rate(meter.step_times, started, time.perf_counter(),
                                                         args.batch_size * args.accum_freq * args.world_size),
                           "peak_gpu_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}
            if "val" not in data and is_rank_zero():  # no evaluate() call will follow
                self._finish(None)
            return result

        def evaluate_recorded(model, data, epoch, args, **kw):
            metrics = evaluate(model, data, epoch, args, **kw)
            if is_rank_zero() and "train" in data:
                self._finish(model, metrics)
            return metrics

        return {"train_one_epoch": train_recorded, "evaluate": evaluate_recorded}

    def _finish(self, model: Any, metrics: dict[str, float] | None = None) -> None:
        record = dict(self.record, **{f"val_{k}": v for k, v in (metrics or {}).items()
                                      if k not in ("epoch", "num_samples")})
        record[SELECTION_NAME] = selection_score(metrics or {})
        record = plain(record)  # open_clip's metrics are numpy scalars; best.pt must load weights_only
        if model is not None and record[SELECTION_NAME] is not None and (
                self.best is None or record[SELECTION_NAME] > self.best):
            self.best = record[SELECTION_NAME]
            save_best(self.run, model, record)
            record["saved_best"] = True
        self.run.append_epoch(record)
        if self.pipes is not None:
            self.pipes.log.info("epoch " + ", ".join(f"{k}={_short(v)}" for k, v in sorted(record.items())))


def save_best(run: RunDir, model: Any, record: dict[str, Any]) -> None:
    """Model weights (no optimizer state) with lineage, loadable as open_clip `pretrained=PATH`."""
    module = getattr(model, "module", model)  # DDP
    module = getattr(module, "_orig_mod", module)  # torch.compile
    payload = {"state_dict": module.state_dict(), "clipshoe_lineage": run.read_spec().lineage,
               "clipshoe_epoch": record}
    with atomic_file(run.best) as sink:
        torch.save(payload, sink)


@contextmanager
def speed_settings(trainer_main: Any, spec: RunSpec) -> Iterator[None]:
    """The spec's compile mode (inductor's options for it, applied while main() compiles
    lazily at the first step) and its AdamW kernel (main() builds `optim.AdamW`)."""
    with ExitStack() as stack:
        if spec.compile_mode:
            from torch._inductor import config as inductor_config, list_mode_options

            stack.enter_context(inductor_config.patch(list_mode_options(spec.compile_mode)))
        stack.enter_context(hooked(trainer_main, {"optim": _OptimWithAdamW(fused=spec.fused_adamw)}))
        yield


@contextmanager
def hooked(trainer_main: Any, replacements: dict[str, Any]) -> Iterator[None]:
    """Names of open_clip_train.main replaced while the block runs, restored after. Only
    HOOKED_TRAINER_NAMES, whose existence a test checks, may be replaced."""
    unknown = set(replacements) - set(HOOKED_TRAINER_NAMES)
    if unknown:
        raise ValueError(f"not a hooked open_clip_train.main name: {sorted(unknown)}")
    originals = {name: getattr(trainer_main, name) for name in replacements}
    try:
        for name, replacement in replacements.items():
            setattr(trainer_main, name, replacement)
        yield
    finally:
        for name, original in originals.items():
            setattr(trainer_main, name, original)


class ResumableAdamW(torch.optim.AdamW):
    """AdamW that keeps the kernel it was built with when a checkpoint is loaded:
    torch's load_state_dict takes `fused`/`foreach` from the saved groups, so a run
    resumed with another speed setting would silently keep the old kernel — and a
    non-fused checkpoint in a fused optimizer breaks GradScaler's step."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        kernel = {key: self.defaults[key] for key in ("fused", "foreach")}
        super().load_state_dict({**state_dict,
                                 "param_groups": [{**group, **kernel} for group in state_dict["param_groups"]]})


class _OptimWithAdamW:
    """torch.optim, as open_clip_train.main sees it, with our AdamW (fused or torch's default)."""

    def __init__(self, fused: bool):
        self.AdamW = functools.partial(ResumableAdamW, fused=True if fused else None)

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.optim, name)


def plain(value: Any) -> Any:
    """`value` with numpy and torch scalars turned into Python numbers."""
    return json.loads(json.dumps(value, default=lambda scalar: scalar.item()))


def remove_truncated_checkpoints(run: RunDir) -> list[Path]:
    """Checkpoints a kill left half-written (torch.save writes a zip: its directory comes last)."""
    removed = []
    for checkpoint in run.checkpoints.glob("*.pt"):
        try:
            with zipfile.ZipFile(checkpoint):
                pass
        except (zipfile.BadZipFile, OSError):
            checkpoint.unlink()
            removed.append(checkpoint)
    return removed


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m clipshoe_pipeline.training.launch RUN_DIR")
    run = RunDir(Path(argv[0]).absolute())
    spec: RunSpec = run.read_spec()
    register_model_configs()
    import open_clip_train.main as trainer_main

    if PIPES_CONTEXT_ENV in os.environ:
        # Under Dagster, progress reaches the run log through Pipes; the console copy
        # (open_clip logs to stdout, torch and workers to stderr) goes to a file.
        _redirect_console(run.console_log)
    if spec.gpus > (visible := torch.cuda.device_count()):  # checked here, on the host that trains
        raise SystemExit(f"{spec.gpus} GPU(s) asked for, {visible} visible on this host: lower `gpus` "
                         "(0 trains on the CPU)")
    with ExitStack() as stack:
        pipes = stack.enter_context(_open_pipes()) if is_rank_zero() else None
        if is_rank_zero():
            for checkpoint in remove_truncated_checkpoints(run):
                _log(pipes, f"removed truncated checkpoint {checkpoint.name} (a killed save)")
            resumed = run.latest_checkpoint_epoch()
            _log(pipes, f"resuming from epoch {resumed}" if resumed else "starting from epoch 0")
            _log(pipes, f"torch.compile: {spec.compile_mode or 'off'}; fused AdamW: {spec.fused_adamw}")
            stack.enter_context(_forward_trainer_log(pipes))
        stack.enter_context(hooked(trainer_main, EpochRecorder(run, pipes).hooks(trainer_main)))
        stack.enter_context(speed_settings(trainer_main, spec))
        trainer_main.main(run.trainer_argv(spec))
        # open_clip set every logger to INFO; torch's would print compile statistics at exit.
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("torch"):
                logging.getLogger(name).setLevel(logging.WARNING)


def _redirect_console(path: Path) -> None:
    sink = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(sink, stream.fileno())
    os.close(sink)


def _steady_rate(step_times: list[float], started: float, end: float, samples_per_step: int) -> float | None:
    """Samples/s over the steps after the warm-up ones (all of them in a short epoch)."""
    warm = min(WARMUP_STEPS, len(step_times) // 4)
    since = step_times[warm - 1] if warm else started
    return (len(step_times) - warm) * samples_per_step / (end - since) if len(step_times) > warm else None


def _open_pipes() -> AbstractContextManager:
    if PIPES_CONTEXT_ENV not in os.environ:  # a plain run (benchmarks, by hand): no Dagster to talk to
        return nullcontext(None)
    from dagster_pipes import open_dagster_pipes

    return open_dagster_pipes()


@contextmanager
def _forward_trainer_log(pipes: Any | None) -> Iterator[None]:
    """open_clip's INFO lines (progress, resume, eval) into the Dagster run log."""
    handler = _PipesLogHandler(pipes) if pipes is not None else None
    if handler:
        logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        if handler:
            logging.getLogger().removeHandler(handler)


class _PipesLogHandler(logging.Handler):
    MAX_CHARS = 2000  # open_clip logs the whole model architecture as one record

    def __init__(self, pipes: Any):
        super().__init__(logging.INFO)
        self.pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if len(message) > self.MAX_CHARS:
            message = message[:self.MAX_CHARS] + " …"
        (self.pipes.log.warning if record.levelno >= logging.WARNING else self.pipes.log.info)(message)


def _log(pipes: Any | None, message: str) -> None:
    print(message, flush=True)
    if pipes is not None:
        pipes.log.info(message)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main(sys.argv[1:])
