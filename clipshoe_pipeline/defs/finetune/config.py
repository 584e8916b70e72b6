"""The fine-tuning run config (the Launchpad's form) and how it becomes open_clip flags.

Defaults follow the fine-tuning practice of the peer models (FashionCLIP, open_clip):
a learning rate two orders below open_clip's from-scratch default (5e-4 would wipe
out the pretrained features), weight decay 0.1, a short warm-up, few epochs, bf16
autocast on GPUs. FashionCLIP used lr 1e-6 for ViT-L-14; 5e-6 suits ViT-B-32.
The default base reads Vietnamese through a 12-layer XLM-RoBERTa text tower trained on
100+ languages, which a few epochs of shop captions would wear down (catastrophic
forgetting, the failure FashionCLIP's model card warns of, and the trade-off its issue
#25 discusses): so the text tower is locked except its top 4 layers (and projection),
which adapt to shop vocabulary; the image tower trains whole. A model trained from
random weights (the tiny CPU ones) has nothing to keep and sets lock_text off.
Speed settings (torch.compile, fused AdamW) change how fast a run goes, not what it
learns, so they are not part of a run's identity: changing them resumes the same run.
"""

from typing import Literal

import dagster as dg
from pydantic import Field, model_validator

from clipshoe_pipeline.defs.dataclass_config import mirror
from clipshoe_pipeline.training.export import ExportConfig
from clipshoe_pipeline.training.models import BASE_MODEL, BASE_PRETRAINED, SCHEMA_PREFIXES

Precision = Literal["auto", "amp_bf16", "amp", "bf16", "fp16", "pure_bf16", "pure_fp16", "fp32"]
# torch.compile modes; those with CUDA graphs: one GPU (DDP's hooks run outside graphs), no accumulation
CompileMode = Literal["auto", "off", "default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune"]
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
ExportFields = mirror(ExportConfig, exclude=("seed",))


