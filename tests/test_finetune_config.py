"""Fine-tuning config: validation, the open_clip flags it becomes, how the trainer is
started, and where the starting weights come from (without network)."""

from __future__ import annotations

import inspect

import pydantic
import pytest
import torch

from clipshoe_pipeline.defs.finetune.config import FinetuneConfig
from clipshoe_pipeline.defs.finetune.resources import LAUNCHER, trainer_command, trainer_env
from clipshoe_pipeline.training.launch import HOOKED_TRAINER_NAMES, speed_settings
from clipshoe_pipeline.training.models import TINY_MODEL, load_clip
from clipshoe_pipeline.training.run import RunDir, RunSpec, best_epoch
from clipshoe_pipeline.training.weights import RANDOM_INIT, MissingWeights, resolve_weights
from tests.builders import open_clip_folder


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_defaults_follow_fine_tuning_practice_and_map_to_open_clip_flags():
    config = FinetuneConfig()
    gpu = config.trainer_args(gpus=1, pretrained="laion5b_s13b_b90k")
    assert (flag(gpu, "--model"), flag(gpu, "--precision"), flag(gpu, "--device")) == (
        "xlm-roberta-base-ViT-B-32", "amp_bf16", "cuda")
    assert float(flag(gpu, "--lr")) <= 1e-5 and flag(gpu, "--wd") == "0.1"
    assert flag(gpu, "--pretrained") == "laion5b_s13b_b90k" and "--local-loss" not in gpu
    # The multilingual text tower's lower layers stay as pretrained: they are what reads Vietnamese.
    assert flag(gpu, "--lock-text-unlocked-layers") == "4" and "--lock-image" not in gpu
    cpu = config.trainer_args(gpus=0, pretrained=None)
    assert (flag(cpu, "--precision"), flag(cpu, "--device")) == ("fp32", "cpu") and "--pretrained" not in cpu
    ddp = FinetuneConfig(lock_image=True, lock_image_unlocked_groups=2, grad_checkpointing=True,
                         extra_args=["--opt", "timm/adamw", "--eps", "1e-6"]).trainer_args(gpus=8, pretrained="x")
    assert {"--local-loss", "--gather-with-grad", "--lock-image", "--grad-checkpointing", "--opt"} <= set(ddp)
    assert flag(ddp, "--lock-image-unlocked-groups") == "2"
    text_locked = FinetuneConfig(lock_text=True, lock_text_unlocked_layers=1).trainer_args(gpus=1, pretrained="x")
    assert "--lock-text-freeze-layer-norm" in text_locked  # open_clip's CLIP refuses lock_text without it


@pytest.mark.parametrize("fields, message", [
    ({"lr": 0}, "greater than 0"),
    ({"batch_size": 1}, "greater than or equal to 2"),
    ({"epochs": 0}, "greater than or equal to 1"),
    ({"precision": "fp8"}, "precision"),
    ({"extra_args": ["--resume", "x"]}, "set by the asset"),
    ({"extra_args": ["--torchcompile"]}, "set by the asset"),
    ({"torch_compile": "fastest"}, "torch_compile"),
    ({"extra_args": ["--opt", "timm/lamb"]}, "needs --eps"),
    ({"extra_args": ["--resume=x"]}, "set by the asset"),
    ({"extra_args": ["--model", "ViT-L-14"]}, "set by the asset"),
    ({"export": {"val_fraction": 1.0}}, "val_fraction must be within"),
    ({"export": {"shard_size": 0}}, "must be positive"),
])
def test_bad_configs_are_refused_before_anything_runs(fields, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        FinetuneConfig(**fields)


def test_compiled_on_gpus_eager_on_the_cpu_and_cuda_graphs_on_one_gpu_only(tmp_path):
    assert (FinetuneConfig().compile_mode(1), FinetuneConfig().compile_mode(0)) == ("default", None)
    assert FinetuneConfig(torch_compile="off").compile_mode(4) is None
    assert FinetuneConfig(torch_compile="reduce-overhead").compile_mode(1) == "reduce-overhead"
    with pytest.raises(ValueError, match="one GPU without accumulation"):
        FinetuneConfig(torch_compile="reduce-overhead").compile_mode(2)
    with pytest.raises(ValueError, match="accum_freq 2"):
        FinetuneConfig(torch_compile="max-autotune", accum_freq=2).compile_mode(1)
    run = RunDir(tmp_path / "run")
    assert "--torchcompile" in run.trainer_argv(RunSpec("m", [], {}, compile_mode="default"))
    assert "--torchcompile" not in run.trainer_argv(RunSpec("m", [], {}))
    # Speed settings resume the same run: they change how fast it goes, not what it learns.
    assert RunSpec("m", [], {}, compile_mode="default", fused_adamw=True).name == RunSpec("m", [], {}).name


def test_the_open_clip_names_we_hook_still_exist_with_the_arguments_we_pass():
    import open_clip.factory
    import open_clip_train.main as trainer_main
    from torch._inductor import list_mode_options

    for name in HOOKED_TRAINER_NAMES:
        assert hasattr(trainer_main, name), f"open_clip_train.main.{name} is gone: update training/launch.py"
    assert list(inspect.signature(trainer_main.train_one_epoch).parameters)[:9] == [
        "model", "data", "loss", "epoch", "optimizer", "scaler", "scheduler", "dist_model", "args"]
    assert list(inspect.signature(trainer_main.evaluate).parameters)[:4] == ["model", "data", "epoch", "args"]
    assert trainer_main.optim is torch.optim  # main() builds optim.AdamW: what speed_settings replaces
    assert callable(open_clip.factory._find_checkpoint_in_dir)  # training/weights.py picks a file as open_clip does
    assert list_mode_options("reduce-overhead")  # speed_settings patches inductor with a mode's options


def test_speed_settings_reach_the_trainer_and_are_undone_after_it():
    import types

    from torch._inductor import config as inductor_config

    trainer_main = types.SimpleNamespace(optim=torch.optim)
    spec = RunSpec("m", [], {}, compile_mode="max-autotune-no-cudagraphs", fused_adamw=True)
    with speed_settings(trainer_main, spec):
        optimizer = trainer_main.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=0.1)
        assert optimizer.defaults["fused"] is True and trainer_main.optim.SGD is torch.optim.SGD
        assert inductor_config.max_autotune is True
    assert trainer_main.optim is torch.optim and inductor_config.max_autotune is False
    with speed_settings(trainer_main, RunSpec("m", [], {})):
        assert not trainer_main.optim.AdamW([torch.nn.Parameter(torch.ones(3))]).defaults["fused"]
        assert inductor_config.max_autotune is False


