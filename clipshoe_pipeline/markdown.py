"""Markdown tables for materialization metadata and the CLI's reports (the Dagster UI
renders `MetadataValue.md`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

CELL_CHARS = 80  # a longer text would push the other columns off the screen


def cell(value: Any, max_chars: int = CELL_CHARS) -> str:
    """A value as one table cell: None empty, floats to 4 significant digits, text on
    one line with its pipes escaped, cut at `max_chars`."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")[:max_chars]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric_from: int | None = None) -> str:
    """A table of already formatted cells (see `cell`); columns from `numeric_from` on
    are right-aligned."""
    first = len(header) if numeric_from is None else numeric_from
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * first + "---:|" * (len(header) - first)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)
