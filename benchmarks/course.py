"""Course runtime: wall time of each notebook executed top to bottom on a fresh kernel."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import jupytext

from tools.build_notebooks import execute

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_seconds(path: Path) -> float:
    nb = jupytext.read(path)
    start = time.perf_counter()
    execute(nb, path.parent)
    return time.perf_counter() - start


def runtime_table(repeats: int = 3) -> str:
    runs = f"{repeats} run{'s' if repeats != 1 else ''}"
    rows = [f"| notebook | median wall time (s), {runs} | min – max (s) |", "| --- | ---: | ---: |"]
    total = 0.0
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        times = [notebook_seconds(path) for _ in range(repeats)]
        med = statistics.median(times)
        total += med
        rows.append(f"| `{path.stem}` | {med:.0f} | {min(times):.0f} – {max(times):.0f} |")
    rows.append(f"| **whole course** | **{total:.0f}** | |")
    return "\n".join(rows)
