"""The Dagster UI as a user meets it, in a real browser: `clipshoe dev` (what `make dev`
runs: dg dev's webserver, daemon and code server, with the replay shop) over a small
instance holding one real crawl and its curation, checked through the GraphQL API and
with Playwright driving Debian's Chromium.

What is materialized is what is cheap: the crawl of one site against a small replay
shop, then curated_pairs, whose materialization has metadata tables (markdown) and a
plot (the diversity PNG). finetuned_clip and model_metrics stay unmaterialized:
training and evaluation would take minutes; the lineage covers them all the same.

Screenshots go to each test's tmp_path and, when CLIPSHOE_UI_SCREENSHOTS names a
folder, there too (to look at them after a CI run).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from clipshoe_pipeline.paths import ensure_dagster_home
from replay_shop.catalog import Catalog
from replay_shop.server import running_shop
from scrapers.items import SITES
from tests.dev_server import LOCATION, DevServer, start_dev

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium run as root on a closed network: no sandbox (root), no GPU, and none
# of the background connections (QUIC, updates, sync) it would otherwise keep trying.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1920, "height": 1080}  # the whole expanded asset graph fits
UI_TIMEOUT_MS = 60_000  # pages query a webserver that shares 2 cores with the daemon and code server
SCREENSHOTS_ENV = "CLIPSHOE_UI_SCREENSHOTS"

pytestmark = pytest.mark.slow

CRAWLED_SITE = "tiki"
# Read off the assets' deps in clipshoe_pipeline/defs/*/assets.py.
EXPECTED_EDGES = {
    ("raw_products", "curated_pairs"),
    ("curated_pairs", "finetuned_clip"),
    ("finetuned_clip", "model_metrics"),
    ("curated_pairs", "model_metrics"),  # the evaluation reads the test split itself
}
EXPECTED_ASSETS = {asset for edge in EXPECTED_EDGES for asset in edge}
EXPECTED_SCHEDULES = {f"raw_products_{site}_schedule" for site in SITES}  # one recrawl schedule per shop

ASSET_NODES_QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"
SCHEDULES_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { location { name } schedules { name } } } } }
"""


@dataclass(frozen=True)
class Materialized:
    data_dir: Path
    curate_run_id: str
    pairs_out: int
    plot: Path  # the diversity PNG curated_pairs wrote


@pytest.fixture(scope="module")
def materialized(tmp_path_factory) -> Materialized:
    """A data dir and a persistent Dagster instance (its DAGSTER_HOME inside) holding
    a crawl of one site of a small replay shop and the curation of it."""
    data = tmp_path_factory.mktemp("ui_data")
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLIPSHOE_DATA_DIR", str(data))
        patch.setenv("DAGSTER_HOME", str(data / "dagster_home"))
        ensure_dagster_home()
        from clipshoe_pipeline.definitions import defs

        with running_shop(Catalog(seed=5, products_per_site=20)) as shop, dg.DagsterInstance.get() as instance:
            crawl = defs.resolve_job_def("crawl_job").execute_in_process(
                instance=instance, partition_key=CRAWLED_SITE, raise_on_error=False,
                run_config={**quiet, "resources": {"crawler": {"config": {"replay_url": shop.url}}}})
            assert crawl.success, [event.message for event in crawl.all_events if event.is_failure]
            curate = defs.resolve_job_def("curate_job").execute_in_process(
                instance=instance, raise_on_error=False, run_config=quiet)
            assert curate.success, [event.message for event in curate.all_events if event.is_failure]
    (materialization,) = curate.asset_materializations_for_node("curated_pairs")
    return Materialized(data, curate.run_id, materialization.metadata["pairs_out"].value,
                        Path(materialization.metadata["diversity_plot_path"].value))


@pytest.fixture(scope="module")
def server(materialized, tmp_path_factory) -> Iterator[DevServer]:
    """`clipshoe dev` on that instance, started as users start it; at teardown it is
    sent SIGTERM, and every process of its tree (dg dev's group included) must be gone."""
    server = start_dev(materialized.data_dir, tmp_path_factory.mktemp("ui_server") / "dev.log",
                       "--products-per-site", "5")
    try:
        yield server
        stopped = server.stop()
    finally:
        server.kill()
    assert stopped.leftovers == [], stopped
    assert stopped.returncode == 128 + signal.SIGTERM, server.log_tail()


