"""One fine-tuning run on disk: its spec (what to train), its epoch records and its best checkpoint.

The Dagster asset writes `spec.json` into a run folder and starts the launcher
(clipshoe_pipeline.training.launch) on it; the launcher drives open_clip's trainer
and writes `epochs.jsonl` (one record per finished epoch) and `best.pt`. The asset
reads both back for its metadata. The folder's name is a hash of everything that
decides the result (trainer flags, weights, data snapshot), so asking for the same
training again finds the same folder and resumes it (a finished run resumes into
nothing and costs seconds), while any change starts a fresh one.

Layout (open_clip's own under `<runs>/<name>/`, ours beside it):
    spec.json, lineage.json, epochs.jsonl, best.pt, out.log (open_clip's log), console.log,
    checkpoints/epoch_N.pt (open_clip's resumable train state, latest only)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clipshoe_common.files import write_json_atomic

# open_clip's validation metrics that select the best checkpoint: the six held-out
# recalls, averaged (retrieval is what the model is for; loss alone picks overfit epochs).
SELECTION_METRICS = tuple(f"{direction}_R@{k}" for direction in ("image_to_text", "text_to_image")
                          for k in (1, 5, 10))
SELECTION_NAME = "val_mean_recall"
SPEC_FILE, EPOCHS_FILE, BEST_FILE, LINEAGE_FILE = "spec.json", "epochs.jsonl", "best.pt", "lineage.json"


@dataclass(frozen=True)
class RunSpec:
    model: str
    trainer_args: list[str]  # open_clip_train.main's argv, without --logs/--name/--resume
    lineage: dict[str, Any]  # model config, weights, data snapshot, code version
    gpus: int = 0  # 0: no GPU (the CPU); N >= 1: torchrun with N processes
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the trainer
    # Speed, not outcome (left out of the name): torch.compile mode (None: eager), fused AdamW.
    compile_mode: str | None = None
    fused_adamw: bool = False

    @property
    def name(self) -> str:
        identity = json.dumps({"model": self.model, "args": self.trainer_args, "gpus": self.gpus,
                               "weights": self.lineage.get("weights"), "data": self.lineage.get("data")},
                              sort_keys=True)
        # A folder name: hf-hub:org/repo and local-dir:/path models must not nest or escape it.
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model.rsplit("/", 1)[-1]).strip("._") or "model"
        return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def runs_root(self) -> Path:
        return self.path.parent

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best(self) -> Path:
        return self.path / BEST_FILE

    @property
    def trainer_log(self) -> Path:
        return self.path / "out.log"  # open_clip's own log

    @property
    def console_log(self) -> Path:
        return self.path / "console.log"  # the trainer's stdout/stderr when run under Dagster

    def write_spec(self, spec: RunSpec) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path / SPEC_FILE, asdict(spec))
        write_json_atomic(self.path / LINEAGE_FILE, spec.lineage)
        return self.path / SPEC_FILE

    def read_spec(self) -> RunSpec:
        return RunSpec(**json.loads((self.path / SPEC_FILE).read_text()))

    def trainer_argv(self, spec: RunSpec) -> list[str]:
        """The complete open_clip argv: the spec's flags plus where to keep state, and
        `--resume latest`, which continues from the newest checkpoint if there is one."""
        compile_flag = ["--torchcompile"] if spec.compile_mode else []
        return ["--save-frequency", "1", "--delete-previous-checkpoint", *spec.trainer_args,  # argparse: last wins
                *compile_flag, "--logs", str(self.runs_root), "--name", self.path.name, "--resume", "latest"]

    def latest_checkpoint_epoch(self) -> int | None:
        epochs = [_epoch_of(p) for p in self.checkpoints.glob("epoch_*.pt")]
        return max((e for e in epochs if e is not None), default=None)

    def append_epoch(self, record: Mapping[str, Any]) -> None:
        with open(self.path / EPOCHS_FILE, "a", encoding="utf-8") as sink:
            sink.write(json.dumps(record, sort_keys=True) + "\n")
            sink.flush()
            os.fsync(sink.fileno())

    def epochs(self) -> list[dict[str, Any]]:
        """One record per epoch, in order; a redone epoch (a crash after its record was
        written but before its checkpoint was) keeps its latest record."""
        source = self.path / EPOCHS_FILE
        if not source.exists():
            return []
        by_epoch = {}
        for line in source.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                by_epoch[record["epoch"]] = record
        return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def selection_score(val_metrics: Mapping[str, float]) -> float | None:
    values = [val_metrics.get(name) for name in SELECTION_METRICS]
    return None if any(v is None for v in values) else sum(values) / len(values)


def best_epoch(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The record with the highest selection score (the earliest of equals)."""
    scored = [r for r in records if r.get(SELECTION_NAME) is not None]
    return max(scored, key=lambda r: (r[SELECTION_NAME], -r["epoch"]), default=None)


def _epoch_of(path: Path) -> int | None:
    suffix = path.stem.removeprefix("epoch_")
    return int(suffix) if suffix.isdigit() else None
