"""What loading the code location costs each process that does it.

Every Dagster run worker (crawls included) and the code server import
`clipshoe_pipeline.definitions`. Each row is a fresh interpreter, timed from
outside (wall seconds, median of --runs) with its peak RSS (os.wait4): Python
alone, `import dagster`, Dagster's own `load_from_defs_folder` over an empty
project, and our code location, with the heavy libraries it pulled in.

    python benchmarks/import_time.py --runs 7 [--compare /path/to/another/checkout]

`--compare` adds the code location of another checkout of this repository (e.g. an
older commit, `git worktree add /tmp/old <commit>`), loaded with the same interpreter.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "open_clip", "numba", "scipy", "scrapy", "twisted", "duckdb", "matplotlib", "pyarrow", "PIL")
EMPTY_PROJECT = """
from pathlib import Path
import dagster as dg
dg.load_from_defs_folder(path_within_project=Path({root!r}))
"""


def timed(script: str, cwd: Path) -> tuple[float, float, str]:
    report = f"{script}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", report], cwd=cwd, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status:
        raise SystemExit(f"failed: {script!r}")
    return seconds, usage.ru_maxrss / 1024, process.stdout.read().strip()


def empty_project(root: Path) -> Path:
    (root / "empty_defs" / "defs").mkdir(parents=True)
    (root / "empty_defs" / "__init__.py").write_text("")
    (root / "empty_defs" / "defs" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text('[project]\nname = "empty-defs"\nversion = "0"\n\n'
                                         '[tool.dg]\ndirectory_type = "project"\n\n'
                                         '[tool.dg.project]\nroot_module = "empty_defs"\n')
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="another checkout whose code location to time too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = empty_project(Path(tmp))
        cases = [("python -c pass", "pass", PROJECT_ROOT),
                 ("import dagster", "import dagster", PROJECT_ROOT),
                 ("load_from_defs_folder(empty project)", EMPTY_PROJECT.format(root=str(empty)), empty),
                 ("import clipshoe_pipeline.definitions", "import clipshoe_pipeline.definitions", PROJECT_ROOT)]
        if args.compare:
            cases.append((f"the same, in {args.compare}", "import clipshoe_pipeline.definitions", args.compare))
        rows = []
        for label, script, cwd in cases:
            runs = [timed(script, cwd) for _ in range(args.runs)]
            rows.append((label, statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]))
    print(f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
          f"median of {args.runs} fresh interpreters")
    print("| process | wall s | × import dagster | peak RSS MiB | heavy libraries loaded |")
    print("|---|---:|---:|---:|---|")
    dagster_s = rows[1][1]
    for label, seconds, rss, heavy in rows:
        print(f"| {label} | {seconds:.2f} | {seconds / dagster_s:.2f} | {rss:.0f} | {heavy or '—'} |")


if __name__ == "__main__":
    main()