@pytest.fixture(scope="module")
def page(server) -> Iterator[Page]:
    """A fresh Chromium profile on the UI, the first-visit dialog dismissed. Without
    Chromium: skipped on a developer's machine, failed in CI, where it is installed."""
    if not CHROMIUM.exists():
        reason = f"no {CHROMIUM}: apt-get install --no-install-recommends chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI installs it: see .ci/run)")
        pytest.skip(reason)
    nux = server.graphql("{ shouldShowNux }")["shouldShowNux"]
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
        try:
            page = context.pages[0]  # a persistent context opens with one
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            page.goto(server.url)
            if nux:  # shown once per DAGSTER_HOME, and ours is new
                dialog = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
                dialog.get_by_role("button", name="Skip").click()
                expect(dialog).to_be_hidden()
            yield page
        finally:
            context.close()


@pytest.fixture
def screenshot(tmp_path) -> Callable[[Page, str], Path]:
    def take(page: Page, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=path)
        if folder := os.environ.get(SCREENSHOTS_ENV):
            Path(folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(folder) / path.name)
        return path

    return take


def test_graphql_lineage_is_the_pipeline(server):
    nodes = server.graphql(ASSET_NODES_QUERY)["assetNodes"]
    assets = {"/".join(node["assetKey"]["path"]) for node in nodes}
    edges = {("/".join(dep["path"]), "/".join(node["assetKey"]["path"])) for node in nodes
             for dep in node["dependencyKeys"]}
    assert assets == EXPECTED_ASSETS
    assert edges == EXPECTED_EDGES


def test_asset_graph_shows_every_asset(page, server, screenshot):
    page.goto(server.url)
    page.get_by_role("link", name=re.compile(r"\bLineage$")).click()  # its name starts with its icon's
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    page.locator('[aria-label="settings"]').last.click()  # the graph's settings, not the UI's (nav, first)
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile(r"[?&]expanded="))
    page.reload()  # the graph is zoomed to fit when it loads; expanding alone leaves it cut off
    for asset in sorted(EXPECTED_ASSETS):
        expect(page.get_by_text(asset, exact=True)).to_be_visible()
    # The nodes' status, from our instance: curated_pairs materialized, training and evaluation not.
    expect(page.get_by_text("Materialized", exact=True)).to_have_count(1)
    expect(page.get_by_text("Never materialized", exact=True)).to_have_count(2)
    screenshot(page, "asset_graph")


def test_latest_materialization_shows_its_metadata_tables_and_plot(page, server, materialized, screenshot):
    page.goto(f"{server.url}/assets/curated_pairs?view=events")
    expect(page.get_by_text(f"Materialized in run {materialized.curate_run_id[:8]}")).to_be_visible()

    def entry(key: str):
        return page.locator("tr").filter(has=page.get_by_text(key, exact=True))

    expect(entry("pairs_out")).to_contain_text(str(materialized.pairs_out))
    rejections = entry("rejections_by_reason").locator("table")  # markdown, rendered as a table
    expect(rejections).to_be_visible()
    expect(rejections.locator("th").first).to_have_text("reason")
    screenshot(page, "materialization")

    entry("diversity_plot").get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog").filter(has_text="diversity_plot")
    plot = dialog.get_by_role("img", name="diversity")
    expect(plot).to_be_visible()
    plot.evaluate("image => image.decode()")  # the data URI decoded, not only the element laid out
    with Image.open(materialized.plot) as png:
        assert plot.evaluate("image => [image.naturalWidth, image.naturalHeight]") == list(png.size)
    screenshot(page, "diversity_plot")
    dialog.get_by_role("button", name="Close").click()


def test_automation_lists_every_schedule(page, server, screenshot):
    """The schedule names are read from the code location (GraphQL), so any schedule
    added later is checked too; the per-shop recrawl schedules must be among them."""
    repositories = server.graphql(SCHEDULES_QUERY)["repositoriesOrError"]["nodes"]
    schedules = {schedule["name"] for repository in repositories if repository["location"]["name"] == LOCATION
                 for schedule in repository["schedules"]}
    assert EXPECTED_SCHEDULES <= schedules
    page.goto(server.url)
    page.get_by_role("link", name=re.compile(r"\bAutomation$")).click()
    for name in sorted(schedules):
        row = page.locator(f'a[href="/locations/{LOCATION}/schedules/{name}"]')  # each row links to its schedule
        expect(row).to_contain_text(name)
        expect(row).to_contain_text("Scheduled")  # its cron, in words: the row has loaded
    screenshot(page, "automation")
