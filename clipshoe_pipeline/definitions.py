"""The code location: what `dagster dev -w workspace.yaml` and `dg` load.

Definitions live next to their domain under clipshoe_pipeline/defs/ and are collected
by autoloading, so this file never grows.
"""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
