"""Running real crawls (subprocesses) against the in-process replay shop."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from clipshoe_common import PROJECT_ROOT
from replay_shop.catalog import Catalog
from replay_shop.sites import renderers
from scrapers.interface import crawl_command, read_crawl_output


@dataclass
class CrawlResult:
    returncode: int
    log: str
    items: list[dict]
    rejections: list[dict]
    stats: dict


def listed_ids(catalog: Catalog, site: str) -> set[str]:
    """Every product the shop lists in the spider's default categories (ground truth)."""
    renderer = renderers()[site]
    return {p.product_id for category in renderer.categories for p in catalog.listing(site, category)}


def crawl_popen(site: str, shop_url: str, workdir: Path, **settings) -> subprocess.Popen:
    command = crawl_command(site, jobdir=workdir / "job", images_dir=workdir / "images",
                            replay_url=shop_url, settings=settings)
    log = (workdir / "crawl.log").open("a")
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)


def crawl(site: str, shop_url: str, workdir: Path, timeout: float = 120, **settings) -> CrawlResult:
    process = crawl_popen(site, shop_url, workdir, **settings)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    return collect(workdir, process.returncode)


def collect(workdir: Path, returncode: int) -> CrawlResult:
    output = read_crawl_output(workdir / "job")
    return CrawlResult(returncode=returncode, log=(workdir / "crawl.log").read_text(), items=list(output.items()),
                       rejections=list(output.rejections()), stats=dict(output.stats or {}))
