"""The VE SDE and its samplers, against exact references: the closed-form perturbed mixtures of
lessons_lib.densities (their scores, log-densities and moments), numerical convolution with the
SDE's kernel, a forward SDE simulated here by hand, the closed-form flow of a Gaussian, and
annealed Langevin (lesson 05) replayed draw for draw."""

import math

import pytest
import torch

from lessons_lib.densities import Gaussian, noisy_score, sample_errors
from lessons_lib.nets import ScoreMLP
from lessons_lib.samplers import DivergenceError, annealed_langevin
from lessons_lib.sde import (
    VESDE,
    bits_per_dim,
    ode_encode,
    ode_log_likelihood,
    ode_sample,
    pc_sample,
    probability_flow_step,
    reverse_sde_sample,
    reverse_sde_step,
)
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.utils import make_generator

SIGMA_MIN, SIGMA_MAX = 0.01, 50.0


SDE = VESDE(sigma_max=SIGMA_MAX, sigma_min=SIGMA_MIN)


N_CHAINS = 10_000


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one thread is faster than two (and far faster on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- the SDE itself
def test_sigma_and_g_follow_their_definitions():
    assert SDE.sigma(0.0) == pytest.approx(SIGMA_MIN)
    assert SDE.sigma(1.0) == pytest.approx(SIGMA_MAX)
    assert SDE.sigma(0.5) == pytest.approx(math.sqrt(SIGMA_MIN * SIGMA_MAX))  # geometric
    t = torch.linspace(0.05, 0.95, 7, dtype=torch.float64, requires_grad=True)
    (dvar,) = torch.autograd.grad((SDE.sigma(t) ** 2).sum(), t)
    torch.testing.assert_close(SDE.g(t.detach()) ** 2, dvar)  # g² = dσ²/dt
    assert SDE.g(0.3) == pytest.approx(SDE.g(torch.tensor(0.3, dtype=torch.float64)).item())


def test_kernel_variances_add_up():
    for s, u, t in [(0.0, 0.2, 0.7), (0.1, 0.5, 1.0)]:
        assert SDE.kernel_std(t, s) ** 2 == pytest.approx(SDE.kernel_std(t, u) ** 2 + SDE.kernel_std(u, s) ** 2)
    assert SDE.kernel_std(0.4, 0.4) == 0.0
    assert SDE.kernel_std(0.6) ** 2 == pytest.approx(SDE.sigma(0.6) ** 2 - SIGMA_MIN**2)


@pytest.mark.parametrize("t", [0.3, 0.6, 1.0])
def test_the_kernel_turns_p_sigma_min_into_p_sigma_t_density_and_score(t):
    """Convolve p_σmin with the kernel N(0, σ²(t) − σ²_min) numerically (1-D quadrature) and
    compare the density and its score (finite differences of the log) with perturbed(σ(t))."""
    p0 = mixture_1d().perturbed(SIGMA_MIN)
    ys = torch.linspace(-12, 12, 24001, dtype=torch.float64)
    dens0 = torch.exp(p0.log_prob(ys[:, None]))
    k = SDE.kernel_std(t)
    xs = torch.linspace(-6, 8, 57, dtype=torch.float64)

    def convolved(x):
        kernel = torch.exp(-0.5 * ((x[:, None] - ys) / k) ** 2) / (k * math.sqrt(2 * math.pi))
        return torch.trapezoid(kernel * dens0, ys, dim=1)

    pt = mixture_1d().perturbed(SDE.sigma(t))
    torch.testing.assert_close(convolved(xs), torch.exp(pt.log_prob(xs[:, None])), rtol=1e-6, atol=1e-9)
    h = 1e-4
    fd_score = (torch.log(convolved(xs + h)) - torch.log(convolved(xs - h))) / (2 * h)
    torch.testing.assert_close(fd_score, pt.score(xs[:, None])[:, 0], rtol=1e-5, atol=1e-6)


def test_simulated_forward_sde_has_the_moments_of_the_perturbed_mixture():
    """Euler–Maruyama on dx = g dW by hand, from x(0) ~ p_σmin: mean and covariance of x(t)."""
    mix = mixture_2d()
    g = make_generator(0)
    x = mix.perturbed(SIGMA_MIN).sample(20_000, generator=g, dtype=torch.float64)
    n = 400
    checked = 0
    for k in range(n):
        t = k / n
        x = x + SDE.g(t) * math.sqrt(1 / n) * torch.randn(x.shape, generator=g, dtype=torch.float64)
        if k + 1 in (120, 200):  # t = 0.3 and 0.5
            pt = mix.perturbed(SDE.sigma((k + 1) / n))
            scale = math.sqrt(pt.covariance().trace().item())
            err = sample_errors(pt, x)
            assert err.mean < 0.04 * scale and err.covariance < 0.05, (k + 1, err)
            checked += 1
    assert checked == 2


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad_t", [-0.1, 1.5, float("nan"), torch.tensor([0.2, 1.2])])
def test_t_outside_0_1_is_a_value_error(bad_t):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SDE.sigma(bad_t)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SDE.g(bad_t)


@pytest.mark.parametrize("lo, hi, match", [(1.0, 1.0, "larger"), (2.0, 1.0, "larger"), (0.0, 1.0, "> 0"),
                                           (-1.0, 1.0, "> 0"), (0.1, float("inf"), "finite")])
def test_bad_sigma_range_is_a_value_error(lo, hi, match):
    with pytest.raises(ValueError, match=match):
        VESDE(sigma_max=hi, sigma_min=lo)


GRID_CALLS = {
    "reverse_sde": lambda times, n=None: reverse_sde_sample(lambda x, s: -x, SDE, torch.zeros(3, 2), n, times=times),
    "pc": lambda times, n=None: pc_sample(lambda x, s: -x, SDE, torch.zeros(3, 2), n, times=times),
    "ode": lambda times, n=None: ode_sample(lambda x, s: -x, SDE, torch.zeros(3, 2), n, times=times),
    "encode": lambda times, n=None: ode_encode(lambda x, s: -x, SDE, torch.zeros(3, 2), n, times=times),
    "likelihood": lambda times, n=None: ode_log_likelihood(lambda x, s: -x, SDE, torch.zeros(3, 2), n, times=times),
}


@pytest.mark.parametrize("call", GRID_CALLS.values(), ids=GRID_CALLS.keys())
@pytest.mark.parametrize("times, match", [
    ([0.0, 0.5, 0.5, 1.0], "strictly increasing"),
    ([1.0, 0.5, 0.0], "strictly increasing"),
    ([0.0, 0.5, 1.2], r"\[0, 1\]"),
    ([-0.1, 1.0], r"\[0, 1\]"),
    ([0.5], "at least 2"),
])
def test_bad_time_grids_are_value_errors(call, times, match):
    with pytest.raises(ValueError, match=match):
        call(times)


@pytest.mark.parametrize("call", GRID_CALLS.values(), ids=GRID_CALLS.keys())
def test_steps_must_be_given_once_and_be_positive(call):
    with pytest.raises(ValueError, match="n_steps"):
        call(None)
    with pytest.raises(ValueError, match="not both"):
        call([0.0, 1.0], 10)
    with pytest.raises(ValueError, match="whole number"):
        call(None, 0)


def test_other_bad_arguments_are_value_errors():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="VESDE"):
        reverse_sde_sample(lambda x, s: -x, (0.01, 50.0), x, 10)
    with pytest.raises(ValueError, match="method"):
        ode_sample(lambda x, s: -x, SDE, x, 10, method="rk4")
    with pytest.raises(ValueError, match="divergence"):
        ode_log_likelihood(lambda x, s: -x, SDE, x, 10, divergence="trace")
    with pytest.raises(ValueError, match="snr"):
        pc_sample(lambda x, s: -x, SDE, x, 10, snr=None)
    with pytest.raises(ValueError, match="snr"):
        pc_sample(lambda x, s: -x, SDE, x, 10, snr=-0.1)
    with pytest.raises(ValueError, match="shape"):
        reverse_sde_sample(lambda x, s: x[:, :1], SDE, x, 10)
    with pytest.raises(ValueError, match="batch"):
        ode_sample(lambda x, s: -x, SDE, torch.zeros(3), 10)


