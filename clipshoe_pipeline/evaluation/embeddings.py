"""Embeddings of images and texts from an open_clip model, and their Parquet cache.

Encoding 80k images is the slow part of an evaluation (minutes on a GPU, hours on
a CPU), and the images rarely change between evaluations of one checkpoint. So
image embeddings are cached per (checkpoint id, image content hash): one Parquet
file per checkpoint under the cache folder, rewritten atomically with the new rows
added (a crash leaves the previous file). Text embeddings are cheap (a few thousand
prompts and captions) and are not cached.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clipshoe_pipeline.parquet_io import write_parquet_atomic
from clipshoe_pipeline.paths import DataPaths

ImageEncoder = Callable[[list[Path]], np.ndarray]  # image files -> (n, d) float32 embeddings
_READ_CHUNK = 1 << 20
ENCODE_BATCH_SIZE = 64  # images or texts per forward pass (EvaluateConfig.batch_size)


class ClipEncoder:
    """Batched, gradient-free encoding with an open_clip model; outputs are float32,
    L2-normalised, on the CPU, so retrieval and zero-shot get cosine similarities."""

    def __init__(self, model: Any, preprocess: Callable, tokenizer: Callable, *, device: str = "cpu",
                 batch_size: int = ENCODE_BATCH_SIZE):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.device, self.batch_size = device, batch_size

    @classmethod
    def load(cls, model_name: str, weights: str | None, *, device: str = "cpu",
             batch_size: int = ENCODE_BATCH_SIZE) -> ClipEncoder:
        from clipshoe_pipeline.training.models import load_clip

        model, preprocess, tokenizer = load_clip(model_name, weights, device=device)
        return cls(model, preprocess, tokenizer, device=device, batch_size=batch_size)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        # Vietnamese has composed and decomposed spellings of one letter; tokenizers see the composed one (NFC)
        # as the captions were written, and a Hugging Face tokenizer truncates at its own context length.
        composed = [unicodedata.normalize("NFC", text) for text in texts]
        return self._encode(composed, lambda batch: self.model.encode_text(self.tokenizer(batch).to(self.device)))

    def encode_images(self, paths: list[Path]) -> np.ndarray:
        import torch
        from PIL import Image

        def encode_batch(batch: list[Path]):
            pixels = []
            for path in batch:
                with Image.open(path) as image:
                    pixels.append(self.preprocess(image.convert("RGB")))
            return self.model.encode_image(torch.stack(pixels).to(self.device))

        return self._encode(paths, encode_batch)

    def _encode(self, inputs: Sequence, encode_batch: Callable) -> np.ndarray:
        import torch

        batches = []
        with torch.inference_mode():
            for start in range(0, len(inputs), self.batch_size):
                embeddings = encode_batch(inputs[start:start + self.batch_size]).float()
                batches.append(torch.nn.functional.normalize(embeddings, dim=-1).cpu().numpy())
        if not batches:
            raise ValueError("nothing to encode")
        return np.concatenate(batches)


def checkpoint_id(model_name: str, weights: str | None) -> str | None:
    """What the cache keys embeddings by: model plus pretrained tag, or model plus the
    sha256 of a checkpoint file (a retrained checkpoint at the same path is another
    model). None for random initialisation, whose weights differ on every load, so
    its embeddings must not be cached."""
    if weights is None:
        return None
    path = Path(weights)
    if path.is_file():
        return f"{model_name}@sha256:{file_sha256(path)}"
    return f"{model_name}@{weights}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir(paths: DataPaths) -> Path:
    return paths.root / "cache" / "embeddings"


class EmbeddingCache:
    """Image embeddings in `directory`, one Parquet file (sha256, embedding) per checkpoint."""

    def __init__(self, directory: Path):
        self.directory = directory

    def file_for(self, checkpoint: str) -> Path:
        # Checkpoint ids hold ':' and '/'; a hash of the id is a safe file name.
        return self.directory / f"{hashlib.blake2b(checkpoint.encode(), digest_size=12).hexdigest()}.parquet"

    def image_embeddings(self, checkpoint: str, shas: Sequence[str], paths: Sequence[Path],
                         encode_images: ImageEncoder) -> tuple[np.ndarray, int]:
        """(embeddings in `shas` order, number of images encoded now). `shas[i]` is the
        content hash of `paths[i]`; each distinct hash is encoded at most once."""
        path = self.file_for(checkpoint)
        cached_shas, cached = self._read(path, checkpoint)
        known = set(cached_shas)
        missing = {sha: image for sha, image in zip(shas, paths) if sha not in known}
        if missing:
            computed = np.asarray(encode_images(list(missing.values())), dtype=np.float32)
            if len(cached) and computed.shape[1] != cached.shape[1]:
                raise ValueError(f"{path}: cached embeddings have {cached.shape[1]} dimensions, "
                                 f"the model gives {computed.shape[1]}")
            cached_shas = cached_shas + list(missing)
            cached = np.concatenate([cached, computed]) if len(cached) else computed
            self._write(path, checkpoint, cached_shas, cached)
        row_of = {sha: row for row, sha in enumerate(cached_shas)}
        return cached[[row_of[sha] for sha in shas]], len(missing)

    @staticmethod
    def _read(path: Path, checkpoint: str) -> tuple[list[str], np.ndarray]:
        if not path.exists():
            return [], np.empty((0, 0), dtype=np.float32)
        table = pq.read_table(path)
        stored = set(table.column("checkpoint").unique().to_pylist())
        if stored != {checkpoint}:  # a hash collision or a hand-copied file
            raise ValueError(f"{path} holds embeddings of {sorted(stored)}, not {checkpoint!r}")
        column = table.column("embedding").combine_chunks()
        embeddings = column.flatten().to_numpy().reshape(len(column), column.type.list_size)
        return table.column("sha256").to_pylist(), embeddings

    @staticmethod
    def _write(path: Path, checkpoint: str, shas: list[str], embeddings: np.ndarray) -> None:
        dim = embeddings.shape[1]
        flat = pa.array(embeddings.reshape(-1), type=pa.float32())
        table = pa.table({"checkpoint": pa.array([checkpoint] * len(shas), type=pa.string()),
                          "sha256": pa.array(shas, type=pa.string()),
                          "embedding": pa.FixedSizeListArray.from_arrays(flat, dim)})
        write_parquet_atomic(table, path)
