"""Explorers refuse out-of-range arguments naming them: no silent clamping, no "variance nan" (issue 33)."""

from __future__ import annotations

import math

import pytest
import torch

from lessons_lib.explorers import (
    LangevinExplorer,
    MixtureScoreExplorer,
    ProjectionVarianceExplorer,
    SDETimeExplorer,
    SigmaExplorer,
    TrajectoryExplorer,
)
from lessons_lib.noise import geometric_sigmas
from lessons_lib.sde import VESDE
from lessons_lib.toy_data import mixture_1d, mixture_2d

X_INIT = torch.rand(20, 2)
SIGMAS = geometric_sigmas(10.0, 0.01, 3)
TRAJ = torch.rand(4, 2, 1, 28, 28)
SDE = VESDE(sigma_max=50.0, sigma_min=0.01)

ROWS = [
    ("weight above the slider", lambda: MixtureScoreExplorer(weight=1.5), "weight"),
    ("std1 zero", lambda: MixtureScoreExplorer(std1=0.0), "std1"),
    ("mean2 nan", lambda: MixtureScoreExplorer(mean2=math.nan), "mean2"),
    ("n 0", lambda: MixtureScoreExplorer(n=0), "n"),
    ("n_repeats 1: variance nan", lambda: ProjectionVarianceExplorer(dim=4, n_repeats=1), "n_repeats"),
    ("dim 0", lambda: ProjectionVarianceExplorer(dim=0), "dim"),
    ("A nan", lambda: ProjectionVarianceExplorer(A=torch.full((3, 3), math.nan)), "A"),
    ("sigma outside range", lambda: SigmaExplorer(mixture_1d(), lambda x, s: -x, sigma=10.0), "sigma"),
    ("sigma_range reversed", lambda: SigmaExplorer(mixture_1d(), lambda x, s: -x, sigma_range=(5.0, 0.02)),
     "sigma_range"),
    ("learned_score None", lambda: SigmaExplorer(mixture_1d(), None), "learned_score"),
    ("step_size outside range", lambda: LangevinExplorer(mixture_2d(), X_INIT, step_size=5.0), "step_size"),
    ("n_steps above max_steps", lambda: LangevinExplorer(mixture_2d(), X_INIT, n_steps=2000), "n_steps"),
    ("x_init numpy", lambda: LangevinExplorer(mixture_2d(), X_INIT.numpy()), "x_init"),
    ("x_init 3-D points", lambda: LangevinExplorer(mixture_2d(), torch.rand(20, 3)), "x_init"),
    ("x_init nan", lambda: LangevinExplorer(mixture_2d(), torch.full((20, 2), math.nan)), "x_init"),
    ("trajectory None", lambda: TrajectoryExplorer(None, SIGMAS), "trajectory"),
    ("nrow 0", lambda: TrajectoryExplorer(TRAJ, SIGMAS, nrow=0), "nrow"),
    ("sigmas increasing", lambda: TrajectoryExplorer(TRAJ, SIGMAS.flip(0)), "sigmas"),
    ("t outside [0, 1]", lambda: SDETimeExplorer(mixture_2d(), SDE, t=1.5), "t"),
    ("sde None", lambda: SDETimeExplorer(mixture_2d(), None), "sde"),
    ("n_points 0", lambda: SDETimeExplorer(mixture_2d(), SDE, n_points=0), "n_points"),
]


@pytest.mark.parametrize("label, call, name", ROWS, ids=[r[0] for r in ROWS])
def test_out_of_range_arguments_are_refused_naming_them(label, call, name):
    with pytest.raises(ValueError) as info:
        call()
    assert name in str(info.value), str(info.value)