@pytest.mark.parametrize("saved_fused, resumed_fused", [(False, True), (True, False)])
def test_a_resumed_optimizer_keeps_the_kernel_asked_for_not_the_checkpoints(saved_fused, resumed_fused):
    """Speed settings may change between a run and its resume; with AMP's GradScaler a
    non-fused checkpoint in a fused optimizer would fail at the first step."""
    import types

    def train_step(optimizer, parameter, scaler):
        optimizer.zero_grad()
        scaler.scale((parameter ** 2).sum()).backward()
        scaler.step(optimizer)
        scaler.update()

    trainer_main = types.SimpleNamespace(optim=torch.optim)
    parameter = torch.nn.Parameter(torch.ones(4))
    with speed_settings(trainer_main, RunSpec("m", [], {}, fused_adamw=saved_fused)):
        saved = trainer_main.optim.AdamW([parameter], lr=0.1)
        train_step(saved, parameter, torch.amp.GradScaler("cpu"))
    with speed_settings(trainer_main, RunSpec("m", [], {}, fused_adamw=resumed_fused)):
        resumed = trainer_main.optim.AdamW([parameter], lr=0.1)
        resumed.load_state_dict(saved.state_dict())
        train_step(resumed, parameter, torch.amp.GradScaler("cpu"))
    assert bool(resumed.param_groups[0]["fused"]) is resumed_fused and resumed.state[parameter]["step"] == 2
    assert torch.all(parameter < 1)


def test_one_gpu_runs_plain_python_several_run_torchrun_and_the_cpu_hides_gpus(tmp_path):
    run = RunDir(tmp_path / "run")
    assert trainer_command(run, 1, "py") == ["py", "-m", LAUNCHER, str(run.path)]
    assert trainer_command(run, 4, "py")[:5] == ["py", "-m", "torch.distributed.run", "--standalone",
                                                 "--nproc_per_node=4"]
    assert trainer_env(RunSpec("m", [], {}, gpus=0))["CUDA_VISIBLE_DEVICES"] == ""
    assert "CUDA_VISIBLE_DEVICES" not in trainer_env(RunSpec("m", [], {}, gpus=2))


def test_run_identity_follows_what_decides_the_result(tmp_path):
    spec = RunSpec("m", ["--lr", "1e-5"], {"weights": {"label": "tag: a"}, "data": {"snapshot": "s1"}})
    assert spec.name == RunSpec("m", ["--lr", "1e-5"], {"weights": {"label": "tag: a"}, "data": {"snapshot": "s1"},
                                                        "code": "other commit"}).name
    assert spec.name != RunSpec("m", ["--lr", "1e-5"], {"weights": {"label": "tag: a"},
                                                        "data": {"snapshot": "s2"}}).name
    for model, readable in (("hf-hub:Marqo/marqo-fashionCLIP", "marqo-fashionCLIP"),
                            ("local-dir:/models/a b/", "model"), ("local-dir:/m/my peer", "my_peer"), ("ViT-B-32", "ViT-B-32")):
        assert RunSpec(model, [], {}).name.startswith(readable + "-")  # one folder, inside the runs folder
    run = RunDir(tmp_path / spec.name)
    run.write_spec(spec)
    assert run.read_spec() == spec
    for record in ({"epoch": 1, "val_mean_recall": 0.2}, {"epoch": 2, "val_mean_recall": 0.5},
                   {"epoch": 2, "val_mean_recall": 0.4}, {"epoch": 3, "val_mean_recall": 0.4}):
        run.append_epoch(record)
    assert [r["epoch"] for r in run.epochs()] == [1, 2, 3]  # a redone epoch keeps its last record
    assert best_epoch(run.epochs())["epoch"] == 2  # the earliest of the best


