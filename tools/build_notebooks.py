"""Rebuild notebooks/*.ipynb from their jupytext sources notebooks/*.py and execute them.

    python -m tools.build_notebooks                 # every notebook
    python -m tools.build_notebooks 04_denoising    # the ones whose name contains this

The .py (percent format) is the source of truth; the .ipynb is committed with its outputs so
figures show on the web. tests/repo/test_notebook_sync.py fails if the two drift apart.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

from lessons_lib.course.nbclient_compat import WIDGET_REGISTRY

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def execute(nb, cwd: Path, timeout: int = 1800):
    """Run every cell of ``nb`` in place on a fresh python3 kernel started in ``cwd`` (Output widgets
    one-way: :mod:`lessons_lib.course.nbclient_compat`)."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.widget_registry = WIDGET_REGISTRY  # not a constructor argument: __init__ sets the default
    client.execute()
    return nb


def build(source: Path) -> float:
    """Execute ``source`` on a fresh kernel and write the paired .ipynb; return seconds."""
    nb = jupytext.read(source)
    start = time.perf_counter()
    execute(nb, source.parent)
    seconds = time.perf_counter() - start
    jupytext.write(nb, source.with_suffix(".ipynb"))
    return seconds


def main(patterns: list[str]) -> None:
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    if patterns:
        sources = [s for s in sources if any(p in s.name for p in patterns)]
    if not sources:
        raise SystemExit(f"no notebook sources match {patterns}")
    for source in sources:
        print(f"{source.name}: executing ...", flush=True)
        print(f"{source.name}: {build(source):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
