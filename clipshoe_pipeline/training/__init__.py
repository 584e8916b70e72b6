"""Fine-tuning CLIP with open_clip's own trainer: export, weights, launch, checkpoints."""