def test_a_diverging_chain_is_a_clear_error():
    def blows_up(x, sigma):
        return torch.full_like(x, float("inf")) if sigma < 1.0 else -x / sigma**2

    for run in (lambda: reverse_sde_sample(blows_up, SDE, torch.zeros(4, 2), 20),
                lambda: pc_sample(blows_up, SDE, torch.zeros(4, 2), 20),
                lambda: ode_sample(blows_up, SDE, torch.zeros(4, 2), 20)):
        with pytest.raises(DivergenceError, match="score_fn returned NaN or infinite values.*score function is wrong"):
            run()


def test_likelihood_needs_a_differentiable_score():
    model = ScoreMLP(2, hidden=8, sigma_conditioned=True)

    def no_grad_score(x, sigma):
        with torch.no_grad():
            return model(x, sigma)

    for divergence in ("exact", "hutchinson"):
        with pytest.raises(ValueError, match="autograd graph"):
            ode_log_likelihood(no_grad_score, SDE, torch.zeros(3, 2), 5, divergence)


# --------------------------------------------------------------------------- steps and conventions
def test_samplers_are_their_single_steps_in_a_loop():
    mix = mixture_2d()
    score = noisy_score(mix)
    x1 = SDE.prior_sample((50, 2), make_generator(1), dtype=torch.float64)
    times = SDE.time_grid(7).tolist()
    x_sde, x_ode, g = x1.clone(), x1.clone(), make_generator(2)
    for k in range(7, 0, -1):
        t, dt = times[k], times[k] - times[k - 1]
        z = torch.randn(x_sde.shape, generator=g, dtype=torch.float64)
        x_sde = reverse_sde_step(x_sde, score(x_sde, SDE.sigma(t)), SDE.g(t), dt, z)
        x_ode = probability_flow_step(x_ode, score(x_ode, SDE.sigma(t)), SDE.g(t), dt)
    torch.testing.assert_close(reverse_sde_sample(score, SDE, x1, 7, generator=make_generator(2)), x_sde)
    torch.testing.assert_close(ode_sample(score, SDE, x1, 7, method="euler"), x_ode)


