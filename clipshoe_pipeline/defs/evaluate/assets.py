"""The evaluation asset: every model side by side on the same data and prompts.

Models: the pretrained baseline, each fine-tuned checkpoint registered in
`model_checkpoints`, the peers the run config names (by default the English-only
ViT-B-32 of the same image tower) and those of a peers file (`peers_file: anchors`
scores FashionCLIP, OpenFashionCLIP and Marqo's models, evaluation/anchors.toml).
Datasets: UT Zappos50K (zero-shot Acc@k per attribute) from `zappos_dir`,
$CLIPSHOE_ZAPPOS_DIR or the copy `clipshoe zappos fetch` put in the data dir, and the
held-out test split of curated_pairs (retrieval R@k both ways, zero-shot over the
shops' category leaves). Weights not cached yet are downloaded (training.weights); a
model whose weights cannot be had, or a dataset that is not there, is reported as
missing — never scored with something else.

Rows go to Parquet, one file per evaluation in the `metrics` dataset (history:
concurrent evaluations add files, never rewrite each other's); the materialization carries a comparison table with deltas
against the baseline, numbers the UI plots over time, and PNG plots and one
CLIP_benchmark-style JSON per model, dataset and task saved in the report folder. Image embeddings are cached per (checkpoint, image content), so a second
evaluation of the same checkpoint encodes only new images.
"""

# No `from __future__ import annotations`: Dagster reads config and resource types from the signature.

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.curate.assets import curated_pairs
from clipshoe_pipeline.defs.finetune.assets import finetuned_clip
from clipshoe_pipeline.evaluation.benchmark_json import write_benchmark_json
from clipshoe_pipeline.evaluation.embeddings import ENCODE_BATCH_SIZE, default_cache_dir
from clipshoe_pipeline.evaluation.metrics_table import markdown_comparison, metrics_table
from clipshoe_pipeline.evaluation.peers import ANCHORS, Peer, read_peers
from clipshoe_pipeline.evaluation.suites import (
    TEST_SPLIT_DATASET,
    ZAPPOS_DATASET,
    EvaluatedModel,
    held_out_metrics,
    zappos_metrics,
)
from clipshoe_pipeline.evaluation.templates import LANGUAGES
from clipshoe_pipeline.evaluation.zappos import IMAGE_DIRS, NOT_CONFIGURED, ZapposDataset, load_zappos
from clipshoe_pipeline.parquet_io import write_parquet_atomic
from clipshoe_pipeline.paths import DataPaths
from clipshoe_pipeline.plots import pyplot, save_figure
from clipshoe_pipeline.settings import ZAPPOS_DIR, env
from clipshoe_pipeline.training.models import BASE_MODEL, BASE_PRETRAINED, ENGLISH_PEER
from clipshoe_pipeline.training.weights import MissingWeights, resolve_weights

