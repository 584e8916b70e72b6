"""Our metrics against CLIP_benchmark's own code (1.6.2), on the same fp32 embeddings:
equal query for query where no scores tie, never above it where they do; and our
metrics rows written as its result files, which its `build` command reads.

CLIP_benchmark's `evaluate()` functions take a model, a tokenizer and a dataloader:
here a stand-in model returns precomputed embeddings (`PrecomputedClip`), and spies
record the per-query vectors behind the means they return.
"""

from __future__ import annotations

import csv
import json
from argparse import Namespace
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest
import torch

from clipshoe_pipeline.evaluation.benchmark_json import benchmark_runs, write_benchmark_json
from clipshoe_pipeline.evaluation.metrics_table import RunLabel, metrics_table, retrieval_rows, zeroshot_rows
from clipshoe_pipeline.evaluation.retrieval import DirectionResult, RetrievalResult, retrieval_metrics
from clipshoe_pipeline.evaluation.zeroshot import ZeroShotResult, build_classifier, zeroshot_classification

DIM = 32
BATCH_SIZE = 16  # several batches: CLIP_benchmark's batchify and our code see the queries in pieces
RECALL_KS = (1, 5, 10)
ACCURACY_KS = (1, 3, 5)
PRECISIONS = ["fp32", "bf16"]  # bf16: the suite's default on CPUs with native bf16 (exact, retrieval.py)
# No negative within this of a query's best positive: far above the fp32 rounding of
# these dot products (~1e-7), so no summation order or re-normalisation reorders them.
TIE_MARGIN = 1e-5


def reference(module: str):
    """A module of CLIP_benchmark, or a skip where it is not installed."""
    return pytest.importorskip(f"clip_benchmark.{module}",
                               reason="CLIP_benchmark (a dev extra) is the reference these tests check against")


class PrecomputedClip:
    """CLIP_benchmark's model and tokenizer over precomputed embeddings: a loader's
    "images" are image embeddings, and a text tokenizes to its row of `text_embeddings`."""

    def __init__(self, text_embeddings: np.ndarray, texts: list[str]):
        self.text_embeddings = torch.from_numpy(text_embeddings)
        self.row_of = {text: row for row, text in enumerate(texts)}

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([self.row_of[text] for text in texts])

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text_embeddings[tokens]

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Our `TextEncoder` over the same embeddings."""
        return self.encode_text(self.tokenize(texts)).numpy()


class ImageCaptions(torch.utils.data.Dataset):
    """Items as CLIP_benchmark's retrieval datasets give them: (image, its captions)."""

    def __init__(self, images: np.ndarray, captions: list[list[str]]):
        self.images, self.captions = torch.from_numpy(images), captions

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, list[str]]:
        return self.images[index], self.captions[index]


class LabelledImages(torch.utils.data.Dataset):
    """Items as its classification datasets give them, (image, class index), and `classes`."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, classes: list[str]):
        self.images, self.targets, self.classes = torch.from_numpy(images), torch.from_numpy(targets), classes

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.targets[index]


def unit_centres(rng: np.random.Generator, n: int) -> np.ndarray:
    centres = rng.normal(size=(n, DIM))
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, centres: np.ndarray, owner: np.ndarray, noise: float) -> np.ndarray:
    """Unit float32 vectors around their owner's (unit) centre, with noise of about
    `noise` in norm: positives score higher on average, so ranks spread and the
    comparison is neither all hits nor all misses."""
    vectors = centres[owner] + noise / np.sqrt(DIM) * rng.normal(size=(len(owner), DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def assert_no_near_ties(scores: np.ndarray, positive: np.ndarray) -> None:
    """The precondition of an exact per-query comparison, per row: every negative is
    more than TIE_MARGIN from the row's best positive (in float64)."""
    scores = scores.astype(np.float64)
    best = np.where(positive, scores, -np.inf).max(axis=1, keepdims=True)
    closest_negative = np.abs(np.where(positive, np.inf, scores) - best).min()
    assert closest_negative > TIE_MARGIN


