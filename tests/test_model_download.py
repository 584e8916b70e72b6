"""Weights fetched when there is network: open_clip tags, `hf-hub:` models and the
transformers text tower of the multilingual default, downloaded from a loopback
Hugging Face hub on first use, refused clearly offline, resumed, and checked."""

from __future__ import annotations

import json
import os

import pytest

from clipshoe_pipeline.cli import main
from clipshoe_pipeline.training.models import BASE_MODEL, BASE_PRETRAINED, load_clip
from clipshoe_pipeline.training.tiny_text_tower import ensure_text_tower
from clipshoe_pipeline.training.weights import MissingWeights, resolve_weights
from tests.builders import open_clip_folder
from tests.hub_server import redirect_huggingface_hub, running_hub, set_hub_offline

BASE_REPO = "laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k"
WEIGHTS = "open_clip_model.safetensors"
MIB = 1 << 20


def text_tower_repo() -> dict[str, bytes]:
    """A transformers text tower's config and tokenizer, as the xlm-roberta-base repo holds them."""
    folder = ensure_text_tower()
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.name != "model.safetensors"}


@pytest.fixture
def hub_cache(monkeypatch, tmp_path):
    def start(repos):
        hub = running_hub(repos)
        server = hub.__enter__()
        started.append(hub)
        return server, redirect_huggingface_hub(monkeypatch, server.url, tmp_path / "hf_home")

    started = []
    yield start
    for hub in started:
        hub.__exit__(None, None, None)


def test_the_default_model_is_downloaded_on_first_use_with_its_text_tower(hub_cache):
    weights_bytes = os.urandom(2 * MIB)
    hub, cache = hub_cache({BASE_REPO: {WEIGHTS: weights_bytes}, "xlm-roberta-base": text_tower_repo()})

    source = resolve_weights(BASE_MODEL, BASE_PRETRAINED)

    assert source.kind == "tag" and source.value == BASE_PRETRAINED
    assert open(source.file, "rb").read() == weights_bytes and str(cache) in source.file
    assert [r.method for r in hub.file_requests(WEIGHTS)][-1] == "GET"
    assert any(r.filename == "tokenizer.json" and r.method == "GET" for r in hub.requests)
    asked = len(hub.requests)
    assert resolve_weights(BASE_MODEL, BASE_PRETRAINED).file == source.file  # cached now: nothing asked again
    assert len(hub.requests) == asked


def test_offline_refuses_with_the_way_to_fetch_and_serves_what_is_cached(hub_cache, monkeypatch):
    hub_cache({BASE_REPO: {WEIGHTS: b"x" * 20_000}, "xlm-roberta-base": text_tower_repo()})
    set_hub_offline(monkeypatch)
    with pytest.raises(MissingWeights, match="HF_HUB_OFFLINE=1 forbids.*clipshoe models fetch xlm-roberta-base"):
        resolve_weights(BASE_MODEL, BASE_PRETRAINED)
    set_hub_offline(monkeypatch, offline=False)
    fetched = resolve_weights(BASE_MODEL, BASE_PRETRAINED).file
    set_hub_offline(monkeypatch)
    assert resolve_weights(BASE_MODEL, BASE_PRETRAINED).file == fetched


def test_a_dropped_connection_is_resumed_with_a_range_request(hub_cache):
    weights_bytes = os.urandom(12 * MIB)
    hub, _ = hub_cache({BASE_REPO: {WEIGHTS: weights_bytes}, "xlm-roberta-base": text_tower_repo()})
    hub.cut_after(WEIGHTS, 11 * MIB)

    source = resolve_weights(BASE_MODEL, BASE_PRETRAINED)

    assert open(source.file, "rb").read() == weights_bytes
    assert [r.range for r in hub.file_requests(WEIGHTS) if r.method == "GET"] == [None, f"bytes={10 * MIB}-"]


def test_a_corrupt_download_is_refused_and_removed_from_the_cache(hub_cache):
    hub, cache = hub_cache({BASE_REPO: {WEIGHTS: os.urandom(MIB)}, "xlm-roberta-base": text_tower_repo()})
    hub.corrupt(WEIGHTS)

    with pytest.raises(MissingWeights, match="could not be downloaded.*sha256"):
        resolve_weights(BASE_MODEL, BASE_PRETRAINED)
    blobs = list(cache.glob(f"models--{BASE_REPO.replace('/', '--')}/blobs/*"))
    assert blobs == []


def test_a_hub_model_is_fetched_listed_and_loaded_offline_afterwards(hub_cache, monkeypatch, tmp_path, capsys):
    import torch

    model = open_clip_folder(tmp_path / "repo")
    files = {path.name: path.read_bytes() for path in (tmp_path / "repo").iterdir()}
    hub_cache({"clipshoe-test/tiny": files})

    assert main(["models", "fetch", "hf-hub:clipshoe-test/tiny"]) == 0
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "clipshoe-test/tiny" in listed
    set_hub_offline(monkeypatch)
    loaded, _, _ = load_clip("hf-hub:clipshoe-test/tiny", None)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_fetch_of_an_unknown_repository_fails_clearly(hub_cache, capsys):
    hub_cache({})
    assert main(["models", "fetch", "hf-hub:nobody/nothing"]) == 1
    assert "hf-hub:nobody/nothing" in capsys.readouterr().err


def test_the_tiny_text_tower_config_names_its_folder_absolutely():
    from clipshoe_pipeline.training.tiny_text_tower import model_config

    config = model_config()["text_cfg"]
    assert os.path.isabs(config["hf_model_name"])
    assert json.loads((ensure_text_tower() / "config.json").read_text())["model_type"] == "xlm-roberta"


def test_an_openfashionclip_checkpoint_loads_as_a_peer(tmp_path):
    """OpenFashionCLIP publishes a torch file with the state dict under 'CLIP'."""
    import torch

    from clipshoe_pipeline.training.models import TINY_MODEL

    model = open_clip_folder(tmp_path / "repo")
    torch.save({"CLIP": model.state_dict()}, tmp_path / "finetuned_clip.pt")
    weights = resolve_weights(TINY_MODEL, str(tmp_path / "finetuned_clip.pt"))
    loaded, _, _ = load_clip(TINY_MODEL, weights.value)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
