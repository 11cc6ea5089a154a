"""MALA (lessons_lib.samplers.mala, mala_log_acceptance) against the exact answer: the acceptance
rule satisfies detailed balance, and on the exact mixture MALA removes the bias that ULA has at
the same step size."""

import math

import pytest
import torch

from lessons_lib.densities import Gaussian
from lessons_lib.samplers import langevin, mala, mala_log_acceptance
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.utils import make_generator


def _log_q(p, b, a, eps):
    """log N(b; a + ε s(a), 2ε I), normalised."""
    d = b.shape[1]
    return -((b - a - eps * p.score(a)) ** 2).sum(1) / (4 * eps) - 0.5 * d * math.log(4 * math.pi * eps)


@pytest.mark.parametrize("eps", [0.05, 0.5, 2.0])
def test_acceptance_satisfies_detailed_balance(eps):
    """p(x) q(y|x) α(x→y) = p(y) q(x|y) α(y→x) for arbitrary pairs, on the 2-D mixture."""
    p = mixture_2d()
    g = make_generator(0)
    x = 3 * torch.randn(500, 2, generator=g, dtype=torch.float64)
    y = x + 2 * torch.randn(500, 2, generator=g, dtype=torch.float64)
    forward = p.log_prob(x) + _log_q(p, y, x, eps) + mala_log_acceptance(p.log_prob, p.score, x, y, eps)
    backward = p.log_prob(y) + _log_q(p, x, y, eps) + mala_log_acceptance(p.log_prob, p.score, y, x, eps)
    torch.testing.assert_close(forward, backward, rtol=0, atol=1e-9)


def test_acceptance_ignores_the_normaliser():
    p = mixture_1d()
    g = make_generator(1)
    x, y = torch.randn(50, 1, generator=g, dtype=torch.float64), torch.randn(50, 1, generator=g, dtype=torch.float64)
    a = mala_log_acceptance(p.log_prob, p.score, x, y, 0.3)
    b = mala_log_acceptance(lambda v: p.log_prob(v) + 7.0, p.score, x, y, 0.3)
    torch.testing.assert_close(a, b)
    assert (a <= 0).all()


def test_gaussian_variance_is_exact_where_ula_is_biased():
    """N(0, 1) at ε = 1: ULA's stationary variance is 2v/(2 − ε/v) = 2; MALA's is 1."""
    gauss = Gaussian([0.0], 1.0)
    x0 = torch.randn(20_000, 1, generator=make_generator(2), dtype=torch.float64)
    x_mala, acceptance = mala(gauss.log_prob, gauss.score, x0, 1.0, 300, generator=make_generator(3))
    x_ula = langevin(gauss.score, x0, 1.0, 300, generator=make_generator(3))
    se = math.sqrt(2 / len(x0))  # s.e. of a sample variance of a unit Gaussian
    assert abs(x_mala.var().item() - 1.0) < 4 * se
    assert abs(x_ula.var().item() - 2.0) < 4 * 2 * se
    assert 0.3 < acceptance < 1.0


def test_mixture_weights_are_right_where_ula_shifts_them():
    """The 2-D mixture from exact samples at ε = 0.3: ULA moves mass out of the narrow component,
    MALA keeps the weights (within 4 binomial standard errors)."""
    p = mixture_2d()
    x0 = p.sample(4000, generator=make_generator(4), dtype=torch.float64)
    x_mala, _ = mala(p.log_prob, p.score, x0, 0.3, 300, generator=make_generator(5))
    x_ula = langevin(p.score, x0, 0.3, 300, generator=make_generator(5))
    w = p.weights.double()
    se = (w * (1 - w) / len(x0)).sqrt()
    mala_gap = (p.component_fractions(x_mala).double() - w).abs()
    ula_gap = (p.component_fractions(x_ula).double() - w).abs()
    assert (mala_gap < 4 * se).all(), mala_gap
    assert ula_gap.max() > 6 * se.max(), ula_gap


def test_trajectory_and_validation():
    gauss = Gaussian([0.0], 1.0)
    x, acc, traj = mala(gauss.log_prob, gauss.score, torch.zeros(10, 1), 0.1, 20, generator=make_generator(6),
                        record_every=5)
    assert traj.shape == (5, 10, 1) and torch.equal(traj[-1], x)
    with pytest.raises(ValueError, match="step_size"):
        mala(gauss.log_prob, gauss.score, torch.zeros(10, 1), 0.0, 5)
    with pytest.raises(ValueError, match="same shape"):
        mala_log_acceptance(gauss.log_prob, gauss.score, torch.zeros(4, 1), torch.zeros(5, 1), 0.1)
