"""Fine-tuning: the CLIP model trained on curated_pairs."""
