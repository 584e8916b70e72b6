"""Operations: the per-site recrawl schedules, the automation conditions (curation after
crawls, evaluation after checkpoints, training never by itself), the automation sensor's
default state and the per-site freshness check."""

# No `from __future__ import annotations`: the check's config type is read from its signature.

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from clipshoe_pipeline.defs.crawl import history
from clipshoe_pipeline.defs.crawl.checks import FreshnessConfig, raw_products_fresh_per_site
from clipshoe_pipeline.defs.crawl.schedules import DEFAULT_CRONS, TIMEZONE, crawl_crons, crawl_schedules, schedule_name
from clipshoe_pipeline.definitions import defs
from clipshoe_pipeline.parquet_io import write_parquet_atomic
from scrapers.items import SITES
from tests.builders import item_row

VIETNAM = ZoneInfo(TIMEZONE)


# -- schedules ----------------------------------------------------------------------------
def test_each_site_has_its_weekly_schedule_staggered_and_stopped_against_the_live_shops():
    schedules = {schedule.name: schedule for schedule in defs.schedules}
    assert set(schedules) == {schedule_name(site) for site in SITES}
    crons = [schedules[schedule_name(site)].cron_schedule for site in SITES]
    assert len(set(crons)) == len(SITES) and all(cron.endswith("* * 1") for cron in crons)  # weekly, own hour
    for schedule in schedules.values():
        assert schedule.execution_timezone == TIMEZONE
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED  # CLIPSHOE_REPLAY_URL unset in tests


def test_a_tick_requests_its_sites_partition():
    repository = defs.get_repository_def()
    tick = datetime(2026, 12, 7, 2, 0, tzinfo=VIETNAM)  # a Monday
    for site in SITES:
        schedule = repository.get_schedule_def(schedule_name(site))
        context = dg.build_schedule_context(repository_def=repository, scheduled_execution_time=tick)
        (request,) = schedule.evaluate_tick(context).run_requests
        assert request.partition_key == site and request.run_key == f"{site}-{tick.isoformat()}"
        assert repository.get_job(schedule.job_name).asset_layer.executable_asset_keys == {dg.AssetKey("raw_products")}


def test_crons_are_configurable_per_site_and_the_replay_shop_turns_schedules_on(monkeypatch):
    assert crawl_crons('{"tiki": "30 3 * * 2"}') == {**DEFAULT_CRONS, "tiki": "30 3 * * 2"}
    with pytest.raises(ValueError, match="unknown sites \\['amazon'\\]"):
        crawl_crons(json.dumps({"amazon": "0 0 * * *"}))
    with pytest.raises(ValueError, match="is not JSON"):
        crawl_crons("tiki=0 3 * * 2")
    monkeypatch.setenv("CLIPSHOE_REPLAY_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CLIPSHOE_CRAWL_SCHEDULES", '{"zalora": "0 9 * * 3"}')
    schedules = {schedule.name: schedule for schedule in crawl_schedules()}
    assert schedules[schedule_name("zalora")].cron_schedule == "0 9 * * 3"
    assert {s.default_status for s in schedules.values()} == {dg.DefaultScheduleStatus.RUNNING}


def test_the_automation_sensor_runs_by_default_only_with_the_replay_shop(monkeypatch):
    from clipshoe_pipeline.defs.automation.sensors import AUTOMATION_SENSOR, automation

    assert defs.get_sensor_def(AUTOMATION_SENSOR).default_status == dg.DefaultSensorStatus.STOPPED
    monkeypatch.setenv("CLIPSHOE_REPLAY_URL", "http://127.0.0.1:9")
    (sensor,) = automation().sensors
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