BASELINE = "baseline"
FINETUNED = "finetuned"  # the newest registered checkpoint; older ones are "finetuned:<run>"
PLOTTED_K = (1, 5, 10)
# eager(), but only a new checkpoint triggers it: a new curation alone changes the
# held-out split, which the next training's evaluation measures anyway.
AFTER_NEW_CHECKPOINT = (
    dg.AutomationCondition.in_latest_time_window()
    & (dg.AutomationCondition.missing().newly_true()
       | dg.AutomationCondition.any_deps_updated().allow(dg.AssetSelection.assets(finetuned_clip))).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("eager on new checkpoints")


class PeerModel(dg.Config):
    name: str = Field(description="The name the metric tables show, e.g. 'Marqo-FashionCLIP'.")
    model: str = Field(description="open_clip model config, e.g. 'ViT-B-16' or 'hf-hub:Marqo/marqo-fashionCLIP'.")
    pretrained: str | None = Field(default=None, description="open_clip tag or checkpoint path.")


class EvaluateConfig(dg.Config):
    baseline_model: str = BASE_MODEL
    baseline_pretrained: str | None = Field(
        default=BASE_PRETRAINED, description="The weights fine-tuning started from (tag or path).")
    baseline_random_init: bool = Field(
        default=False, description="Evaluate a randomly initialised baseline (the tiny CPU demo has no pretrained one).")
    all_checkpoints: bool = Field(default=True, description="Every registered fine-tuned checkpoint, not only the newest.")
    peers: list[PeerModel] = Field(
        default_factory=lambda: [PeerModel(**dict(zip(("name", "model", "pretrained"), ENGLISH_PEER)))],
        description="Further models scored side by side; the default is the English-only CLIP of the base's image "
                    "tower, so the tables show what reading Vietnamese is worth.")
    peers_file: str | None = Field(
        default=None, description=f"A TOML file of [[peer]] tables (name, model, pretrained) scored as well; "
                                  f"'{ANCHORS}': the published fashion CLIPs (evaluation/anchors.toml).")
    languages: list[str] = Field(default_factory=lambda: list(LANGUAGES), description="Prompt template languages.")
    device: str = Field(default="auto", description="auto: cuda when available, else cpu.")
    batch_size: int = Field(default=ENCODE_BATCH_SIZE, ge=1)
    zappos_dir: str | None = Field(
        default=None, description=f"A local UT Zappos50K copy (official layout); None: ${ZAPPOS_DIR} when set, "
                                  "else the data dir's zappos/ (clipshoe zappos fetch).")


@dataclass(frozen=True)
class Candidate:
    name: str
    model: str
    weights: str | None
    allow_random_init: bool = False


def candidates(config: EvaluateConfig, catalog: CatalogDB, file_peers: list[Peer]) -> list[Candidate]:
    found = [Candidate(BASELINE, config.baseline_model, config.baseline_pretrained, config.baseline_random_init)]
    if catalog.files("model_checkpoints"):
        registered = catalog.query("SELECT run, model, checkpoint FROM model_checkpoints ORDER BY created_at DESC")
        for index, row in enumerate(registered if config.all_checkpoints else registered[:1]):
            found.append(Candidate(FINETUNED if index == 0 else f"{FINETUNED}:{row['run']}", row["model"],
                                   row["checkpoint"]))
    return found + [Candidate(peer.name, peer.model, peer.pretrained) for peer in [*config.peers, *file_peers]]


@dg.asset(
    deps=[finetuned_clip, curated_pairs],
    kinds={"pytorch", "parquet"},
    group_name="evaluate",
    automation_condition=AFTER_NEW_CHECKPOINT,
)
def model_metrics(context: dg.AssetExecutionContext, config: EvaluateConfig, catalog: CatalogDB) -> dg.MaterializeResult:
    """Acc@k on UT Zappos50K and R@k on the held-out split for the baseline, every
    fine-tuned checkpoint and the configured peers, on the same data and prompts: the
    numbers that say whether fine-tuning helped. Added to the `metrics` dataset."""
    paths = catalog.paths
    evaluated_at = datetime.now(timezone.utc)
    device = _device(config.device)
    pairs = catalog.table("curated_pairs") if catalog.files("curated_pairs") else None
    zappos = _zappos(context, config, paths)
    if pairs is None and zappos is None:
        raise dg.Failure("nothing to evaluate on: no curated_pairs Parquet (materialize curated_pairs) and no "
                         f"UT Zappos50K ({NOT_CONFIGURED})")
    leaves = category_leaves(pairs) if pairs is not None else None
    try:
        file_peers = read_peers(config.peers_file, paths) if config.peers_file else []
    except ValueError as error:
        raise dg.Failure(str(error)) from error

    rows, missing = [], {}
    for candidate in candidates(config, catalog, file_peers):
        try:
            weights = resolve_weights(candidate.model, candidate.weights, allow_random_init=candidate.allow_random_init)
        except (MissingWeights, ValueError) as error:
            missing[candidate.name] = str(error)
            context.log.warning(f"{candidate.name}: not evaluated: {error}")
            continue
        model = EvaluatedModel.load(candidate.name, candidate.model, weights, evaluated_at,
                                    cache_dir=default_cache_dir(paths), device=device, batch_size=config.batch_size)
        if zappos is not None:
            rows += zappos_metrics(zappos, model, languages=config.languages)
        if pairs is not None:
            rows += held_out_metrics(pairs, paths.root, model, category_leaf_of=leaves, languages=config.languages)
        context.log.info(f"{candidate.name} ({weights.label}) evaluated")
    if not rows:
        raise dg.Failure("no model could be evaluated: " + "; ".join(f"{k}: {v}" for k, v in missing.items()))

    table = metrics_table(rows)
    evaluation = f"{evaluated_at:%Y%m%dT%H%M%S}-{context.run.run_id[:8]}"
    write_parquet_atomic(table, paths.metrics_parquet(evaluation))
    catalog.publish("metrics")
    (stored,) = catalog.query("SELECT count(*) AS n FROM metrics")
    report_dir = paths.reports / f"metrics-{evaluation}"
    benchmark_files = write_benchmark_json(table, report_dir / "clip_benchmark")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": stored["n"],
        "rows_this_run": table.num_rows,
        "models": ", ".join(dict.fromkeys(table.column("model").to_pylist())),
        "not_evaluated": dg.MetadataValue.json(missing) if missing else "none",
        "zappos": dg.MetadataValue.json(vars(zappos.report)) if zappos else NOT_CONFIGURED,
        **{f"comparison_{dataset}": dg.MetadataValue.md(markdown_comparison(_only(table, dataset), BASELINE))
           for dataset in (TEST_SPLIT_DATASET, ZAPPOS_DATASET) if _only(table, dataset).num_rows},
        **headline_numbers(table),
        "plots": dg.MetadataValue.md(write_plots(table, report_dir)),
        "report_dir": dg.MetadataValue.path(str(report_dir)),
        "clip_benchmark_files": len(benchmark_files),
        "device": device,
    })


