"""The explorer of lesson 07, driven headlessly: set the time slider, check the picture's data
against the perturbed mixture of lessons_lib.densities and the SDE's kernel."""

import numpy as np
import pytest
import torch

from lessons_lib.data import mixture_1d, mixture_2d
from lessons_lib.plotting import grid_2d
from lessons_lib.sde import VESDE
from lessons_lib.widgets import SDETimeExplorer

SDE = VESDE(0.01, 50.0)


@pytest.fixture(scope="module")
def explorer():
    return SDETimeExplorer(mixture_2d(), SDE, t=0.3, n=40, n_arrows=9, n_points=50)


@pytest.mark.parametrize("t", [0.0, 0.25, 0.6, 1.0])
def test_time_slider_redraws_p_t_its_score_and_the_points(explorer, t):
    explorer.slider.value = t
    p_t = mixture_2d().perturbed(SDE.sigma(t))
    _, _, pts = grid_2d((-6.0, 6.0), (-6.0, 6.0), 40)
    expected = torch.exp(p_t.log_prob(pts.double())).reshape(40, 40).numpy()
    np.testing.assert_allclose(explorer.image.get_array(), expected, rtol=1e-6, atol=1e-12)
    assert explorer.image.get_clim()[1] == pytest.approx(expected.max())
    _, _, arrows = grid_2d((-6.0, 6.0), (-6.0, 6.0), 9)
    score = p_t.score(arrows.double())
    unit = (score / score.norm(dim=1, keepdim=True)).numpy()
    np.testing.assert_allclose(explorer.quiver.U, unit[:, 0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(explorer.quiver.V, unit[:, 1], rtol=1e-6, atol=1e-9)
    base, z = explorer._points
    np.testing.assert_allclose(explorer.scatter.get_offsets(), (base + SDE.kernel_std(t) * z).numpy(), rtol=1e-6)
    assert f"σ(t) = {SDE.sigma(t):.3g}" in explorer.message.value
    assert explorer.last_update_seconds > 0


def test_scores_shrink_as_t_grows(explorer):
    largest = {}
    for t in (0.1, 0.9):
        explorer.slider.value = t
        largest[t] = float(explorer.message.value.rsplit(" ", 1)[1])
    assert largest[0.9] < 0.01 * largest[0.1]


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="2-D density"):
        SDETimeExplorer(mixture_1d(), SDE)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SDETimeExplorer(mixture_2d(), SDE, t=1.5)
