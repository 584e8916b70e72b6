"""UT Zappos50K fetched from its authors' site into the layout `zappos.py` reads.

Each archive is downloaded to DEST/.downloads/<name>.zip.part; an interrupted download
keeps it, and the next run resumes with an HTTP Range request (starting over when the
server answers the whole file instead). Once it holds Content-Length bytes it becomes
<name>.zip, is read member by member (every CRC checked, no member outside the
destination, macOS and Windows litter skipped and counted) into a temp folder in
DEST, and each of its top folders is renamed into place: DEST/ut-zap50k-* is absent or
complete, never half-unpacked. No checksums are published, so that, and load_zappos
finding items in the result, is what "verified" means. A bad archive is removed, so a
rerun downloads it anew; an existing folder is left alone unless `force`.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.client import HTTPException, HTTPResponse
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TextIO
from urllib.parse import urlsplit

from clipshoe_pipeline.evaluation.zappos import ZapposReport, load_zappos

OFFICIAL_SITE = "https://vision.cs.utexas.edu/projects/finegrained/utzap50k/"
OFFICIAL_URLS = tuple(OFFICIAL_SITE + name for name in ("ut-zap50k-images-square.zip", "ut-zap50k-data.zip"))
LICENCE_NOTICE = f"""\
UT Zappos50K (A. Yu and K. Grauman, The University of Texas at Austin,
{OFFICIAL_SITE}) may be used for non-commercial research
purposes only; it is not redistributed here.
Work that uses it should cite:
  A. Yu and K. Grauman. Fine-Grained Visual Comparisons with Local Learning. CVPR 2014.
  A. Yu and K. Grauman. Semantic Jitter: Dense Supervision for Visual Comparisons via
  Synthetic Images. ICCV 2017.
Downloading it means accepting these terms."""
DOWNLOADS = ".downloads"
STAGING_PREFIX = ".unpack-"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0  # per socket operation, not for the whole download
PROGRESS_INTERVAL_S = 10.0
# What zip tools on macOS and Windows add to an archive; none of it is the dataset.
LITTER_NAMES = (".DS_Store", "Thumbs.db")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class FetchError(Exception):
    """An expected failure; the message says which file and what is wrong."""


@dataclass
class FetchedArchive:
    name: str  # the archive's, as archive_name gives it
    unpacked: list[str] = field(default_factory=list)  # its top folders, now in DEST
    kept: list[str] = field(default_factory=list)  # folders already in DEST, left alone
    skipped: Counter[str] = field(default_factory=Counter)  # kind of litter -> members not unpacked

    def summary(self) -> str:
        """'ut-zap50k-data: unpacked ut-zap50k-data; skipped .DS_Store 1, __MACOSX/ 8'."""
        done = [f"unpacked {', '.join(self.unpacked)}"] if self.unpacked else []
        if self.kept:
            done.append(f"kept the existing {', '.join(self.kept)} (--force replaces it)")
        if self.skipped:
            done.append("skipped " + ", ".join(f"{kind} {count}" for kind, count in sorted(self.skipped.items())))
        return f"{self.name}: {'; '.join(done)}"


def fetch_zappos(urls: Sequence[str], dest: Path, *, force: bool = False,
                 log: TextIO = sys.stderr) -> tuple[list[FetchedArchive], ZapposReport]:
    """Fetch every archive into `dest`, then check that the result is a copy
    load_zappos reads items from; returns what each archive did and the reader's report."""
    fetched = [fetch_archive(url, dest, force=force, log=log) for url in urls]
    return fetched, check_copy(dest)


