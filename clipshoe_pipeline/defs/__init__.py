"""Dagster definitions, one folder per domain: crawl, curate, finetune, evaluate.

clipshoe_pipeline.definitions autoloads every module under here (`dg.load_defs`), so a
new domain folder is picked up without registering it anywhere. Resources that
several domains share are declared once, here.
"""

import dagster as dg

from clipshoe_pipeline.catalog_db import CatalogDB


@dg.definitions
def shared_resources() -> dg.Definitions:
    # `catalog`: the data directory and its DuckDB views; every domain reads and writes through it.
    return dg.Definitions(resources={"catalog": CatalogDB()})