def record_batchify(monkeypatch, zeroshot_retrieval) -> dict[tuple[int, int], np.ndarray]:
    """Spies on CLIP_benchmark's `batchify`: per (number of queries, k), the per-query
    hit vector (recall_at_k > 0) of which evaluate() reports the mean."""
    hits = {}
    batchify = zeroshot_retrieval.batchify

    def recording(func, scores, positive_pairs, *args, **kwargs):
        recall = batchify(func, scores, positive_pairs, *args, **kwargs)
        hits[len(scores), kwargs["k"]] = (recall > 0).numpy()
        return recall

    monkeypatch.setattr(zeroshot_retrieval, "batchify", recording)
    return hits


@pytest.mark.parametrize("precision", PRECISIONS)
def test_retrieval_equals_clip_benchmark_evaluate_per_query(precision, monkeypatch):
    zeroshot_retrieval = reference("metrics.zeroshot_retrieval")
    collate = reference("datasets.builder").image_captions_collate_fn
    rng = np.random.default_rng(7)
    n_images = 60
    caption_image = np.repeat(np.arange(n_images), rng.integers(1, 4, size=n_images))  # 1-3 captions each
    centres = unit_centres(rng, n_images)
    images = clustered(rng, centres, np.arange(n_images), noise=1.2)
    texts = clustered(rng, centres, caption_image, noise=1.2)
    positive = caption_image[:, None] == np.arange(n_images)[None, :]
    assert_no_near_ties(texts @ images.T, positive)
    assert_no_near_ties(images @ texts.T, positive.T)
    assert len(texts) != n_images  # the spy tells the directions apart by their number of queries
    captions = [f"caption {row}" for row in range(len(texts))]
    model = PrecomputedClip(texts, captions)
    loader = torch.utils.data.DataLoader(
        ImageCaptions(images, [[captions[row] for row in np.flatnonzero(caption_image == image)]
                               for image in range(n_images)]),
        batch_size=BATCH_SIZE, collate_fn=collate)
    hits = record_batchify(monkeypatch, zeroshot_retrieval)

    means = zeroshot_retrieval.evaluate(model, loader, model.tokenize, device="cpu", amp=False,
                                        recall_k_list=list(RECALL_KS))
    ours = retrieval_metrics(texts, images, caption_image, np.arange(n_images), ks=RECALL_KS, precision=precision)

    assert 0 < ours.text_to_image.recall[1] < 1 and 0 < ours.image_to_text.recall[1] < 1
    for k in RECALL_KS:
        for name, direction in (("image_retrieval", ours.text_to_image), ("text_retrieval", ours.image_to_text)):
            np.testing.assert_array_equal(direction.ranks <= k, hits[direction.n, k], err_msg=f"{name}@{k}")
            assert direction.recall[k] == pytest.approx(means[f"{name}_recall@{k}"], abs=1e-6)  # theirs: a float32 mean


@pytest.mark.parametrize("precision", PRECISIONS)
def test_product_retrieval_equals_clip_benchmark_recall_at_k_per_query(precision):
    """Our setup, which CLIP_benchmark's datasets (one image per caption) cannot
    express: a product's captions and images are all positives of each other. Its
    `recall_at_k` takes any positive matrix, fed the score matrix as evaluate() forms it."""
    zeroshot_retrieval = reference("metrics.zeroshot_retrieval")
    rng = np.random.default_rng(11)
    n_products = 40
    image_product = np.repeat(np.arange(n_products), rng.integers(1, 5, size=n_products))
    text_product = np.repeat(np.arange(n_products), rng.integers(1, 4, size=n_products))
    centres = unit_centres(rng, n_products)
    images = clustered(rng, centres, image_product, noise=1.2)
    texts = clustered(rng, centres, text_product, noise=1.2)
    positive = text_product[:, None] == image_product[None, :]
    assert_no_near_ties(texts @ images.T, positive)
    assert_no_near_ties(images @ texts.T, positive.T)
    scores = torch.from_numpy(texts) @ torch.from_numpy(images).T
    positive_pairs = torch.from_numpy(positive)

    ours = retrieval_metrics(texts, images, text_product, image_product, ks=RECALL_KS, precision=precision)

    assert 0 < ours.text_to_image.recall[1] < 1 and 0 < ours.image_to_text.recall[1] < 1
    for k in RECALL_KS:
        for direction, their_scores, their_pairs in ((ours.text_to_image, scores, positive_pairs),
                                                     (ours.image_to_text, scores.T, positive_pairs.T)):
            recall = zeroshot_retrieval.batchify(zeroshot_retrieval.recall_at_k, their_scores, their_pairs,
                                                 BATCH_SIZE, "cpu", k=k)
            np.testing.assert_array_equal(direction.ranks <= k, (recall > 0).numpy())


