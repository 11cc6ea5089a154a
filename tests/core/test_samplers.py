"""Langevin samplers against known targets (a 2-D Gaussian, the 1:9 mixture)."""

import math

import pytest
import torch

from lessons_lib.densities import Gaussian
from lessons_lib.noise import geometric_sigmas
from lessons_lib.samplers import (
    DivergenceError,
    annealed_inpainting,
    annealed_langevin,
    annealed_langevin_law_1d,
    langevin,
    langevin_step,
    ula_relaxation_time_1d,
    ula_stationary_1d,
)
from lessons_lib.toy_data import mixture_1d


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


ANNEALED = dict(n_steps_each=100, step_size=0.002)  # εᵢ = 0.002·σᵢ²/σ_L²


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
        annealed_langevin(lambda x, s: -x / 0.01, torch.ones(3, 1), [1.0, 0.5], n_steps_each=5000, step_size=1.0)
    assert issubclass(DivergenceError, ValueError)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(step_size=0.0), "step_size"),
        (dict(step_size=-1.0), "step_size"),
        (dict(n_steps=-1), "n_steps"),
        (dict(n_steps=2.5), "n_steps"),
        (dict(record_every=0), "record_every"),
        (dict(x_init=torch.zeros(3)), "at least 2 dimensions"),
    ],
)
def test_langevin_rejects_bad_input(kwargs, match):
    args = dict(score_fn=lambda x: -x, x_init=torch.zeros(3, 1), step_size=0.1, n_steps=5)
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


# --------------------------------------------------------------------------- in-painting
def _algorithm_2(score, image, mask, sigmas, n_steps_each, step_size, x0, known_z, step_z):
    """Song & Ermon (2019), Algorithm 2, transcribed line by line, as in their code: per level
    draw z̃ ~ N(0, σᵢ²) once, y = x + z̃, set the known part of x̃ to y; then T times a Langevin
    step on the whole image (the paper's (αᵢ/2)·s + √αᵢ·z is εᵢ·s + √(2εᵢ)·z with
    εᵢ = step_size·σᵢ²/σ_L²) and x̃ ← x̃ ⊙ (1 − m) + y ⊙ m. ``known_z[i]`` and ``step_z[i][t]``
    are standard normal draws replayed from the library's generator."""
    x = x0.clone()
    for i, sigma in enumerate(sigmas):
        eps = step_size * sigma**2 / sigmas[-1] ** 2
        y = image + sigma * known_z[i]
        x = x * (1 - mask) + y * mask
        for t in range(n_steps_each):
            x = x + eps * score(x, sigma) + (2 * eps) ** 0.5 * step_z[i][t]
            x = x * (1 - mask) + y * mask
    return x * (1 - mask) + image * mask


def _ncsnv2_inpainting(score, image, mask, sigmas, n_steps_each, step_size, x0, known_z):
    """NCSNv2's `anneal_Langevin_dynamics_inpainting` (Song & Ermon 2020), transcribed: before
    every step the known part is set to x + σᵢ·z with a fresh z, then one Langevin step."""
    x = x0.clone()
    for i, sigma in enumerate(sigmas):
        eps = step_size * sigma**2 / sigmas[-1] ** 2
        for t in range(n_steps_each):
            kz, sz = known_z[i][t]
            x = x * (1 - mask) + (image + sigma * kz) * mask
            x = x + eps * score(x, sigma) + (2 * eps) ** 0.5 * sz
    return x * (1 - mask) + image * mask


def _inpainting_problem():
    gauss = Gaussian([1.0, -1.0, 0.5], [[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])
    noisy = {}

    def score(x, sigma):
        if sigma not in noisy:
            noisy[sigma] = gauss.perturbed(sigma)
        return noisy[sigma].score(x)

    image = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64).repeat(5, 1)
    mask = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    sigmas = [float(s) for s in geometric_sigmas(2.0, 0.1, 4)]
    return score, image, mask, sigmas


