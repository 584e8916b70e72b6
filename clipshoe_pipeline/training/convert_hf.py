"""CLIP checkpoints from outside open_clip, as open_clip weights.

`convert_hf_clip` turns a Hugging Face transformers `CLIPModel` (FashionCLIP,
`patrickjohncyh/fashion-clip`, is published only in that format) into an open_clip
`local-dir:` folder: `open_clip_config.json` (`model_cfg` derived from the transformers
config, `preprocess_cfg` from its image processor) and `open_clip_model.safetensors`.
The two implementations compute the same function: q/k/v projections concatenate
into one in-projection, the output projections are transposed, layer norms keep
their epsilon, and the text is pooled where transformers pools it. Every source tensor
is used exactly once and every open_clip tensor is filled with the shape open_clip
builds, or the conversion fails naming what is left over: an architecture this
mapping does not know must not load by halves.

`state_dict_from_checkpoint` reads the state dict out of a training checkpoint file
(OpenFashionCLIP keeps it under 'CLIP', open_clip_train under 'state_dict').
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from clipshoe_common.files import replace_dir
from clipshoe_pipeline.training import hub

HF_CONFIG = "config.json"
HF_PREPROCESSOR_CONFIG = "preprocessor_config.json"
HF_WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")  # preferred first; sharded ones are not read
CLIP_MODEL_TYPE = "clip"
# transformers configs saved before its PR #24773 say eos_token_id 2; for them it pools
# the text at argmax(ids) (the end-of-text id is the largest), otherwise at the first eos.
LEGACY_EOS_TOKEN_ID = 2
CLIP_BPE_VOCAB_SIZE = 49408  # open_clip's default tokenizer, the one a converted model gets
QUICK_GELU_BY_ACTIVATION = {"quick_gelu": True, "gelu": False}  # open_clip's two; both erf-exact
INTERPOLATION_BY_PIL_RESAMPLE = {2: "bilinear", 3: "bicubic"}
PIL_BICUBIC = 3  # CLIPImageProcessor's default resample
# Copies of arange that older transformers versions saved with the weights.
DERIVED_BUFFERS = ("vision_model.embeddings.position_ids", "text_model.embeddings.position_ids")

PARAMETER_RENAMES = {
    "logit_scale": "logit_scale",
    "vision_model.embeddings.class_embedding": "visual.class_embedding",
    "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
    "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
}
NORM_RENAMES = {
    "vision_model.pre_layrnorm": "visual.ln_pre",
    "vision_model.post_layernorm": "visual.ln_post",
    "text_model.final_layer_norm": "ln_final",
}
# transformers' Linear(width, embed_dim).weight; open_clip multiplies x @ proj.
PROJECTION_RENAMES = {"visual_projection.weight": "visual.proj", "text_projection.weight": "text_projection"}
LAYER_RENAMES = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
TOWER_PREFIXES = {"vision": ("vision_model.encoder.layers.", "visual.transformer.resblocks."),
                  "text": ("text_model.encoder.layers.", "transformer.resblocks.")}

log = logging.getLogger(__name__)


class ConversionError(ValueError):
    """The source cannot be converted as it is (said why)."""


def convert_hf_clip(source: str, out_dir: Path, *, overwrite: bool = False) -> Path:
    """Convert the transformers CLIPModel at `source` (a local folder, or a Hugging Face
    hub repo id whose config, image processor config and weights are downloaded, as
    HF_ENDPOINT / HF_HUB_OFFLINE say) into the open_clip folder `out_dir`, load it as
    `local-dir:<returned path>`. The folder appears whole or not at all; an existing
    non-empty `out_dir` is replaced only when `overwrite`. Returns `out_dir` resolved."""
    from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME
    from safetensors.torch import save_file

    out_dir = Path(out_dir).resolve()
    if not overwrite and _occupied(out_dir):
        raise ConversionError(f"{out_dir} exists and is not empty: pass overwrite=True to replace it")
    folder = _fetched(source, (HF_CONFIG, HF_PREPROCESSOR_CONFIG))
    config = _clip_config(folder, source)
    model_cfg = _model_cfg(config)
    state_dict = _converted_state_dict(state_dict_from_checkpoint(_weights_file(source)), config)
    _check_fits_open_clip(state_dict, model_cfg, source)
    preprocessor = folder / HF_PREPROCESSOR_CONFIG
    preprocess_cfg = _preprocess_cfg(json.loads(preprocessor.read_text(encoding="utf-8")) if preprocessor.is_file() else {})

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        (staging / HF_CONFIG_NAME).write_text(
            json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}, indent=2), encoding="utf-8")
        save_file(state_dict, staging / HF_SAFE_WEIGHTS_NAME)
        replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def state_dict_from_checkpoint(path: Path | str) -> dict[str, Any]:
    """The state dict in the torch (read with weights_only) or safetensors file `path`:
    under 'CLIP' (OpenFashionCLIP), under 'state_dict' (open_clip_train) or the file's
    whole content, with the 'module.' prefix of a DistributedDataParallel model removed."""
    import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("CLIP", "state_dict"):
        if isinstance(checkpoint, dict) and wrapper in checkpoint:
            checkpoint = checkpoint[wrapper]
            break
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        kind = f"a dict with keys {sorted(checkpoint)[:10]}" if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ConversionError(f"{path}: no state dict found (under 'CLIP', 'state_dict' or at the top): {kind}")
    return {key.removeprefix("module."): tensor for key, tensor in checkpoint.items()}


def _model_cfg(config: Any) -> dict[str, Any]:
    """open_clip's `model_cfg` for the transformers CLIPConfig `config`."""
    vision, text = config.vision_config, config.text_config
    activations = (vision.hidden_act, text.hidden_act)
    if activations[0] != activations[1] or activations[0] not in QUICK_GELU_BY_ACTIVATION:
        # open_clip's activation choice (quick_gelu) is one for both towers.
        raise ConversionError(f"activations vision={activations[0]!r}, text={activations[1]!r}: open_clip "
                              f"builds one of {sorted(QUICK_GELU_BY_ACTIVATION)} for both towers")
    if text.vocab_size != CLIP_BPE_VOCAB_SIZE:
        log.warning("text vocab_size %d is not the %d of the CLIP BPE tokenizer open_clip pairs with this model: "
                    "its token ids will not fit", text.vocab_size, CLIP_BPE_VOCAB_SIZE)
    if text.eos_token_id == LEGACY_EOS_TOKEN_ID:
        pooling = {"pool_type": "argmax"}
    else:
        pooling = {"pool_type": "eos", "eos_id": text.eos_token_id}
    return {
        "embed_dim": config.projection_dim,
        "quick_gelu": QUICK_GELU_BY_ACTIVATION[activations[0]],
        "vision_cfg": {
            "image_size": vision.image_size,
            "patch_size": vision.patch_size,
            "layers": vision.num_hidden_layers,
            "width": vision.hidden_size,
            "head_width": vision.hidden_size // vision.num_attention_heads,
            "mlp_ratio": vision.intermediate_size / vision.hidden_size,
            "norm_kwargs": {"eps": vision.layer_norm_eps},
        },
        "text_cfg": {
            "context_length": text.max_position_embeddings,
            "vocab_size": text.vocab_size,
            "width": text.hidden_size,
            "heads": text.num_attention_heads,
            "layers": text.num_hidden_layers,
            "mlp_ratio": text.intermediate_size / text.hidden_size,
            "norm_kwargs": {"eps": text.layer_norm_eps},
            **pooling,
        },
    }


