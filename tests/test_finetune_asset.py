"""finetuned_clip end to end on the CPU: the tiny model trained through the asset by
open_clip's trainer; a killed run resumed; missing weights refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest
import torch

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.finetune.assets import prepare_run
from clipshoe_pipeline.defs.finetune.config import FinetuneConfig
from clipshoe_pipeline.defs.finetune.resources import trainer_command, trainer_env
from clipshoe_pipeline.definitions import defs
from clipshoe_pipeline.training.launch import remove_truncated_checkpoints
from clipshoe_pipeline.training.models import TINY_MODEL, load_clip
from clipshoe_pipeline.training.run import RunDir
from clipshoe_common import PROJECT_ROOT
from tests.builders import TINY, write_curated_pairs

pytestmark = pytest.mark.slow

def finetune(instance, **fields) -> dg.ExecuteInProcessResult:
    config = {"ops": {"finetuned_clip": {"config": {**TINY, **fields}}}}
    return defs.resolve_job_def("finetune_job").execute_in_process(
        instance=instance, run_config=config, raise_on_error=False)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(tmp_path))
    # One thread: the tiny model's steps are too small for two, and on a busy 2-core
    # machine OpenMP's spinning threads made them 10x slower.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    write_curated_pairs(tmp_path, products=90, images_per_product=3)  # one product per (kind, colour)
    return tmp_path


def chance_mean_recall(n: int) -> float:
    return sum(min(k / n, 1.0) for k in (1, 5, 10)) / 3


def test_tiny_clip_learns_through_the_asset(data_dir):
    with dg.DagsterInstance.ephemeral() as instance:
        result = finetune(instance)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("finetuned_clip")[0].metadata.items()}
    run = RunDir(data_dir / "training" / "runs" / metadata["run"])
    records = run.epochs()
    assert [r["epoch"] for r in records] == list(range(1, 9))
    assert records[-1]["train_loss"] < records[0]["train_loss"]  # the contrastive loss falls
    assert metadata["mean_recall"] > chance_mean_recall(metadata["val_pairs"]) + 0.1  # held-out recall beats chance
    assert metadata["weights"] == "RANDOM INIT (not pretrained)" and metadata["resumed_from_epoch"] == 0
    assert "fused: True" in run.trainer_log.read_text()  # open_clip built its AdamW fused (our default)
    assert metadata["speed_settings"] == "torch.compile off, fused AdamW on"  # the CPU stays eager
    assert "| epoch | train_loss |" in metadata["epochs"] and "data:image/png;base64," in metadata["curves"]
    # The best checkpoint loads as open_clip weights and carries its lineage.
    saved = torch.load(run.best, map_location="cpu", weights_only=False)
    lineage = saved["clipshoe_lineage"]
    assert lineage["data"]["snapshot"] == metadata["data_snapshot"] and lineage["model_config"]["embed_dim"] == 64
    assert lineage["code"]["git_commit"] and lineage["weights"]["kind"] == "random"
    assert saved["clipshoe_epoch"]["epoch"] == metadata["best_epoch"]
    load_clip(TINY_MODEL, str(run.best))
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"finetuned_clip_checkpoint_loads": True, "finetuned_clip_recall_above_chance": True}
    (registered,) = CatalogDB(data_dir=str(data_dir)).query("SELECT * FROM model_checkpoints")
    assert registered["checkpoint"] == str(run.best) and registered["epoch"] == metadata["best_epoch"]


def test_large_exports_train_from_webdataset_shards_with_a_csv_validation_set(data_dir):
    """The full-scale path: open_clip reads the shards (and the small validation CSV)."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = finetune(instance, export={"val_fraction": 0.25, "webdataset_min_pairs": 10}, epochs=2, workers=1)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("finetuned_clip")[0].metadata.items()}
    assert metadata["dataset_type"] == "webdataset"
    records = RunDir(data_dir / "training" / "runs" / metadata["run"]).epochs()
    # Every training pair is seen once per epoch (batches of 16), and validation ran.
    assert [r["steps"] for r in records] == [-(-metadata["train_pairs"] // 16)] * 2
    assert all(r.get("val_mean_recall") is not None for r in records)


def test_locked_towers_checkpointing_accumulation_and_a_timm_optimizer_train(data_dir):
    """The config's flags are open_clip's, but each has preconditions of its own there."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = finetune(instance, epochs=2, lock_image=True, lock_image_unlocked_groups=1, lock_text=True,
                          lock_text_unlocked_layers=1, grad_checkpointing=True, accum_freq=2,
                          extra_args=["--opt", "timm/adamw", "--eps", "1e-6"])
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("finetuned_clip")[0].metadata.items()}
    log = (data_dir / "training" / "runs" / metadata["run"] / "out.log").read_text()
    assert "(timm/adamw) optimizer" in log and metadata["best_epoch"] in (1, 2)


def test_a_killed_run_resumes_from_its_latest_checkpoint(data_dir):
    config = FinetuneConfig(**{**TINY, "epochs": 3})
    run, spec, _, _ = prepare_run(config, CatalogDB())
    trainer = subprocess.Popen(trainer_command(run, spec.gpus), cwd=PROJECT_ROOT, env={**os.environ, **trainer_env(spec)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while run.latest_checkpoint_epoch() is None and trainer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    killed_at = run.latest_checkpoint_epoch()
    assert killed_at in (1, 2), "the trainer should have been killed after its first checkpoint"

    with dg.DagsterInstance.ephemeral() as instance:
        result = finetune(instance, epochs=3)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    metadata = result.asset_materializations_for_node("finetuned_clip")[0].metadata
    assert metadata["run"].value == run.path.name and metadata["resumed_from_epoch"].value == killed_at
    assert [r["epoch"] for r in run.epochs()] == [1, 2, 3]  # nothing redone twice, nothing missing
    assert sorted(p.name for p in run.checkpoints.glob("*.pt")) == ["epoch_3.pt"]  # only the latest is kept


def test_truncated_checkpoints_are_removed_before_resuming(tmp_path):
    run = RunDir(tmp_path)
    run.checkpoints.mkdir()
    torch.save({"epoch": 1}, run.checkpoints / "epoch_1.pt")
    whole = (run.checkpoints / "epoch_1.pt").read_bytes()
    (run.checkpoints / "epoch_2.pt").write_bytes(whole[: len(whole) // 2])
    assert [p.name for p in remove_truncated_checkpoints(run)] == ["epoch_2.pt"]
    assert run.latest_checkpoint_epoch() == 1


def test_more_gpus_than_the_training_host_has_fail_before_training(data_dir):
    with dg.DagsterInstance.ephemeral() as instance:
        result = finetune(instance, gpus=torch.cuda.device_count() + 1)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    tail = failure.step_failure_data.user_failure_data.metadata["console_tail"].value
    assert "visible on this host" in tail  # said by the trainer, on the host that trains
    assert not list((data_dir / "training" / "runs").glob("*/epochs.jsonl"))  # nothing trained


def test_missing_pretrained_weights_fail_the_asset_before_training(data_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(data_dir / "empty_hf_cache"))
    with dg.DagsterInstance.ephemeral() as instance:
        result = finetune(instance, model="ViT-B-32", pretrained="laion2b_s34b_b79k", allow_random_init=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "not in the local cache" in failure.event_specific_data.error.message
    assert not (data_dir / "training" / "runs").exists()


def test_a_failing_trainer_fails_the_asset_with_its_console_tail(data_dir):
    with dg.DagsterInstance.ephemeral() as instance:
        result = finetune(instance, extra_args=["--no-such-open-clip-flag"])
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "the trainer failed" in failure.event_specific_data.error.message
    tail = failure.event_specific_data.user_failure_data.metadata["console_tail"].value
    assert "unrecognized arguments: --no-such-open-clip-flag" in tail  # open_clip's own complaint, shown in the UI


def test_the_gpu_throughput_benchmark_runs_every_input_on_the_cpu(tmp_path):
    """benchmarks/train_throughput.py is what a lent GPU runs, once: it must work before it gets there."""
    result = subprocess.run(
        [sys.executable, "benchmarks/train_throughput.py", "--cpu", "--variants", "fused", "--steps", "3",
         "--epochs", "1", "--workers", "0", "--images", "16", "--work", str(tmp_path),
         "--json", str(tmp_path / "out.json")],
        cwd=PROJECT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "out.json").read_text())
    assert [(r["variant"], r["case"]) for r in report["results"]] == [
        ("fused", "tensors"), ("fused", "real_data"), ("fused", "synthetic")]
    assert all(r["samples_per_s"] > 0 for r in report["results"]) and set(report["ratio_to_tensors"]) == {
        "real_data", "synthetic"}
    assert "| real_data / tensors |" in result.stdout and "measured: | fused | tensors |" in result.stderr
