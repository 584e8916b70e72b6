"""Evaluation: metric tables for the baseline, every fine-tuned checkpoint and configured peers."""