def accuracy_with_item(output: torch.Tensor, target: torch.Tensor, topk=(1,)) -> list[float]:
    """CLIP_benchmark 1.6.2's `zeroshot_classification.accuracy`, line for line except
    the last step: it converts a one-element array with float(), which numpy >= 2.4
    refuses ("only 0-dimensional arrays can be converted to Python scalars");
    `.item()` reads the same number."""
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [correct[:k].reshape(-1).float().sum(0, keepdim=True).item() / n for k in topk]


def test_zeroshot_equals_clip_benchmark_evaluate_per_query(monkeypatch):
    zeroshot = reference("metrics.zeroshot_classification")
    monkeypatch.setattr(zeroshot, "accuracy", accuracy_with_item)
    outputs = []  # (logits, targets) of CLIP_benchmark's run, behind the means it returns
    run_classification = zeroshot.run_classification

    def recording(*args, **kwargs):
        outputs.append(run_classification(*args, **kwargs))
        return outputs[-1]

    monkeypatch.setattr(zeroshot, "run_classification", recording)
    rng = np.random.default_rng(3)
    classes = [f"class {c}" for c in range(8)]
    templates = ("{} seen from the left", "{} seen from the right", "a close-up of {}")
    prompts = [template.format(name) for name in classes for template in templates]
    centres = unit_centres(rng, len(classes))
    model = PrecomputedClip(clustered(rng, centres, np.repeat(np.arange(len(classes)), len(templates)), noise=0.5),
                            prompts)
    # Every class has images, in unequal numbers: mean_per_class_recall is not acc1.
    targets = rng.permutation(np.concatenate([np.arange(len(classes)), rng.integers(0, len(classes), 112)]))
    images = clustered(rng, centres, targets, noise=3.0)
    loader = torch.utils.data.DataLoader(LabelledImages(images, targets, classes), batch_size=BATCH_SIZE)

    means = zeroshot.evaluate(model, loader, model.tokenize, classes,
                              [template.replace("{}", "{c}") for template in templates], device="cpu", amp=False)
    classifier = build_classifier(classes, templates, model.encode_texts)
    assert_no_near_ties(images @ classifier.T, targets[:, None] == np.arange(len(classes))[None, :])
    truths = [(classes[target],) for target in targets]
    ours = zeroshot_classification(images, truths, classes, classifier, ks=ACCURACY_KS)

    assert 0 < ours.accuracy[1] < ours.accuracy[5] < 1 and ours.balanced_accuracy != ours.accuracy[1]
    assert (ours.accuracy[1], ours.accuracy[5]) == (means["acc1"], means["acc5"])
    assert ours.balanced_accuracy == pytest.approx(means["mean_per_class_recall"], rel=1e-12)
    (logits, their_targets), = outputs
    their_hits = np.array([accuracy_with_item(logits[i:i + 1], their_targets[i:i + 1], topk=ACCURACY_KS)
                           for i in range(len(images))])
    our_hits = np.array([[zeroshot_classification(images[i:i + 1], truths[i:i + 1], classes, classifier,
                                                  ks=ACCURACY_KS).accuracy[k] for k in ACCURACY_KS]
                         for i in range(len(images))])
    np.testing.assert_array_equal(our_hits, their_hits)
    # mean_per_class_recall is sklearn's balanced accuracy of argmax predictions
    np.testing.assert_array_equal((logits.argmax(axis=1) == their_targets).numpy(), our_hits[:, 0] == 1)


