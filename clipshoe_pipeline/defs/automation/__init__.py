"""Automation: the sensor that evaluates the assets' automation conditions.

Which asset follows what is declared on the asset (curated_pairs: daily after new
crawls; model_metrics: every new checkpoint; finetuned_clip: none, training is an
explicit action). Dagster's own default sensor starts STOPPED, so the project defines
its own: RUNNING with the replay shop (nothing real is touched), STOPPED against the
live shops until someone turns it on in the UI (Automation).
"""