def fetch_archive(url: str, dest: Path, *, force: bool = False, log: TextIO = sys.stderr) -> FetchedArchive:
    """Download, verify and unpack one archive into `dest`, unless the folder it is
    named after is there already (folders appear complete or not at all) and not `force`."""
    name = archive_name(url)
    if (dest / name).is_dir() and not force:
        return FetchedArchive(name, kept=[name])
    archive = dest / DOWNLOADS / f"{name}.zip"
    download(url, archive, log)
    try:
        fetched = unpack(archive, dest, force=force)
    except FetchError as error:
        _discard(archive)  # its bytes are wrong: resuming would keep them
        raise FetchError(f"{error}; the archive was removed: run again to download it anew") from error
    _discard(archive)  # unpacked: the folders are the copy
    return fetched


def archive_name(url: str) -> str:
    """'…/ut-zap50k-data.zip' -> 'ut-zap50k-data': the name of the archive and of its top folder."""
    name = PurePosixPath(urlsplit(url).path).name.removesuffix(".zip")
    if not name:
        raise FetchError(f"{url}: the URL names no file")
    return name


def download(url: str, archive: Path, log: TextIO) -> None:
    """`url` into `archive`, through `archive`.part, which an interrupted download
    leaves behind for the next call to resume."""
    if archive.exists():  # complete from a run that stopped before unpacking it
        return
    part = archive.with_name(f"{archive.name}.part")
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    print(f"downloading {url}" + (f" (resuming after {_mib(offset)})" if offset else ""), file=log, flush=True)
    try:
        with urllib.request.urlopen(_request(url, offset), timeout=TIMEOUT_S) as response:
            offset, total = _resume_point(response, offset, url, part)
            with open(part, "ab" if offset else "wb") as sink:
                _copy(response, sink, offset, _Progress(archive.name, total, log))
    except urllib.error.HTTPError as error:
        if error.code == 416:  # the .part is not a prefix of this file: it cannot be resumed
            part.unlink()
            raise FetchError(f"{url}: the server cannot resume {part} (HTTP 416): removed, "
                             "run again to download it anew") from error
        raise FetchError(f"{url}: HTTP {error.code} {error.reason}") from error
    except (OSError, HTTPException) as error:  # refused, reset, timed out (URLError is an OSError)
        resume = f"{part} kept: run again to resume" if part.exists() else "run again"
        raise FetchError(f"{url}: download failed ({error}); {resume}") from error
    size = part.stat().st_size
    if total is not None and size != total:
        raise FetchError(f"{url}: download interrupted after {size} of {total} bytes; {part} kept: "
                         "run again to resume")
    part.replace(archive)


def unpack(archive: Path, dest: Path, *, force: bool) -> FetchedArchive:
    """The members of `archive`, litter skipped, into a temp folder in `dest`, then each
    top folder renamed into `dest` (an existing one replaced only when `force`)."""
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=STAGING_PREFIX))
    try:
        unpacked, replaced = staging / "unpacked", staging / "replaced"
        replaced.mkdir()
        fetched = FetchedArchive(archive.stem, skipped=extract(archive, unpacked))
        if not unpacked.is_dir():
            raise FetchError(f"{archive}: holds no folder, so it is not a UT Zappos50K archive")
        for folder in sorted(unpacked.iterdir()):
            target = dest / folder.name
            if target.exists() and not force:
                fetched.kept.append(folder.name)
                continue
            if target.exists():
                target.rename(replaced / folder.name)
            folder.rename(target)
            fetched.unpacked.append(folder.name)
        return fetched
    finally:
        shutil.rmtree(staging)


def extract(archive: Path, into: Path) -> Counter[str]:
    """Every member of `archive` under `into`, each CRC checked on the way (zipfile checks
    it once a member is read to its end); returns the litter skipped, by kind."""
    try:
        with zipfile.ZipFile(archive) as zip_file:
            members, skipped = _members(zip_file, archive)
            for member, path in members:
                _extract_member(zip_file, member, into.joinpath(*path.parts), archive)
    except zipfile.BadZipFile as error:  # from opening it: its central directory is unreadable
        raise FetchError(f"{archive}: not a readable zip archive ({error}): truncated or corrupt") from error
    return skipped