def test_exact_ties_count_against_the_positive_in_ours_only():
    """A collapsed model (every embedding the same) ties every score. Ours ranks each
    positive below all the negatives tied with it, so R@k = 0 while k <= the number
    of negatives; CLIP_benchmark takes torch.topk's order among ties, which is
    implementation-defined. Ours is the conservative number, query for query."""
    zeroshot_retrieval = reference("metrics.zeroshot_retrieval")
    n_images = 12
    caption_image = np.repeat(np.arange(n_images), 2)
    texts = np.ones((len(caption_image), DIM), dtype=np.float32) / np.sqrt(DIM)
    images = np.ones((n_images, DIM), dtype=np.float32) / np.sqrt(DIM)
    scores = torch.from_numpy(texts) @ torch.from_numpy(images).T
    positive_pairs = torch.from_numpy(caption_image[:, None] == np.arange(n_images)[None, :])

    ours = retrieval_metrics(texts, images, caption_image, np.arange(n_images), ks=RECALL_KS, precision="fp32")

    assert ours.text_to_image.ranks.tolist() == [n_images] * len(texts)  # behind all 11 negatives
    assert ours.image_to_text.ranks.tolist() == [len(texts) - 1] * n_images  # behind 22, beside its other caption
    for k in RECALL_KS:
        for direction, their_scores, their_pairs in ((ours.text_to_image, scores, positive_pairs),
                                                     (ours.image_to_text, scores.T, positive_pairs.T)):
            their_hits = (zeroshot_retrieval.batchify(zeroshot_retrieval.recall_at_k, their_scores, their_pairs,
                                                      BATCH_SIZE, "cpu", k=k) > 0).numpy()
            assert direction.recall[k] == 0.0
            assert np.all((direction.ranks <= k) <= their_hits)


EVALUATED_AT = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
BASELINE = RunLabel("ViT-B-32 laion2b", "ViT-B-32:laion2b_s34b_b79k", EVALUATED_AT)
HUB_MODEL = RunLabel("Marqo FashionCLIP", "hf-hub:Marqo/marqo-fashionCLIP:/hf/open_clip_model.safetensors",
                     EVALUATED_AT)
# Expected, written out: each row's file (by model, dataset + attribute, task) and metric name.
FILE_OF = {
    ("ViT-B-32 laion2b", "clipshoe-test", None, "retrieval"):
        "clipshoe-test__ViT-B-32_laion2b__zeroshot_retrieval__vi.json",
    ("ViT-B-32 laion2b", "ut-zappos50k", "Category", "zeroshot_classification/en"):
        "ut-zappos50k_Category__ViT-B-32_laion2b__zeroshot_classification__en.json",
    ("ViT-B-32 laion2b", "ut-zappos50k", "Category", "zeroshot_classification/vi"):
        "ut-zappos50k_Category__ViT-B-32_laion2b__zeroshot_classification__vi.json",
    ("Marqo FashionCLIP", "clipshoe-test", None, "retrieval"):
        "clipshoe-test__Marqo_FashionCLIP__zeroshot_retrieval__vi.json",
    ("Marqo FashionCLIP", "ut-zappos50k", "Category", "zeroshot_classification/en"):
        "ut-zappos50k_Category__Marqo_FashionCLIP__zeroshot_classification__en.json",
    ("Marqo FashionCLIP", "ut-zappos50k", "Category", "zeroshot_classification/vi"):
        "ut-zappos50k_Category__Marqo_FashionCLIP__zeroshot_classification__vi.json",
}
BENCHMARK_METRIC = {
    ("acc", 1): "acc1", ("acc", 3): "acc3", ("acc", 5): "acc5", ("balanced_accuracy", None): "mean_per_class_recall",
    **{(f"{name}_recall", k): f"{name}_recall@{k}" for name in ("image_retrieval", "text_retrieval") for k in (1, 5)},
    **{(f"{name}_median_rank", None): f"{name}_median_rank" for name in ("image_retrieval", "text_retrieval")},
}


