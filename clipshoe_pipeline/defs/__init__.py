"""Dagster definitions, one folder per domain (crawl; later curate, train, evaluate).

clipshoe_pipeline.definitions autoloads every module under here (`dg.load_defs`), so a
new domain folder is picked up without registering it anywhere. Resources that
several domains share are declared once, here.
"""

import dagster as dg

from clipshoe_pipeline.catalog_db import CatalogDB


@dg.definitions
def shared_resources() -> dg.Definitions:
    # `catalog`: the DuckDB catalog; every domain writes through this one writer.
    return dg.Definitions(resources={"catalog": CatalogDB()})
