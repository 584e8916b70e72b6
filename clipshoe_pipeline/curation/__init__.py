"""Curation: raw crawled products into a clean, de-duplicated image-text dataset.

Small single-purpose modules (decode and normalise images, hash them, ...), each
usable and tested on its own; the Dagster assets in clipshoe_pipeline.defs.curate
compose them.
"""
