"""density_from_score_1d and total_variation_1d against analytic densities."""

import math

import pytest
import torch

from lessons_lib.data import mixture_1d
from lessons_lib.densities import Gaussian, GaussianMixture, density_from_score_1d, total_variation_1d

XS = torch.linspace(-10.0, 10.0, 2001, dtype=torch.float64)


@pytest.mark.parametrize(
    "density",
    [Gaussian([0.5], 2.0), mixture_1d(), GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [0.25, 1.5])],
    ids=["gaussian", "mixture_1d", "unequal_widths"],
)
def test_recovers_analytic_density_from_its_score(density):
    recovered = density_from_score_1d(density.score, XS)
    exact = torch.exp(density.log_prob(XS[:, None]))
    assert torch.allclose(recovered, exact, atol=1e-5)
    assert torch.trapezoid(recovered, XS).item() == pytest.approx(1.0, abs=1e-12)


def test_score_of_wrong_scale_gives_the_matching_gaussian():
    # s(x) = -x/4 is the score of N(0, 4) whatever its normaliser
    recovered = density_from_score_1d(lambda x: -x / 4.0, XS)
    assert torch.allclose(recovered, torch.exp(Gaussian([0.0], 4.0).log_prob(XS[:, None])), atol=1e-5)


def test_float32_score_function_and_grid():
    xs = XS.float()
    recovered = density_from_score_1d(mixture_1d().score, xs)
    assert recovered.dtype == torch.float64
    assert torch.allclose(recovered, torch.exp(mixture_1d().log_prob(XS[:, None])), atol=1e-4)


def test_total_variation_of_known_pairs():
    p = torch.exp(Gaussian([0.0], 1.0).log_prob(XS[:, None]))
    q = torch.exp(Gaussian([1.0], 1.0).log_prob(XS[:, None]))
    # TV between N(0,1) and N(1,1) is 2Φ(1/2) − 1 = erf(1/(2√2))
    expected = math.erf(0.5 / math.sqrt(2.0))
    assert total_variation_1d(p, q, XS) == pytest.approx(expected, abs=1e-5)
    assert total_variation_1d(p, p, XS) == 0.0
    far = torch.exp(Gaussian([8.0], 0.1).log_prob(XS[:, None]))
    assert total_variation_1d(p, far, XS) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    "xs", [torch.tensor([0.0]), torch.linspace(1, 0, 5), torch.zeros(3, 2), torch.tensor([0.0, float("nan")])]
)
def test_bad_grids_are_rejected(xs):
    with pytest.raises(ValueError, match="xs must"):
        density_from_score_1d(lambda x: -x, xs)


def test_score_of_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match="shape \\(n, 1\\)"):
        density_from_score_1d(lambda x: -x[:, 0], XS)
    with pytest.raises(ValueError, match="one value per grid point"):
        total_variation_1d(torch.ones(3), torch.ones(len(XS)), XS)
