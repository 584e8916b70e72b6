"""A loopback Hugging Face Hub for tests: model repositories given as
`{repo_id: {filename: bytes}}`, served on 127.0.0.1 the way huggingface_hub 2.4 downloads
them, with faults a test can plant (`cut_after`, `corrupt`) and a log of what it was asked.

    with running_hub({"laion/CLIP-ViT-B-32-laion2B-s34B-b79K": {"open_clip_config.json": b"{}"}}) as hub:
        redirect_huggingface_hub(monkeypatch, hub.url, tmp_path / "hf_home")
        hf_hub_download("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_config.json")

What huggingface_hub 2.4.0 does, read in its source and checked by tests/test_hub_server.py:

- Endpoint. `constants.ENDPOINT` and `constants.HUGGINGFACE_CO_URL_TEMPLATE` are computed from
  HF_ENDPOINT once, at import, so setting the variable in a running process changes nothing.
  `hf_hub_url` (hence hf_hub_download) formats the template; `HfApi(...)` copies
  `constants.ENDPOINT` into `self.endpoint` when constructed. `snapshot_download` builds a new
  HfApi per call, but the module-level functions (`huggingface_hub.model_info`, `list_repo_tree`,
  ...) are bound to `huggingface_hub.hf_api.api`, created at import, and transformers caches its
  own instance in `transformers.utils.hub._hf_api`. So redirecting in-process takes the two
  constants, `hf_api.api.endpoint` and that cached instance (`redirect_huggingface_hub` does
  all of it, and isolates the cache and the login token); passing `endpoint=` to each call
  works too. Subprocesses just need HF_ENDPOINT (and HF_HOME / HF_HUB_CACHE).
- Offline. `constants.is_offline_mode()` returns `constants.HF_HUB_OFFLINE`, read from the
  environment at import; every request goes through an httpx2 event hook that calls it and
  raises `OfflineModeIsEnabled`, and transformers calls the same function. So a test flips it by
  monkeypatching `huggingface_hub.constants.HF_HUB_OFFLINE` (`set_hub_offline`); the
  environment variable alone only reaches subprocesses. Offline, a cached file is returned from
  `refs/main` + `snapshots/`, and a missing one raises `LocalEntryNotFoundError` (caused by
  `OfflineModeIsEnabled`).
- Errors. The resolve HEAD answer's `X-Error-Code` decides: `EntryNotFound` ->
  `RemoteEntryNotFoundError` (a subclass of `EntryNotFoundError` and `HfHubHTTPError`; it also
  writes `.no_exist/<commit>/<filename>` when `X-Repo-Commit` is present), `RepoNotFound` ->
  `RepositoryNotFoundError`, `RevisionNotFound` -> `RevisionNotFoundError`.
- Interrupted transfer. `http_get` catches httpx2's `RemoteProtocolError` (the connection closed
  before Content-Length bytes arrived), sleeps 1 s and asks again, within the one call, for
  what it has written: it reads the body in 10 MiB chunks (`constants.DOWNLOAD_CHUNK_SIZE`) and
  the bytes of an unfinished chunk are lost with the error, so the retry asks
  `Range: bytes=N-` with N a multiple of 10 MiB, or the whole file again (no Range) when the
  cut came before the first 10 MiB. It retries 5 times, a budget reset by every chunk written;
  past it, the `RemoteProtocolError` itself propagates. Each download writes to a
  process-unique `blobs/<etag>.<8 hex>.incomplete`, deleted when the download fails: nothing
  is left to resume, and the next call downloads the whole file again without a Range header.
- Integrity. Only the size is checked (`expected_size`, from X-Linked-Size or Content-Length);
  content is never hashed, so bytes differing from the sha256 ETag are cached as if right.
  The blob's file name is its ETag (the sha256 for LFS files), which makes the check cheap to do
  afterwards; `HfApi.verify_repo_checksums` does it against the tree listing.
- Cache (`cache_dir`; the default is `constants.HF_HUB_CACHE`, read per call by the download
  functions, but `scan_cache_dir` reads `utils._cache_manager.HF_HUB_CACHE`, a copy made at
  import, so both are patched): a repo lives in `models--{org}--{name}` (`models--{name}`
  without org), with `blobs/<etag>`,
  `snapshots/<commit>/<filename>` (a relative symlink to the blob), `refs/<revision>` holding
  the commit, and `trees/<commit>.json` once snapshot_download has listed it.
- What is asked. hf_hub_download: HEAD then GET `/{repo_id}/resolve/{revision}/{filename}`,
  needing X-Repo-Commit and ETag (X-Linked-Etag / X-Linked-Size first when present).
  snapshot_download: GET `/api/models/{repo_id}/revision/{revision}` for "sha" (skipped when the
  revision is a commit), GET `/api/models/{repo_id}/tree/{commit}?recursive=true&expand=false`
  for the files, then hf_hub_download of each at the commit. Once per process (progress bars
  ask whether an AI agent runs them) GET `/api/agent-harnesses`, answered here with the empty
  registry, cached in `constants.AGENT_HARNESSES_PATH` under HF_HOME. A tree entry with
  `xetHash`, or a HEAD answer with X-Xet-Hash, would switch the download to Xet (hf_xet is
  installed), so this hub sends neither.

Missing repos are answered 404 here; the real Hub answers 401 to anonymous callers, which
huggingface_hub maps to the same `RepositoryNotFoundError` since `X-Error-Code` decides.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from huggingface_hub import constants, hf_api
from huggingface_hub.utils import _cache_manager

# Files stored in Git LFS on the Hub: large ones, and the suffixes its default .gitattributes lists.
LFS_SIZE_THRESHOLD = 10_000
LFS_SUFFIXES = frozenset((".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".model", ".msgpack", ".onnx", ".h5"))
DEFAULT_BRANCH = "main"
EMPTY_AGENT_HARNESSES = {"standardEnvVars": [], "harnesses": {}}

_REPO_ID = r"(?P<repo_id>[^/]+(?:/[^/]+)?)"
_RESOLVE_PATH = re.compile(rf"^/{_REPO_ID}/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
_TREE_PATH = re.compile(rf"^/api/models/{_REPO_ID}/tree/(?P<revision>[^/]+)(?:/(?P<path_in_repo>.+))?$")
_MODEL_INFO_PATH = re.compile(rf"^/api/models/{_REPO_ID}(?:/revision/(?P<revision>[^/]+))?$")
_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def git_blob_sha1(content: bytes) -> str:
    """The object id git gives `content` as a blob (`git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class HostedFile:
    """A file of a repository, with the identifiers the Hub gives it."""

    content: bytes
    is_lfs: bool

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @cached_property
    def lfs_pointer(self) -> bytes:
        """What git stores in place of an LFS file."""
        return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                f"size {len(self.content)}\n").encode()

    @cached_property
    def etag(self) -> str:
        """Unquoted: the sha256 of an LFS file, the git blob id of another."""
        return self.sha256 if self.is_lfs else git_blob_sha1(self.content)

    @cached_property
    def blob_id(self) -> str:
        """The git blob id: of the pointer for an LFS file."""
        return git_blob_sha1(self.lfs_pointer if self.is_lfs else self.content)


def hosted_file(filename: str, content: bytes) -> HostedFile:
    is_lfs = len(content) > LFS_SIZE_THRESHOLD or PurePosixPath(filename).suffix in LFS_SUFFIXES
    return HostedFile(content=content, is_lfs=is_lfs)


@dataclass(frozen=True)
class HostedRepo:
    """A model repository at its single commit (branch `main`)."""

    repo_id: str
    files: Mapping[str, HostedFile]

    @cached_property
    def commit(self) -> str:
        return hashlib.sha1(f"commit of {self.repo_id}".encode()).hexdigest()

    def knows_revision(self, revision: str) -> bool:
        return revision in (DEFAULT_BRANCH, self.commit)

    def folders(self) -> set[str]:
        """Every folder of the repo, as a repo-relative path ("" for the root)."""
        # `parents` ends with ".", the root.
        return {""} | {str(folder) for name in self.files for folder in PurePosixPath(name).parents[:-1]}


def _parent_folder(path: str) -> str:
    """The repo-relative folder holding `path` ("" for the root)."""
    parent = str(PurePosixPath(path).parent)
    return "" if parent == "." else parent


@dataclass(frozen=True)
class HubRequest:
    """One request as the hub received it. `path` is percent-decoded and without the query;
    `repo_id`, `revision` and `filename` are set for `/resolve/` requests."""

    method: str
    path: str
    query: str
    range: str | None
    repo_id: str | None = None
    revision: str | None = None
    filename: str | None = None


@dataclass
class _PlannedCut:
    filename: str
    repo_id: str | None  # None: the file of that name in any repo
    n_bytes: int
    remaining: int

    def applies_to(self, repo_id: str, filename: str) -> bool:
        return self.remaining > 0 and self.filename == filename and self.repo_id in (None, repo_id)


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    cut_after: int | None = None  # body bytes sent before the connection is dropped


def _json_answer(status: int, payload: object, headers: Mapping[str, str] | None = None) -> _Answer:
    body = json.dumps(payload).encode()
    return _Answer(status, {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})},
                   body)


def _error_answer(error_code: str, message: str, headers: Mapping[str, str] | None = None) -> _Answer:
    return _json_answer(404, {"error": message},
                        {"X-Error-Code": error_code, "X-Error-Message": message, **(headers or {})})


class _UnsatisfiableRange(Exception):
    """The Range header asks for no byte of the file (answered 416)."""


def _requested_bytes(range_header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte a Range header asks for; None to send the whole file,
    as RFC 9110 allows for a header that is absent or not a single byte range."""
    match = _SINGLE_RANGE.match(range_header or "")
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        suffix_length = int(last)
        if not (suffix_length and size):
            raise _UnsatisfiableRange(range_header)
        return max(size - suffix_length, 0), size - 1
    start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start > end:
        raise _UnsatisfiableRange(range_header)
    return start, end


class LoopbackHub:
    """The repositories, the planted faults and the request log behind the HTTP server.

    `url` is the endpoint to give huggingface_hub; `requests` what it was asked, in order."""

    def __init__(self, repos: Mapping[str, Mapping[str, bytes]]) -> None:
        self.repos = {
            repo_id: HostedRepo(repo_id, {name: hosted_file(name, content) for name, content in files.items()})
            for repo_id, files in repos.items()}
        self.url = ""
        self._lock = threading.Lock()
        self._requests: list[HubRequest] = []
        self._planned_cuts: list[_PlannedCut] = []
        self._corrupted: set[tuple[str | None, str]] = set()

    @property
    def requests(self) -> list[HubRequest]:
        with self._lock:
            return list(self._requests)

    def file_requests(self, filename: str) -> list[HubRequest]:
        """The `/resolve/` requests for `filename`, in any repo and at any revision."""
        return [request for request in self.requests if request.filename == filename]

    def commit(self, repo_id: str) -> str:
        return self.repos[repo_id].commit

    def cut_after(self, filename: str, n_bytes: int, times: int = 1, *, repo_id: str | None = None) -> None:
        """Make the next `times` GETs of `filename` announce their full Content-Length but
        drop the connection after `n_bytes` of the body."""
        self._require_hosted(filename, repo_id)
        with self._lock:
            self._planned_cuts.append(_PlannedCut(filename, repo_id, n_bytes, times))

    def corrupt(self, filename: str, *, repo_id: str | None = None) -> None:
        """From now on serve `filename` with its first byte flipped: same size, same ETag,
        other content."""
        if not all(file.content for file in self._require_hosted(filename, repo_id)):
            raise ValueError(f"{filename} is empty: there is no byte to corrupt")
        with self._lock:
            self._corrupted.add((repo_id, filename))

    def _require_hosted(self, filename: str, repo_id: str | None) -> list[HostedFile]:
        files = [repo.files[filename] for repo in self.repos.values()
                 if filename in repo.files and repo_id in (None, repo.repo_id)]
        if not files:
            raise KeyError(f"no hosted repo{'' if repo_id is None else ' ' + repo_id} has {filename}")
        return files

    def answer(self, method: str, target: str, range_header: str | None) -> _Answer:
        """The answer to one request, logged before it is answered."""
        split_target = urlsplit(target)
        # Matched before decoding: a revision or folder arrives with its slashes as %2F.
        raw_path = split_target.path
        resolve_match = _RESOLVE_PATH.match(raw_path)
        resolve_parts = ({name: unquote(value) for name, value in resolve_match.groupdict().items()}
                         if resolve_match is not None else {})
        request = HubRequest(method=method, path=unquote(raw_path), query=split_target.query, range=range_header,
                             **resolve_parts)
        with self._lock:
            self._requests.append(request)

        if resolve_match is not None:
            return self._resolve(request)
        if method != "GET":
            return _Answer(405, {"Content-Length": "0"})
        if raw_path == "/api/agent-harnesses":
            return _json_answer(200, EMPTY_AGENT_HARNESSES)
        query = parse_qs(split_target.query)
        if (tree_match := _TREE_PATH.match(raw_path)) is not None:
            return self._tree(unquote(tree_match["repo_id"]), unquote(tree_match["revision"]),
                              unquote(tree_match["path_in_repo"] or ""), query)
        if (info_match := _MODEL_INFO_PATH.match(raw_path)) is not None:
            return self._model_info(unquote(info_match["repo_id"]), unquote(info_match["revision"] or DEFAULT_BRANCH),
                                    query)
        return _json_answer(404, {"error": "no such route on the loopback hub"})

    def _known_repo(self, repo_id: str, revision: str) -> HostedRepo | _Answer:
        repo = self.repos.get(repo_id)
        if repo is None:
            return _error_answer("RepoNotFound", "Repository not found")
        if not repo.knows_revision(revision):
            return _error_answer("RevisionNotFound", "Invalid rev id: " + revision)
        return repo

    def _resolve(self, request: HubRequest) -> _Answer:
        repo = self._known_repo(request.repo_id, request.revision)
        if isinstance(repo, _Answer):
            return repo
        commit_header = {"X-Repo-Commit": repo.commit}
        file = repo.files.get(request.filename)
        if file is None:
            return _error_answer("EntryNotFound", "Entry not found", commit_header)

        size = len(file.content)
        headers = {**commit_header, "ETag": f'"{file.etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if file.is_lfs:
            headers |= {"X-Linked-Etag": f'"{file.sha256}"', "X-Linked-Size": str(size)}
        if request.method == "HEAD":
            return _Answer(200, headers)
        try:
            requested_bytes = _requested_bytes(request.range, size)
        except _UnsatisfiableRange:
            return _Answer(416, {**headers, "Content-Range": f"bytes */{size}", "Content-Length": "0"})

        with self._lock:
            content = self._served_content(repo.repo_id, request.filename, file.content)
            cut = next((cut for cut in self._planned_cuts if cut.applies_to(repo.repo_id, request.filename)), None)
            if cut is not None:
                cut.remaining -= 1
        status = 200
        if requested_bytes is not None:
            first, last = requested_bytes
            content = content[first:last + 1]
            status = 206
            headers |= {"Content-Range": f"bytes {first}-{last}/{size}", "Content-Length": str(len(content))}
        return _Answer(status, headers, content, cut_after=None if cut is None else cut.n_bytes)

    def _served_content(self, repo_id: str, filename: str, content: bytes) -> bytes:
        if {(repo_id, filename), (None, filename)} & self._corrupted:
            return bytes([content[0] ^ 0xFF]) + content[1:]
        return content

    def _model_info(self, repo_id: str, revision: str, query: dict[str, list[str]]) -> _Answer:
        repo = self._known_repo(repo_id, revision)
        if isinstance(repo, _Answer):
            return repo
        with_blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for name, file in repo.files.items():
            sibling: dict[str, object] = {"rfilename": name}
            if with_blobs:
                sibling |= {"size": len(file.content), "blobId": file.blob_id}
                if file.is_lfs:
                    sibling["lfs"] = {"size": len(file.content), "sha256": file.sha256,
                                      "pointerSize": len(file.lfs_pointer)}
            siblings.append(sibling)
        info = {"id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False, "gated": False,
                "disabled": False, "tags": [], "siblings": siblings}
        if "expand" in query:
            # As on the Hub: an expanded answer holds the id and the properties asked for only.
            info = {"id": repo_id} | {name: info[name] for name in query["expand"] if name in info}
        return _json_answer(200, info)

    def _tree(self, repo_id: str, revision: str, path_in_repo: str, query: dict[str, list[str]]) -> _Answer:
        repo = self._known_repo(repo_id, revision)
        if isinstance(repo, _Answer):
            return repo
        folder = path_in_repo.strip("/")
        folders = repo.folders()
        if folder not in folders:
            return _error_answer("EntryNotFound", f"{folder} does not exist on {revision}",
                                 {"X-Repo-Commit": repo.commit})
        recursive = query.get("recursive", ["false"])[0].lower() == "true"

        def listed(path: str) -> bool:
            parent = _parent_folder(path)
            return parent == folder or (recursive and (folder == "" or parent.startswith(folder + "/")))

        entries: list[dict[str, object]] = [
            {"type": "directory", "oid": hashlib.sha1(f"tree {path}".encode()).hexdigest(), "size": 0, "path": path}
            for path in sorted(folders - {""}) if listed(path)]
        for name, file in sorted(repo.files.items()):
            if listed(name):
                entry: dict[str, object] = {"type": "file", "oid": file.blob_id, "size": len(file.content),
                                            "path": name}
                if file.is_lfs:
                    entry["lfs"] = {"oid": file.sha256, "size": len(file.content),
                                    "pointerSize": len(file.lfs_pointer)}
                entries.append(entry)
        return _json_answer(200, entries)


class _HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as huggingface_hub's pooled httpx2 client expects
    timeout = 60  # lets the thread of an idle kept-alive connection end
    server: _HubHTTPServer

    def do_HEAD(self) -> None:
        self._reply(send_body=False)

    def do_GET(self) -> None:
        self._reply(send_body=True)

    def _reply(self, send_body: bool) -> None:
        answer = self.server.hub.answer(self.command, self.path, self.headers.get("Range"))
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(answer.body if answer.cut_after is None else answer.body[:answer.cut_after])
        if answer.cut_after is not None:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the hub's own log is `LoopbackHub.requests`."""


class _HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: LoopbackHub) -> None:
        super().__init__(("127.0.0.1", 0), _HubRequestHandler)
        self.hub = hub


@contextmanager
def running_hub(repos: Mapping[str, Mapping[str, bytes]]) -> Iterator[LoopbackHub]:
    """A LoopbackHub serving `repos` on a free loopback port for the `with` block."""
    hub = LoopbackHub(repos)
    server = _HubHTTPServer(hub)
    host, port = server.server_address[:2]
    hub.url = f"http://{host}:{port}"
    # A short poll keeps `shutdown()` (which waits for the next poll) from adding half a second per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-hub",
                              daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def redirect_huggingface_hub(monkeypatch: pytest.MonkeyPatch, endpoint: str, hf_home: Path) -> Path:
    """Point huggingface_hub (and transformers' cached HfApi) at `endpoint` with a cache under
    `hf_home`, in this process and in subprocesses, online (conftest makes every test
    offline until it points at a loopback hub); returns the hub cache folder."""
    hub_cache = hf_home / "hub"
    set_hub_offline(monkeypatch, offline=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", str(hub_cache))  # scan_cache_dir's import-time copy
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)
    # A developer's own login must neither reach the test hub nor be refreshed by a test.
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(hf_home / ".agent_harnesses.json"))
    if importlib.util.find_spec("transformers") is not None:
        # Imported now, even if the test never uses it, so that the instance transformers builds
        # on first use (from the patched constants.ENDPOINT) is undone with the test.
        transformers_hub = importlib.import_module("transformers.utils.hub")
        monkeypatch.setattr(transformers_hub, "_hf_api", None)
    return hub_cache


def set_hub_offline(monkeypatch: pytest.MonkeyPatch, offline: bool = True) -> None:
    """Turn huggingface_hub's (and transformers') offline mode on or off for this test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
