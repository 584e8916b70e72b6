"""Scheduled recrawls: one schedule per shop over the `raw_products` site partitions.

One per site, not one for all, so each shop gets its own window: the crawls are
staggered an hour apart (a shop is never hit by two of our crawls at once, and the
machine runs one crawl at a time), weekly by default, in the shops' own time zone.
`build_schedule_from_partitioned_job` does not fit a statically partitioned asset job
(docs/operations.md), so each schedule yields its site's RunRequest itself.

Schedules start STOPPED against the live shops: turn them on in the UI (Automation,
the schedule's toggle) or with `dagster schedule start raw_products_tiki_schedule -m
clipshoe_pipeline.definitions`; the daemon (`clipshoe dev` starts one) runs them. With
the replay shop (`clipshoe dev`, CLIPSHOE_REPLAY_URL set) they start RUNNING, since no
real site is touched.
"""

import json
from collections.abc import Iterator, Mapping

import dagster as dg

from clipshoe_pipeline.defs.crawl.assets import raw_products
from clipshoe_pipeline.settings import CRAWL_SCHEDULES, REPLAY_URL, env
from scrapers.items import SITES

TIMEZONE = "Asia/Ho_Chi_Minh"
# Mondays from 01:00, an hour apart per site; CLIPSHOE_CRAWL_SCHEDULES overrides any of them.
DEFAULT_CRONS = {site: f"0 {1 + hour} * * 1" for hour, site in enumerate(SITES)}


def schedule_name(site: str) -> str:
    return f"raw_products_{site}_schedule"


def crawl_crons(overrides: str | None) -> dict[str, str]:
    """Each site's cron: the defaults, with a JSON object {site: cron} on top."""
    if not overrides:
        return dict(DEFAULT_CRONS)
    try:
        parsed = json.loads(overrides)
    except ValueError as exc:
        raise ValueError(f"{CRAWL_SCHEDULES} is not JSON ({exc}): give e.g. '{{\"tiki\": \"0 3 * * 2\"}}'") from exc
    if not isinstance(parsed, Mapping) or not all(isinstance(cron, str) for cron in parsed.values()):
        raise ValueError(f"{CRAWL_SCHEDULES} must map site names to cron strings, got {overrides!r}")
    unknown = set(parsed) - set(SITES)
    if unknown:
        raise ValueError(f"{CRAWL_SCHEDULES} names unknown sites {sorted(unknown)}; the sites are {', '.join(SITES)}")
    return {**DEFAULT_CRONS, **parsed}


def site_schedule(site: str, cron: str, default_status: dg.DefaultScheduleStatus) -> dg.ScheduleDefinition:
    @dg.schedule(name=schedule_name(site), cron_schedule=cron, execution_timezone=TIMEZONE, target=[raw_products],
                 default_status=default_status, description=f"Recrawl {site} into its raw_products partition ({cron}, "
                                                            f"{TIMEZONE}).", tags={"clipshoe/trigger": "schedule"})
    def crawl_site(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        tick = context.scheduled_execution_time
        yield dg.RunRequest(partition_key=site, run_key=f"{site}-{tick.isoformat() if tick else 'manual'}")

    return crawl_site


def crawl_schedules() -> list[dg.ScheduleDefinition]:
    status = dg.DefaultScheduleStatus.RUNNING if env(REPLAY_URL) else dg.DefaultScheduleStatus.STOPPED
    return [site_schedule(site, cron, status) for site, cron in crawl_crons(env(CRAWL_SCHEDULES)).items()]


@dg.definitions
def schedules() -> dg.Definitions:
    return dg.Definitions(schedules=crawl_schedules())
