"""The crawl journal: the crash-safe record of what a crawl has collected.

Scrapy's JOBDIR persists its queue and seen-set only on a clean stop, so after a
SIGKILL it can lose in-flight requests. The journal is written item by item
(flushed after each line), so it survives any kill: on restart the spider
re-walks listings and skips every product already here. The Dagster asset turns
the journal into Parquet; `-O file` feeds still work for ad-hoc runs.

Files, under JOBDIR:
- items.jsonl       one collected product per line (with its image results)
- rejections.jsonl  one dropped item / failed page / failed image per line
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ITEMS = "items.jsonl"
REJECTIONS = "rejections.jsonl"


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Lines of a journal file; a torn last line (killed mid-write) is skipped."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                logger.warning("Skipping torn last line of %s (%d bytes)", path, len(raw))
                return
            yield json.loads(raw)


class Journal:
    def __init__(self, directory: Path | None):
        self.directory = directory
        self._files: dict[str, Any] = {}
        self._collected: set[str] | None = None

    @classmethod
    def from_settings(cls, settings) -> "Journal":
        directory = settings.get("JOBDIR")
        return cls(Path(directory) if directory else None)

    @classmethod
    def of(cls, crawler) -> "Journal":
        """The crawl's one journal, shared by every component that records to it,
        closed when the engine stops."""
        journal = getattr(crawler, "_clipshoe_journal", None)
        if journal is None:
            from scrapy import signals

            journal = crawler._clipshoe_journal = cls.from_settings(crawler.settings)
            crawler.signals.connect(journal.close, signal=signals.engine_stopped, weak=False)
        return journal

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def collected_ids(self) -> set[str]:
        """Products journaled by earlier runs of this crawl (read once, then cached)."""
        if self._collected is None:
            self._collected = (set() if not self.enabled else
                               {row["product_id"] for row in read_jsonl(self.directory / ITEMS)})
        return set(self._collected)

    def append_item(self, row: dict[str, Any]) -> None:
        self._write(ITEMS, row)

    def reject(self, *, site: str, stage: str, reason: str, product_id: str | None = None,
               url: str | None = None, image_url: str | None = None) -> None:
        self._write(REJECTIONS, {"site": site, "product_id": product_id, "url": url,
                                 "image_url": image_url, "stage": stage, "reason": reason})

    def _write(self, name: str, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        f = self._files.get(name)
        if f is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / name
            self._heal_torn_tail(path)
            f = self._files[name] = path.open("a", encoding="utf-8")
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()  # in the kernel's hands now: survives SIGKILL of this process

    @staticmethod
    def _heal_torn_tail(path: Path) -> None:
        """Cut a half-written last line left by a kill, so appends start on a fresh line."""
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("rb+") as f:
            data = f.read()
            if not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def close(self, **_signal_kwargs) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