def _preprocess_cfg(image_processor: dict[str, Any]) -> dict[str, Any]:
    """open_clip's `preprocess_cfg` for a CLIPImageProcessor's saved config ({} when the
    model has none: CLIPImageProcessor's defaults, OpenAI's). CLIPImageProcessor resizes
    the shortest edge and centre-crops, as open_clip's 'shortest' resize mode does."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    resample = image_processor.get("resample", PIL_BICUBIC)
    if resample not in INTERPOLATION_BY_PIL_RESAMPLE:
        raise ConversionError(f"image processor resample={resample!r}: open_clip interpolates only "
                              f"{sorted(INTERPOLATION_BY_PIL_RESAMPLE.values())}")
    return {
        "mean": list(image_processor.get("image_mean", OPENAI_DATASET_MEAN)),
        "std": list(image_processor.get("image_std", OPENAI_DATASET_STD)),
        "interpolation": INTERPOLATION_BY_PIL_RESAMPLE[resample],
        "resize_mode": "shortest",
    }


def _converted_state_dict(hf_state_dict: dict[str, Any], config: Any) -> dict[str, Any]:
    """The open_clip state dict holding the weights of the transformers CLIPModel state
    dict `hf_state_dict` (with CLIPConfig `config`); raises naming the tensors that are
    missing or would be left unused."""
    plan = _key_plan(config)
    wanted = [key for sources in plan.values() for key in sources]
    missing = [key for key in wanted if key not in hf_state_dict]
    unused = sorted(hf_state_dict.keys() - set(wanted) - set(DERIVED_BUFFERS))
    if missing or unused:
        raise ConversionError("not a transformers CLIPModel this converter knows: "
                              f"missing {missing or 'nothing'}, not converted {unused or 'nothing'}")
    return {target: _merged(target, [hf_state_dict[key] for key in sources]) for target, sources in plan.items()}


def _key_plan(config: Any) -> dict[str, tuple[str, ...]]:
    """open_clip key -> the transformers keys its tensor is made of."""
    plan = {target: (source,) for source, target in (PARAMETER_RENAMES | PROJECTION_RENAMES).items()}
    norms = dict(NORM_RENAMES)
    layers = {"vision": config.vision_config.num_hidden_layers, "text": config.text_config.num_hidden_layers}
    for tower, (source_prefix, target_prefix) in TOWER_PREFIXES.items():
        for layer in range(layers[tower]):
            source, target = f"{source_prefix}{layer}.", f"{target_prefix}{layer}."
            norms |= {source + name: target + new_name for name, new_name in LAYER_RENAMES.items()}
            for kind in ("weight", "bias"):
                plan[f"{target}attn.in_proj_{kind}"] = tuple(f"{source}self_attn.{p}_proj.{kind}" for p in "qkv")
    plan |= {f"{target}.{kind}": (f"{source}.{kind}",) for source, target in norms.items() for kind in ("weight", "bias")}
    return plan


def _merged(target: str, tensors: list[Any]) -> Any:
    import torch

    if len(tensors) > 1:
        return torch.cat(tensors)  # q, k, v: nn.MultiheadAttention's in-projection, in that order
    if target in PROJECTION_RENAMES.values():
        return tensors[0].t().contiguous()
    return tensors[0]


def _fetched(source: str, file_names: tuple[str, ...]) -> Path:
    """The folder holding those of `file_names` that `source` has: `source` itself when
    it is a folder, otherwise the snapshot of those files of the hub repo `source`
    (each checked against its sha256 as training.hub checks downloads)."""
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(source, allow_patterns=list(file_names), local_files_only=hub.offline()))
        for name in file_names:
            if (folder / name).is_file():
                hub.verify_cached_file(str(folder / name))
    except Exception as error:  # huggingface_hub's and its HTTP client's errors have no common base
        raise ConversionError(f"{source!r} is not a folder, and downloading {list(file_names)} of the Hugging "
                              f"Face hub repo {source!r} failed: {type(error).__name__}: {error}") from error
    return folder


def _weights_file(source: str) -> Path:
    # One file at a time: a repo often has both formats, each the model's full size.
    for name in HF_WEIGHTS_FILES:
        path = _fetched(source, (name,)) / name
        if path.is_file():
            return path
    raise ConversionError(f"{source}: holds none of {list(HF_WEIGHTS_FILES)}")


def _clip_config(folder: Path, source: str) -> Any:
    """The CLIPConfig in `folder`, refused unless it describes a whole CLIPModel."""
    from transformers import CLIPConfig

    path = folder / HF_CONFIG
    if not path.is_file():
        raise ConversionError(f"{source}: no {HF_CONFIG}, so not a transformers model")
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("model_type") != CLIP_MODEL_TYPE:
        raise ConversionError(f"{source}: {HF_CONFIG} describes a {raw.get('model_type')!r} model, "
                              f"not a transformers CLIPModel ({CLIP_MODEL_TYPE!r})")
    # CLIPConfig, not the raw JSON: it fills the defaults and reads legacy keys as transformers does.
    return CLIPConfig.from_dict(raw)


def _check_fits_open_clip(state_dict: dict[str, Any], model_cfg: dict[str, Any], source: str) -> None:
    """Raise unless `state_dict` fills exactly the tensors, with their shapes, of the
    open_clip CLIP `model_cfg` builds."""
    import open_clip
    import torch

    with torch.device("meta"):  # shapes only: no memory, no random init
        expected = open_clip.CLIP(**model_cfg).state_dict()
    problems = [f"{key} missing" for key in expected.keys() - state_dict.keys()]
    problems += [f"{key} unexpected" for key in state_dict.keys() - expected.keys()]
    problems += [f"{key} is {tuple(state_dict[key].shape)}, open_clip builds {tuple(tensor.shape)}"
                 for key, tensor in expected.items() if key in state_dict and state_dict[key].shape != tensor.shape]
    if problems:
        raise ConversionError(f"{source}: the converted weights do not fit the open_clip model: {sorted(problems)}")


def _occupied(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


