"""open_clip models as the project names them: our model configs and one loader.

`clipshoe-tiny` is a CLIP small enough to train on a laptop CPU in seconds (64 px
images, 2-layer towers): tests and the demo use it; real runs use open_clip's own
configs (ViT-B-32 by default). open_clip keeps its config registry per process, so
every process that builds a model (the asset, the trainer subprocess, evaluation)
calls `register_model_configs()` first.
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
BASE_MODEL, BASE_PRETRAINED = "ViT-B-32", "laion2b_s34b_b79k"
RANDOM_INIT_SEED = 0  # open_clip_train's --seed default (FinetuneConfig.seed)
SCHEMA_PREFIXES = ("hf-hub:", "local-dir:")  # open_clip model names that bring their own weights


@cache
def register_model_configs() -> None:
    import open_clip

    open_clip.add_model_config(MODEL_CONFIGS)


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

    register_model_configs()
    schema_model = model_name.startswith(SCHEMA_PREFIXES)
    if weights is None and not schema_model:
        torch.manual_seed(RANDOM_INIT_SEED)
    if schema_model and weights is not None:
        # open_clip ignores `pretrained` for schema models: build from the schema's config,
        # then load the checkpoint (e.g. one fine-tuned from that model) ourselves.
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, load_weights=False, device=device)
        open_clip.load_checkpoint(model, weights, device=device)
    else:
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
