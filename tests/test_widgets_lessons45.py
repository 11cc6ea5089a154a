"""The explorers of lessons 04–05, driven headlessly: set a slider, check the artists' data
against the library's own functions. Controls are wired with ``observe``, so an exception in
a callback reaches the test."""

import numpy as np
import pytest
import torch

from lessons_lib.data import mixture_1d, mixture_2d
from lessons_lib.nets import ScoreMLP
from lessons_lib.samplers import langevin
from lessons_lib.utils import make_generator
from lessons_lib.widgets import LangevinExplorer, SigmaExplorer


@pytest.fixture
def sigma_explorer():
    torch.manual_seed(0)
    model = ScoreMLP(1, hidden=16, sigma_conditioned=True)
    explorer = SigmaExplorer(mixture_1d(), model, sigma=0.3)
    return explorer, model


@pytest.mark.parametrize("sigma", [0.05, 0.3, 1.0, 4.0])
def test_sigma_slider_redraws_p_sigma_and_both_scores(sigma_explorer, sigma):
    explorer, model = sigma_explorer
    explorer.slider.value = sigma
    s = explorer.slider.value
    assert s == pytest.approx(sigma, rel=0.03)  # the log slider snaps to its step in the exponent
    pts = explorer.xs[:, None]
    noisy = mixture_1d().perturbed(s)
    np.testing.assert_allclose(explorer.density_line.get_ydata(), torch.exp(noisy.log_prob(pts)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(explorer.true_score_line.get_ydata(), noisy.score(pts)[:, 0].numpy(), rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        learned = model(pts, s)[:, 0].numpy()
    np.testing.assert_allclose(explorer.learned_score_line.get_ydata(), learned, rtol=1e-6, atol=1e-6)
    assert f"σ = {s:.3f}" in explorer.message.value
    assert explorer.last_update_seconds > 0


def test_sigma_explorer_reports_the_tradeoff(sigma_explorer):
    explorer, _ = sigma_explorer
    blur = {}
    for sigma in (0.05, 3.0):
        explorer.slider.value = sigma
        blur[sigma] = float(explorer.message.value.split("= ")[2].split(" ")[0])
    assert blur[0.05] < 0.01 < 0.3 < blur[3.0]  # TV(p, p_σ): little blur at small σ, a lot at large σ


def test_exception_in_the_learned_score_reaches_the_caller():
    def fragile(x, sigma):
        if sigma > 1.0:
            raise RuntimeError("score model failed")
        return -x

    explorer = SigmaExplorer(mixture_1d(), fragile, sigma=0.3)
    with pytest.raises(RuntimeError, match="score model failed"):
        explorer.slider.value = 2.0


def test_sigma_explorer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="1-D density"):
        SigmaExplorer(mixture_2d(), lambda x, s: -x)
    with pytest.raises(ValueError, match="inside sigma_range"):
        SigmaExplorer(mixture_1d(), lambda x, s: -x, sigma=10.0)


@pytest.fixture
def langevin_explorer():
    x0 = 3 * torch.randn(200, 2, generator=make_generator(0))
    return LangevinExplorer(mixture_2d(), x0, step_size=0.05, n_steps=50, seed=1), x0


def test_langevin_sliders_redraw_the_chains(langevin_explorer):
    explorer, x0 = langevin_explorer
    explorer.step_slider.value = 0.1
    explorer.steps_slider.value = 100
    eps, n = explorer.step_slider.value, explorer.steps_slider.value
    expected = langevin(mixture_2d().score, x0, eps, n, generator=make_generator(1))
    np.testing.assert_allclose(explorer.scatter.get_offsets(), expected.numpy(), rtol=1e-6)
    assert torch.equal(explorer.samples, expected)
    assert "chains per component" in explorer.message.value
    assert "weights 0.50 / 0.30 / 0.20" in explorer.message.value


def test_too_large_a_step_shows_the_divergence_message(langevin_explorer):
    explorer, _ = langevin_explorer
    explorer.step_slider.value = 2.5
    assert "Diverged" in explorer.message.value
    assert "step size" in explorer.message.value
    assert explorer.samples is None
    assert len(explorer.scatter.get_offsets()) == 0  # nothing (and no NaN) plotted
    explorer.step_slider.value = 0.05  # and it recovers
    assert "chains per component" in explorer.message.value
    assert np.isfinite(explorer.scatter.get_offsets()).all()


def test_zero_steps_shows_the_starting_points(langevin_explorer):
    explorer, x0 = langevin_explorer
    explorer.steps_slider.value = 0
    np.testing.assert_allclose(explorer.scatter.get_offsets(), x0.numpy())


def test_langevin_explorer_rejects_a_1d_density():
    with pytest.raises(ValueError, match="2-D density"):
        LangevinExplorer(mixture_1d(), torch.zeros(10, 1))
