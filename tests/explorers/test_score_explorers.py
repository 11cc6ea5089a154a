"""The explorers of the score (lessons 01 and 03) draw what the library computes for the sliders' values."""

import numpy as np
import pytest
import torch

from lessons_lib.autodiff import hutchinson_trace
from lessons_lib.densities import GaussianMixture
from lessons_lib.explorers import MixtureScoreExplorer, ProjectionVarianceExplorer
from lessons_lib.utils import make_generator


def test_mixture_explorer_draws_the_density_and_score_of_the_sliders():
    ex = MixtureScoreExplorer(n=101)
    ex.weight.value = 0.7
    ex.mean1.value = -1.5
    ex.mean2.value = 2.5
    ex.std1.value = 0.5
    ex.std2.value = 1.2
    ref = GaussianMixture([0.7, 0.3], [[-1.5], [2.5]], [0.25, 1.44])
    xs = torch.linspace(-6, 6, 101, dtype=torch.float64)[:, None]
    np.testing.assert_allclose(ex.density_line.get_xdata(), xs[:, 0].numpy())
    np.testing.assert_allclose(ex.density_line.get_ydata(), ref.log_prob(xs).exp().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ex.score_line.get_ydata(), ref.score(xs)[:, 0].numpy(), rtol=1e-12, atol=1e-12)
    assert "modes" in ex.message.value


def test_mixture_explorer_finds_both_modes_of_a_well_separated_mixture():
    ex = MixtureScoreExplorer(weight=0.5, mean1=-3.0, mean2=3.0, std1=0.5, std2=0.5, n=601)
    modes = [float(m) for m in ex.message.value.split("=")[-1].split(",")]
    assert modes == pytest.approx([-3.0, 3.0], abs=0.03)


def _linear_trace_estimates(A, n_repeats, m, kind, seed):
    x = torch.zeros(n_repeats, A.shape[0], dtype=torch.float64)
    return hutchinson_trace(lambda y: y @ A.T, x, m, kind=kind, generator=make_generator(seed)).numpy()


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_projection_explorer_plots_the_hutchinson_estimates_of_the_slider(kind):
    ex = ProjectionVarianceExplorer(dim=6, n_repeats=500, seed=3)
    ex.kind.value = kind
    ex.n_projections.value = 8
    est = _linear_trace_estimates(ex.A, 500, 8, kind, 3)
    want, _ = np.histogram(est, bins=ex.edges, density=True)
    np.testing.assert_allclose(ex.hist.get_data().values, want)
    np.testing.assert_allclose(ex.var_point.get_ydata(), [est.var(ddof=1)])
    np.testing.assert_allclose(ex.var_point.get_xdata(), [8])


def test_projection_explorer_closed_form_variances():
    A = torch.tensor([[1.0, 2.0, 0.0], [2.0, -1.0, 3.0], [0.0, 3.0, 4.0]], dtype=torch.float64)
    ex = ProjectionVarianceExplorer(A=A, n_repeats=20000)
    assert ex.trace == pytest.approx(4.0)
    assert ex.variance_formula["rademacher"] == pytest.approx(2 * 2 * (4 + 9))
    assert ex.variance_formula["gaussian"] == pytest.approx(2 * (1 + 1 + 16 + 2 * (4 + 9)))
    for kind in ("rademacher", "gaussian"):
        ex.kind.value = kind
        measured = float(ex.var_point.get_ydata()[0])
        assert measured == pytest.approx(ex.variance_formula[kind], rel=0.1)


def test_projection_explorer_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        ProjectionVarianceExplorer(A=torch.zeros(2, 3))


def test_projection_explorer_diagonal_control_scales_the_diagonal_and_the_gaussian_variance():
    A = torch.tensor([[2.0, 1.0], [1.0, -3.0]], dtype=torch.float64)
    ex = ProjectionVarianceExplorer(A=A, n_repeats=4000, seed=2)
    ex.diagonal.value = 4.0
    torch.testing.assert_close(ex.A, torch.tensor([[8.0, 1.0], [1.0, -12.0]], dtype=torch.float64))
    assert ex.trace == pytest.approx(-4.0)
    # Rademacher: diagonal gives no variance (2·2·1² = 4); Gaussian: + 2(8² + 12²) = 416 more
    assert ex.variance_formula == pytest.approx({"rademacher": 4.0, "gaussian": 420.0})
    ex.kind.value = "gaussian"
    est = _linear_trace_estimates(ex.A, 4000, 1, "gaussian", 2)
    np.testing.assert_allclose(ex.var_point.get_ydata(), [est.var(ddof=1)])
    np.testing.assert_allclose(ex.formula_lines["gaussian"].get_ydata(), 420.0 / np.array(ex.M_VALUES))
    assert "c = 4" in ex.message.value
    ex.diagonal.value = 0.0
    assert ex.variance_formula["gaussian"] == pytest.approx(ex.variance_formula["rademacher"])
