"""The reverse-diffusion predictor (Song et al. 2021, Algorithm 2 for VE) against closed forms:
its added variance is exactly σ² − σ'²; one step from the exact p_σ of a Gaussian has the
predicted mean and variance; Euler–Maruyama's variance step is h/(1 − e^{−h}) times larger; with
exact scores of the mixtures both predictors reach the right weights and moments."""

import math

import pytest
import torch

from lessons_lib.densities import Gaussian, noisy_score, sample_errors
from lessons_lib.sde import (
    PREDICTORS,
    VESDE,
    pc_sample,
    reverse_diffusion_step,
    reverse_sde_sample,
    reverse_sde_step,
)
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.utils import make_generator

SDE = VESDE(sigma_max=50.0, sigma_min=0.01)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("sigma, sigma_next", [(50.0, 30.0), (1.0, 0.7), (0.02, 0.01), (0.5, 0.0)])
def test_the_added_noise_has_exactly_the_kernel_variance(sigma, sigma_next):
    """x' − x − (σ² − σ'²)·s is √(σ² − σ'²)·z, to rounding: the variance step is the kernel's."""
    g = make_generator(0)
    x, score, z = (torch.randn(1000, 3, generator=g, dtype=torch.float64) for _ in range(3))
    step = reverse_diffusion_step(x, score, sigma, sigma_next, z)
    var = sigma**2 - sigma_next**2
    torch.testing.assert_close(step - x - var * score, math.sqrt(var) * z, rtol=1e-12, atol=1e-12)
    # with a zero score, the step's empirical variance is σ² − σ'² up to Monte-Carlo error
    big = reverse_diffusion_step(torch.zeros(200_000, dtype=torch.float64), torch.zeros(200_000, dtype=torch.float64),
                                 sigma, sigma_next, torch.randn(200_000, generator=g, dtype=torch.float64))
    assert abs(big.var().item() / var - 1) < 5 * math.sqrt(2 / 200_000)


@pytest.mark.parametrize("n_steps", [24, 48, 100])
def test_euler_maruyama_overshoots_the_variance_step_by_h_over_1_minus_exp_minus_h(n_steps):
    t, dt = 0.6, 1.0 / n_steps
    exact = SDE.sigma(t) ** 2 - SDE.sigma(t - dt) ** 2
    h = 2 * dt * SDE.log_ratio
    assert SDE.g(t) ** 2 * dt / exact == pytest.approx(h / (1 - math.exp(-h)), rel=1e-12)
    assert SDE.g(t) ** 2 * dt > exact


@pytest.mark.parametrize("sigma, sigma_next", [(10.0, 5.0), (1.0, 0.5), (0.3, 0.2)])
def test_one_step_from_the_exact_gaussian_marginal(sigma, sigma_next):
    """Data N(m, v): from x ~ p_σ = N(m, v + σ²) with its exact score, one step has mean m and
    variance (v + σ'²)²/(v + σ²) + σ² − σ'², i.e. σ'²'s variance plus (σ² − σ'²)²/(v + σ²)."""
    m, v = 1.5, 0.4
    p = Gaussian(torch.tensor([m], dtype=torch.float64), torch.tensor([[v]], dtype=torch.float64))
    g = make_generator(1)
    n = 400_000
    x = p.perturbed(sigma).sample(n, generator=g, dtype=torch.float64)
    z = torch.randn(x.shape, generator=g, dtype=torch.float64)
    out = reverse_diffusion_step(x, noisy_score(p)(x, sigma), sigma, sigma_next, z)
    a, b = v + sigma_next**2, v + sigma**2
    predicted = a**2 / b + b - a
    assert abs(out.mean().item() - m) < 5 * math.sqrt(predicted / n)
    assert abs(out.var().item() / predicted - 1) < 5 * math.sqrt(2 / n)
    assert predicted - a == pytest.approx((b - a) ** 2 / b)


def test_samplers_run_the_step_in_a_loop():
    """reverse_sde_sample(predictor="reverse_diffusion") and pc_sample's default predictor are
    reverse_diffusion_step on the grid, the score at (x, σ(t)) and one z per step."""
    mix = mixture_2d()
    score = noisy_score(mix)
    x1 = SDE.prior_sample((40, 2), make_generator(2), dtype=torch.float64)
    times = SDE.time_grid(6).tolist()
    x, g = x1.clone(), make_generator(3)
    for k in range(6, 0, -1):
        z = torch.randn(x.shape, generator=g, dtype=torch.float64)
        x = reverse_diffusion_step(x, score(x, SDE.sigma(times[k])), SDE.sigma(times[k]), SDE.sigma(times[k - 1]), z)
    rd = reverse_sde_sample(score, SDE, x1, 6, make_generator(3), predictor="reverse_diffusion")
    torch.testing.assert_close(rd, x)
    torch.testing.assert_close(pc_sample(score, SDE, x1, 6, n_corrector=0, generator=make_generator(3)), x)
    # Euler–Maruyama stays reverse_sde_sample's default
    x, g = x1.clone(), make_generator(3)
    for k in range(6, 0, -1):
        z = torch.randn(x.shape, generator=g, dtype=torch.float64)
        x = reverse_sde_step(x, score(x, SDE.sigma(times[k])), SDE.g(times[k]), times[k] - times[k - 1], z)
    torch.testing.assert_close(reverse_sde_sample(score, SDE, x1, 6, make_generator(3)), x)
    torch.testing.assert_close(
        pc_sample(score, SDE, x1, 6, n_corrector=0, generator=make_generator(3), predictor="euler_maruyama"), x)


@pytest.mark.parametrize("target", [mixture_1d, mixture_2d], ids=["1-D 1:9 mixture", "2-D mixture"])
@pytest.mark.parametrize("predictor", PREDICTORS)
def test_both_predictors_reach_the_mixture_with_exact_scores(predictor, target):
    """300 steps from N(0, 50² I), 10,000 chains: weights within 0.02, mean and covariance within 0.1."""
    mix = target()
    x1 = SDE.prior_sample((10_000, mix.dim), make_generator(4), dtype=torch.float64)
    err = sample_errors(mix, reverse_sde_sample(noisy_score(mix), SDE, x1, 300, make_generator(5), predictor=predictor))
    assert err.weight < 0.02 and err.mean < 0.1 and err.covariance < 0.1, err


@pytest.mark.parametrize("bad", ["ancestral", "EM", 3])
def test_unknown_predictors_are_value_errors(bad):
    x1 = SDE.prior_sample((4, 1), make_generator(6))
    with pytest.raises(ValueError, match="predictor must be one of"):
        reverse_sde_sample(noisy_score(mixture_1d()), SDE, x1, 3, predictor=bad)
    with pytest.raises(ValueError, match="predictor must be one of"):
        pc_sample(noisy_score(mixture_1d()), SDE, x1, 3, predictor=bad)


def test_reverse_sde_sample_needs_a_predictor_and_steps_must_go_down():
    x1 = SDE.prior_sample((4, 1), make_generator(7))
    with pytest.raises(ValueError, match="needs a predictor"):
        reverse_sde_sample(noisy_score(mixture_1d()), SDE, x1, 3, predictor=None)
    with pytest.raises(ValueError, match="sigma > sigma_next"):
        reverse_diffusion_step(x1, x1, 1.0, 2.0, x1)
