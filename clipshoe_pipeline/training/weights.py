"""Where the starting weights come from, decided before any training starts.

Our machines have no network, and a trainer that discovers this after building its
data loaders hangs on a download or dies deep in a traceback. So the weights are
resolved up front, without touching the network: a local checkpoint path, an open_clip
pretrained tag already in the Hugging Face or open_clip cache, or — only when asked
for explicitly — random initialisation. Anything else fails with a message that says
how to provide the weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clipshoe_pipeline.training.models import register_model_configs

RANDOM_INIT = "RANDOM INIT (not pretrained)"


class MissingWeights(RuntimeError):
    """The requested pretrained weights are not on this machine."""


@dataclass(frozen=True)
class WeightsSource:
    kind: str  # path | tag | random
    value: str | None  # the trainer's --pretrained (None: random initialisation)
    file: str | None  # the weights file that will be read (None: random)

    @property
    def label(self) -> str:
        return RANDOM_INIT if self.kind == "random" else f"{self.kind}: {self.value}"


def resolve_weights(model: str, pretrained: str | None, *, allow_random_init: bool = False,
                    cache_dir: str | None = None) -> WeightsSource:
    """The weights `pretrained` names for `model`, checked to be here."""
    import open_clip

    register_model_configs()
    if model not in open_clip.list_models() and not model.startswith("hf-hub:"):
        raise ValueError(f"unknown model {model!r}: not an open_clip config (open_clip.list_models())")
    if not pretrained:
        if not allow_random_init:
            raise MissingWeights(
                f"no pretrained weights given for {model}: set `pretrained` to an open_clip tag "
                f"({', '.join(open_clip.list_pretrained_tags_by_model(model)) or 'none for this model'}) "
                "or a checkpoint path, or set allow_random_init to train from scratch")
        return WeightsSource("random", None, None)
    if Path(pretrained).expanduser().is_file():
        path = str(Path(pretrained).expanduser().absolute())
        return WeightsSource("path", path, path)
    tags = open_clip.list_pretrained_tags_by_model(model)
    if pretrained not in tags:
        raise MissingWeights(
            f"{pretrained!r} is neither a file nor an open_clip tag of {model} "
            f"(tags: {', '.join(tags) or 'none'})")
    cached = _cached_file(open_clip.get_pretrained_cfg(model, pretrained), cache_dir)
    if cached is None:
        raise MissingWeights(
            f"the weights {model}/{pretrained} are not in the local cache and this machine cannot download "
            "them. Download them where there is network (python -c \"import open_clip; "
            f"open_clip.create_model_and_transforms('{model}', pretrained='{pretrained}')\"), then copy "
            "~/.cache/huggingface (or $HF_HOME) here, or pass the checkpoint file's path as `pretrained`")
    return WeightsSource("tag", pretrained, cached)


def _cached_file(cfg: dict, cache_dir: str | None) -> str | None:
    """The cached file open_clip would load for a pretrained cfg, found without network."""
    if cfg.get("file"):
        return cfg["file"] if os.path.isfile(cfg["file"]) else None
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])
        candidates = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")  # open_clip prefers it when present
        for candidate in candidates:
            found = try_to_load_from_cache(repo, candidate, cache_dir=cache_dir)
            if isinstance(found, str):
                return found
    if cfg.get("url"):
        target = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])
        if target.is_file():
            return str(target)
    return None