def test_corrector_alone_is_annealed_langevin_draw_for_draw():
    """PC without its predictor, with annealed Langevin's step rule, is lesson 05's sampler on
    the levels σ(tᵢ) below t = 1."""
    mix = mixture_1d()
    score = noisy_score(mix)
    x1 = SDE.prior_sample((200, 1), make_generator(3), dtype=torch.float64)
    pc = pc_sample(score, SDE, x1, 12, n_corrector=5, predictor=False, step_size=1e-5, generator=make_generator(4))
    levels = SDE.sigma(SDE.time_grid(12).flip(0)[1:])  # σ(t₁₁) > … > σ(t₀), float64
    al = annealed_langevin(score, x1, levels, n_steps_each=5, step_size=1e-5, generator=make_generator(4))
    torch.testing.assert_close(pc, al, rtol=1e-12, atol=1e-12)


def test_generator_makes_runs_repeatable_and_no_graph_is_kept():
    model = ScoreMLP(2, hidden=8, sigma_conditioned=True)
    x1 = SDE.prior_sample((6, 2), make_generator(5))
    for run in (lambda g: reverse_sde_sample(model, SDE, x1, 5, generator=g),
                lambda g: pc_sample(model, SDE, x1, 5, 2, 0.16, generator=g),
                lambda g: ode_sample(model, SDE, x1, 5),
                lambda g: ode_log_likelihood(model, SDE, x1 / 50, 5, "hutchinson", generator=g)):
        a, b = run(make_generator(6)), run(make_generator(6))
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert not a.requires_grad and a.grad_fn is None
    assert all(p.grad is None for p in model.parameters())


def test_any_shape_goes_through():
    """An isotropic Gaussian on 'images' of shape (B, 1, 3, 3): every sampler keeps the shape,
    and the likelihood is the closed form (exact trace and Hutchinson alike)."""
    v = 0.5

    def score(x, sigma):
        return -x / (v + sigma**2)

    x1 = SDE.prior_sample((4, 1, 3, 3), make_generator(7), dtype=torch.float64)
    for out in (reverse_sde_sample(score, SDE, x1, 4, generator=make_generator(8)),
                pc_sample(score, SDE, x1, 4, generator=make_generator(8)),
                ode_sample(score, SDE, x1, 4), ode_encode(score, SDE, x1 / 50, 4)):
        assert out.shape == x1.shape
    x = torch.randn(4, 1, 3, 3, generator=make_generator(9), dtype=torch.float64)
    var0, var1 = v + SIGMA_MIN**2, v + SIGMA_MAX**2
    exact_log_p = Gaussian(torch.zeros(9), var0).log_prob(x.flatten(1))

    def prior(y):
        return Gaussian(torch.zeros(9), var1).log_prob(y.flatten(1))

    for divergence in ("exact", "hutchinson"):  # for an isotropic Jacobian vᵀJv = tr J exactly
        log_p = ode_log_likelihood(score, SDE, x, 200, divergence, make_generator(10), prior_log_prob=prior)
        torch.testing.assert_close(log_p, exact_log_p, rtol=0, atol=0.05)


