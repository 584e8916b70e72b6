"""Evaluation of CLIP checkpoints: zero-shot classification on UT Zappos50K and on the
shops' category leaves, text<->image retrieval on the held-out test split, with
CLIP_benchmark's metric definitions, and the long-format `metrics` rows.

Modules: `ranking` (the one rank definition, ties included), `retrieval` (chunked
R@k), `zeroshot` (classifiers, Acc@k, balanced accuracy), `templates` (prompts in
English and Vietnamese), `zappos` (the dataset reader), `zappos_fetch` (its download),
`peers` (peers files; `anchors.toml`, the published fashion CLIPs), `embeddings`
(encoder and Parquet cache), `metrics_table` (rows, Arrow, markdown),
`benchmark_json` (CLIP_benchmark-style result files) and `suites` (the calls an asset
makes).
"""
