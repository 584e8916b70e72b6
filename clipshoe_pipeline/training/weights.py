"""Where the starting weights come from, decided before any training starts.

Our machines have no network, and a trainer that discovers this after building its
data loaders hangs on a download or dies deep in a traceback. So the weights are
resolved up front, without touching the network: a local checkpoint path, an open_clip
pretrained tag already in the Hugging Face or open_clip cache, a model named by
open_clip's `hf-hub:org/repo` (e.g. Marqo-FashionCLIP) or `local-dir:/path` schema whose
weights are here, or — only when asked for explicitly — random initialisation.
Anything else fails with a message that says how to provide the weights. (open_clip
itself builds a schema model with random weights, logging only a warning, when the
weights file cannot be fetched: that must never be scored as the named model.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clipshoe_pipeline.training.models import SCHEMA_PREFIXES, register_model_configs

RANDOM_INIT = "RANDOM INIT (not pretrained)"
HUB_CONFIG = "open_clip_config.json"


class MissingWeights(RuntimeError):
    """The requested pretrained weights are not on this machine."""


@dataclass(frozen=True)
class WeightsSource:
    kind: str  # path | tag | hf-hub | local-dir | random
    value: str | None  # the trainer's --pretrained (None: random, or the weights come with the model's schema)
    file: str | None  # the weights file that will be read (None: random)

    @property
    def label(self) -> str:
        return RANDOM_INIT if self.kind == "random" else f"{self.kind}: {self.value or self.file}"

    @property
    def identity(self) -> str | None:
        """What the weights are known by (a tag or a file); None for random weights."""
        return self.value or self.file


def resolve_weights(model: str, pretrained: str | None, *, allow_random_init: bool = False,
                    cache_dir: str | None = None) -> WeightsSource:
    """The weights `pretrained` names for `model`, checked to be here."""
    import open_clip

    register_model_configs()
    if model.startswith(SCHEMA_PREFIXES):
        return _schema_weights(model, pretrained, cache_dir)
    if model not in open_clip.list_models():
        raise ValueError(f"unknown model {model!r}: not an open_clip config (open_clip.list_models()), "
                         "nor hf-hub:org/repo or local-dir:/path")
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


def _schema_weights(model: str, pretrained: str | None, cache_dir: str | None) -> WeightsSource:
    """An `hf-hub:`/`local-dir:` model: its open_clip config must be here, and its own
    weights too unless `pretrained` is a checkpoint file of that model (e.g. fine-tuned)."""
    schema, _, location = model.partition(":")
    checkpoint = pretrained and Path(pretrained).expanduser()
    if pretrained and not checkpoint.is_file():
        raise ValueError(f"open_clip takes the weights of {model} from its {schema} source: `pretrained` "
                         f"can only be a checkpoint file of that model, not {pretrained!r}")
    own_weights = _hub_files(location, cache_dir) if schema == "hf-hub" else _local_dir_files(location)
    if checkpoint:
        path = str(checkpoint.absolute())
        return WeightsSource("path", path, path)
    return WeightsSource(schema, None, own_weights)


def _hub_files(repo: str, cache_dir: str | None) -> str:
    """The cached weights file of an `hf-hub:` repository whose config is cached too."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo, HUB_CONFIG, cache_dir=cache_dir)
    weights = _cached_file({"hf_hub": f"{repo}/"}, cache_dir)
    if not isinstance(config, str) or weights is None:
        raise MissingWeights(
            f"hf-hub:{repo} is not in the local Hugging Face cache ({HUB_CONFIG} and its weights) and this "
            "machine cannot download it. Download it where there is network (python -c \"import open_clip; "
            f"open_clip.create_model_and_transforms('hf-hub:{repo}')\"), then copy ~/.cache/huggingface "
            "(or $HF_HOME) here, or use local-dir:/path with the repository's files")
    return weights


def _local_dir_files(folder: str) -> str:
    """The weights file open_clip picks in a `local-dir:` folder that holds its config."""
    from open_clip.factory import _find_checkpoint_in_dir  # open_clip's own choice among several files

    path = Path(folder)
    if not path.is_absolute():  # open_clip reads it as written, from wherever the process runs
        raise ValueError(f"local-dir:{folder}: give the folder as an absolute path")
    weights = _find_checkpoint_in_dir(path) if (path / HUB_CONFIG).is_file() else None
    if weights is None:
        raise MissingWeights(f"local-dir:{folder} needs {HUB_CONFIG} and a weights file "
                             "(*.safetensors, *.bin or *.pth) in that folder")
    return str(weights)


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