def test_random_weights_only_when_asked_for_and_labelled():
    with pytest.raises(MissingWeights, match="allow_random_init"):
        resolve_weights(TINY_MODEL, None)
    assert resolve_weights(TINY_MODEL, None, allow_random_init=True).label == RANDOM_INIT


def test_uncached_pretrained_tags_fail_fast_saying_how_to_provide_them(tmp_path):
    with pytest.raises(MissingWeights, match="not in the local cache.*checkpoint file's path"):
        resolve_weights("ViT-B-32", "laion2b_s34b_b79k", cache_dir=str(tmp_path))
    with pytest.raises(MissingWeights, match="neither a file nor an open_clip tag"):
        resolve_weights("ViT-B-32", "no_such_tag", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown model"):
        resolve_weights("ViT-Nope", "openai")


def test_cached_tags_and_local_files_resolve_to_the_file_that_will_be_read(tmp_path):
    repo = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    weights = repo / "snapshots" / "0123abcd" / "open_clip_model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    cached = resolve_weights("ViT-B-32", "laion2b_s34b_b79k", cache_dir=str(tmp_path))
    assert (cached.kind, cached.value, cached.file) == ("tag", "laion2b_s34b_b79k", str(weights))
    local = resolve_weights("ViT-B-32", str(weights))
    assert (local.kind, local.file) == ("path", str(weights))


def test_schema_models_bring_their_weights_and_are_refused_when_these_are_not_here(tmp_path, monkeypatch):
    """hf-hub:/local-dir: models (how peers such as Marqo-FashionCLIP are named): open_clip
    would build them with random weights when the files are missing, logging a warning."""
    import huggingface_hub

    with pytest.raises(MissingWeights, match="not in the local cache and HF_HUB_OFFLINE=1 forbids"):
        resolve_weights("hf-hub:Marqo/marqo-fashionCLIP", None, cache_dir=str(tmp_path / "hf"))
    with pytest.raises(ValueError, match="can only be a checkpoint file of that model"):
        resolve_weights("hf-hub:Marqo/marqo-fashionCLIP", "openai", cache_dir=str(tmp_path / "hf"))
    with pytest.raises(MissingWeights, match="needs open_clip_config.json and a weights file"):
        resolve_weights(f"local-dir:{tmp_path}", None)
    with pytest.raises(ValueError, match="absolute path"):
        resolve_weights("local-dir:models/peer", None)
    (tmp_path / "finetuned.pt").write_bytes(b"x")
    with pytest.raises(MissingWeights, match="not in the local cache and HF_HUB_OFFLINE=1 forbids"):  # its config is needed too
        resolve_weights("hf-hub:Marqo/marqo-fashionCLIP", str(tmp_path / "finetuned.pt"), cache_dir=str(tmp_path))

    repo = tmp_path / "hf" / "models--clipshoe--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    saved = open_clip_folder(repo / "snapshots" / "0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hub = resolve_weights("hf-hub:clipshoe/tiny", None)
    assert (hub.kind, hub.value, hub.identity) == ("hf-hub", None, hub.file) and hub.file.endswith(".safetensors")
    local = resolve_weights(f"local-dir:{repo / 'snapshots' / '0123abcd'}", None)
    assert local.kind == "local-dir" and local.file == hub.file
    copied = tmp_path / "copied-repo"  # several weights files: the one open_clip will read is named
    open_clip_folder(copied, "model.safetensors")
    open_clip_folder(copied, "open_clip_pytorch_model.bin")
    assert resolve_weights(f"local-dir:{copied}", None).file == str(copied / "open_clip_pytorch_model.bin")
    for name in ("hf-hub:clipshoe/tiny", f"local-dir:{repo / 'snapshots' / '0123abcd'}"):
        loaded, _, _ = load_clip(name, None)  # what open_clip builds is the saved model, not a random one
        assert same_weights(loaded, saved)
    # A checkpoint of such a model (fine-tuned from it) is loaded over it, not ignored as open_clip would.
    with torch.no_grad():
        for parameter in saved.parameters():
            parameter.mul_(-1)
    torch.save({"state_dict": saved.state_dict()}, tmp_path / "finetuned.pt")
    checkpoint = resolve_weights("hf-hub:clipshoe/tiny", str(tmp_path / "finetuned.pt"))
    assert (checkpoint.kind, checkpoint.file) == ("path", str(tmp_path / "finetuned.pt"))
    assert same_weights(load_clip("hf-hub:clipshoe/tiny", checkpoint.value)[0], saved)
    with pytest.raises(pydantic.ValidationError, match="ignores --pretrained"):
        FinetuneConfig(model="hf-hub:clipshoe/tiny", pretrained=str(tmp_path / "finetuned.pt"))


def same_weights(model, other) -> bool:
    return all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