class FinetuneConfig(dg.Config):
    """What to train and how; every field is an open_clip_train flag or the data export's."""

    model: str = Field(default=BASE_MODEL, description="open_clip model config name (or clipshoe-tiny / clipshoe-tiny-hf for CPU tests).")
    pretrained: str | None = Field(
        default=BASE_PRETRAINED,
        description="open_clip pretrained tag (from the local cache) or a checkpoint path; empty: see allow_random_init.")
    allow_random_init: bool = Field(
        default=False, description="Train from random weights when `pretrained` is empty (labelled in metadata).")
    epochs: int = Field(default=5, ge=1)
    batch_size: int = Field(default=256, ge=2, description="Per GPU (per process): contrastive batches need 2+.")
    lr: float = Field(default=5e-6, gt=0, description="Peak learning rate after warm-up (cosine decay).")
    wd: float = Field(default=0.1, ge=0)
    warmup: int = Field(default=100, ge=0, description="Warm-up steps.")
    precision: Precision = Field(default="auto", description="auto: amp_bf16 on GPUs, fp32 on the CPU.")
    accum_freq: int = Field(default=1, ge=1, description="Gradient accumulation (open_clip's feature cache).")
    lock_image: bool = False
    lock_image_unlocked_groups: int = Field(default=0, ge=0)
    lock_text: bool = Field(default=True, description="Freeze the text tower but its top lock_text_unlocked_layers.")
    lock_text_unlocked_layers: int = Field(default=4, ge=0, description="Top text layers left to train (with lock_text).")
    grad_checkpointing: bool = False
    workers: int = Field(default=4, ge=0, description="Data loader processes per GPU.")
    seed: int = 0
    gpus: int | None = Field(default=None, ge=0, description="Processes (torchrun) on GPUs; None: all visible; 0: CPU.")
    export: ExportFields = Field(
        default=ExportFields(), description="How the curated pairs are written for the trainer and which are held "
        "out to pick the best epoch (training.export.ExportConfig; its seed is `seed`).")
    log_every_n_steps: int = Field(default=50, ge=1)
    torch_compile: CompileMode = Field(
        default="auto", description="open_clip's --torchcompile with this torch.compile mode; auto: default mode "
        "on GPUs (+37% samples/s for ViT-B-32 on an H100, ~1 min to compile), off on the CPU.")
    fused_adamw: bool = Field(
        default=True, description="AdamW with fused=True: one kernel per step instead of per-tensor loops "
        "(open_clip's own optimizer otherwise; timm optimizers from --opt are left as they are).")
    extra_args: list[str] = Field(default_factory=list, description="Further open_clip_train flags, verbatim.")

    @model_validator(mode="after")
    def _consistent(self) -> "FinetuneConfig":
        if self.lock_image_unlocked_groups and not self.lock_image:
            raise ValueError("lock_image_unlocked_groups needs lock_image")
        if self.pretrained and self.model.startswith(SCHEMA_PREFIXES):
            raise ValueError(f"open_clip's trainer takes the weights of {self.model} from its source and ignores "
                             "--pretrained: leave `pretrained` empty (to continue from a checkpoint, name the "
                             "checkpoint's open_clip config as `model`, or put the weights in a local-dir: folder)")
        flags = {arg.split("=")[0] for arg in self.extra_args}  # argparse also takes --flag=value
        for flag in ("--logs", "--name", "--resume", "--train-data", "--val-data", "--pretrained", "--torchcompile",
                     "--model", "--dataset-type", "--train-num-samples"):
            if flag in flags:
                raise ValueError(f"{flag} is set by the asset, not through extra_args")
        if any(arg.split("=")[-1].startswith("timm/") for arg in self.extra_args) and "--eps" not in flags:
            # open_clip fills in eps only for its own AdamW and hands timm eps=None, which fails.
            raise ValueError("a timm optimizer (--opt timm/...) needs --eps in extra_args, e.g. 1e-6")
        return self

    def export_config(self) -> ExportConfig:
        return self.export.build(seed=self.seed)

    def compile_mode(self, gpus: int) -> str | None:
        """The torch.compile mode for a run on `gpus` GPUs (0: CPU); None: eager."""
        mode = self.torch_compile if self.torch_compile != "auto" else ("default" if gpus else "off")
        if mode in CUDA_GRAPH_MODES and (gpus > 1 or self.accum_freq > 1):
            # Accumulation keeps the outputs of earlier forwards, which a graph replay overwrites.
            raise ValueError(f"torch_compile={mode!r} records CUDA graphs, which this asset runs on one GPU "
                             f"without accumulation only ({gpus} GPUs, accum_freq {self.accum_freq}): "
                             "use 'default' or 'max-autotune-no-cudagraphs'")
        return None if mode == "off" else mode

    def trainer_args(self, *, gpus: int, pretrained: str | None) -> list[str]:
        """open_clip_train flags for this config on `gpus` GPUs (0: CPU)."""
        precision = self.precision if self.precision != "auto" else ("amp_bf16" if gpus else "fp32")
        args = ["--model", self.model, "--epochs", str(self.epochs), "--batch-size", str(self.batch_size),
                "--lr", str(self.lr), "--wd", str(self.wd), "--warmup", str(self.warmup),
                "--precision", precision, "--accum-freq", str(self.accum_freq), "--workers", str(self.workers),
                "--seed", str(self.seed), "--log-every-n-steps", str(self.log_every_n_steps),
                "--device", "cuda" if gpus else "cpu"]
        if pretrained:
            args += ["--pretrained", pretrained]
        if self.lock_image:
            args += ["--lock-image", "--lock-image-unlocked-groups", str(self.lock_image_unlocked_groups)]
        if self.lock_text:
            # open_clip's own CLIP text tower refuses to lock without freezing its LayerNorms
            # (the flag's default is off); a locked layer is frozen whole in any tower.
            args += ["--lock-text", "--lock-text-unlocked-layers", str(self.lock_text_unlocked_layers),
                     "--lock-text-freeze-layer-norm"]
        if self.grad_checkpointing:
            args.append("--grad-checkpointing")
        if gpus > 1:
            args += ["--local-loss", "--gather-with-grad"]  # the anchors' DDP setting: exact loss, less memory
        return args + list(self.extra_args)
