"""Zero-shot classification: classifier building, Acc@k with multi-valued truth and
ties, balanced accuracy; each against a hand computation."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from clipshoe_pipeline.evaluation.templates import class_text, templates_for
from clipshoe_pipeline.evaluation.zeroshot import balanced_accuracy, build_classifier, zeroshot_classification


def fake_text_encoder(calls: list[list[str]]):
    """Deterministic pseudo-random, unnormalised vectors per text; records its calls."""
    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.stack([np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)).normal(size=8)
                         for t in texts]).astype(np.float32)
    return encode


def test_classifier_is_the_renormalised_mean_of_normalised_prompt_embeddings():
    calls: list[list[str]] = []
    encode = fake_text_encoder(calls)
    templates = ("a photo of {}.", "{} on white")
    classifier = build_classifier(["boots", "sandals"], templates, encode)
    assert len(calls) == 1  # one batched call
    for row, name in zip(classifier, ["boots", "sandals"]):
        prompts = encode([t.format(name) for t in templates])
        mean = (prompts / np.linalg.norm(prompts, axis=1, keepdims=True)).mean(axis=0)
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), rtol=1e-5)
    assert classifier.dtype == np.float32


def test_accuracy_with_multiple_true_values_and_ties():
    classifier = np.eye(4, dtype=np.float32)  # logit of class c = image[c]
    images = np.array([[0.9, 0.5, 0.1, 0.0],   # truth {A}: rank 1
                       [0.9, 0.5, 0.1, 0.0],   # truth {B, C}: best true B at rank 2
                       [0.3, 0.3, 0.3, 0.3],   # truth {D}: all tied -> rank 4
                       [0.1, 0.2, 0.8, 0.7],   # truth {}: skipped
                       [0.2, 0.6, 0.6, 0.1]],  # truth {C}: tied with B -> rank 2
                      dtype=np.float32)
    truths = [{"A"}, {"B", "C"}, {"D"}, set(), {"C"}]
    result = zeroshot_classification(images, truths, ["A", "B", "C", "D"], classifier, ks=(1, 3, 5))
    assert result.n == 4 and result.n_classes == 4
    assert result.accuracy == {1: 0.25, 3: 0.75}  # k=5 >= 4 classes: not reported
    # Per-class top-1 recall: A 1/1, B 0/1, C 0/2, D 0/1.
    assert result.balanced_accuracy == pytest.approx(0.25)


def test_balanced_accuracy_weights_classes_not_rows():
    ranks = np.array([1, 1, 1, 2, 1])
    truth = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 1]], dtype=bool)
    # class 0: rows 0,1,2,4 all hit -> 1.0; class 1: rows 3 (miss), 4 (hit) -> 0.5
    assert balanced_accuracy(ranks, truth) == pytest.approx(0.75)


def test_unknown_true_values_and_empty_truth_are_errors():
    classifier = np.eye(2, dtype=np.float32)
    with pytest.raises(ValueError, match="not classes"):
        zeroshot_classification(np.eye(2, dtype=np.float32), [{"A"}, {"Z"}], ["A", "B"], classifier)
    with pytest.raises(ValueError, match="no row"):
        zeroshot_classification(np.eye(2, dtype=np.float32), [set(), ()], ["A", "B"], classifier)


def test_templates_and_class_texts_per_language():
    assert class_text("SubCategory", "Ankle", "en") == "ankle boots"
    assert class_text("HeelHeight", "Flat", "vi") == "đế bằng"
    assert class_text("SubCategory", "Flat", "vi") == "sandal đế bệt"
    assert class_text("Material", "Vegan Leather", "en") == "vegan leather"  # no entry: as is
    assert class_text("Material", "Vegan Leather", "vi") == "vegan leather"  # falls back to English
    assert templates_for("Material", "vi")[0].format("da") == "ảnh giày làm bằng da."
    assert templates_for("category_leaf", "en") == templates_for("Category", "en")  # the defaults
