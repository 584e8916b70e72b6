"""Peers files: the models an evaluation scores beside ours, with where their weights
come from, as TOML `[[peer]]` tables (name, model, pretrained). `{data_dir}` in a value
is the data dir, so one file serves every checkout. `anchors` names the bundled file
of the published fashion CLIPs (anchors.toml)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from clipshoe_pipeline.paths import DataPaths

ANCHORS = "anchors"
ANCHORS_FILE = Path(__file__).with_name("anchors.toml")
_FIELDS = {"name", "model", "pretrained"}


@dataclass(frozen=True)
class Peer:
    name: str
    model: str
    pretrained: str | None = None


def read_peers(source: str, paths: DataPaths) -> list[Peer]:
    """The peers of the file `source` (or the bundled anchors); ValueError says what is wrong."""
    path = ANCHORS_FILE if source == ANCHORS else Path(source)
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("peer", [])
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"peers file {path}: {error}") from error
    peers = []
    for number, table in enumerate(tables, 1):
        if not isinstance(table, dict) or not {"name", "model"} <= table.keys() or table.keys() - _FIELDS:
            raise ValueError(f"peers file {path}: [[peer]] number {number} needs name and model (and may have "
                             f"pretrained), not {sorted(table)}")
        peers.append(Peer(**{key: str(value).replace("{data_dir}", str(paths.root.absolute()))
                             for key, value in table.items()}))
    return peers
