"""Every explorer, built at the size its lesson uses and moved the way a student moves it.

``EXPLORER_CASES`` is the one list that the explorer tests (``tests/explorers``), the browser
test (``tests/e2e/test_browser.py``) and the latency benchmarks (``benchmarks/ux``) go through,
so an explorer added here is tested, driven in JupyterLab and timed. A case builds a fresh
explorer on each call of :meth:`ExplorerCase.build` and names the control to move and the values
to set it to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import torch

from ..nets import ScoreMLP
from ..noise import geometric_sigmas
from ..sde import VESDE
from ..toy_data import mixture_1d, mixture_2d
from ..utils import make_generator
from .base import Explorer
from .noise import SDETimeExplorer, SigmaExplorer
from .sampling import LangevinExplorer, TrajectoryExplorer
from .score import MixtureScoreExplorer, ProjectionVarianceExplorer

__all__ = ["ExplorerCase", "EXPLORER_CASES"]


@dataclass(frozen=True)
class ExplorerCase:
    """One explorer to build and move.

    ``name`` labels it in test ids and benchmark tables; ``build()`` returns a new explorer;
    ``control`` is the attribute holding the control to move; ``values`` are the values to set it
    to, in order, or ``None`` for the control's options other than the one it starts on."""

    name: str
    build: Callable[[], Explorer]
    control: str
    values: Sequence | None = None

    @property
    def id(self) -> str:
        """The explorer's class name, for test ids."""
        return self.name.split(" ")[0].rstrip(",")

    def control_of(self, explorer: Explorer) -> widgets.ValueWidget:
        return getattr(explorer, self.control)

    def moves(self, explorer: Explorer, n: int = 5) -> list:
        """The first ``n`` values to set the control of ``explorer`` to."""
        control = self.control_of(explorer)
        values = [v for v in control.options if v != control.value] if self.values is None else list(self.values)
        return values[:n]


def _sigma_explorer() -> SigmaExplorer:
    with torch.random.fork_rng(devices=[]):  # ScoreMLP initialises from the global generator
        torch.manual_seed(0)
        model = ScoreMLP(1, hidden=64, sigma_conditioned=True)
    return SigmaExplorer(mixture_1d(), model, sigma=0.3)


def _langevin_explorer() -> LangevinExplorer:
    x_init = 8 * torch.rand(500, 2, generator=make_generator(0)) - 4
    return LangevinExplorer(mixture_2d(), x_init, step_size=0.05, n_steps=200)


def _trajectory_explorer() -> TrajectoryExplorer:
    sigmas = geometric_sigmas(sigma_max=10.0, sigma_min=0.01, n=15)
    trajectory = torch.rand(len(sigmas) + 2, 64, 1, 28, 28, generator=make_generator(0))
    return TrajectoryExplorer(trajectory, sigmas)


EXPLORER_CASES: tuple[ExplorerCase, ...] = (
    ExplorerCase("MixtureScoreExplorer (lesson 01)", MixtureScoreExplorer, "weight", (0.1, 0.2, 0.5, 0.7, 0.9)),
    ExplorerCase("ProjectionVarianceExplorer (lesson 03)", lambda: ProjectionVarianceExplorer(dim=10),
                 "n_projections"),
    ExplorerCase("SigmaExplorer (lesson 04)", _sigma_explorer, "slider", (0.05, 0.1, 0.5, 1.0, 2.0)),
    ExplorerCase("LangevinExplorer, 500 chains × 200 steps (lesson 05)", _langevin_explorer, "step_slider",
                 (0.01, 0.02, 0.1, 0.2, 0.5)),
    ExplorerCase("SDETimeExplorer (lesson 07)",
                 lambda: SDETimeExplorer(mixture_2d(), VESDE(sigma_max=50.0, sigma_min=0.01)), "slider",
                 (0.0, 0.2, 0.4, 0.7, 1.0)),
    ExplorerCase("TrajectoryExplorer, 64 digits × 17 states (lesson 06)", _trajectory_explorer, "slider",
                 (0, 3, 8, 15, 16)),
)