# --------------------------------------------------------------------------- the probability-flow ODE
def test_ode_is_the_closed_form_flow_of_a_gaussian():
    """For p = N(m, v), p_t = N(m, v + σ²(t)) and the flow is affine:
    x(0) − m = √((v + σ²_min)/(v + σ²_max)) · (x(1) − m)."""
    m, v = 2.4, 4.24
    gauss = Gaussian([m], v)
    x1 = SDE.prior_sample((20, 1), make_generator(11), dtype=torch.float64)
    x0 = ode_sample(noisy_score(gauss), SDE, x1, 100)
    expected = m + math.sqrt((v + SIGMA_MIN**2) / (v + SIGMA_MAX**2)) * (x1 - m)
    torch.testing.assert_close(x0 - m, expected - m, rtol=0.02, atol=1e-3)  # Heun, 100 steps: about 1%


@pytest.mark.parametrize("n_steps, tolerance", [(30, 0.3), (100, 0.01)])
def test_encode_then_decode_returns_the_point(n_steps, tolerance):
    mix = mixture_2d()
    score = noisy_score(mix)
    x = mix.sample(200, generator=make_generator(12), dtype=torch.float64)
    z = ode_encode(score, SDE, x, n_steps)
    back = ode_sample(score, SDE, z, n_steps)
    assert (back - x).norm(dim=1).max() < tolerance
    assert z.std() > 0.8 * SIGMA_MAX  # the code really is noise-sized


# --------------------------------------------------------------------------- samplers against the mixtures
SAMPLERS = {
    # name: (sampler at about 100 score evaluations, tolerance on the mean, on the covariance)
    "reverse SDE, 100 steps": (lambda s, x1, g: reverse_sde_sample(s, SDE, x1, 100, generator=g), 0.1, 0.1),
    "PC, 50 steps × (1 + 1), Euler–Maruyama predictor": (
        lambda s, x1, g: pc_sample(s, SDE, x1, 50, 1, 0.16, generator=g, predictor="euler_maruyama"), 0.1, 0.1),
    # the reverse-diffusion predictor needs more steps on these targets (tests/core/test_sde_predictors.py)
    "PC, 150 steps × (1 + 1)": (lambda s, x1, g: pc_sample(s, SDE, x1, 150, 1, 0.16, generator=g), 0.1, 0.1),
    # the ODE carries the prior's error (mean 0, not the data's 2.4) to t = 0, about
    # 2.4·√(4.24/50²) = 0.1 on the 1-D mixture (see test_ode_mean_error_is_the_prior_mismatch)
    "ODE, Heun 50 steps": (lambda s, x1, g: ode_sample(s, SDE, x1, 50), 0.2, 0.15),
}


TARGETS = {"1-D 1:9 mixture": mixture_1d, "2-D mixture": mixture_2d}


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS.keys())
@pytest.mark.parametrize("sampler, mean_tol, cov_tol", SAMPLERS.values(), ids=SAMPLERS.keys())
def test_samplers_with_exact_scores_map_the_prior_to_the_mixture(sampler, mean_tol, cov_tol, target):
    """From N(0, σ_max² I), about 100 score evaluations (300 for PC with the reverse-diffusion
    predictor, which needs more on these targets), 10,000 chains: weights within ±0.02;
    mean and covariance (relative Frobenius error) within the sampler's tolerance (0.1 for the
    SDE and PC, 0.2 and 0.15 for the ODE)."""
    mix = target()
    x1 = SDE.prior_sample((N_CHAINS, mix.dim), make_generator(13), dtype=torch.float64)
    err = sample_errors(mix, sampler(noisy_score(mix), x1, make_generator(14)))
    assert err.weight < 0.02 and err.mean < mean_tol and err.covariance < cov_tol, err


