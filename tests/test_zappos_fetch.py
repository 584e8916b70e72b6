"""`clipshoe zappos fetch` against a loopback server holding the two archives as a Mac
zips them: unpacked into the official layout with the litter skipped and counted,
resumed after an interruption (also from a server that ignores Range), a truncated or
corrupt archive or a zip-slip member refused with nothing left behind, an existing
copy kept; and the evaluation finding the fetched copy with no setting."""

from __future__ import annotations

import io
import re
import struct
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath

import pytest

from clipshoe_pipeline.cli import main
from clipshoe_pipeline.evaluation.zappos import load_zappos
from clipshoe_pipeline.evaluation.zappos_fetch import DOWNLOADS, STAGING_PREFIX
from clipshoe_pipeline.settings import DATA_DIR, ZAPPOS_DIR
from tests.builders import ZAPPOS_ARCHIVE_FOLDERS, zappos_archives

IMAGES, DATA = (f"{folder}.zip" for folder in ZAPPOS_ARCHIVE_FOLDERS)


class ArchiveServer(ThreadingHTTPServer):
    """Serves `archives` (file name -> bytes) at /<name>, honouring Range unless told not
    to; the first `drops` responses stop after half their body. Records every request."""

    def __init__(self, archives: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), _ArchiveHandler)
        self.archives = dict(archives)
        self.honour_range = True
        self.drops = 0
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


class _ArchiveHandler(BaseHTTPRequestHandler):
    server: ArchiveServer

    def do_GET(self) -> None:
        asked = self.headers.get("Range")
        self.server.requests.append((self.path, asked))
        body = self.server.archives.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        resume = re.fullmatch(r"bytes=(\d+)-", asked or "")
        start = int(resume[1]) if resume and self.server.honour_range else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if self.server.drops:
            self.server.drops -= 1
            payload = payload[:len(payload) // 2]  # then the connection closes: HTTP/1.0
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, bytes]:
    return zappos_archives(tmp_path_factory.mktemp("zappos-source"))


@pytest.fixture
def server(archives) -> Iterator[ArchiveServer]:
    httpd = ArchiveServer(archives)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(DATA_DIR, str(tmp_path))
    monkeypatch.delenv(ZAPPOS_DIR, raising=False)
    return tmp_path


def fetch(server: ArchiveServer, *options: str, names: tuple[str, ...] = (IMAGES, DATA)) -> int:
    return main(["zappos", "fetch", *(f"--url={server.url(name)}" for name in names), *options])


def leftovers(dest: Path) -> list[str]:
    """Trees, temp folders and archives a failed fetch must not leave."""
    return sorted(path.name for path in dest.glob("*") if path.name.startswith(("ut-zap50k-", STAGING_PREFIX))) + \
        sorted(path.name for path in (dest / DOWNLOADS).glob("*.zip"))


def test_fetch_unpacks_the_official_layout_into_the_data_dir_and_counts_the_litter(server, data_dir, capsys):
    assert fetch(server) == 0  # no --dest: the data dir's zappos/

    dest = data_dir / "zappos"
    assert sorted(path.name for path in dest.iterdir()) == sorted(ZAPPOS_ARCHIVE_FOLDERS)  # nothing else left
    assert not list(dest.rglob("._*")) and not list(dest.rglob(".DS_Store"))
    report = load_zappos(dest).report
    assert (report.items, report.image_files, report.duplicate_images, report.images_without_row) == (5, 7, 1, 1)
    assert (report.duplicate_rows, report.rows_without_image) == (1, 1)
    out = capsys.readouterr().out
    assert out.startswith("UT Zappos50K (A. Yu and K. Grauman") and "non-commercial research" in out
    assert "ut-zap50k-images-square: unpacked ut-zap50k-images-square; skipped ." \
           "DS_Store 1, ._* (AppleDouble) 1, __MACOSX/ 7" in out
    assert "ut-zap50k-data: unpacked ut-zap50k-data; skipped .DS_Store 1, ._* (AppleDouble) 1, __MACOSX/ 1" in out
    assert f"UT Zappos50K is at {dest}" in out
    assert "  items: 5\n" in out and "  duplicate_images: 1\n" in out and "  images_without_row: 1\n" in out


@pytest.mark.parametrize("honour_range", [True, False], ids=["resumed", "server-ignores-range"])
def test_an_interrupted_download_is_kept_and_the_next_run_resumes_it(server, archives, tmp_path, capsys,
                                                                     honour_range):
    server.drops, server.honour_range = 1, honour_range
    dest = tmp_path / "zappos"
    half = len(archives[DATA]) // 2

    assert fetch(server, f"--dest={dest}", names=(DATA,)) == 1
    error = capsys.readouterr().err
    part = dest / DOWNLOADS / f"{DATA}.part"
    assert f"{server.url(DATA)}: download interrupted after {half} of {len(archives[DATA])} bytes" in error
    assert f"{part} kept: run again to resume" in error and "Traceback" not in error
    assert part.stat().st_size == half
    assert leftovers(dest) == []

    assert fetch(server, f"--dest={dest}", names=(DATA, IMAGES)) == 0
    assert server.requests[1] == (f"/{DATA}", f"bytes={half}-")
    assert (dest / "ut-zap50k-data" / "meta-data.csv").read_bytes() == \
        zipfile.ZipFile(io.BytesIO(archives[DATA])).read("ut-zap50k-data/meta-data.csv")
    assert load_zappos(dest).report.items == 5
    assert not (dest / DOWNLOADS).exists()


