"""The crawl layer: shops -> `raw_products` (Parquet + DuckDB), with its checks."""
