"""How to launch a crawl as a subprocess — the one place that builds the command.

Scrapy's Twisted reactor cannot restart inside a process, so every caller (the
Dagster asset, the demo, tests, benchmarks) runs `scrapy crawl` as a child process
from the repository root, where scrapy.cfg lives.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path



def crawl_command(site: str, *, jobdir: Path, images_dir: Path, replay_url: str | None = None,
                  settings: Mapping[str, object] | None = None,
                  spider_args: Mapping[str, object] | None = None) -> list[str]:
    """`python -m scrapy crawl SITE -s JOBDIR=... ...`; run it with cwd=PROJECT_ROOT."""
    command = [sys.executable, "-m", "scrapy", "crawl", site,
               "-s", f"JOBDIR={jobdir}", "-s", f"CLIPSHOE_IMAGES_STORE={images_dir}"]
    if replay_url:
        command += ["-s", f"CLIPSHOE_REPLAY_URL={replay_url}"]
    for name, value in (settings or {}).items():
        command += ["-s", f"{name}={value}"]
    for name, value in (spider_args or {}).items():
        if value is not None:
            command += ["-a", f"{name}={value}"]
    return command
