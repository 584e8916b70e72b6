"""The layers' boundaries, read from the source with `ast`: every import counts, at
module level, inside functions and under TYPE_CHECKING alike."""

from __future__ import annotations

import ast
from pathlib import Path

from clipshoe_common import PROJECT_ROOT

PACKAGES = ("clipshoe_common", "scrapers", "clipshoe_pipeline", "replay_shop")
# What the pipeline may know of the crawl: the item schema and the crawl's interface.
PIPELINE_MAY_IMPORT_FROM_SCRAPERS = {"scrapers.items", "scrapers.interface"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (PROJECT_ROOT / package).rglob("*.py")}


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The project modules `name` imports (for `from package import module`, the module)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {target for target in found if target in modules and target != name}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walk_sees_the_imports_it_must():
    graph = import_graph()
    assert "scrapers.interface" in graph["clipshoe_pipeline.defs.crawl.assets"]
    assert "clipshoe_common.files" in graph["clipshoe_pipeline.parquet_io"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_imports_itself_through_others():
    assert find_cycle(import_graph()) is None


def test_the_pipeline_knows_the_crawl_only_by_its_item_schema_and_interface():
    reaching = {(name, target) for name, targets in import_graph().items() if name.startswith("clipshoe_pipeline")
                for target in targets if target.startswith("scrapers") and target not in PIPELINE_MAY_IMPORT_FROM_SCRAPERS
                and target != "scrapers"}
    assert reaching == set()


def test_the_shared_layer_and_the_crawl_import_no_pipeline_code():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith(("clipshoe_common", "scrapers")):
            assert not {t for t in targets if t.startswith("clipshoe_pipeline")}, name
        if name.startswith("clipshoe_common"):
            assert not {t for t in targets if not t.startswith("clipshoe_common")}, name
