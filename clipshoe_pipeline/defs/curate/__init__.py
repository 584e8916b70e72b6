"""The curation domain: raw_products -> curated_pairs (the image-text dataset)."""
