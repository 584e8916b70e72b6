"""Checks on `model_metrics`, over the latest evaluation's rows: numbers that can be
compared are only those computed on the same queries, and a rate outside [0, 1] is a
bug, never a result."""

import dagster as dg

from clipshoe_pipeline.catalog_db import CatalogDB
from clipshoe_pipeline.defs.evaluate.assets import model_metrics

LATEST = "FROM metrics WHERE evaluated_at = (SELECT max(evaluated_at) FROM metrics)"
SAMPLE = 5


@dg.asset_check(asset=model_metrics, blocking=True)
def model_metrics_rates_in_range(catalog: CatalogDB) -> dg.AssetCheckResult:
    """Every recall, accuracy and balanced accuracy lies in [0, 1]."""
    bad = catalog.query(f"SELECT model, dataset, metric, k, value {LATEST} AND metric NOT LIKE '%median_rank' "
                        "AND NOT (value BETWEEN 0 AND 1)")
    return dg.AssetCheckResult(passed=not bad, metadata={"out_of_range": len(bad),
                                                         "sample": dg.MetadataValue.json(bad[:SAMPLE])})


@dg.asset_check(asset=model_metrics)
def model_metrics_same_queries_for_every_model(catalog: CatalogDB) -> dg.AssetCheckResult:
    """Side by side means on the same data: each number counts the same queries (n)
    for every model evaluated together."""
    differing = catalog.query(f"""
        SELECT dataset, task, attribute, metric, k, list(DISTINCT n) AS counts {LATEST}
        GROUP BY ALL HAVING count(DISTINCT n) > 1""")
    return dg.AssetCheckResult(passed=not differing, severity=dg.AssetCheckSeverity.WARN, metadata={
        "differing": len(differing), "sample": dg.MetadataValue.json(differing[:SAMPLE])})
