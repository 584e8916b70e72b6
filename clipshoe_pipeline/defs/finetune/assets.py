"""The fine-tuning asset: CLIP trained on the train split of curated_pairs with open_clip's trainer.

Steps: export the train split (CSV or WebDataset shards, with a held-out validation
subset), resolve the starting weights without network, write the run's spec into a
folder named by its identity, run open_clip's trainer there as a Pipes subprocess
(resuming whatever a crashed attempt left), then publish the best checkpoint — chosen
by held-out recall — to the `model_checkpoints` table with its lineage.
"""

# No `from __future__ import annotations`: Dagster reads config and resource types from the signature.

import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from clipshoe_common import PROJECT_ROOT
from clipshoe_common.files import tail
from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.curate.assets import curated_pairs
from clipshoe_pipeline.defs.finetune.config import FinetuneConfig
from clipshoe_pipeline.defs.finetune.resources import ClipTrainer, TrainerFailed, visible_gpus
from clipshoe_pipeline.markdown import cell, markdown_table
from clipshoe_pipeline.parquet_io import write_parquet_atomic
from clipshoe_pipeline.plots import pyplot, save_figure
from clipshoe_pipeline.training.export import ExportError, TrainingData, export_training_data
from clipshoe_pipeline.training.run import SELECTION_NAME, RunDir, RunSpec, best_epoch
from clipshoe_pipeline.training.weights import MissingWeights, WeightsSource, resolve_weights

