"""Felt slider latency: every explorer in a real JupyterLab, moved by key presses in headless Chromium.

    python -m benchmarks.ux.felt_latency [--presses 15]

A notebook shows every case of :data:`lessons_lib.explorers.cases.EXPLORER_CASES` (the same
explorers :mod:`benchmarks.ux.widgets` times in the kernel), one per cell. For each, the first
slider's handle gets ``--presses`` arrow-key presses, one at a time, each timed from ``keydown``
until the new figure is decoded and painted (:func:`tools.browser.felt_latency`).

Needs Debian's ``chromium`` and the ``playwright`` package (no browser download), like
``tests/e2e/test_browser.py``, which drives the same functions.
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks.ux.widgets import headless_latency
from tools.browser import CHROMIUM, felt_latency


def latency_table(presses: int = 15) -> str:
    """Felt medians beside the headless ones of :func:`benchmarks.ux.widgets.headless_latency`."""
    headless = headless_latency()
    felt = felt_latency(presses) if CHROMIUM.exists() else {}
    rows = ["| explorer | headless update incl. PNG, median (ms) | felt in JupyterLab, median (ms) | felt, max (ms) |",
            "| --- | ---: | ---: | ---: |"]
    for name, times in headless.items():
        f = felt.get(name)
        felt_cells = f"{statistics.median(f):.0f} | {max(f):.0f}" if f else "– | –"
        rows.append(f"| {name} | {statistics.median(times) * 1e3:.0f} | {felt_cells} |")
    note = (f"Felt: {presses} arrow-key presses per explorer in JupyterLab in headless Chromium, each from keydown "
            "to the new figure decoded and painted (`benchmarks/ux/felt_latency.py`)."
            if felt else f"Felt: not measured (needs {CHROMIUM} and playwright).")
    return "\n".join(rows) + "\n\n" + note


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=15)
    args = parser.parse_args(argv)
    print(latency_table(args.presses))


if __name__ == "__main__":
    main()
