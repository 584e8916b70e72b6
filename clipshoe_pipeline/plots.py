"""Matplotlib figures as files beside the data and inline in Dagster's markdown metadata.

The UI shows a PNG embedded as a data URI directly in the materialization's page;
the file beside the tables is what a user opens later or links elsewhere.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot with the file-only backend (assets run without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: Path) -> str:
    """Write `figure` to `path` as PNG, close it, and return markdown that shows it."""
    plt = pyplot()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return f"![{path.stem}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})\n\n`{path}`"