def truncated(archive: bytes) -> bytes:
    return archive[:len(archive) // 2]


def corrupted(archive: bytes) -> bytes:
    """`archive` with a byte flipped inside its first JPEG's (stored) data: a CRC error."""
    member = next(m for m in zipfile.ZipFile(io.BytesIO(archive)).infolist()
                  if m.filename.endswith(".jpg") and not PurePosixPath(m.filename).name.startswith("._"))
    name_length, extra_length = struct.unpack_from("<HH", archive, member.header_offset + 26)
    flipped = member.header_offset + 30 + name_length + extra_length + member.compress_size // 2
    return archive[:flipped] + bytes([archive[flipped] ^ 0xFF]) + archive[flipped + 1:]


@pytest.mark.parametrize(("damage", "complaint"), [
    (truncated, "not a readable zip archive (File is not a zip file): truncated or corrupt"),
    (corrupted, "member ut-zap50k-images-square/Boots/Ankle/Acme Co./100.1.jpg is corrupt (Bad CRC-32"),
], ids=["truncated", "corrupt-member"])
def test_a_damaged_archive_is_refused_and_removed_leaving_no_tree(server, archives, tmp_path, capsys, damage,
                                                                  complaint):
    server.archives[IMAGES] = damage(archives[IMAGES])
    dest = tmp_path / "zappos"

    assert fetch(server, f"--dest={dest}") == 1

    error = capsys.readouterr().err
    assert f"{dest / DOWNLOADS / IMAGES}: {complaint}" in error
    assert "the archive was removed: run again to download it anew" in error and "Traceback" not in error
    assert leftovers(dest) == [] and not (dest / DOWNLOADS).exists()


def test_an_http_error_names_the_url_and_leaves_nothing(server, tmp_path, capsys):
    dest = tmp_path / "zappos"
    assert fetch(server, f"--dest={dest}", names=("ut-zap50k-images.zip",)) == 1
    assert f"{server.url('ut-zap50k-images.zip')}: HTTP 404 Not Found" in capsys.readouterr().err
    assert leftovers(dest) == []


@pytest.mark.parametrize("escaping", ["ut-zap50k-data/../../escaped.txt", "/tmp/escaped.txt"])
def test_a_member_outside_the_destination_is_refused(server, archives, tmp_path, capsys, escaping):
    slip = io.BytesIO()
    with zipfile.ZipFile(slip, "w") as archive:
        archive.writestr("ut-zap50k-data/meta-data.csv", "CID\n")
        archive.writestr(escaping, "written outside")
    server.archives[DATA] = slip.getvalue()
    dest = tmp_path / "fetched" / "zappos"

    assert fetch(server, f"--dest={dest}", names=(DATA,)) == 1

    assert f"member {escaping!r} would be written outside the destination: refused" in capsys.readouterr().err
    assert not list(tmp_path.rglob("escaped.txt")) and not Path("/tmp/escaped.txt").exists()
    assert leftovers(dest) == []


def test_an_existing_copy_is_kept_unless_forced(server, tmp_path, capsys):
    dest = tmp_path / "zappos"
    assert fetch(server, f"--dest={dest}") == 0
    marker = dest / "ut-zap50k-data" / "edited-by-hand"
    marker.write_text("mine")
    requests = len(server.requests)

    assert fetch(server, f"--dest={dest}") == 0
    assert marker.exists() and len(server.requests) == requests  # nothing downloaded
    assert "ut-zap50k-data: kept the existing ut-zap50k-data (--force replaces it)" in capsys.readouterr().out

    assert fetch(server, f"--dest={dest}", "--force") == 0
    assert not marker.exists() and len(server.requests) == requests + 2
    assert sorted(path.name for path in dest.iterdir()) == sorted(ZAPPOS_ARCHIVE_FOLDERS)
    assert load_zappos(dest).report.items == 5


@pytest.mark.slow
def test_the_evaluation_scores_a_fetched_copy_with_nothing_configured(server, data_dir, monkeypatch):
    # Imported here: Dagster's definitions take seconds to load, and only this test needs them.
    import dagster as dg

    from clipshoe_pipeline.catalog_db import CatalogDB
    from tests.test_evaluate_asset import TINY_BASELINE, metadata_of, run_job

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # see test_finetune_asset
    assert fetch(server, f"--dest={data_dir / 'zappos'}") == 0

    with dg.DagsterInstance.ephemeral() as instance:
        result = run_job(instance, "evaluate_job", "model_metrics", {**TINY_BASELINE, "languages": ["en"]})
    assert result.success, [event.message for event in result.all_events if event.is_failure]

    rows = CatalogDB(data_dir=str(data_dir)).query(
        "SELECT DISTINCT attribute, k FROM metrics WHERE dataset = 'ut-zappos50k' AND metric = 'acc'")
    assert {"Category", "SubCategory", "Gender"} <= {row["attribute"] for row in rows}
    assert {row["k"] for row in rows} >= {1}
    zappos = metadata_of(result)["zappos"]
    assert (zappos["items"], zappos["duplicate_images"], zappos["images_without_row"]) == (5, 1, 1)
    assert (zappos["duplicate_rows"], zappos["rows_without_image"], zappos["image_files"]) == (1, 1, 7)