@pytest.mark.parametrize("sampler", [
    lambda s, x1, g, n: reverse_sde_sample(s, SDE, x1, n, generator=g),
    lambda s, x1, g, n: pc_sample(s, SDE, x1, n // 2, 1, 0.16, generator=g),
    lambda s, x1, g, n: ode_sample(s, SDE, x1, n // 2),
], ids=["reverse SDE", "PC", "ODE"])
def test_errors_shrink_with_the_number_of_steps(sampler):
    mix = mixture_2d()
    x1 = SDE.prior_sample((4000, 2), make_generator(15), dtype=torch.float64)
    few = sample_errors(mix, sampler(noisy_score(mix), x1, make_generator(16), 10))
    many = sample_errors(mix, sampler(noisy_score(mix), x1, make_generator(16), 100))
    assert many.covariance < 0.05 < 0.25 < few.covariance, (few, many)


def test_ode_mean_error_is_the_prior_mismatch():
    """The deterministic flow carries the error of the prior (mean 0 instead of the data's m)
    to t = 0, shrunk by √((v + σ²_min)/(v + σ²_max)); starting from the exact p_σmax removes it."""
    mix = mixture_1d()
    m, v = mix.mean().item(), mix.covariance().item()
    score = noisy_score(mix)
    sde10 = VESDE(sigma_max=10.0, sigma_min=SIGMA_MIN)
    g = make_generator(17)
    x_prior = ode_sample(score, sde10, sde10.prior_sample((N_CHAINS, 1), g, dtype=torch.float64), 50)
    x_exact = ode_sample(score, sde10, mix.perturbed(10.0).sample(N_CHAINS, g, dtype=torch.float64), 50)
    gaussian_prediction = m * math.sqrt(v / (v + 100.0))  # 0.48: exact for a Gaussian, a guide for the mixture
    assert 0.5 * gaussian_prediction < m - x_prior.mean().item() < 1.2 * gaussian_prediction
    assert abs(x_exact.mean().item() - m) < 0.1


# --------------------------------------------------------------------------- likelihood
@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS.keys())
def test_ode_log_likelihood_equals_the_closed_form(target):
    """Exact divergence, Heun with 100 steps: within 0.05 nats of log p_σmin(x) when the ODE
    starts from the exact p_σmax, within 0.15 with the N(0, σ_max² I) prior; 30 steps are worse."""
    mix = target()
    score = noisy_score(mix)
    x = mix.sample(8, generator=make_generator(18), dtype=torch.float64)
    exact = mix.perturbed(SIGMA_MIN).log_prob(x)
    p1 = mix.perturbed(SIGMA_MAX)
    fine = ode_log_likelihood(score, SDE, x, 100, "exact", prior_log_prob=p1.log_prob)
    default_prior = ode_log_likelihood(score, SDE, x, 100, "exact")
    coarse = ode_log_likelihood(score, SDE, x, 30, "exact", prior_log_prob=p1.log_prob)
    assert (fine - exact).abs().max() < 0.05
    assert (default_prior - exact).abs().max() < 0.15
    assert (coarse - exact).abs().max() > 2 * (fine - exact).abs().max()


def test_hutchinson_log_likelihood_is_unbiased_and_its_error_shrinks():
    """Each of K copies of a point gets its own projections: the mean of the K estimates
    approaches the exact-divergence value on the same grid (within 4 standard errors), and the
    spread of a mean of K shrinks like 1/√K."""
    mix = mixture_2d()
    score = noisy_score(mix)
    x = mix.sample(4, generator=make_generator(19), dtype=torch.float64)
    exact = ode_log_likelihood(score, SDE, x, 20, "exact")
    k = 1000
    est = ode_log_likelihood(score, SDE, x.repeat(k, 1), 20, "hutchinson", make_generator(20)).view(k, 4)
    se = est.std(0) / math.sqrt(k)
    assert ((est.mean(0) - exact).abs() < 4 * se).all(), (est.mean(0) - exact, se)
    assert est.std(0).max() > 0.1  # in 2-D the estimate really is random
    means_of_10 = est.view(100, 10, 4).mean(1)
    ratio = means_of_10.std(0) / est.std(0)
    assert ((ratio > 0.6 / math.sqrt(10)) & (ratio < 1.4 / math.sqrt(10))).all()
    more = ode_log_likelihood(score, SDE, x.repeat(100, 1), 20, "hutchinson", make_generator(21), n_projections=10)
    assert (more.view(100, 4).std(0) < 0.5 * est.std(0)).all()


def test_bits_per_dim():
    # the uniform density on [0, 1]^D has log p = 0: 8 bits per dimension for 256 grey levels
    assert bits_per_dim(torch.zeros(3), 784).tolist() == [8.0, 8.0, 8.0]
    assert bits_per_dim(torch.tensor([784 * math.log(2)]), 784).item() == pytest.approx(7.0)
