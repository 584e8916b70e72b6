"""Checks on the `raw_products` catalog view, run after every crawl.

They look at the whole table (all sites), not only the partition just crawled: a
problem left by an earlier crawl of another shop is still a problem for curation.
Uniqueness and real URLs block downstream assets (a duplicate or a replay address
would leak into the dataset); products whose every image failed are allowed, as
long as each failure is on record in `rejections`.
"""

# No `from __future__ import annotations` here: Dagster reads the config and
# resource types from the signatures at definition time.

from datetime import datetime, timezone

import dagster as dg

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.crawl.assets import STALE_AFTER, raw_products
from clipshoe_pipeline.defs.crawl.schedules import TIMEZONE
from scrapers.items import SITES

SAMPLE = 5
# The replay shop's address; a real product or image URL never points at this machine.
_LOCAL_URL = r"^https?://(127\.0\.0\.1|localhost)([:/]|$)"


@dg.asset_check(asset=raw_products, blocking=True)
def raw_products_unique_per_site(catalog: CatalogDB) -> dg.AssetCheckResult:
    """Each (site, product_id) appears once: curation pairs images by product."""
    duplicates = catalog.query(
        "SELECT site, product_id, count(*) AS n FROM raw_products GROUP BY ALL HAVING n > 1 ORDER BY n DESC")
    return dg.AssetCheckResult(
        passed=not duplicates,
        metadata={"duplicated_products": len(duplicates), "sample": dg.MetadataValue.json(duplicates[:SAMPLE])},
    )


@dg.asset_check(asset=raw_products)
def raw_products_images_accounted_for(catalog: CatalogDB) -> dg.AssetCheckResult:
    """Every product has a downloaded image, or its image failures are in `rejections`:
    no picture may vanish without a reason."""
    (counts,) = catalog.query("""
        WITH imageless AS (
            SELECT site, product_id FROM raw_products
            WHERE len(list_filter(images, lambda image: image.status = 'ok')) = 0
        )
        SELECT count(*) AS imageless,
               count(*) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM rejections r
                   WHERE r.site = imageless.site AND r.product_id = imageless.product_id
                     AND r.stage = 'download')) AS unaccounted
        FROM imageless
    """)
    return dg.AssetCheckResult(
        passed=counts["unaccounted"] == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"products_without_images": counts["imageless"],
                  "without_a_recorded_reason": counts["unaccounted"]},
    )


@dg.asset_check(asset=raw_products, blocking=True)
def raw_products_have_real_urls(catalog: CatalogDB) -> dg.AssetCheckResult:
    """No replay-shop address in `url` or `image_urls`: items carry the shops' real URLs."""
    local = catalog.query(
        "SELECT site, product_id, url FROM raw_products "
        "WHERE regexp_matches(url, $pattern) "
        "   OR len(list_filter(image_urls, lambda u: regexp_matches(u, $pattern))) > 0",
        {"pattern": _LOCAL_URL},
    )
    return dg.AssetCheckResult(
        passed=not local,
        metadata={"rows_with_local_urls": len(local), "sample": dg.MetadataValue.json(local[:SAMPLE])},
    )


class FreshnessConfig(dg.Config):
    warn_after_days: float = STALE_AFTER.total_seconds() / 86400  # a site crawled longer ago than this warns


@dg.asset_check(
    asset=raw_products,
    # Also daily on its own: staleness grows while nothing runs.
    automation_condition=dg.AutomationCondition.cron_tick_passed("0 8 * * *", TIMEZONE),
)
def raw_products_fresh_per_site(config: FreshnessConfig, catalog: CatalogDB) -> dg.AssetCheckResult:
    """Each crawled site's latest crawl is recent. Per site, unlike the asset-level
    freshness policy, where one freshly crawled shop would hide four stale ones. Sites
    never crawled are listed but do not warn: crawling a subset of the shops is allowed."""
    latest = catalog.query(
        "SELECT site, max(crawl_started_at) AS crawled FROM product_observations GROUP BY site ORDER BY site"
    ) if "product_observations" in catalog.tables() else []
    now = datetime.now(timezone.utc)
    age_days = {row["site"]: round((now - row["crawled"]).total_seconds() / 86400, 2) for row in latest}
    stale = sorted(site for site, days in age_days.items() if days > config.warn_after_days)
    return dg.AssetCheckResult(
        passed=not stale,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"stale: {', '.join(stale)}" if stale else None,
        metadata={"age_days_by_site": dg.MetadataValue.json(age_days), "stale_sites": dg.MetadataValue.json(stale),
                  "never_crawled": dg.MetadataValue.json(sorted(set(SITES) - set(age_days))),
                  "warn_after_days": config.warn_after_days},
    )