CHECKPOINTS_SCHEMA = pa.schema([
    ("run", pa.string()), ("model", pa.string()), ("checkpoint", pa.string()), ("epoch", pa.int64()),
    (SELECTION_NAME, pa.float64()), ("weights", pa.string()), ("data_snapshot", pa.string()),
    ("train_pairs", pa.int64()), ("git_commit", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
])
CONSOLE_TAIL_LINES = 40
EPOCH_COLUMNS = ("epoch", "train_loss", "val_clip_val_loss", "val_image_to_text_R@1", "val_text_to_image_R@1",
                 "val_image_to_text_R@5", "val_text_to_image_R@5", "val_image_to_text_R@10",
                 "val_text_to_image_R@10", SELECTION_NAME, "samples_per_s", "peak_gpu_mem_gib")


@dg.asset(
    deps=[curated_pairs],
    kinds={"pytorch", "python"},
    group_name="finetune",
    pool="gpu",  # one training run per machine at a time: they would fight over the GPUs
)
def finetuned_clip(context: dg.AssetExecutionContext, config: FinetuneConfig, trainer: ClipTrainer,
                   catalog: CatalogDB) -> dg.MaterializeResult:
    """CLIP fine-tuned contrastively on the train split of curated_pairs: the model the
    project exists to produce. Trained by open_clip's own trainer (AMP, DDP, cosine
    schedule, resumable checkpoints), kept at its best epoch by held-out retrieval
    recall, and registered in the `model_checkpoints` dataset with its lineage (model
    config, weights, data snapshot, code version) for evaluation to pick up."""
    run, spec, weights, data = prepare_run(config, catalog)
    if weights.kind == "random":
        context.log.warning(f"training {config.model} from {weights.label}")
    resumed_from = run.latest_checkpoint_epoch()
    try:
        trainer.train(context, run, spec)
    except TrainerFailed as error:
        raise dg.Failure(f"the trainer failed: {error}", metadata={
            "console_tail": dg.MetadataValue.md(f"```\n{tail(run.console_log, CONSOLE_TAIL_LINES)}\n```"),
            "console_log": dg.MetadataValue.path(str(run.console_log))}) from error

    records = run.epochs()
    best = best_epoch(records)
    if best is None or not run.best.exists():
        raise dg.Failure(f"training finished without a validated checkpoint; see {run.trainer_log}")
    registered = register_checkpoint(catalog, run, spec, best, data)
    metadata = {
        "checkpoint": dg.MetadataValue.path(str(run.best)),
        "run": spec.name,
        "weights": weights.label,
        "model": config.model,
        "gpus": spec.gpus,
        "resumed_from_epoch": resumed_from or 0,
        "best_epoch": best["epoch"],
        **{name.removeprefix("val_"): float(best[name]) for name in EPOCH_COLUMNS[3:10] if best.get(name) is not None},
        "final_train_loss": float(records[-1]["train_loss"]) if records[-1].get("train_loss") is not None else None,
        "samples_per_s": _max(records, "samples_per_s"),
        "speed_settings": f"torch.compile {spec.compile_mode or 'off'}, "
                          f"fused AdamW {'on' if spec.fused_adamw else 'off'}",
        "peak_gpu_mem_gib": _max(records, "peak_gpu_mem_gib"),
        "train_pairs": data.train_pairs,
        "val_pairs": data.val_pairs,
        "data_snapshot": data.snapshot,
        "dataset_type": data.dataset_type,
        "epochs": dg.MetadataValue.md(epochs_table(records)),
        "curves": dg.MetadataValue.md(curves_markdown(records, run.path / "curves.png")),
        "registered_checkpoints": registered,
        "trainer_log": dg.MetadataValue.path(str(run.trainer_log)),
    }
    return dg.MaterializeResult(metadata={key: value for key, value in metadata.items() if value is not None})


def prepare_run(config: FinetuneConfig, catalog: CatalogDB) -> tuple[RunDir, RunSpec, WeightsSource, TrainingData]:
    """Everything up to starting the trainer: weights checked, data exported, spec written."""
    paths = catalog.paths
    if not catalog.files("curated_pairs"):
        raise dg.Failure("no curated_pairs Parquet found: materialize curated_pairs first")
    gpus = visible_gpus() if config.gpus is None else config.gpus
    try:
        compile_mode = config.compile_mode(gpus)
        weights = resolve_weights(config.model, config.pretrained, allow_random_init=config.allow_random_init)
        data = export_training_data(catalog.table("curated_pairs").to_pylist(), paths.root,
                                    paths.training_export, config.export_config())
    except (MissingWeights, ExportError, ValueError) as error:
        raise dg.Failure(str(error)) from error
    if data.train_pairs < config.batch_size * max(gpus, 1):
        raise dg.Failure(f"{data.train_pairs} training pairs cannot fill one batch of {config.batch_size} "
                         f"on {max(gpus, 1)} process(es): lower batch_size")
    spec = RunSpec(model=config.model, trainer_args=config.trainer_args(gpus=gpus, pretrained=weights.value)
                   + data.trainer_args(), lineage=lineage(config, weights, data), gpus=gpus,
                   env={"HF_HUB_OFFLINE": "1"} if weights.kind in ("tag", "hf-hub") else {},
                   compile_mode=compile_mode, fused_adamw=config.fused_adamw)
    run = RunDir(paths.training_runs / spec.name)
    run.write_spec(spec)
    return run, spec, weights, data


def lineage(config: FinetuneConfig, weights: WeightsSource, data: TrainingData) -> dict[str, Any]:
    """What a checkpoint came from, stored in it and beside it."""
    import open_clip
    import torch

    return {
        "model": config.model,
        "model_config": open_clip.get_model_config(config.model),
        "weights": {"kind": weights.kind, "source": weights.value, "file": weights.file, "label": weights.label},
        "data": {"snapshot": data.snapshot, "train_pairs": data.train_pairs, "val_pairs": data.val_pairs,
                 "dataset_type": data.dataset_type, "table": "curated_pairs"},
        "code": {"git_commit": git_commit(), "open_clip": open_clip.__version__, "torch": torch.__version__},
        "config": config.model_dump(),
    }


def git_commit() -> str:
    """HEAD of the checkout, with '-dirty' when it has uncommitted changes; 'unknown' outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout

    try:
        head = git("rev-parse", "HEAD").strip()
        return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no").strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def register_checkpoint(catalog: CatalogDB, run: RunDir, spec: RunSpec, best: Mapping[str, Any],
                        data: TrainingData) -> int:
    """Record this run's best checkpoint in its own file of the `model_checkpoints`
    dataset (a re-run of the same run replaces it; other runs' files are never
    touched); returns how many checkpoints are registered."""
    row = {"run": spec.name, "model": spec.model, "checkpoint": str(run.best), "epoch": int(best["epoch"]),
           SELECTION_NAME: float(best[SELECTION_NAME]), "weights": spec.lineage["weights"]["label"],
           "data_snapshot": data.snapshot, "train_pairs": data.train_pairs,
           "git_commit": spec.lineage["code"]["git_commit"], "created_at": datetime.now(timezone.utc)}
    write_parquet_atomic(pa.Table.from_pylist([row], schema=CHECKPOINTS_SCHEMA), catalog.paths.checkpoint_record(spec.name))
    catalog.publish("model_checkpoints")
    return len(catalog.files("model_checkpoints"))


def epochs_table(records: Sequence[Mapping[str, Any]]) -> str:
    header = [c.removeprefix("val_") for c in EPOCH_COLUMNS] + ["new best"]
    return markdown_table(header, ([*(cell(record.get(column)) for column in EPOCH_COLUMNS),
                                    "←" if record.get("saved_best") else ""] for record in records))


def curves_markdown(records: Sequence[Mapping[str, Any]], png: Path) -> str:
    """Loss and recall per epoch as a PNG beside the run, also inlined for the UI."""
    epochs = [r["epoch"] for r in records]
    figure, (loss_axis, recall_axis) = pyplot().subplots(1, 2, figsize=(9, 3.2))
    loss_axis.plot(epochs, [r.get("train_loss") for r in records], marker="o", label="train")
    loss_axis.plot(epochs, [r.get("val_clip_val_loss") for r in records], marker="o", label="validation")
    loss_axis.set(title="contrastive loss", xlabel="epoch")
    loss_axis.legend()
    for k in (1, 5, 10):
        recall_axis.plot(epochs, [r.get(f"val_text_to_image_R@{k}") for r in records], marker="o", label=f"text→image R@{k}")
    recall_axis.set(title="validation recall", xlabel="epoch", ylim=(0, 1))
    recall_axis.legend(fontsize=8)
    return save_figure(figure, png)


def _max(records: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    return float(max(values)) if values else None


finetune_job = dg.define_asset_job(
    "finetune_job", selection=[finetuned_clip],
    description="Fine-tune CLIP on the current curated_pairs (resumes an interrupted run of the same config).",
)
