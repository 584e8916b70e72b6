"""Fetching model files from the Hugging Face hub into its standard cache, checked.

open_clip's pretrained tags and `hf-hub:` models, and the `transformers` text towers of
multilingual models (config and tokenizer), all live on the hub. Downloads go through
huggingface_hub (it honours HF_ENDPOINT for a mirror, HF_HOME / HF_HUB_CACHE for the
cache, HF_HUB_OFFLINE=1 to forbid the network, and shows progress on stderr; a
connection dropped mid-file is retried from the last 10 MiB it kept) and open_clip's
own download functions (which file of a repository it would load). huggingface_hub
checks only a file's size, so each downloaded file whose ETag is a sha256 (the hub's
large files) is hashed here too: a corrupt copy is removed from the cache and refused.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_READ_CHUNK = 1 << 20
# What transformers reads to build a text tower from its config (weights come with the CLIP checkpoint).
TEXT_TOWER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "sentencepiece.bpe.model", "spiece.model", "vocab.txt", "vocab.json", "merges.txt")


class DownloadFailed(RuntimeError):
    """A file could not be fetched from the hub, or arrived corrupt."""


def offline() -> bool:
    """Whether huggingface_hub may use the network (HF_HUB_OFFLINE, as it reads it)."""
    from huggingface_hub import constants

    return constants.is_offline_mode()


def fetch_pretrained(cfg: dict, cache_dir: str | None = None) -> str:
    """The file of an open_clip pretrained cfg (a tag's or an `hf-hub:` model's), downloaded
    the way open_clip would (a .safetensors alternative first) and checked."""
    from open_clip.pretrained import download_pretrained

    try:
        path = download_pretrained(cfg, cache_dir=cache_dir)
    except Exception as error:  # huggingface_hub's and urllib's errors have no common base
        raise DownloadFailed(f"{cfg.get('hf_hub') or cfg.get('url')}: {type(error).__name__}: {error}") from error
    if not path:
        raise DownloadFailed(f"open_clip names no download for {cfg}")
    verify_cached_file(path)
    return path


def fetch_file(repo: str, filename: str, cache_dir: str | None = None) -> str:
    """One file of a hub repository, downloaded into the cache (or found there) and checked."""
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(repo, filename, cache_dir=cache_dir)
    except Exception as error:
        raise DownloadFailed(f"{repo}/{filename}: {type(error).__name__}: {error}") from error
    verify_cached_file(path)
    return path


def fetch_text_tower(repo: str, cache_dir: str | None = None) -> str:
    """The config and tokenizer files of a transformers text tower, from the cache or
    downloaded; returns the snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    def snapshot(local_only: bool) -> str:
        return snapshot_download(repo, allow_patterns=list(TEXT_TOWER_FILES), cache_dir=cache_dir,
                                 local_files_only=local_only)

    try:
        try:
            folder = snapshot(local_only=True)  # without asking the hub whether the files changed
        except LocalEntryNotFoundError:
            if offline():
                raise
            folder = snapshot(local_only=False)
    except Exception as error:
        raise DownloadFailed(f"{repo} (text tower config and tokenizer): {type(error).__name__}: {error}") from error
    if not (Path(folder) / "config.json").is_file():
        raise DownloadFailed(f"{repo} has no config.json: not a transformers model")
    for path in Path(folder).iterdir():
        verify_cached_file(str(path))
    return folder


def verify_cached_file(path: str) -> None:
    """Hash a cached hub file against its sha256 ETag (the blob's name); remove it from
    the cache and raise when they differ. Files without a sha256 ETag (small ones, or
    files outside the hub cache) are left to huggingface_hub's size check."""
    blob = Path(os.path.realpath(path))
    if blob.parent.name != "blobs" or not _SHA256.match(blob.name):
        return
    digest = hashlib.sha256()
    with open(blob, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != blob.name:
        blob.unlink()
        if Path(path).is_symlink():
            Path(path).unlink()
        raise DownloadFailed(f"{path}: the downloaded bytes have sha256 {digest.hexdigest()}, the hub announced "
                             f"{blob.name}; the corrupt copy was removed from the cache, fetch it again")


@dataclass(frozen=True)
class CachedRepo:
    repo: str
    size_bytes: int
    files: int
    path: str
    open_clip_tags: tuple[str, ...]  # "model/tag" for each open_clip tag whose weights it holds


def cached_repos(cache_dir: str | None = None) -> list[CachedRepo]:
    """The model repositories in the hub cache, with the open_clip tags each serves."""
    import open_clip
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    tags_of: dict[str, list[str]] = {}
    for model, tag in open_clip.list_pretrained():
        repo = open_clip.get_pretrained_cfg(model, tag).get("hf_hub", "").rstrip("/")
        if repo:
            tags_of.setdefault(os.path.split(repo)[0] if repo.count("/") > 1 else repo, []).append(f"{model}/{tag}")
    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound:  # nothing fetched yet
        return []
    return sorted((CachedRepo(repo=repo.repo_id, size_bytes=repo.size_on_disk, files=repo.nb_files,
                              path=str(repo.repo_path), open_clip_tags=tuple(tags_of.get(repo.repo_id, ())))
                   for repo in info.repos if repo.repo_type == "model"), key=lambda found: found.repo)
