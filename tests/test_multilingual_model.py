"""The default base model's kind end to end, offline: `clipshoe-tiny-hf` (a Hugging Face
XLM-RoBERTa text tower and tokenizer, as `xlm-roberta-base-ViT-B-32` has) trains through
the asset, is evaluated beside a FashionCLIP-format peer converted by
`clipshoe models convert-hf-clip` and listed in a peers file, and its checkpoint reloads."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pytest

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.cli import main
from clipshoe_pipeline.definitions import defs
from clipshoe_pipeline.evaluation.embeddings import ClipEncoder
from clipshoe_pipeline.settings import ZAPPOS_DIR
from clipshoe_pipeline.training.tiny_text_tower import TINY_HF_MODEL
from tests.builders import TINY, write_curated_pairs

pytestmark = pytest.mark.slow


def save_tiny_transformers_clip(folder) -> None:
    """A random transformers CLIPModel that reads CLIP's BPE ids (FashionCLIP's format, toy size)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    common = {"hidden_act": "quick_gelu", "num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64,
              "num_attention_heads": 2}
    config = CLIPConfig(text_config={**common, "vocab_size": 49408, "max_position_embeddings": 77,
                                     "eos_token_id": 2},
                        vision_config={**common, "image_size": 32, "patch_size": 8}, projection_dim=32)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSHOE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv(ZAPPOS_DIR, raising=False)
    write_curated_pairs(tmp_path, products=60, images_per_product=2)
    return tmp_path


def run_job(instance, job: str, asset: str, config: dict) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        run_config={"ops": {asset: {"config": config}}}, instance=instance, raise_on_error=False)


def test_the_hf_text_tower_model_trains_evaluates_beside_a_converted_peer_and_reloads(data_dir):
    save_tiny_transformers_clip(data_dir / "hf-fashion-clip")
    assert main(["models", "convert-hf-clip", str(data_dir / "hf-fashion-clip"),
                 str(data_dir / "models" / "fashion-clip")]) == 0
    peers_file = data_dir / "peers.toml"
    peers_file.write_text('[[peer]]\nname = "FashionCLIP"\nmodel = "local-dir:{data_dir}/models/fashion-clip"\n')

    with dg.DagsterInstance.ephemeral() as instance:
        trained = run_job(instance, "finetune_job", "finetuned_clip", {**TINY, "model": TINY_HF_MODEL, "epochs": 2})
        assert trained.success, [e.message for e in trained.all_events if e.is_failure]
        evaluated = run_job(instance, "evaluate_job", "model_metrics", {
            "baseline_model": TINY_HF_MODEL, "baseline_pretrained": None, "baseline_random_init": True,
            "peers": [], "peers_file": str(peers_file)})
        assert evaluated.success, [e.message for e in evaluated.all_events if e.is_failure]

    rows = CatalogDB(data_dir=str(data_dir)).query("SELECT DISTINCT model, checkpoint FROM metrics")
    assert {row["model"] for row in rows} == {"baseline", "finetuned", "FashionCLIP"}
    (metadata,) = [event.materialization.metadata for event in evaluated.get_asset_materialization_events()]
    assert metadata["not_evaluated"].value == "none"
    reports = list((data_dir / "reports").glob("metrics-*/clip_benchmark/*.json"))
    assert metadata["clip_benchmark_files"].value == len(reports) > 0
    assert {json.loads(path.read_text())["model"] for path in reports} >= {TINY_HF_MODEL}

    (checkpoint,) = CatalogDB(data_dir=str(data_dir)).query("SELECT checkpoint FROM model_checkpoints")
    reloaded = ClipEncoder.load(TINY_HF_MODEL, checkpoint["checkpoint"])
    decomposed, composed = "gia\u0300y đỏ", "giày đỏ"  # NFD and NFC spellings of one caption
    embeddings = reloaded.encode_texts([decomposed, composed])
    np.testing.assert_allclose(embeddings[0], embeddings[1], atol=1e-6)