def test_inpainting_per_level_is_song_and_ermon_2019_algorithm_2_with_replayed_noise():
    score, image, mask, sigmas = _inpainting_problem()
    T, lr = 3, 0.01
    out = annealed_inpainting(score, image, mask, sigmas, n_steps_each=T, step_size=lr,
                              generator=torch.Generator().manual_seed(7))
    # replay the generator in the documented order: x0, then per level [known noise, T step noises]
    g = torch.Generator().manual_seed(7)
    x0 = torch.rand(image.shape, generator=g, dtype=image.dtype)
    known_z, step_z = [], []
    for _ in sigmas:
        known_z.append(torch.randn(image.shape, generator=g, dtype=image.dtype))
        step_z.append([torch.randn(image.shape, generator=g, dtype=image.dtype) for _ in range(T)])
    expected = _algorithm_2(score, image, mask, sigmas, T, lr, x0, known_z, step_z)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_inpainting_per_step_is_ncsnv2_with_replayed_noise():
    score, image, mask, sigmas = _inpainting_problem()
    T, lr = 3, 0.01
    out = annealed_inpainting(score, image, mask, sigmas, n_steps_each=T, step_size=lr,
                              generator=torch.Generator().manual_seed(8), known_noise="per_step")
    g = torch.Generator().manual_seed(8)
    x0 = torch.rand(image.shape, generator=g, dtype=image.dtype)
    known_z = [[(torch.randn(image.shape, generator=g, dtype=image.dtype),
                 torch.randn(image.shape, generator=g, dtype=image.dtype)) for _ in range(T)] for _ in sigmas]
    expected = _ncsnv2_inpainting(score, image, mask, sigmas, T, lr, x0, known_z)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("known_noise", ["per_level", "per_step"])
def test_inpainting_score_only_sees_known_pixels_at_the_level_it_is_asked_about(known_noise):
    """Every call s(x, σᵢ) must see the known pixels at noise level σᵢ — the first step of a new
    level included (the bug: they were still at the previous level's noise, 1.6× too large
    here). Per level: the same perturbation for every step of a level; per step: a new one."""
    image = torch.zeros(4, 20_000, dtype=torch.float64)
    mask = torch.zeros(20_000, dtype=torch.float64)
    mask[:10_000] = 1.0
    seen = []

    def score(x, sigma):
        seen.append((sigma, x[:, :10_000].clone()))
        return -x / (1 + sigma**2)

    sigmas = [float(s) for s in geometric_sigmas(4.0, 0.1, 9)]  # neighbours 1.6× apart
    mode = {} if known_noise == "per_level" else {"known_noise": known_noise}  # per level is the default
    annealed_inpainting(score, image, mask, sigmas, n_steps_each=3, step_size=1e-4, denoise=True,
                        generator=torch.Generator().manual_seed(9), **mode)
    assert len(seen) == 9 * 3 + 1
    for sigma, known in seen:
        assert known.std().item() / sigma == pytest.approx(1.0, abs=0.02)
    same_within_level = [torch.equal(seen[k][1], seen[k + 1][1]) for k in range(0, 27, 3)]
    assert all(same_within_level) if known_noise == "per_level" else not any(same_within_level)


def test_inpainting_rejects_an_unknown_noise_mode():
    with pytest.raises(ValueError, match="per_level"):
        annealed_inpainting(lambda x, s: -x, torch.zeros(2, 3), torch.ones(3), [1.0, 0.5], known_noise="once")


def test_annealed_inpainting_samples_the_gaussian_conditional():
    # p = N(μ, Σ) in 2-D with correlation 0.8; keep x₁ = 2 and fill in x₂:
    # x₂ | x₁ ~ N(μ₂ + 0.8 (x₁ − μ₁), 1 − 0.8²) = N(−0.2, 0.36)
    gauss = Gaussian(torch.tensor([1.0, -1.0]), torch.tensor([[1.0, 0.8], [0.8, 1.0]]))
    perturbed = {}

    def score(x, sigma):
        if sigma not in perturbed:
            perturbed[sigma] = gauss.perturbed(sigma)
        return perturbed[sigma].score(x)

    image = torch.zeros(4000, 2)
    image[:, 0] = 2.0
    out = annealed_inpainting(score, image, torch.tensor([1.0, 0.0]), geometric_sigmas(2.0, 0.02, 8),
                              n_steps_each=100, step_size=5e-4, generator=torch.Generator().manual_seed(0))
    assert (out[:, 0] == 2.0).all()
    assert abs(float(out[:, 1].mean()) - (-0.2)) < 0.04
    assert abs(float(out[:, 1].var()) - 0.36) < 0.04