# -- automation conditions --------------------------------------------------------------------
class Automation:
    """evaluate_automation_conditions over the project's definitions, tick after tick."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance, self.cursor = instance, None

    def tick(self, at: datetime) -> dict[str, int]:
        result = dg.evaluate_automation_conditions(defs, self.instance, evaluation_time=at, cursor=self.cursor)
        self.cursor = result.cursor
        return {key.to_user_string(): result.get_num_requested(key)
                for key in (dg.AssetKey(name) for name in ("curated_pairs", "finetuned_clip", "model_metrics"))
                if result.get_num_requested(key)}

    def materialized(self, asset: str, partition: str | None = None) -> None:
        self.instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=partition))


def next_curation_tick(now: datetime) -> datetime:
    tick = now.astimezone(VIETNAM).replace(hour=7, minute=0, second=0, microsecond=0)
    return tick if tick > now else tick + timedelta(days=1)


def test_five_crawls_in_a_row_give_one_curation_after_the_daily_tick_and_training_is_never_automatic():
    with dg.instance_for_test() as instance:
        automation = Automation(instance)
        tick = next_curation_tick(datetime.now(timezone.utc))
        assert automation.tick(tick - timedelta(hours=3)) == {}
        for site in SITES:  # the Monday-night recrawls, one after another
            automation.materialized("raw_products", site)
            assert automation.tick(tick - timedelta(hours=2)) == {}
        assert automation.tick(tick + timedelta(minutes=1)) == {"curated_pairs": 1}
        automation.materialized("curated_pairs")
        assert automation.tick(tick + timedelta(minutes=2)) == {}  # once, not once per site
        assert automation.tick(tick + timedelta(days=1, minutes=1)) == {}  # no new crawl: no new curation



def test_a_crawl_whose_blocking_check_failed_is_not_curated():
    with dg.instance_for_test() as instance:
        automation = Automation(instance)
        tick = next_curation_tick(datetime.now(timezone.utc))
        automation.tick(tick - timedelta(hours=3))
        automation.materialized("raw_products", "tiki")
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("raw_products"), check_name="raw_products_failed_page_ratio", passed=False,
            severity=dg.AssetCheckSeverity.ERROR))
        assert automation.tick(tick + timedelta(minutes=1)) == {}


def test_every_new_checkpoint_is_evaluated_and_a_new_curation_alone_is_not():
    with dg.instance_for_test() as instance:
        automation = Automation(instance)
        now = datetime.now(timezone.utc)
        for site in SITES:
            automation.materialized("raw_products", site)
        automation.materialized("curated_pairs")
        assert automation.tick(now + timedelta(minutes=1)) == {}  # training is an explicit action
        automation.materialized("finetuned_clip")
        assert automation.tick(now + timedelta(minutes=2)) == {"model_metrics": 1}
        automation.materialized("model_metrics")
        automation.materialized("curated_pairs")
        assert automation.tick(now + timedelta(minutes=3)) == {}
        automation.materialized("finetuned_clip")
        assert automation.tick(now + timedelta(minutes=4)) == {"model_metrics": 1}


# -- freshness ---------------------------------------------------------------------------------
def test_the_freshness_check_runs_daily_by_itself():
    check = dg.AssetCheckKey(dg.AssetKey("raw_products"), "raw_products_fresh_per_site")
    with dg.instance_for_test() as instance:
        cursor, requested = None, []
        morning = datetime(2026, 12, 10, 6, 0, tzinfo=VIETNAM)
        for hours in (0, 1, 3, 4):  # its tick is 08:00 in Vietnam
            result = dg.evaluate_automation_conditions(defs, instance, evaluation_time=morning + timedelta(hours=hours),
                                                       cursor=cursor)
            cursor = result.cursor
            requested.append(sum(r.true_subset.size for r in result.results if r.key == check))
        assert requested == [0, 0, 1, 0]


def write_crawl(paths, site: str, started: datetime) -> None:
    observed = history.observations([item_row("1", site=site)], started.replace(microsecond=0))
    write_parquet_atomic(observed, paths.observations_parquet(site, history.crawl_file_name(started)))


def test_freshness_is_judged_per_site_so_one_fresh_shop_does_not_hide_a_stale_one(paths, catalog):
    now = datetime.now(timezone.utc)
    write_crawl(paths, "tiki", now - timedelta(days=1))
    write_crawl(paths, "sendo", now - timedelta(days=20))
    catalog.publish()
    result = raw_products_fresh_per_site(config=FreshnessConfig(), catalog=catalog)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["stale_sites"].data == ["sendo"]
    assert result.metadata["never_crawled"].data == ["lazada", "shopee", "zalora"]
    assert result.metadata["age_days_by_site"].data["tiki"] == pytest.approx(1, abs=0.01)
    assert raw_products_fresh_per_site(config=FreshnessConfig(warn_after_days=30), catalog=catalog).passed
