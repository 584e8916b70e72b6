"""The embedding cache (hits, misses, per checkpoint, atomic files) and the open_clip
encoder's output contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipshoe_pipeline.evaluation.embeddings import ClipEncoder, EmbeddingCache, checkpoint_id, file_sha256


class CountingEncoder:
    """Embeds an image file as a vector derived from its name; records what it encodes."""

    def __init__(self, dim: int = 4):
        self.dim, self.encoded = dim, []

    def __call__(self, paths: list[Path]) -> np.ndarray:
        self.encoded += [path.name for path in paths]
        return np.stack([np.full(self.dim, float(path.stem[-1]), dtype=np.float32) for path in paths])


def shas_and_paths(names: str) -> tuple[list[str], list[Path]]:
    """One image per character of `names`, in `EmbeddingCache.image_embeddings`'s argument order."""
    return [f"sha{name}" for name in names], [Path(f"img{name}.jpg") for name in names]


def test_second_evaluation_encodes_only_new_images(tmp_path):
    cache, encoder = EmbeddingCache(tmp_path), CountingEncoder()
    first, computed = cache.image_embeddings("ViT-B-32@laion2b", *shas_and_paths("123"), encoder)
    assert computed == 3 and first[:, 0].tolist() == [1, 2, 3]
    again, computed = cache.image_embeddings("ViT-B-32@laion2b", *shas_and_paths("3241"), encoder)
    assert computed == 1 and encoder.encoded == ["img1.jpg", "img2.jpg", "img3.jpg", "img4.jpg"]
    assert again[:, 0].tolist() == [3, 2, 4, 1]  # in the asked order
    assert again.dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == [cache.file_for("ViT-B-32@laion2b").name]  # no temp files


def test_checkpoints_do_not_share_embeddings_and_duplicates_encode_once(tmp_path):
    cache, encoder = EmbeddingCache(tmp_path), CountingEncoder()
    _, computed = cache.image_embeddings("model@a", *shas_and_paths("11"), encoder)
    assert computed == 1  # one content hash, one encoding
    _, computed = cache.image_embeddings("model@b", *shas_and_paths("11"), encoder)
    assert computed == 1 and cache.file_for("model@a") != cache.file_for("model@b")


def test_a_file_of_another_checkpoint_or_dimension_is_refused(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.image_embeddings("model@a", *shas_and_paths("1"), CountingEncoder(dim=4))
    with pytest.raises(ValueError, match="dimensions"):
        cache.image_embeddings("model@a", *shas_and_paths("2"), CountingEncoder(dim=8))
    cache.file_for("model@a").rename(cache.file_for("model@b"))
    with pytest.raises(ValueError, match="model@a"):
        cache.image_embeddings("model@b", *shas_and_paths("1"), CountingEncoder())


def test_checkpoint_ids(tmp_path):
    weights = tmp_path / "epoch_1.pt"
    weights.write_bytes(b"weights")
    assert checkpoint_id("ViT-B-32", "laion2b_s34b_b79k") == "ViT-B-32@laion2b_s34b_b79k"
    assert checkpoint_id("ViT-B-32", str(weights)) == f"ViT-B-32@sha256:{file_sha256(weights)}"
    assert checkpoint_id("clipshoe-tiny", None) is None  # random weights: never cached


@pytest.mark.slow
def test_clip_encoder_gives_normalised_float32_in_batches(tmp_path):
    encoder = ClipEncoder.load("clipshoe-tiny", None, batch_size=2)
    paths = []
    for i, colour in enumerate(["red", "green", "blue"]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB" if i else "L", (30, 50), colour if i else 128).save(paths[-1])  # a grayscale one too
    images = encoder.encode_images(paths)
    texts = encoder.encode_texts(["giày thể thao nam", "a photo of boots", "dép", "x"])
    assert images.shape == (3, 64) and texts.shape == (4, 64)
    assert images.dtype == texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(encoder.encode_texts(["x"])[0], texts[3], rtol=1e-5, atol=1e-6)  # batch-independent