def test_annealed_inpainting_rejects_bad_masks():
    def score(x, s):
        return -x

    with pytest.raises(ValueError, match="0 .*1"):
        annealed_inpainting(score, torch.zeros(2, 3), torch.tensor([0.5, 1.0, 0.0]), [1.0, 0.5])
    with pytest.raises(ValueError, match="broadcast"):
        annealed_inpainting(score, torch.zeros(2, 3), torch.ones(4), [1.0, 0.5])


@pytest.mark.parametrize("v, eps", [(1.0, 0.5), (0.3, 0.1), (2.0, 0.01)])
def test_ula_stationary_1d_has_the_gaussian_closed_form(v, eps):
    x, prob = ula_stationary_1d(lambda y: -y / v, eps, 0.0, 12 * math.sqrt(v))
    assert prob.sum().item() == pytest.approx(1.0, abs=1e-12)
    mean = (prob * x).sum()
    assert mean.item() == pytest.approx(0.0, abs=1e-9)
    assert (prob * (x - mean) ** 2).sum().item() == pytest.approx(2 * v / (2 - eps / v), rel=1e-4)


def test_ula_stationary_1d_matches_long_chains_on_the_mixture():
    target, eps = mixture_1d(), 0.3
    x, prob = ula_stationary_1d(target.score, eps, target.mean().item(), 14.0)
    g = torch.Generator().manual_seed(3)
    chains = langevin(target.score, target.sample(20_000, generator=g), eps, 2000, generator=g)
    left = (chains < 0).double().mean().item()
    assert prob[x < 0].sum().item() == pytest.approx(left, abs=4 * math.sqrt(left * (1 - left) / 20_000))


@pytest.mark.parametrize("kwargs, match", [
    (dict(step_size=0.0), "step_size"), (dict(half_width=-1.0), "half_width"), (dict(n_cells=1), "n_cells"),
    (dict(score_fn=lambda y: y[:, :0]), "score_fn"),
])
def test_ula_stationary_1d_refuses_bad_input(kwargs, match):
    args = dict(score_fn=lambda y: -y, step_size=0.1, centre=0.0, half_width=5.0) | kwargs
    with pytest.raises(ValueError, match=match):
        ula_stationary_1d(**args)


@pytest.mark.parametrize("v, eps", [(1.0, 0.5), (0.3, 0.1), (2.0, 0.01), (1.0, 1.5)])
def test_ula_relaxation_time_1d_has_the_gaussian_closed_form(v, eps):
    """One step multiplies x − μ by 1 − ε/v (negative for ε > v: the chain overshoots)."""
    tau = ula_relaxation_time_1d(lambda y: -y / v, eps, 0.0, 12 * math.sqrt(v * 2 / abs(2 - eps / v)))
    assert tau == pytest.approx(-eps / math.log(abs(1 - eps / v)), rel=1e-6)


def test_ula_relaxation_time_1d_is_the_decay_rate_of_the_mixture_split():
    """Chains started in the right mode: their fraction left of 0 approaches ULA's stationary split
    as e^{-t/τ} (here computed by propagating the start through the grid kernel, n steps)."""
    target, eps = mixture_1d(), 0.3
    centre = target.mean().item()
    tau = ula_relaxation_time_1d(target.score, eps, centre, 14.0)
    x, prob = ula_stationary_1d(target.score, eps, centre, 14.0)
    kernel = torch.softmax(-(x[None, :] - (x + eps * target.score(x[:, None])[:, 0].double())[:, None]) ** 2
                           / (4 * eps), dim=1)
    law = torch.exp(-(x - 3.0) ** 2 / 2)
    law = law / law.sum()
    w = prob[x < 0].sum().item()
    gap = []
    for n in range(1, 601):
        law = law @ kernel
        if n in (300, 600):
            gap.append(w - law[x < 0].sum().item())
    assert gap[1] / gap[0] == pytest.approx(math.exp(-300 * eps / tau), rel=1e-3)
    # and long chains agree: after 300 steps (90 time units, about 2τ)
    g = torch.Generator().manual_seed(4)
    chains = langevin(target.score, 3.0 + torch.randn(20_000, 1, generator=g, dtype=torch.float64), eps, 300,
                      generator=g)
    left = (chains < 0).double().mean().item()
    assert left == pytest.approx(w - gap[0], abs=4 * math.sqrt(left * (1 - left) / 20_000))


