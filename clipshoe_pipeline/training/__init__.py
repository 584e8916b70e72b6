"""Fine-tuning CLIP with open_clip's own trainer (issue 4): export, weights, launch, checkpoints."""
