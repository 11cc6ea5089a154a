"""Slider latency in the kernel: one update of every explorer, driven headlessly by setting its
control's value as a student's drag would: the observer's recomputation, the redraw and the PNG
the explorer sends to the browser (:meth:`lessons_lib.explorers.base.Explorer.update`). What the
student waits for on top of that (transfer, decode, layout) is measured in a real JupyterLab by
:mod:`benchmarks.ux.felt_latency`."""

from __future__ import annotations

from lessons_lib.explorers.cases import EXPLORER_CASES


def headless_latency() -> dict[str, list[float]]:
    """Case name → seconds of each of its updates (value set, redraw, PNG), as the explorer
    records them (``last_update_seconds``)."""
    result = {}
    for case in EXPLORER_CASES:
        explorer = case.build()
        control = case.control_of(explorer)
        times = []
        for value in case.moves(explorer):
            control.value = value
            times.append(explorer.last_update_seconds)
        result[case.name] = times
    return result