def test_ula_relaxation_time_1d_refuses_bad_input():
    with pytest.raises(ValueError, match="step_size"):
        ula_relaxation_time_1d(lambda y: -y, -0.1, 0.0, 5.0)


def test_annealed_langevin_law_1d_has_the_gaussian_closed_form():
    """For p_σ = N(m, 1 + σ²) one step maps x to (1 − εᵢ/vᵢ)x + εᵢm/vᵢ plus N(0, 2εᵢ) noise, so the
    chains stay Gaussian; their mean and variance follow a scalar recursion step by step."""
    m, sigmas, n_steps, step = 1.5, [3.0, 1.0, 0.3], 20, 0.05
    laws = annealed_langevin_law_1d(lambda y, s: -(y - m) / (1 + s**2), lambda y: torch.exp(-(y + 2.0) ** 2 / 2),
                                    sigmas, n_steps, step, m, [40.0, 30.0, 20.0], cell_width=0.02)
    mean, var = -2.0, 1.0
    for sigma, (x, prob) in zip(sigmas, laws[1:]):
        eps, v = step * sigma**2 / sigmas[-1] ** 2, 1 + sigma**2
        for _ in range(n_steps):
            mean, var = mean + eps * (m - mean) / v, (1 - eps / v) ** 2 * var + 2 * eps
        grid_mean = (prob * x).sum().item()
        assert prob.sum().item() == pytest.approx(1.0, abs=1e-12)
        assert grid_mean == pytest.approx(mean, abs=1e-4)
        assert (prob * (x - grid_mean) ** 2).sum().item() == pytest.approx(var, rel=1e-3)


def test_annealed_langevin_law_1d_matches_annealed_chains_on_the_mixture():
    target, sigmas = mixture_1d(), geometric_sigmas(5.0, 0.5, 4)
    score = lambda y, s: target.perturbed(s).score(y)  # noqa: E731
    halves = [4 + 10 * math.sqrt(1 + s**2) for s in [sigmas[0].item(), *sigmas[:-1].tolist()]]
    laws = annealed_langevin_law_1d(score, lambda y: ((y > -8) & (y < 8)).double(), sigmas, 30, 0.05,
                                    target.mean().item(), halves, cell_width=0.05)
    g = torch.Generator().manual_seed(5)
    start = 16 * torch.rand(20_000, 1, generator=g, dtype=torch.float64) - 8
    _, levels = annealed_langevin(score, start, sigmas, n_steps_each=30, step_size=0.05, generator=g, record_every=30)
    for (x, prob), chains in zip(laws, levels):
        left = (chains < 0).double().mean().item()
        assert prob[x < 0].sum().item() == pytest.approx(left, abs=4 * math.sqrt(left * (1 - left) / 20_000))


@pytest.mark.parametrize("kwargs, match", [
    (dict(half_widths=[30.0]), "one window per level"), (dict(half_widths=[30.0, 2.0]), "widen"),
    (dict(start_density=lambda y: -torch.ones_like(y)), "non-negative"), (dict(sigmas=[0.5, 2.0]), "largest"),
    (dict(step_size=-0.1), "step_size"), (dict(cell_width=0.0), "cell_width"),
])
def test_annealed_langevin_law_1d_refuses_bad_input(kwargs, match):
    args = dict(score_fn=lambda y, s: -y / (1 + s**2), start_density=lambda y: torch.exp(-y**2), sigmas=[2.0, 0.5],
                n_steps_each=5, step_size=0.1, centre=0.0, half_widths=[30.0, 20.0]) | kwargs
    with pytest.raises(ValueError, match=match):
        annealed_langevin_law_1d(**args)
