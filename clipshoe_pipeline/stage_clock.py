"""Seconds and peak memory per stage of an asset, for its metadata and the scale benchmarks.

A stage's peak is the process's resident high-water mark when the stage ends
(getrusage), so it is monotonic over a run: a stage that raised it is the one whose
peak differs from the stage before. Processes the stage started (a pool's workers)
are not counted: they report their own.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from clipshoe_pipeline.markdown import markdown_table


@dataclass
class StageClock:
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (seconds, peak MiB)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        seconds = self.stages.get(name, (0.0, 0.0))[0] + time.perf_counter() - start
        self.stages[name] = (seconds, peak_rss_mib())

    def markdown(self) -> str:
        return markdown_table(["stage", "seconds", "peak RSS so far (MiB)"],
                              ([name, f"{seconds:.2f}", f"{peak:.0f}"] for name, (seconds, peak) in self.stages.items()),
                              numeric_from=1)


def peak_rss_mib() -> float:
    """This process's resident high-water mark (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024
