"""Files that are either the old version or the new one, never half of either.

Readers (DuckDB views, curation, a UI) may open a file while a run rewrites it: the
new bytes go to a temp file in the same folder, reach the disk, and one rename
(`os.replace`, atomic on one filesystem) puts them in place. A crash or an error
leaves the previous file untouched and no temp file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """An open temp file beside `path` that becomes `path` when the block ends without
    an error (and is removed when it does not)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_file(path) as sink:
        sink.write(data)


def write_json_atomic(path: Path, payload: Any) -> None:
    """`payload` as indented, key-sorted JSON (values JSON lacks written with str())."""
    with atomic_file(path, "w") as sink:
        json.dump(payload, sink, indent=2, sort_keys=True, default=str)


def write_once(path: Path, data: bytes) -> None:
    """Write `data` to `path` unless it exists: in a content-addressed store an existing
    file already holds these bytes, and since files appear by rename, it is complete."""
    if not path.exists():
        write_bytes_atomic(path, data)


def replace_dir(staging: Path, target: Path) -> None:
    """Rename the finished folder `staging` to `target`; a `target` already there stays
    whole until the new one is in place, then is removed."""
    if not target.exists():
        staging.rename(target)
        return
    retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
    target.rename(retired / target.name)
    staging.rename(target)
    shutil.rmtree(retired)


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a text file (a log), or a sentence saying it is missing."""
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
