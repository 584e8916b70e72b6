"""open_clip models as the project names them: our model configs and one loader.

`clipshoe-tiny` is a CLIP small enough to train on a laptop CPU in seconds (64 px
images, 2-layer towers): tests and the demo use it; `clipshoe-tiny-hf` is the same
with a Hugging Face text tower, the default base model's kind (training.tiny_text_tower).
Real runs use open_clip's own configs. open_clip keeps its config registry per
process, so every process that builds a model (the asset, the trainer subprocess,
evaluation) calls `register_model_configs()` first.

The default base reads Vietnamese: on Crossmodal-3600's Vietnamese text->image,
`xlm-roberta-base-ViT-B-32` (laion5b_s13b_b90k) has R@10 0.887 where English-only
CLIPs (`ViT-B-32` laion2b_s34b_b79k, every fashion peer's base) have about 0.05, with
the same 512-d ViT-B-32 image tower (README, "Choosing a base model").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

MODEL_CONFIGS = Path(__file__).with_name("model_configs")
TINY_MODEL = "clipshoe-tiny"
# What fine-tuning starts from by default, and so the evaluation's default baseline.
BASE_MODEL, BASE_PRETRAINED = "xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k"
# The English-only CLIP of the same image tower, scored beside it as a peer by default.
ENGLISH_PEER = ("ViT-B-32 (English-only)", "ViT-B-32", "laion2b_s34b_b79k")
RANDOM_INIT_SEED = 0  # open_clip_train's --seed default (FinetuneConfig.seed)
SCHEMA_PREFIXES = ("hf-hub:", "local-dir:")  # open_clip model names that bring their own weights


@cache
def register_model_configs() -> None:
    import open_clip

    from clipshoe_pipeline.training import tiny_text_tower

    open_clip.add_model_config(MODEL_CONFIGS)
    open_clip.add_model_config(tiny_text_tower.model_config_file())


def prepare_model_files(model_name: str) -> None:
    """Build what a model of ours reads besides its weights (the tiny text tower)."""
    from clipshoe_pipeline.training import tiny_text_tower

    register_model_configs()
    if model_name == tiny_text_tower.TINY_HF_MODEL:
        tiny_text_tower.ensure_text_tower()


def load_clip(model_name: str, weights: str | None, *, device: str = "cpu") -> tuple[Any, Any, Any]:
    """(model in eval mode, validation transform, tokenizer) for `model_name` with
    `weights`: an open_clip pretrained tag, a checkpoint path (ours or open_clip's),
    or None for random initialisation (the caller must have been told so) — except for
    `hf-hub:`/`local-dir:` models, which bring their own weights. Random weights are
    drawn after seeding torch as open_clip_train does with its default `--seed 0`, so a
    random baseline is reproducible and comparable run to run. Weights that were asked
    for and are not loaded raise: open_clip alone would fall back to random ones."""
    import open_clip
    import torch

    prepare_model_files(model_name)
    schema_model = model_name.startswith(SCHEMA_PREFIXES)
    if weights is not None and Path(weights).is_file():
        # A checkpoint file, loaded here rather than by open_clip, which knows neither
        # OpenFashionCLIP's 'CLIP' wrapper nor, for schema models, `pretrained` at all.
        # Built without any base weights: a text tower would otherwise fetch its own.
        from clipshoe_pipeline.training.convert_hf import state_dict_from_checkpoint

        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, load_weights=False, pretrained_text=False, device=device)
        model.load_state_dict(state_dict_from_checkpoint(weights))
        model.to(device)
    else:
        if weights is None and not schema_model:
            torch.manual_seed(RANDOM_INIT_SEED)
        with _quiet_random_init_warning(enabled=weights is None and not schema_model):  # asked for, labelled
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=weights, device=device, require_pretrained=weights is not None or schema_model)
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(model_name)


@contextmanager
def _quiet_random_init_warning(*, enabled: bool) -> Iterator[None]:
    """Without open_clip's "No pretrained weights loaded" on the root logger: the caller
    asked for random weights and labels them itself."""
    def drop(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")

    root = logging.getLogger()
    if enabled:
        root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
