"""The loopback hub (tests/hub_server.py) is faithful enough for huggingface_hub 2.4: its
downloads, cache, errors, offline mode and behaviour on faults, driven through
huggingface_hub alone.

Redirecting huggingface_hub in-process: HF_ENDPOINT is read once, at import, into
`constants.ENDPOINT` and `constants.HUGGINGFACE_CO_URL_TEMPLATE` (the latter is what
hf_hub_download formats), and the module-level API functions are bound to
`huggingface_hub.hf_api.api`, whose endpoint was copied at import too. Setting the variable
in the test process changes none of them (`test_hf_endpoint_set_in_process_is_not_read`);
`redirect_huggingface_hub` patches them (with the cache folder, whose default scan_cache_dir
also copied at import, and transformers' cached HfApi), passing `endpoint=` per call works
as well, and a subprocess only needs the variable. HF_HUB_OFFLINE is likewise read at import into
`constants.HF_HUB_OFFLINE`, which `constants.is_offline_mode()` returns on every request:
`set_hub_offline` patches it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.request import Request, urlopen

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import (
    _CACHED_NO_EXIST,
    HfApi,
    file_download,
    hf_hub_download,
    hf_hub_url,
    scan_cache_dir,
    snapshot_download,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.hub_server import git_blob_sha1, redirect_huggingface_hub, running_hub, set_hub_offline

LAION = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
MARQO = "Marqo/marqo-fashionCLIP"
XLM_ROBERTA = "xlm-roberta-base"
SMALL_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
WEIGHTS = bytes(range(256)) * 256  # 64 KiB, an LFS file
BIG_WEIGHTS_FILE = "open_clip_pytorch_model.bin"
BIG_WEIGHTS = WEIGHTS[::-1] * 161  # a little more than the 10 MiB http_get reads at a time
REPOS = {
    LAION: {SMALL_FILE: b'{"model_cfg": {"embed_dim": 512}}', WEIGHTS_FILE: WEIGHTS},
    MARQO: {SMALL_FILE: b'{"model_cfg": {"embed_dim": 512}}', BIG_WEIGHTS_FILE: BIG_WEIGHTS},
    XLM_ROBERTA: {"config.json": b'{"model_type": "xlm-roberta"}', "tokenizer.json": b'{"version": "1.0"}',
                  "sentencepiece.bpe.model": b"spm" * 100, "onnx/model.onnx": b"onnx" * 10},
}


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def hub_cache(tmp_path) -> Path:
    return tmp_path / "hf_home" / "hub"


@pytest.fixture
def hub(monkeypatch, hub_cache):
    with running_hub(REPOS) as hub:
        assert redirect_huggingface_hub(monkeypatch, hub.url, hub_cache.parent) == hub_cache
        yield hub


@pytest.fixture
def instant_resume_waits(monkeypatch):
    """http_get waits 1 s before each of its up to 5 resumes; the tests that exhaust them skip the waits."""
    monkeypatch.setattr(file_download, "time", SimpleNamespace(sleep=lambda seconds: None))


def test_downloads_a_small_and_an_lfs_file_into_the_cache(hub, hub_cache):
    small_path = hf_hub_download(LAION, SMALL_FILE)
    weights_path = hf_hub_download(LAION, WEIGHTS_FILE)

    commit = hub.commit(LAION)
    repo_folder = hub_cache / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    assert Path(small_path) == repo_folder / "snapshots" / commit / SMALL_FILE
    assert Path(weights_path) == repo_folder / "snapshots" / commit / WEIGHTS_FILE
    assert Path(weights_path).is_symlink()
    assert Path(weights_path).read_bytes() == WEIGHTS
    # A blob is named by its ETag: the sha256 of an LFS file, the git blob id of another.
    assert Path(os.path.realpath(weights_path)) == repo_folder / "blobs" / hashlib.sha256(WEIGHTS).hexdigest()
    assert Path(os.path.realpath(small_path)) == repo_folder / "blobs" / git_blob_sha1(REPOS[LAION][SMALL_FILE])
    assert (repo_folder / "refs" / "main").read_text() == commit
    assert [(request.method, request.range) for request in hub.file_requests(WEIGHTS_FILE)] == [
        ("HEAD", None), ("GET", None)]

    assert try_to_load_from_cache(LAION, WEIGHTS_FILE) == weights_path
    assert try_to_load_from_cache(LAION, "absent.bin") is None
    [cached_repo] = scan_cache_dir().repos
    assert (cached_repo.repo_id, cached_repo.nb_files, cached_repo.size_on_disk) == (
        LAION, 2, len(WEIGHTS) + len(REPOS[LAION][SMALL_FILE]))


def test_a_repo_id_without_org_and_a_second_org_download(hub, hub_cache):
    assert Path(hf_hub_download(XLM_ROBERTA, "config.json")).read_bytes() == REPOS[XLM_ROBERTA]["config.json"]
    assert Path(hf_hub_download(MARQO, SMALL_FILE)).read_bytes() == REPOS[MARQO][SMALL_FILE]
    assert sorted(path.name for path in hub_cache.iterdir() if path.name.startswith("models--")) == [
        "models--Marqo--marqo-fashionCLIP", "models--xlm-roberta-base"]


def test_snapshot_download_lists_the_repo_and_fetches_the_allowed_files(hub, hub_cache):
    commit = hub.commit(XLM_ROBERTA)

    snapshot = Path(snapshot_download(XLM_ROBERTA, allow_patterns=["*.json", "onnx/*"]))

    assert snapshot == hub_cache / "models--xlm-roberta-base" / "snapshots" / commit
    assert sorted(str(path.relative_to(snapshot)) for path in snapshot.rglob("*") if path.is_file()) == [
        "config.json", "onnx/model.onnx", "tokenizer.json"]
    assert (snapshot / "onnx" / "model.onnx").read_bytes() == REPOS[XLM_ROBERTA]["onnx/model.onnx"]
    api_requests = [request for request in hub.requests if request.path.startswith("/api/models/")]
    assert [(request.path, request.query) for request in api_requests] == [
        (f"/api/models/{XLM_ROBERTA}/revision/main", ""),
        (f"/api/models/{XLM_ROBERTA}/tree/{commit}", "recursive=true&expand=false")]
    assert {request.revision for request in hub.requests if request.filename is not None} == {commit}
    assert (hub_cache / "models--xlm-roberta-base" / "trees" / f"{commit}.json").is_file()


def test_module_level_api_functions_reach_the_hub(hub):
    info = huggingface_hub.model_info(LAION, files_metadata=True)
    assert info.sha == hub.commit(LAION)
    siblings = {sibling.rfilename: sibling for sibling in info.siblings}
    assert siblings[WEIGHTS_FILE].lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert siblings[SMALL_FILE].lfs is None
    assert huggingface_hub.model_info(LAION, expand=["sha"]).sha == hub.commit(LAION)
    assert sorted(huggingface_hub.list_repo_files(XLM_ROBERTA)) == sorted(REPOS[XLM_ROBERTA])
    assert [entry.path for entry in huggingface_hub.list_repo_tree(XLM_ROBERTA, path_in_repo="onnx")] == [
        "onnx/model.onnx"]
    with pytest.raises(RemoteEntryNotFoundError):
        list(huggingface_hub.list_repo_tree(XLM_ROBERTA, path_in_repo="additional_chat_templates"))


def test_transformers_hub_calls_reach_the_hub(hub):
    transformers_hub = pytest.importorskip("transformers.utils.hub")
    assert transformers_hub.hf_api().endpoint == hub.url
    # Tokenizer loading lists `additional_chat_templates/`, which the hub answers EntryNotFound.
    assert transformers_hub.list_repo_templates(XLM_ROBERTA, local_files_only=False) == []
    assert hub.requests[-1].path == f"/api/models/{XLM_ROBERTA}/tree/main/additional_chat_templates"


def test_missing_file_repo_and_revision_raise_the_hub_errors(hub, hub_cache):
    with pytest.raises(RemoteEntryNotFoundError) as missing_file:
        hf_hub_download(LAION, "open_clip_pytorch_model.bin")
    assert isinstance(missing_file.value, EntryNotFoundError)
    # The absence is cached per commit, so a lookup needs no request.
    assert try_to_load_from_cache(LAION, "open_clip_pytorch_model.bin") is _CACHED_NO_EXIST

    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("laion/no-such-model", SMALL_FILE)
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("no-such-model")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(LAION, SMALL_FILE, revision="v9")


def test_a_cut_transfer_is_retried_within_the_call_from_the_last_whole_chunk(hub, instant_resume_waits):
    chunk_size = file_download.constants.DOWNLOAD_CHUNK_SIZE
    hub.cut_after(WEIGHTS_FILE, 10_000)
    hub.cut_after(BIG_WEIGHTS_FILE, chunk_size + 500)

    assert Path(hf_hub_download(LAION, WEIGHTS_FILE)).read_bytes() == WEIGHTS
    assert Path(hf_hub_download(MARQO, BIG_WEIGHTS_FILE)).read_bytes() == BIG_WEIGHTS
    # The 10,000 bytes, short of a whole chunk, are lost: the retry asks for the whole file.
    assert [(request.method, request.range) for request in hub.file_requests(WEIGHTS_FILE)] == [
        ("HEAD", None), ("GET", None), ("GET", None)]
    assert [(request.method, request.range) for request in hub.file_requests(BIG_WEIGHTS_FILE)] == [
        ("HEAD", None), ("GET", None), ("GET", f"bytes={chunk_size}-")]


def test_a_transfer_cut_past_the_retries_fails_and_the_next_call_starts_over(hub, hub_cache, instant_resume_waits):
    hub.cut_after(WEIGHTS_FILE, 10_000, times=6)  # the first attempt and its 5 retries

    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(LAION, WEIGHTS_FILE)
    assert [request.range for request in hub.file_requests(WEIGHTS_FILE) if request.method == "GET"] == [None] * 6
    blobs = hub_cache / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "blobs"
    assert list(blobs.iterdir()) == []  # the partial download is deleted, not kept as .incomplete
    assert try_to_load_from_cache(LAION, WEIGHTS_FILE) is None

    failed_call_requests = len(hub.requests)
    assert Path(hf_hub_download(LAION, WEIGHTS_FILE)).read_bytes() == WEIGHTS
    assert [(request.method, request.range) for request in hub.requests[failed_call_requests:]] == [
        ("HEAD", None), ("GET", None)]


def test_corrupt_content_of_the_right_size_is_cached_and_only_a_checksum_tells(hub, hub_cache):
    hub.corrupt(WEIGHTS_FILE)

    weights_path = hf_hub_download(LAION, WEIGHTS_FILE)

    expected_sha256 = hashlib.sha256(WEIGHTS).hexdigest()
    assert Path(weights_path).stat().st_size == len(WEIGHTS)
    assert Path(os.path.realpath(weights_path)).name == expected_sha256
    assert sha256_of(weights_path) != expected_sha256
    verification = HfApi().verify_repo_checksums(LAION, cache_dir=hub_cache)
    assert [(mismatch["path"], mismatch["algorithm"], mismatch["expected"])
            for mismatch in verification.mismatches] == [(WEIGHTS_FILE, "sha256", expected_sha256)]


def test_offline_mode_serves_the_cache_and_refuses_the_rest(hub, monkeypatch):
    cached_path = hf_hub_download(LAION, SMALL_FILE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf_hub_download(LAION, WEIGHTS_FILE)  # the variable alone was read at import: still online
    online_requests = len(hub.requests)

    set_hub_offline(monkeypatch)

    assert hf_hub_download(LAION, SMALL_FILE) == cached_path
    with pytest.raises(LocalEntryNotFoundError) as not_cached:
        hf_hub_download(XLM_ROBERTA, "config.json")
    assert isinstance(not_cached.value.__cause__, OfflineModeIsEnabled)
    with pytest.raises(LocalEntryNotFoundError):
        snapshot_download(XLM_ROBERTA)
    assert len(hub.requests) == online_requests


def test_hf_endpoint_set_in_process_is_not_read(monkeypatch, tmp_path):
    with running_hub(REPOS) as hub:
        set_hub_offline(monkeypatch, offline=False)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert not hf_hub_url(LAION, SMALL_FILE).startswith(hub.url)
        assert HfApi().endpoint != hub.url

        downloaded = hf_hub_download(LAION, SMALL_FILE, endpoint=hub.url, cache_dir=tmp_path, token=False)
        assert Path(downloaded).read_bytes() == REPOS[LAION][SMALL_FILE]


def test_a_subprocess_follows_hf_endpoint(hub, hub_cache):
    download = f"from huggingface_hub import hf_hub_download; print(hf_hub_download({XLM_ROBERTA!r}, 'config.json'))"
    completed = subprocess.run([sys.executable, "-c", download], capture_output=True, text=True, timeout=120,
                               check=True)
    assert Path(completed.stdout.strip()).parent == hub_cache / "models--xlm-roberta-base" / "snapshots" / hub.commit(
        XLM_ROBERTA)


def test_resolve_answers_carry_the_hub_headers_and_honour_ranges(hub):
    url = f"{hub.url}/{LAION}/resolve/main/{WEIGHTS_FILE}"
    with urlopen(Request(url, method="HEAD")) as head:
        expected_sha256 = hashlib.sha256(WEIGHTS).hexdigest()
        assert head.headers["X-Repo-Commit"] == hub.commit(LAION)
        assert head.headers["ETag"] == head.headers["X-Linked-Etag"] == f'"{expected_sha256}"'
        assert head.headers["X-Linked-Size"] == head.headers["Content-Length"] == str(len(WEIGHTS))
        assert head.headers["Accept-Ranges"] == "bytes"
        assert not any(name.lower().startswith("x-xet") for name in head.headers)
    with urlopen(Request(url, headers={"Range": "bytes=65000-"})) as tail:
        assert tail.status == 206
        assert tail.headers["Content-Range"] == f"bytes 65000-{len(WEIGHTS) - 1}/{len(WEIGHTS)}"
        assert tail.read() == WEIGHTS[65000:]
    with pytest.raises(OSError, match="416"):
        urlopen(Request(url, headers={"Range": f"bytes={len(WEIGHTS)}-"}))
