"""Analytic densities and scores against independent references: torch.distributions,
autograd of log_prob, and Monte-Carlo samples of x + σz."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from lessons_lib.autodiff import score_from_log_prob
from lessons_lib.densities import (
    Gaussian,
    GaussianMixture,
    density_from_score_1d,
    noisy_score,
    sample_errors,
    total_variation_1d,
)
from lessons_lib.toy_data import mixture_1d, mixture_2d


def random_spd(d, generator):
    a = torch.randn(d, d, generator=generator, dtype=torch.float64)
    return a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)


def random_mixture(d, k, generator):
    w = torch.rand(k, generator=generator, dtype=torch.float64) + 0.2
    means = 2 * torch.randn(k, d, generator=generator, dtype=torch.float64)
    covs = torch.stack([random_spd(d, generator) for _ in range(k)])
    return GaussianMixture(w / w.sum(), means, covs)


@pytest.mark.parametrize("d", [1, 2, 10])
def test_gaussian_log_prob_matches_torch_distributions(d):
    g = torch.Generator().manual_seed(d)
    mean = torch.randn(d, generator=g, dtype=torch.float64)
    cov = random_spd(d, g)
    x = torch.randn(50, d, generator=g, dtype=torch.float64)
    ref = MultivariateNormal(mean, covariance_matrix=cov).log_prob(x)
    torch.testing.assert_close(Gaussian(mean, cov).log_prob(x), ref)


@pytest.mark.parametrize("d", [1, 2, 10])
def test_gaussian_score_equals_autograd(d):
    g = torch.Generator().manual_seed(10 + d)
    dist = Gaussian(torch.randn(d, generator=g), random_spd(d, g))
    x = torch.randn(40, d, generator=g, dtype=torch.float64)
    torch.testing.assert_close(dist.score(x), score_from_log_prob(dist.log_prob)(x))


@pytest.mark.parametrize("d", [1, 2, 10])
def test_mixture_log_prob_matches_weighted_components(d):
    g = torch.Generator().manual_seed(20 + d)
    mix = random_mixture(d, 3, g)
    x = torch.randn(30, d, generator=g, dtype=torch.float64)
    dens = sum(
        w * MultivariateNormal(m, covariance_matrix=c).log_prob(x).exp()
        for w, m, c in zip(mix.weights, mix.means, mix.covs)
    )
    torch.testing.assert_close(mix.log_prob(x), dens.log())


@pytest.mark.parametrize("d", [1, 2, 10])
def test_mixture_score_equals_autograd(d):
    g = torch.Generator().manual_seed(30 + d)
    mix = random_mixture(d, 4, g)
    x = 2 * torch.randn(60, d, generator=g, dtype=torch.float64)
    torch.testing.assert_close(mix.score(x), score_from_log_prob(mix.log_prob)(x))


def test_score_works_in_float32_and_on_grids():
    mix = mixture_2d()
    grid = torch.zeros(7, 5, 2)
    assert mix.score(grid).shape == (7, 5, 2)
    assert mix.log_prob(grid).shape == (7, 5)
    assert mix.score(grid).dtype == torch.float32


@pytest.mark.parametrize("make", [lambda: Gaussian([1.0, -2.0], [[2.0, 0.6], [0.6, 1.0]]), mixture_2d])
def test_samples_have_the_right_moments(make):
    dist = make()
    x = dist.sample(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if isinstance(dist, Gaussian):
        mean, cov = dist.mean, dist.cov
    else:  # law of total covariance
        mean = (dist.weights[:, None] * dist.means).sum(0)
        centred = dist.means - mean
        cov = (dist.weights[:, None, None] * (dist.covs + centred[:, :, None] * centred[:, None, :])).sum(0)
    torch.testing.assert_close(x.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.03, rtol=0)


def test_mixture_sample_labels_follow_weights():
    _, labels = mixture_1d().sample(100_000, generator=torch.Generator().manual_seed(1), return_labels=True)
    frac_left = (labels == 0).double().mean().item()
    assert abs(frac_left - 0.1) < 0.005


def test_sampling_is_reproducible_with_a_generator():
    mix = mixture_2d()
    a = mix.sample(100, generator=torch.Generator().manual_seed(5))
    b = mix.sample(100, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_perturbed_matches_monte_carlo_of_x_plus_sigma_z(sigma):
    """Moments of x + σz from samples; the density p_σ(y) = E_x N(y; x, σ²I) by Monte Carlo,
    and its score by autograd of the log of that Monte-Carlo average."""
    mix = mixture_2d()
    g = torch.Generator().manual_seed(7)
    x = mix.sample(200_000, generator=g, dtype=torch.float64)
    y = x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)
    noisy = mix.perturbed(sigma)
    ref = noisy.sample(200_000, generator=g, dtype=torch.float64)
    torch.testing.assert_close(y.mean(0), ref.mean(0), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(y.T), torch.cov(ref.T), atol=0.05, rtol=0.02)

    pts = torch.tensor([[-2.0, -1.0], [1.0, -0.5], [0.0, 1.5], [0.5, 0.5]], dtype=torch.float64)

    def mc_log_prob(q):
        sq = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        return torch.logsumexp(-sq / (2 * sigma**2), dim=1) - math.log(len(x)) - math.log(2 * math.pi * sigma**2)

    torch.testing.assert_close(noisy.log_prob(pts), mc_log_prob(pts), atol=0.05, rtol=0)
    torch.testing.assert_close(noisy.score(pts), score_from_log_prob(mc_log_prob)(pts), atol=0.1, rtol=0.05)


@pytest.mark.parametrize("sigma", [0.5, 1.5])
def test_posterior_mean_satisfies_tweedie(sigma):
    """E[x | y] from the posterior directly equals y + σ²∇log p_σ(y) (Tweedie's formula)."""
    mix = mixture_2d()
    y = 2 * torch.randn(100, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    tweedie = y + sigma**2 * mix.perturbed(sigma).score(y)
    torch.testing.assert_close(mix.posterior_mean(y, sigma), tweedie)


def test_posterior_mean_matches_monte_carlo_in_1d():
    mix = mixture_1d()
    g = torch.Generator().manual_seed(11)
    x = mix.sample(400_000, generator=g, dtype=torch.float64)
    y = x + 0.8 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    near = (y[:, 0] - 0.5).abs() < 0.02
    mc = x[near].mean()
    assert abs(mix.posterior_mean(torch.tensor([[0.5]], dtype=torch.float64), 0.8).item() - mc.item()) < 0.05


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Gaussian([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]), "not positive definite"),
        (lambda: Gaussian([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (lambda: Gaussian([0.0, 0.0], [[1.0, 0.0, 0.0]]), "shape"),
        (lambda: Gaussian([0.0], -1.0), "variance must be > 0"),
        (lambda: Gaussian([float("nan")], 1.0), "NaN"),
        (lambda: GaussianMixture([0.3, 0.3], [[0.0], [1.0]], [1.0, 1.0]), "sum to one"),
        (lambda: GaussianMixture([1.2, -0.2], [[0.0], [1.0]], [1.0, 1.0]), "> 0"),
        (lambda: GaussianMixture([0.5, 0.5], [[0.0], [1.0], [2.0]], [1.0, 1.0]), "K = 2"),
        (lambda: GaussianMixture([0.5, 0.5], [[0.0], [1.0]], [1.0, -1.0]), r"covs\[1\]"),
    ],
)
def test_bad_parameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_points_and_sigma_raise_value_error():
    mix = mixture_2d()
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        mix.score(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="x\\[:, None\\]"):
        mixture_1d().log_prob(torch.zeros(5))
    with pytest.raises(ValueError, match="floating"):
        mix.log_prob(torch.zeros(5, 2, dtype=torch.long))
    for bad in [0.0, -1.0, float("inf"), "a"]:
        with pytest.raises(ValueError, match="sigma"):
            mix.perturbed(bad)


@pytest.mark.parametrize("d", [1, 3])
def test_mixture_moments_match_a_large_sample(d):
    g = torch.Generator().manual_seed(40 + d)
    mix = random_mixture(d, 3, g)
    x, labels = mix.sample(400_000, generator=g, dtype=torch.float64, return_labels=True)
    torch.testing.assert_close(mix.mean(), x.mean(0), atol=0.02, rtol=0)
    torch.testing.assert_close(mix.covariance(), torch.cov(x.T).reshape(d, d), atol=0.05, rtol=0.02)


def test_sample_errors_of_exact_samples_are_monte_carlo_small_and_of_bad_ones_large():
    mix = mixture_2d()
    g = torch.Generator().manual_seed(50)
    exact = sample_errors(mix, mix.sample(100_000, generator=g))
    assert exact.weight < 0.01 and exact.mean < 0.03 and exact.covariance < 0.02
    # all the points in the first component: weight error 1 − 0.5, mean at that component's mean
    one_mode = mix.means[0] + 0.1 * torch.randn(1000, 2, generator=g, dtype=torch.float64)
    bad = sample_errors(mix, one_mode)
    assert bad.weight == pytest.approx(0.5)
    assert bad.mean == pytest.approx(torch.linalg.norm(mix.means[0] - mix.mean()).item(), abs=0.02)
    torch.testing.assert_close(mix.component_fractions(one_mode), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))


def test_noisy_score_is_the_score_of_the_perturbed_density():
    mix = mixture_2d()
    score = noisy_score(mix)
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(60), dtype=torch.float64)
    for sigma in (0.1, 2.0, 0.1):
        torch.testing.assert_close(score(x, sigma), mix.perturbed(sigma).score(x))
    with pytest.raises(ValueError, match="> 0"):
        score(x, 0.0)
    with pytest.raises(ValueError, match="perturbed"):
        noisy_score(lambda x: x)


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
