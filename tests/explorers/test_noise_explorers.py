"""The explorers of noise, driven headlessly: set the slider, check the artists' data against the
library's own functions. The σ explorer (lesson 04) against the perturbed 1-D mixture and the
learned score; the SDE-time explorer (lesson 07) against the perturbed 2-D mixture and the
SDE's kernel. Controls are wired with ``observe``, so an exception in a callback reaches the
test."""

import numpy as np
import pytest
import torch

from lessons_lib.explorers import SDETimeExplorer, SigmaExplorer
from lessons_lib.nets import ScoreMLP
from lessons_lib.plotting import grid_2d
from lessons_lib.sde import VESDE
from lessons_lib.toy_data import mixture_1d, mixture_2d

# --- SigmaExplorer ---


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
    np.testing.assert_allclose(explorer.true_score_line.get_ydata(), noisy.score(pts)[:, 0].numpy(), rtol=1e-6,
                               atol=1e-6)
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


def test_sigma_explorer_shows_sigma_times_the_error(sigma_explorer):
    explorer, model = sigma_explorer
    explorer.slider.value = 0.1
    s = explorer.slider.value
    pts = explorer.xs[:, None]
    with torch.no_grad():
        error = (model(pts, s)[:, 0] - mixture_1d().perturbed(s).score(pts)[:, 0]).abs()
    np.testing.assert_allclose(explorer.error_line.get_ydata(), (s * error).clamp_min(1e-4).numpy(), rtol=1e-5)
    assert "σ × that" in explorer.message.value


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
    with pytest.raises(ValueError, match=r"sigma must be a finite number in \(0.02, 5\)"):
        SigmaExplorer(mixture_1d(), lambda x, s: -x, sigma=10.0)


# --- SDETimeExplorer ---

SDE = VESDE(sigma_max=50.0, sigma_min=0.01)


@pytest.fixture(scope="module")
def sde_explorer():
    return SDETimeExplorer(mixture_2d(), SDE, t=0.3, n=40, n_arrows=9, n_points=50)


@pytest.mark.parametrize("t", [0.0, 0.25, 0.6, 1.0])
def test_time_slider_redraws_p_t_and_its_score(sde_explorer, t):
    explorer = sde_explorer
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
    colour = np.log1p(score.norm(dim=1).numpy())
    assert explorer.quiver.get_clim() == pytest.approx((colour.min(), colour.max()), rel=1e-6, abs=1e-9)
    assert f"σ(t) = {SDE.sigma(t):.3g}" in explorer.message.value
    assert explorer.last_update_seconds > 0


def test_each_point_moves_along_one_fixed_direction_by_the_kernel_std(sde_explorer):
    """The points at t are x + √(σ²(t) − σ²_min)·z with one z per point: at t = 0 (kernel_std 0)
    they are the data points x, and the same z carries them to every other t."""
    explorer = sde_explorer
    assert SDE.kernel_std(0.0) == 0.0
    explorer.slider.value = 0.0
    start = np.array(explorer.scatter.get_offsets())
    explorer.slider.value = 1.0
    z = (np.array(explorer.scatter.get_offsets()) - start) / SDE.kernel_std(1.0)
    for t in (0.25, 0.6):
        explorer.slider.value = t
        np.testing.assert_allclose(explorer.scatter.get_offsets(), start + SDE.kernel_std(t) * z, rtol=1e-6,
                                   atol=1e-9)


def test_scores_shrink_as_t_grows(sde_explorer):
    largest = {}
    for t in (0.1, 0.9):
        sde_explorer.slider.value = t
        largest[t] = float(sde_explorer.message.value.rsplit(" ", 1)[1])
    assert largest[0.9] < 0.01 * largest[0.1]


def test_sde_explorer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="2-D density"):
        SDETimeExplorer(mixture_1d(), SDE)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SDETimeExplorer(mixture_2d(), SDE, t=1.5)