def category_leaves(pairs: pa.Table) -> dict[tuple[str, str], str]:
    """(site, product_id) -> the shop's category leaf, as curation recorded it with the
    pairs: the classes of test-split zero-shot."""
    return {(site, product): leaf for site, product, leaf in zip(
        *(pairs.column(name).to_pylist() for name in ("site", "product_id", "category_leaf"))) if leaf}


def headline_numbers(table: pa.Table) -> dict[str, float]:
    """Stable keys (model/dataset/metric@k) the UI plots across materializations."""
    numbers = {}
    for row in table.to_pylist():
        if row["model"] in (BASELINE, FINETUNED) and (row["task"] == "retrieval" or row["metric"] == "acc"):
            if row["k"] in PLOTTED_K or row["k"] is None:
                attribute = f"/{row['attribute']}/{row['task'].rsplit('/', 1)[-1]}" if row["attribute"] else ""
                key = f"{row['model']}/{row['dataset']}{attribute}/{row['metric']}" + (f"@{row['k']}" if row["k"] else "")
                numbers[key] = float(row["value"])
    return numbers


def write_plots(table: pa.Table, folder: Path) -> str:
    """R@k curves on the held-out split and Acc@1 per attribute, as PNGs in `folder`
    and inline (markdown) for the UI."""
    plt = pyplot()
    rows = table.to_pylist()
    models = list(dict.fromkeys(row["model"] for row in rows))
    parts = []
    retrieval = [r for r in rows if r["task"] == "retrieval" and r["metric"].endswith("_recall")]
    if retrieval:
        figure, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
        for axis, metric, title in zip(axes, ("image_retrieval_recall", "text_retrieval_recall"),
                                       ("text → image", "image → text")):
            for model in models:
                points = sorted((r["k"], r["value"]) for r in retrieval if r["model"] == model and r["metric"] == metric)
                if points:
                    axis.plot(*zip(*points), marker="o", label=model)
            axis.set(title=f"{title} R@k (held-out split)", xlabel="k", ylim=(0, 1))
        axes[0].legend(fontsize=8)
        parts.append(save_figure(figure, folder / "retrieval_recall_at_k.png"))
    accuracy = [r for r in rows if r["metric"] == "acc" and r["k"] == 1 and r["task"].endswith("/en")]
    if accuracy:
        attributes = sorted({f"{r['dataset']}:{r['attribute']}" for r in accuracy})
        figure, axis = plt.subplots(figsize=(max(5, 0.7 * len(attributes) * len(models)), 3.4))
        width = 0.8 / len(models)
        for offset, model in enumerate(models):
            value_of = {f"{r['dataset']}:{r['attribute']}": r["value"] for r in accuracy if r["model"] == model}
            axis.bar([i + offset * width for i in range(len(attributes))],
                     [value_of.get(a, 0.0) for a in attributes], width, label=model)
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(attributes))], attributes, rotation=30,
                        ha="right", fontsize=7)
        axis.set(title="zero-shot Acc@1 per attribute (English prompts)", ylim=(0, 1))
        axis.legend(fontsize=8)
        parts.append(save_figure(figure, folder / "zeroshot_acc1.png"))
    return "\n\n".join(parts) or "(nothing to plot)"


def _only(table: pa.Table, dataset: str) -> pa.Table:
    return table.filter(pc.equal(table.column("dataset"), dataset))


def _zappos(context: dg.AssetExecutionContext, config: EvaluateConfig, paths: DataPaths) -> ZapposDataset | None:
    """The copy the run config names, else $CLIPSHOE_ZAPPOS_DIR's, else the one `clipshoe
    zappos fetch` put in the data dir; None when there is none."""
    fetched = paths.zappos if any((paths.zappos / name).is_dir() for name in IMAGE_DIRS) else None
    root = config.zappos_dir or env(ZAPPOS_DIR) or fetched
    if root is None:
        context.log.info(NOT_CONFIGURED)
        return None
    try:
        return load_zappos(Path(root))
    except FileNotFoundError as error:
        raise dg.Failure(f"UT Zappos50K at {root}: {error}") from error


def _device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise dg.Failure(f"device {choice!r} asked for, but torch sees no GPU here: use 'auto' or 'cpu'")
    return choice


evaluate_job = dg.define_asset_job(
    "evaluate_job", selection=[model_metrics],
    description="Evaluate the baseline, every fine-tuned checkpoint and configured peers into DuckDB `metrics`.",
)