def check_copy(dest: Path) -> ZapposReport:
    """load_zappos' report on `dest`; a copy it cannot read, or with no items, is an error."""
    try:
        report = load_zappos(dest).report
    except FileNotFoundError as error:
        raise FetchError(f"{dest} is not a usable UT Zappos50K copy: {error}") from error
    if not report.items:
        raise FetchError(f"{dest} is not a usable UT Zappos50K copy: no image has a metadata row")
    return report


def litter_kind(path: PurePosixPath) -> str | None:
    """What kind of not-the-dataset file `path` is (None: it is part of the dataset)."""
    if path.parts[0] == "__MACOSX":
        return "__MACOSX/"
    if path.name.startswith("._"):
        return "._* (AppleDouble)"
    if path.name in LITTER_NAMES:
        return path.name
    if len(path.parts) == 1:
        return "file outside a top folder"
    return None


def member_path(name: str, archive: Path) -> PurePosixPath:
    """A member's path inside the destination; a name that would leave it (absolute,
    a drive, '..') is refused rather than cleaned up."""
    path = PurePosixPath(name.replace("\\", "/"))
    if not path.parts or path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        raise FetchError(f"{archive}: member {name!r} would be written outside the destination: refused")
    return path


def _members(zip_file: zipfile.ZipFile, archive: Path) -> tuple[list[tuple[zipfile.ZipInfo, PurePosixPath]],
                                                                 Counter[str]]:
    """The members to extract with their paths, and the litter skipped; every name is
    checked before anything is written."""
    members, skipped = [], Counter()
    for member in zip_file.infolist():
        path = member_path(member.filename, archive)
        if member.is_dir():
            continue  # folders come with their files
        if kind := litter_kind(path):
            skipped[kind] += 1
        else:
            members.append((member, path))
    return members, skipped


def _extract_member(zip_file: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, archive: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zip_file.open(member) as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK_BYTES)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise FetchError(f"{archive}: member {member.filename} is corrupt ({error})") from error


def _request(url: str, offset: int) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})


def _resume_point(response: HTTPResponse, offset: int, url: str, part: Path) -> tuple[int, int | None]:
    """(where the response's body starts in the file, the file's size when the server says)."""
    length = response.headers.get("Content-Length")
    if response.status == 200:  # the whole file, also when a range was asked for
        return 0, int(length) if length is not None else None
    if response.status != 206:
        raise FetchError(f"{url}: unexpected HTTP {response.status} {response.reason}")
    content_range = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if content_range is None or int(content_range[1]) != offset:
        raise FetchError(f"{url}: asked to resume at byte {offset}, the server answered "
                         f"{response.headers.get('Content-Range')!r}; delete {part} to start over")
    if content_range[2] != "*":
        return offset, int(content_range[2])
    return offset, offset + int(length) if length is not None else None


def _copy(response: HTTPResponse, sink: BinaryIO, done: int, progress: _Progress) -> None:
    while chunk := response.read(CHUNK_BYTES):
        sink.write(chunk)
        done += len(chunk)
        progress.show(done)
    progress.show(done, final=True)


def _discard(archive: Path) -> None:
    archive.unlink()
    if not any(archive.parent.iterdir()):
        archive.parent.rmdir()


class _Progress:
    """'name: 12.0 MiB / 190.0 MiB (6%)' lines, at most one per PROGRESS_INTERVAL_S and one at the end."""

    def __init__(self, name: str, total: int | None, log: TextIO):
        self.name, self.total, self.log = name, total, log
        self.shown_at = time.monotonic()

    def show(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if final or now - self.shown_at >= PROGRESS_INTERVAL_S:
            of_total = f" / {_mib(self.total)} ({done / self.total:.0%})" if self.total else ""
            print(f"{self.name}: {_mib(done)}{of_total}", file=self.log, flush=True)
            self.shown_at = now


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
