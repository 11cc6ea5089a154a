"""Langevin samplers against known targets (a 2-D Gaussian, the 1:9 mixture)."""

import math

import pytest
import torch

from lessons_lib.data import mixture_1d
from lessons_lib.densities import Gaussian
from lessons_lib.noise import geometric_sigmas
from lessons_lib.samplers import DivergenceError, annealed_langevin, langevin, langevin_step


def test_langevin_step_is_the_stated_convention():
    x, s, z = torch.tensor([[1.0]]), torch.tensor([[-2.0]]), torch.tensor([[0.5]])
    torch.testing.assert_close(langevin_step(x, s, 0.02, z), x + 0.02 * s + math.sqrt(0.04) * z)


def test_langevin_reproduces_a_2d_gaussian():
    target = Gaussian([1.0, -1.0], [[1.0, 0.6], [0.6, 0.8]])
    g = torch.Generator().manual_seed(0)
    x0 = 3 * torch.randn(4000, 2, generator=g, dtype=torch.float64)
    x = langevin(target.score, x0, step_size=0.01, n_steps=800, generator=g)
    torch.testing.assert_close(x.mean(0), target.mean, atol=0.05, rtol=0)
    # ULA's bias at ε = 0.01 is O(ε) on the covariance: well within the tolerance
    torch.testing.assert_close(torch.cov(x.T), target.cov, atol=0.06, rtol=0)


ANNEALED = dict(n_steps_each=100, step_lr=0.002)  # εᵢ = 0.002·σᵢ²/σ_L²


def _left_fraction(x):
    return (x < 0).double().mean().item()


def test_annealed_langevin_recovers_the_mixture_weights_plain_langevin_does_not():
    """0.1·N(−3,1) + 0.9·N(3,1) from a broad start U(−8, 8).

    Measured (seed 0, 4000 chains, 1000 score evaluations each): annealed 0.112 in the left
    mode (over seeds 0.105–0.115: 100 steps a level leave a small excess); plain Langevin with
    the same budget and ε = 0.02 (the annealed step at the last level): 0.35 — it keeps most
    of the start's split between the basins, whose boundary is near x = −0.37."""
    mix = mixture_1d()
    g = torch.Generator().manual_seed(0)
    x0 = 16 * torch.rand(4000, 1, generator=g) - 8
    sigmas = geometric_sigmas(10.0, 0.1, 10)
    noisy = {float(s): mix.perturbed(float(s)) for s in sigmas}
    x = annealed_langevin(lambda x, s: noisy[s].score(x), x0, sigmas, generator=g, **ANNEALED)
    assert abs(_left_fraction(x) - 0.1) < 0.03
    plain = langevin(mix.score, x0, step_size=0.02, n_steps=1000, generator=g)
    assert abs(_left_fraction(plain) - 0.1) > 0.2
    # within the right mode the annealed samples have the right moments
    right = x[x > 0]
    assert abs(right.mean().item() - 3.0) < 0.1 and abs(right.var().item() - 1.0) < 0.15


def test_record_every_returns_the_trajectory():
    target = Gaussian([0.0], 1.0)
    g = torch.Generator().manual_seed(1)
    x, traj = langevin(target.score, torch.zeros(7, 1), 0.1, 10, generator=g, record_every=5)
    assert traj.shape == (3, 7, 1)
    torch.testing.assert_close(traj[0], torch.zeros(7, 1))
    torch.testing.assert_close(traj[-1], x)
    sig = geometric_sigmas(1.0, 0.1, 4)
    x, traj = annealed_langevin(lambda x, s: -x / (1 + s**2), torch.zeros(3, 1), sig, n_steps_each=5,
                                generator=g, record_every=5, denoise=True)
    assert traj.shape == (1 + 4 + 1, 3, 1)
    torch.testing.assert_close(traj[-1], x)


def test_samplers_are_reproducible_with_a_generator():
    target = Gaussian([0.0, 0.0], 1.0)
    x0 = torch.zeros(5, 2)
    a = langevin(target.score, x0, 0.1, 20, generator=torch.Generator().manual_seed(3))
    b = langevin(target.score, x0, 0.1, 20, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_final_denoising_step_is_tweedie():
    """With denoise=True the last step is x + σ_L²·s(x, σ_L)."""
    calls = []

    def score(x, sigma):
        calls.append(sigma)
        return -x / (1 + sigma**2)

    sig = geometric_sigmas(1.0, 0.2, 3)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    noisy = annealed_langevin(score, torch.ones(4, 1), sig, n_steps_each=3, generator=g1)
    clean = annealed_langevin(score, torch.ones(4, 1), sig, n_steps_each=3, generator=g2, denoise=True)
    s_min = sig[-1].item()
    torch.testing.assert_close(clean, noisy + s_min**2 * score(noisy, s_min))
    assert calls[:3] == [pytest.approx(1.0)] * 3


def test_divergence_is_a_clear_error_naming_step_and_step_size():
    target = Gaussian([0.0], 0.1)  # stable only for ε < 0.1
    with pytest.raises(DivergenceError, match=r"after step \d+ of 5000 with step size ε = 0\.5"):
        langevin(target.score, torch.ones(10, 1), step_size=0.5, n_steps=5000,
                 generator=torch.Generator().manual_seed(5))
    with pytest.raises(DivergenceError, match="noise level 1"):
        annealed_langevin(lambda x, s: -x / 0.01, torch.ones(3, 1), [1.0, 0.5], n_steps_each=5000, step_lr=1.0)
    assert issubclass(DivergenceError, ValueError)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(step_size=0.0), "step_size"),
        (dict(step_size=-1.0), "step_size"),
        (dict(n_steps=-1), "n_steps"),
        (dict(n_steps=2.5), "n_steps"),
        (dict(record_every=0), "record_every"),
        (dict(x0=torch.zeros(3)), "at least 2 dimensions"),
    ],
)
def test_langevin_rejects_bad_input(kwargs, match):
    args = dict(score_fn=lambda x: -x, x0=torch.zeros(3, 1), step_size=0.1, n_steps=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        langevin(**args)


def test_annealed_langevin_rejects_bad_schedules_and_scores():
    x0 = torch.zeros(3, 1)
    with pytest.raises(ValueError, match="largest to smallest"):
        annealed_langevin(lambda x, s: -x, x0, [0.1, 1.0])
    with pytest.raises(ValueError, match="sigmas"):
        annealed_langevin(lambda x, s: -x, x0, [1.0, -0.1])
    with pytest.raises(ValueError, match="same shape"):
        annealed_langevin(lambda x, s: x.sum(1), x0, [1.0, 0.1])