def evaluation_table() -> pa.Table:
    """Rows as model_metrics writes them, different values for every model and language."""
    rows = []
    for offset, run in enumerate((BASELINE, HUB_MODEL)):
        retrieval = RetrievalResult(
            text_to_image=DirectionResult(np.array([1, 2, 7]), {1: 1 / 3 + offset / 10, 5: 2 / 3}, 2.0 + offset),
            image_to_text=DirectionResult(np.array([1, 3]), {1: 0.5 + offset / 10, 5: 1.0}, 2.0 - offset))
        rows += retrieval_rows(retrieval, run, "clipshoe-test")
        for language, shift in (("en", 0.0), ("vi", 0.05)):
            zeroshot = ZeroShotResult({1: 0.5 + shift + offset / 10, 3: 0.75 + shift, 5: 0.875 - offset / 10},
                                      0.4 + shift, n=8, n_classes=9)
            rows += zeroshot_rows(zeroshot, run, "ut-zappos50k", language, "Category")
    return metrics_table(rows)


def test_written_files_hold_clip_benchmarks_keys_and_names_and_the_tables_values(tmp_path):
    table = evaluation_table()

    paths = write_benchmark_json(table, tmp_path / "clip_benchmark")

    assert sorted(path.name for path in paths) == sorted(FILE_OF.values())
    assert sorted(path.name for path in (tmp_path / "clip_benchmark").iterdir()) == sorted(FILE_OF.values())
    documents = {path.name: json.loads(path.read_text()) for path in paths}
    assert documents["ut-zappos50k_Category__ViT-B-32_laion2b__zeroshot_classification__en.json"] == {
        "dataset": "ut-zappos50k/Category", "model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k",
        "task": "zeroshot_classification", "language": "en",
        "metrics": {"acc1": 0.5, "acc3": 0.75, "acc5": 0.875, "mean_per_class_recall": 0.4}}
    hub_retrieval = documents["clipshoe-test__Marqo_FashionCLIP__zeroshot_retrieval__vi.json"]
    assert (hub_retrieval["model"], hub_retrieval["pretrained"], hub_retrieval["task"]) == (
        "hf-hub:Marqo/marqo-fashionCLIP", "/hf/open_clip_model.safetensors", "zeroshot_retrieval")
    for row in table.to_pylist():
        document = documents[FILE_OF[row["model"], row["dataset"], row["attribute"], row["task"]]]
        assert document["metrics"][BENCHMARK_METRIC[row["metric"], row["k"]]] == row["value"]
    assert sum(len(document["metrics"]) for document in documents.values()) == table.num_rows


def test_clip_benchmark_build_reads_the_files(tmp_path):
    cli = reference("cli")
    write_benchmark_json(evaluation_table(), tmp_path / "clip_benchmark")

    cli.main_build(Namespace(files=[str(tmp_path / "clip_benchmark")], output=str(tmp_path / "benchmark.csv")))

    with open(tmp_path / "benchmark.csv", newline="") as source:
        rows = list(csv.DictReader(source))
    assert len(rows) == len(FILE_OF)
    assert {row["model_fullname"] for row in rows} == {
        "ViT-B-32 laion2b_s34b_b79k", "hf-hub:Marqo/marqo-fashionCLIP /hf/open_clip_model.safetensors"}
    english = [row for row in rows if row["task"] == "zeroshot_classification" and row["language"] == "en"]
    assert sorted(float(row["acc1"]) for row in english) == [0.5, 0.6]


def test_a_table_of_several_evaluations_is_refused():
    table = evaluation_table()
    with pytest.raises(ValueError, match="twice"):
        benchmark_runs(pa.concat_tables([table, table]))


def test_runs_whose_file_names_clash_are_not_written(tmp_path):
    result = ZeroShotResult({1: 0.5}, 0.5, n=4, n_classes=3)
    runs = (RunLabel("model a", "ViT-B-32:a", EVALUATED_AT), RunLabel("model/a", "ViT-B-32:b", EVALUATED_AT))
    table = metrics_table(row for run in runs for row in zeroshot_rows(result, run, "ut-zappos50k", "en", "Gender"))
    with pytest.raises(ValueError, match="several runs"):
        write_benchmark_json(table, tmp_path / "clip_benchmark")
    assert not (tmp_path / "clip_benchmark").exists()
