"""Slider latency in the kernel: time of one update of every explorer, driven headlessly by
setting the slider's value as a student's drag would: the observer's recomputation, the redraw
and the PNG the explorer sends to the browser (:meth:`lessons_lib.widgets.Explorer.update`).
What the student waits for on top of that (transfer, decode, layout) is measured in a real
JupyterLab by :mod:`benchmarks.felt_latency`."""

from __future__ import annotations

import torch

from lessons_lib import widgets
from lessons_lib.data import mixture_1d, mixture_2d
from lessons_lib.nets import ScoreMLP
from lessons_lib.noise import geometric_sigmas
from lessons_lib.sde import VESDE


def _cases():
    """(explorer name, factory, name of the slider attribute, values to visit)."""
    yield "MixtureScoreExplorer (lesson 01)", widgets.MixtureScoreExplorer, "weight", [0.1, 0.2, 0.5, 0.7, 0.9]
    yield ("ProjectionVarianceExplorer (lesson 03)", lambda: widgets.ProjectionVarianceExplorer(dim=10),
           "n_projections", "options")
    torch.manual_seed(0)
    model = ScoreMLP(1, hidden=64, sigma_conditioned=True)
    yield ("SigmaExplorer (lesson 04)", lambda: widgets.SigmaExplorer(mixture_1d(), model, sigma=0.3),
           "slider", [0.05, 0.1, 0.5, 1.0, 2.0])
    start = 8 * torch.rand(500, 2, generator=torch.Generator().manual_seed(0)) - 4
    yield ("LangevinExplorer, 500 chains × 200 steps (lesson 05)",
           lambda: widgets.LangevinExplorer(mixture_2d(), start, step_size=0.05, n_steps=200), "step_slider", [0.01, 0.02, 0.1, 0.2, 0.5])
    yield ("SDETimeExplorer (lesson 07)", lambda: widgets.SDETimeExplorer(mixture_2d(), VESDE(0.01, 50.0)), "slider",
           [0.0, 0.2, 0.4, 0.7, 1.0])
    sigmas = geometric_sigmas(10.0, 0.01, 15)
    trajectory = torch.rand(len(sigmas) + 2, 64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    yield ("SigmaLevelExplorer, 64 digits × 17 states (lesson 06)",
           lambda: widgets.SigmaLevelExplorer(trajectory, sigmas), "slider", [0, 3, 8, 15, 16])


def headless_latency() -> dict[str, list[float]]:
    """Explorer name → seconds of each of its updates (value set, redraw, PNG), as the explorer
    records them (``last_update_seconds``)."""
    result = {}
    for name, factory, attr, values in _cases():
        explorer = factory()
        slider = getattr(explorer, attr)
        if values == "options":
            values = [v for v in slider.options if v != slider.value][:5]
        times = []
        for value in values:
            slider.value = value
            times.append(explorer.last_update_seconds)
        result[name] = times
    return result

