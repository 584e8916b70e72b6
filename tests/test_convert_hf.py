"""transformers CLIPModel -> open_clip `local-dir:` folder: the converted model embeds
images and texts as the original does; what cannot be converted whole is refused; the
state dicts of other projects' checkpoint files unwrap into loadable ones."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from clipshoe_pipeline.training.convert_hf import (
    LEGACY_EOS_TOKEN_ID,
    ConversionError,
    convert_hf_clip,
    state_dict_from_checkpoint,
)
from clipshoe_pipeline.training.models import TINY_MODEL, register_model_configs

TOLERANCE = 1e-5  # max abs difference of unnormalised embeddings
CONTEXT_LENGTH = 16
VOCAB_SIZE = 99
EOS_ID, BOS_ID = VOCAB_SIZE - 1, VOCAB_SIZE - 2  # the largest ids, as in CLIP's BPE vocabulary
WORD_COUNTS = (1, 6, CONTEXT_LENGTH - 2)  # short, medium, filling the context
IMAGE_SIZE = 32


@dataclass(frozen=True)
class Case:
    hidden_act: str
    eos_token_id: int  # LEGACY_EOS_TOKEN_ID: transformers pools at argmax(ids)
    pad_id: int
    layer_norm_eps: float
    weights_file: str
    image_processor: dict | None  # a CLIPImageProcessor's settings; None: none saved


CASES = {
    # As FashionCLIP: quick_gelu, a config from before transformers' eos fix, padded with eos.
    "fashion-clip-like": Case("quick_gelu", LEGACY_EOS_TOKEN_ID, pad_id=EOS_ID, layer_norm_eps=1e-5,
                              weights_file="model.safetensors",
                              image_processor={"image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.25, 0.3],
                                               "resample": 2}),
    # gelu, pooled at the first eos, padded with 0 as open_clip's tokenizer does; an eps
    # far from open_clip's default, so dropping it shows; a .bin with saved position ids.
    "gelu-bin": Case("gelu", EOS_ID, pad_id=0, layer_norm_eps=1e-3, weights_file="pytorch_model.bin",
                     image_processor=None),
}


def save_hf_clip(folder, case: Case, seed: int = 0):
    """A tiny random transformers CLIPModel saved in `folder` as `case` says; returns it."""
    from safetensors.torch import load_file
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    common = {"hidden_act": case.hidden_act, "layer_norm_eps": case.layer_norm_eps, "num_hidden_layers": 2}
    config = CLIPConfig(
        text_config={**common, "vocab_size": VOCAB_SIZE, "hidden_size": 32, "intermediate_size": 64,
                     "num_attention_heads": 4, "max_position_embeddings": CONTEXT_LENGTH,
                     "bos_token_id": BOS_ID, "eos_token_id": case.eos_token_id, "pad_token_id": case.pad_id},
        vision_config={**common, "hidden_size": 48, "intermediate_size": 96, "num_attention_heads": 3,
                       "image_size": IMAGE_SIZE, "patch_size": 8},
        projection_dim=24, logit_scale_init_value=3.0)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        # transformers starts norms at 1/0 and biases at 0: perturbed, a swapped or dropped one shows.
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    model.save_pretrained(folder)
    if case.weights_file == "pytorch_model.bin":
        state_dict = load_file(folder / "model.safetensors")
        state_dict["vision_model.embeddings.position_ids"] = torch.arange((IMAGE_SIZE // 8) ** 2 + 1)[None]
        state_dict["text_model.embeddings.position_ids"] = torch.arange(CONTEXT_LENGTH)[None]
        torch.save(state_dict, folder / case.weights_file)
        (folder / "model.safetensors").unlink()
    if case.image_processor is not None:
        CLIPImageProcessor(**case.image_processor).save_pretrained(folder)
    return model


def token_ids(pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of texts of WORD_COUNTS words, as a tokenizer pads them."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.full((len(WORD_COUNTS), CONTEXT_LENGTH), pad_id)
    mask = torch.zeros_like(ids)
    for row, words in enumerate(WORD_COUNTS):
        ids[row, 0] = BOS_ID
        ids[row, 1:words + 1] = torch.randint(1, BOS_ID, (words,), generator=generator)
        ids[row, words + 1] = EOS_ID
        mask[row, :words + 2] = 1
    return ids, mask


@pytest.fixture(scope="module", params=list(CASES))
def converted(request, tmp_path_factory):
    """(case, transformers model, converted open_clip model, its validation transform)."""
    import open_clip

    case = CASES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    hf_model = save_hf_clip(root / "hf", case)
    out = convert_hf_clip(str(root / "hf"), root / "open_clip")
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + str(out))
    return case, hf_model, model.eval(), preprocess


def max_abs_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def test_converted_model_embeds_images_as_transformers_does(converted):
    _, hf_model, model, _ = converted
    pixels = torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = hf_model.get_image_features(pixel_values=pixels).pooler_output
        assert max_abs_difference(model.encode_image(pixels), expected) < TOLERANCE


def test_converted_model_embeds_padded_texts_of_any_length_as_transformers_does(converted):
    case, hf_model, model, _ = converted
    ids, mask = token_ids(case.pad_id)
    with torch.no_grad():
        expected = hf_model.get_text_features(input_ids=ids, attention_mask=mask).pooler_output
        assert max_abs_difference(model.encode_text(ids), expected) < TOLERANCE
    assert model.logit_scale.item() == hf_model.logit_scale.item()


def test_preprocessing_follows_the_image_processor_or_openai_defaults(converted):
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    case, _, model, preprocess = converted
    processor = case.image_processor or {"image_mean": OPENAI_DATASET_MEAN, "image_std": OPENAI_DATASET_STD}
    normalize = preprocess.transforms[-1]
    assert tuple(normalize.mean) == tuple(processor["image_mean"])
    assert tuple(normalize.std) == tuple(processor["image_std"])
    assert model.visual.preprocess_cfg["interpolation"] == ("bilinear" if case.image_processor else "bicubic")
    assert model.visual.preprocess_cfg["size"] == (IMAGE_SIZE, IMAGE_SIZE)


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source") / "hf"
    save_hf_clip(folder, CASES["fashion-clip-like"])
    return folder


def test_a_config_of_another_architecture_is_refused(tmp_path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConversionError, match="'bert' model, not a transformers CLIPModel"):
        convert_hf_clip(str(tmp_path / "bert"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tensors_the_mapping_does_not_know_are_refused_by_name(hf_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    source = tmp_path / "hf"
    source.mkdir()
    (source / "config.json").write_bytes((hf_folder / "config.json").read_bytes())
    state_dict = load_file(hf_folder / "model.safetensors")
    state_dict["vision_model.extra_head.weight"] = torch.zeros(2)
    del state_dict["text_model.encoder.layers.1.self_attn.k_proj.bias"]
    save_file(state_dict, source / "model.safetensors")
    with pytest.raises(ConversionError) as refused:
        convert_hf_clip(str(source), tmp_path / "out")
    assert "vision_model.extra_head.weight" in str(refused.value)
    assert "text_model.encoder.layers.1.self_attn.k_proj.bias" in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # nothing written, no staging left


def test_a_folder_in_use_is_replaced_only_when_asked_and_then_whole(hf_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConversionError, match="not empty"):
        convert_hf_clip(str(hf_folder), out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert convert_hf_clip(str(hf_folder), out, overwrite=True) == out.resolve()
    assert sorted(p.name for p in out.iterdir()) == ["open_clip_config.json", "open_clip_model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging or retired folder left
    empty = tmp_path / "empty"
    empty.mkdir()
    convert_hf_clip(str(hf_folder), empty)  # an empty folder is no one's work
    assert (empty / "open_clip_config.json").is_file()


def test_a_repo_that_cannot_be_downloaded_is_named(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConversionError, match="hub repo 'nobody/no-such-clip' failed"):
        convert_hf_clip("nobody/no-such-clip", tmp_path / "out")


CHECKPOINT_LAYOUTS = {
    "openfashionclip": lambda state_dict: {"CLIP": state_dict, "epoch": 3},
    "open_clip_train": lambda state_dict: {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state_dict.items()}},
    "plain": lambda state_dict: state_dict,
}


@pytest.mark.parametrize("layout", list(CHECKPOINT_LAYOUTS))
def test_a_checkpoint_state_dict_loads_into_an_equal_model(layout, tmp_path):
    import open_clip

    register_model_configs()
    torch.manual_seed(0)
    saved = open_clip.create_model(TINY_MODEL).state_dict()
    torch.save(CHECKPOINT_LAYOUTS[layout](saved), tmp_path / "finetuned.pt")
    torch.manual_seed(1)
    model = open_clip.create_model(TINY_MODEL)
    model.load_state_dict(state_dict_from_checkpoint(tmp_path / "finetuned.pt"))
    loaded = model.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


def test_a_file_without_a_state_dict_is_refused(tmp_path):
    torch.save({"epoch": 3, "weights": [1, 2]}, tmp_path / "odd.pt")
    with pytest.raises(ConversionError, match="no state dict found"):
        state_dict_from_checkpoint(tmp_path / "odd.pt")
