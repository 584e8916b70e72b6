"""Checks on `finetuned_clip`. The checkpoint must be usable by evaluation (blocking:
a broken file would fail every downstream asset), and its held-out recall should beat
chance (a warning: a tiny demo run may not, a real run that doesn't has diverged)."""

import dagster as dg

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.finetune.assets import finetuned_clip
from clipshoe_pipeline.training.run import SELECTION_NAME

LINEAGE_KEYS = ("model", "model_config", "weights", "data", "code")


def _latest(catalog: CatalogDB) -> dict | None:
    rows = catalog.query("SELECT * FROM model_checkpoints ORDER BY created_at DESC LIMIT 1")
    return rows[0] if rows else None


def _saved(checkpoint: str) -> dict:
    import torch  # here, not at the top: the code location loads without torch

    return torch.load(checkpoint, map_location="cpu", weights_only=True)


@dg.asset_check(asset=finetuned_clip, blocking=True)
def finetuned_clip_checkpoint_loads(catalog: CatalogDB) -> dg.AssetCheckResult:
    """The newest registered checkpoint opens with torch's safe loader (weights only,
    as open_clip loads it) and carries its lineage."""
    latest = _latest(catalog)
    if latest is None:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "no checkpoint registered"})
    saved = _saved(latest["checkpoint"])
    missing = [key for key in LINEAGE_KEYS if key not in saved.get("clipshoe_lineage", {})]
    return dg.AssetCheckResult(passed="state_dict" in saved and not missing, metadata={
        "checkpoint": dg.MetadataValue.path(latest["checkpoint"]), "tensors": len(saved.get("state_dict", {})),
        "missing_lineage": ", ".join(missing) or "none"})


@dg.asset_check(asset=finetuned_clip, blocking=False)
def finetuned_clip_recall_above_chance(catalog: CatalogDB) -> dg.AssetCheckResult:
    """Validation mean recall (R@1/5/10, both directions) above what random ranking gets."""
    latest = _latest(catalog)
    if latest is None:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "no checkpoint registered"})
    saved = _saved(latest["checkpoint"])
    val_pairs = saved["clipshoe_lineage"]["data"]["val_pairs"]
    chance = sum(min(k / val_pairs, 1.0) for k in (1, 5, 10)) / 3
    return dg.AssetCheckResult(
        passed=latest[SELECTION_NAME] > chance, severity=dg.AssetCheckSeverity.WARN,
        metadata={"val_mean_recall": latest[SELECTION_NAME], "chance": chance, "val_pairs": val_pairs})
