import math

import pytest
import torch

from lessons_lib.samplers import DivergenceError
from lessons_lib.sde import (
    VESDE,
    ode_sample,
)
from lessons_lib.toy_data import mixture_2d
from lessons_lib.utils import make_generator


def test_heun_sample_follows_the_closed_form_flow_of_a_gaussian():
    # For p = N(μ, s²) the flow dx/dσ = −σ·∇log p_σ = σ(x − μ)/(s² + σ²) keeps
    # (x − μ)/√(s² + σ²) constant: x(0) = μ + (x(σ₀) − μ)·s/√(s² + σ₀²)
    from lessons_lib.edm import heun_sample
    from lessons_lib.noise import karras_sigmas

    mu, s = 0.7, 0.3
    score = lambda x, sigma: -(x - mu) / (s**2 + sigma**2)  # noqa: E731
    x0 = torch.linspace(-40, 40, 9, dtype=torch.float64)[:, None]
    exact = mu + (x0 - mu) * s / math.sqrt(s**2 + 40.0**2)
    errors = [float((heun_sample(score, x0, karras_sigmas(40.0, 0.002, n)) - exact).abs().max()) for n in (10, 20, 40)]
    assert errors[2] < 5e-3  # measured 0.059, 0.012, 0.0027 for starting points up to |x| = 40
    assert errors[1] < errors[0] / 3 and errors[2] < errors[1] / 3  # second order: ~4× per doubling


def test_heun_sample_agrees_with_the_geometric_ode_sampler_on_a_mixture():
    # two discretisations of one probability-flow ODE: with many steps they give the same map
    from lessons_lib.edm import heun_sample
    from lessons_lib.noise import karras_sigmas

    mix = mixture_2d()
    sde = VESDE(sigma_max=20.0, sigma_min=0.01)
    score = lambda x, sigma: mix.perturbed(sigma).score(x)  # noqa: E731
    x1 = sde.prior_sample((200, 2), make_generator(0), dtype=torch.float64)
    a = ode_sample(score, sde, x1, 400)
    levels = torch.cat([karras_sigmas(20.0, 0.01, 400), torch.zeros(0, dtype=torch.float64)])
    b = heun_sample(score, x1, levels[:-1].tolist() + [0.0])[:, :]
    # ode_sample stops at σ_min = 0.01, heun_sample goes on to 0: compare up to that last bit
    assert float((a - b).abs().max()) < 0.05


def test_heun_sample_checks_its_levels_and_reports_divergence():
    from lessons_lib.edm import heun_sample

    with pytest.raises(ValueError, match="followed by 0"):
        heun_sample(lambda x, s: -x, torch.zeros(2, 1), [1.0, 0.5])
    with pytest.raises(ValueError, match="strictly decreasing"):
        heun_sample(lambda x, s: -x, torch.zeros(2, 1), [0.5, 1.0, 0.0])
    with pytest.raises(DivergenceError, match="score_fn returned NaN or infinite values at a finite x.*σ = 1"):
        heun_sample(lambda x, s: x * float("inf"), torch.ones(2, 1), [1.0, 0.5, 0.0])


def test_stochastic_heun_sample_draws_the_gaussian_and_is_seeded():
    # EDM's churn adds noise and runs the ODE from the raised level: the marginals stay p_σ,
    # so from the prior it must still end at N(μ, s²); the same generator gives the same draws
    from lessons_lib.edm import heun_sample
    from lessons_lib.noise import karras_sigmas

    mu, s = 0.7, 0.3
    score = lambda x, sigma: -(x - mu) / (s**2 + sigma**2)  # noqa: E731
    # measured: standard deviation 0.333 at 18 steps (0.318 without churn), 0.307 at 50, 0.302 at 200
    levels = karras_sigmas(40.0, 0.002, 50)
    x0 = 40.0 * torch.randn(20_000, 1, generator=make_generator(0), dtype=torch.float64)
    out = heun_sample(score, x0, levels, churn=40.0, generator=make_generator(1))
    assert abs(float(out.mean()) - mu) < 0.01 and abs(float(out.std()) - s) < 0.01
    again = heun_sample(score, x0, levels, churn=40.0, generator=make_generator(1))
    torch.testing.assert_close(out, again)
    assert not torch.equal(out, heun_sample(score, x0, levels))  # churn = 0: the deterministic ODE
    with pytest.raises(ValueError, match="churn"):
        heun_sample(score, x0, levels, churn=-1.0)
