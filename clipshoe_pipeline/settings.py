"""Every environment variable the pipeline reads, and the one place it reads them.

Each is read when asked for, not at import, so tests and the CLI can point a run
elsewhere by setting the variable. Resources take theirs as `dg.EnvVar` (so the UI
shows where a value came from); the README's settings table lists them all.

Not read here: variables that belong to another program's protocol, read where that
protocol is spoken — torchrun's RANK (training/launch.py), Dagster Pipes' context
(scrapers/pipes.py, training/launch.py), huggingface_hub's HF_* (by huggingface_hub).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the trainer process reads settings and should not pay for Dagster
    import dagster as dg

DATA_DIR = "CLIPSHOE_DATA_DIR"  # the data root (DataPaths)
REPLAY_URL = "CLIPSHOE_REPLAY_URL"  # the replay shop the crawls go to instead of the live sites
ZAPPOS_DIR = "CLIPSHOE_ZAPPOS_DIR"  # a local UT Zappos50K copy for the evaluation
DASK_ADDRESS = "CLIPSHOE_DASK_ADDRESS"  # a Dask scheduler for curation's per-image step
CRAWL_SCHEDULES = "CLIPSHOE_CRAWL_SCHEDULES"  # per-site crawl crons, JSON {site: cron}, over the weekly defaults
DAGSTER_HOME = "DAGSTER_HOME"  # the Dagster instance; the CLI defaults it under the data dir
CACHE_HOME = "XDG_CACHE_HOME"  # the user's cache root (XDG); ours is its clipshoe/ folder


def env(name: str) -> str | None:
    """The variable's value; unset and empty both mean None."""
    return os.environ.get(name) or None


def env_var_if_set(name: str) -> dg.EnvVar | None:
    """A resource field's value from the environment, or None (its default) when the
    variable is unset: an EnvVar of an unset variable would fail every run."""
    import dagster as dg

    return dg.EnvVar(name) if env(name) else None


def cache_dir() -> Path:
    """Machine-wide files the project builds once and reuses (the tiny test text tower)."""
    return Path(env(CACHE_HOME) or Path.home() / ".cache") / "clipshoe"
