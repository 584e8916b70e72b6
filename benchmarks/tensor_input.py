"""The training launcher with one device-resident batch in place of the data loader.

Used by train_throughput.py for its "tensors" case, the ceiling of a training step:
open_clip_train.main and our launcher run unchanged, but every step gets the same
batch, already on the device, so no decoding, transform, collation, pinning or
host-to-device copy is measured. The batch is the first one open_clip's synthetic
loader yields (its blank image through the model's train transform, its dummy caption
tokenized), so shapes and dtypes are what training sees.

    python benchmarks/tensor_input.py RUN_DIR      (a run folder with a synthetic-data spec)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipshoe_pipeline.training import launch  # noqa: E402


class RepeatedBatch:
    """A loader for open_clip's train_one_epoch: `num_batches` times the same batch."""

    def __init__(self, batch: tuple[torch.Tensor, ...], num_batches: int, num_samples: int):
        self.batch, self.num_batches, self.num_samples = batch, num_batches, num_samples

    def __iter__(self):
        return (self.batch for _ in range(self.num_batches))

    def __len__(self) -> int:
        return self.num_batches


def install(trainer_main) -> None:
    get_data = trainer_main.get_data

    def get_data_on_device(args, *rest, **kw):
        data = get_data(args, *rest, **kw)
        loader = data["train"].dataloader
        batch = tuple(t.to(args.device) for t in next(iter(loader)))
        data["train"].dataloader = RepeatedBatch(batch, loader.num_batches, loader.num_samples)
        return data

    trainer_main.get_data = get_data_on_device


if __name__ == "__main__":
    import open_clip_train.main as trainer_main

    install(trainer_main)
    launch.main(sys.argv[1:])
