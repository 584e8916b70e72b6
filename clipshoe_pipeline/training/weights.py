"""Where the starting weights come from, decided before any training starts.

A trainer that discovers missing weights after building its data loaders hangs on a
download or dies deep in a traceback. So the weights are resolved up front, in the
process that starts the trainer or the evaluation: a local checkpoint path, an
open_clip pretrained tag, a model named by open_clip's `hf-hub:org/repo` (e.g.
Marqo-FashionCLIP) or `local-dir:/path` schema, or — only when asked for explicitly —
random initialisation. A tag or hub model that is not cached yet is downloaded into the
standard cache (training.hub), with the config and tokenizer of a `transformers` text
tower; with HF_HUB_OFFLINE=1, or when the download fails, the error says how to provide
the files. (open_clip itself builds a schema model with random weights, logging only a
warning, when the weights file cannot be fetched: that must never be scored as the
named model.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clipshoe_pipeline.training import hub
from clipshoe_pipeline.training.models import SCHEMA_PREFIXES, prepare_model_files

RANDOM_INIT = "RANDOM INIT (not pretrained)"
HUB_CONFIG = "open_clip_config.json"


class MissingWeights(RuntimeError):
    """The requested pretrained weights are not on this machine and could not be fetched."""


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
    """The weights `pretrained` names for `model`, fetched if they are not here yet, with
    whatever else building the model reads (a text tower's config and tokenizer)."""
    import open_clip

    prepare_model_files(model)
    if model.startswith(SCHEMA_PREFIXES):
        source = _schema_weights(model, pretrained, cache_dir)
        _text_tower_files(_schema_config(model, cache_dir), model, cache_dir)
        return source
    if model not in open_clip.list_models():
        raise ValueError(f"unknown model {model!r}: not an open_clip config (open_clip.list_models()), "
                         "nor hf-hub:org/repo or local-dir:/path")
    _text_tower_files(open_clip.get_model_config(model), model, cache_dir)
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
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    cached = _cached_file(cfg, cache_dir) or _download(lambda: hub.fetch_pretrained(cfg, cache_dir),
                                                       f"the weights {model}/{pretrained}", f"{model} --pretrained {pretrained}")
    return WeightsSource("tag", pretrained, cached)


def _download(fetch, what: str, fetch_arguments: str) -> str:
    """`fetch()`'s file, or MissingWeights saying why not and how to provide it."""
    how = (f"Run `clipshoe models fetch {fetch_arguments}` where there is network, then copy "
           "~/.cache/huggingface (or $HF_HOME) here, or pass a checkpoint file's path as `pretrained`")
    if hub.offline():
        raise MissingWeights(f"{what} are not in the local cache and HF_HUB_OFFLINE=1 forbids downloading them. {how}")
    try:
        return fetch()
    except hub.DownloadFailed as error:
        raise MissingWeights(f"{what} are not in the local cache and could not be downloaded ({error}). {how}") from error


def _text_tower_files(model_cfg: dict | None, model: str, cache_dir: str | None) -> None:
    """The config and tokenizer of a `transformers` text tower named by a hub repository
    (open_clip builds the tower from them even when the CLIP checkpoint has its weights)."""
    repo = ((model_cfg or {}).get("text_cfg") or {}).get("hf_model_name")
    names = {repo, ((model_cfg or {}).get("text_cfg") or {}).get("hf_tokenizer_name")} - {None}
    for name in sorted(names):
        if not Path(name).is_dir():
            try:
                hub.fetch_text_tower(name, cache_dir)
            except hub.DownloadFailed as error:
                state = "HF_HUB_OFFLINE=1 forbids downloading it" if hub.offline() else "it could not be downloaded"
                raise MissingWeights(
                    f"{model}'s text tower {name} (config and tokenizer) is not in the local cache and {state} "
                    f"({error}). Run `clipshoe models fetch {model}` where there is network, then copy "
                    "~/.cache/huggingface (or $HF_HOME) here") from error


def _schema_config(model: str, cache_dir: str | None) -> dict | None:
    """The model_cfg of an `hf-hub:`/`local-dir:` model, whose files _schema_weights has checked."""
    import json

    schema, _, location = model.partition(":")
    config = Path(location) / HUB_CONFIG if schema == "local-dir" else Path(hub.fetch_file(location, HUB_CONFIG, cache_dir))
    return json.loads(config.read_text()).get("model_cfg")


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
    """The weights file of an `hf-hub:` repository, with its config, cached or fetched."""
    from huggingface_hub import try_to_load_from_cache

    def fetch() -> str:
        hub.fetch_file(repo, HUB_CONFIG, cache_dir)
        return hub.fetch_pretrained({"hf_hub": f"{repo}/"}, cache_dir)

    cached = _cached_file({"hf_hub": f"{repo}/"}, cache_dir)
    if isinstance(try_to_load_from_cache(repo, HUB_CONFIG, cache_dir=cache_dir), str) and cached:
        return cached
    return _download(fetch, f"hf-hub:{repo} ({HUB_CONFIG} and its weights)", f"hf-hub:{repo}")


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
