"""fisher_constant_2d: ½E‖∇log p‖² by quadrature, against closed forms."""

import pytest
import torch

from lessons_lib.densities import Gaussian, GaussianMixture, fisher_constant_2d


def test_gaussian_closed_form():
    # for N(μ, Σ): ½E‖Σ⁻¹(x − μ)‖² = ½ tr Σ⁻¹
    cov = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    expected = 0.5 * torch.trace(torch.linalg.inv(cov)).item()
    assert fisher_constant_2d(Gaussian([0.5, -0.2], cov)) == pytest.approx(expected, rel=1e-6)


def test_far_apart_mixture_is_the_average_of_its_components():
    mix = GaussianMixture([0.3, 0.7], [[-4.0, 0.0], [4.0, 0.0]], [1.0, 0.5])
    expected = 0.3 * 0.5 * 2 / 1.0 + 0.7 * 0.5 * 2 / 0.5
    assert fisher_constant_2d(mix, half_width=12.0, n=1201) == pytest.approx(expected, rel=1e-4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="half_width"):
        fisher_constant_2d(Gaussian([0.0, 0.0], 1.0), half_width=-1.0)
