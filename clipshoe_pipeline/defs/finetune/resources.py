"""How the fine-tuning asset starts the trainer: a Pipes subprocess on this machine.

The trainer is `python -m clipshoe_pipeline.training.launch RUN_DIR`, or under
`torchrun --standalone --nproc_per_node N` for several GPUs (open_clip's own DDP).
It runs as a child process because CUDA state, DDP process groups and data loader
workers should not live in the Dagster run worker, and through Pipes so its epoch
records and open_clip's progress lines stream into the run's log.

For a GPU host other than this one, swap the client: the same command runs in a
container through dagster-k8s's PipesK8sClient (README, "Training on a GPU host").
"""

from __future__ import annotations

import sys

import dagster as dg
from pydantic import Field

from clipshoe_common import PROJECT_ROOT
from clipshoe_pipeline.training.run import RunDir, RunSpec

LAUNCHER = "clipshoe_pipeline.training.launch"


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def trainer_command(run: RunDir, gpus: int, python: str = sys.executable) -> list[str]:
    launch = ["-m", LAUNCHER, str(run.path)]
    if gpus > 1:
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", *launch]
    return [python, *launch]


def trainer_env(spec: RunSpec) -> dict[str, str]:
    env = {"PYTHONUNBUFFERED": "1", **spec.env}
    if spec.gpus == 0:
        env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU run must not grab a GPU that happens to be there
    return env


class TrainerFailed(RuntimeError):
    """The trainer subprocess could not start or exited non-zero."""


class ClipTrainer(dg.ConfigurableResource):
    """Runs one training run to its end (or resumes it) as a Pipes subprocess."""

    python: str = Field(default_factory=lambda: sys.executable,
                        description="The interpreter with torch and open_clip_torch installed.")

    def train(self, context: dg.AssetExecutionContext, run: RunDir, spec: RunSpec) -> None:
        command = trainer_command(run, spec.gpus, self.python)
        context.log.info(f"training: {' '.join(command)}")
        # Pipes reports a non-zero exit with an error class dagster does not export;
        # an interrupted run raises a BaseException, which passes through untouched.
        try:
            dg.PipesSubprocessClient(cwd=str(PROJECT_ROOT), env=trainer_env(spec)).run(
                command=command, context=context)
        except Exception as error:
            raise TrainerFailed(f"{type(error).__name__}: {error}") from error


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"trainer": ClipTrainer()})
