"""The score-matching objectives against their identities and closed-form optima.

* ESM − ISM = ½E‖∇log p‖² for every model (Hyvärinen);
* DSM − ESM(p_σ) = d/(2σ²) − ½E‖∇log p_σ‖² for every model (Vincent);
* E_v[SSM] = E_v[SSM-VR] = ISM;
* on Gaussian data, linear score models fitted by ISM, SSM and DSM reach the closed-form optimum;
* at the true score, DSM and NCSN equal their closed-form values.
"""

import pytest
import torch

from lessons_lib import losses
from lessons_lib.autodiff import sample_projections
from lessons_lib.densities import Gaussian
from lessons_lib.losses import dsm_loss, esm_loss, ism_loss, ncsn_loss, ssm_loss, ssm_vr_loss
from lessons_lib.nets import LinearScore, ScoreMLP
from lessons_lib.noise import geometric_sigmas, perturb
from lessons_lib.toy_data import mixture_2d


def models(d):
    """Several different θ: MLPs with different seeds and a perturbed linear model."""
    out = []
    for seed in range(3):
        torch.manual_seed(seed)
        out.append(ScoreMLP(d, hidden=16).double())
    lin = LinearScore(d).double()
    with torch.no_grad():
        lin.A.copy_(torch.tensor([[-0.7, 0.2], [0.1, -1.3]], dtype=torch.float64))
        lin.b.copy_(torch.tensor([0.3, -0.4], dtype=torch.float64))
    out.append(lin)
    return out


def mean_and_se(t):
    return t.mean().item(), (t.std() / t.numel() ** 0.5).item()


def test_esm_minus_ism_is_the_same_constant_for_every_model():
    mix = mixture_2d()
    x = mix.sample(40_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    half_sq_score = 0.5 * (mix.score(x) ** 2).sum(1)
    c_hat = half_sq_score.mean().item()
    diffs = []
    for model in models(2):
        with torch.no_grad():
            per_sample = esm_loss(model, x, mix.score, reduction="none") - ism_loss(model, x, reduction="none")
        # per_sample − ½‖s‖² = −s_θ·s − tr∇s_θ has mean zero by integration by parts
        m, se = mean_and_se(per_sample - half_sq_score)
        assert abs(m) < 4 * se, (m, se)
        diffs.append(per_sample.mean().item())
    assert max(diffs) - min(diffs) < 0.1 * c_hat
    # ... and the ESM itself differs between models, so the test is not vacuous
    with torch.no_grad():
        esms = [esm_loss(m, x, mix.score).item() for m in models(2)]
    assert max(esms) - min(esms) > 0.5


@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_vincent_dsm_equals_esm_on_p_sigma_plus_constant(sigma):
    mix = mixture_2d()
    noisy = mix.perturbed(sigma)
    x = mix.sample(100_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x_tilde, _ = perturb(x, sigma, generator=torch.Generator().manual_seed(2))
    constant = 2 / (2 * sigma**2) - 0.5 * (noisy.score(x_tilde) ** 2).sum(1)
    for model in models(2):
        with torch.no_grad():
            dsm = dsm_loss(model, x, sigma, generator=torch.Generator().manual_seed(2), reduction="none")
            esm = esm_loss(model, x_tilde, noisy.score, reduction="none")
        m, se = mean_and_se(dsm - esm - constant)
        assert abs(m) < 4 * se, (m, se)


@pytest.mark.parametrize("loss", [ssm_loss, ssm_vr_loss])
@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_sliced_losses_have_expectation_ism(loss, kind):
    torch.manual_seed(4)
    model = ScoreMLP(3, hidden=16).double()
    x = 1.5 * torch.randn(32, 3, dtype=torch.float64)
    ism = ism_loss(model, x, reduction="none").detach()
    g = torch.Generator().manual_seed(5)
    draws = torch.stack([loss(model, x, 1, kind, g, reduction="none").detach() for _ in range(600)])
    se = draws.std(0) / 600**0.5
    assert ((draws.mean(0) - ism).abs() < 4 * se).all()
    averaged = loss(model, x, n_projections=600, kind=kind, generator=g, reduction="none").detach()
    assert ((averaged - ism).abs() < 4 * se).all()


def test_ssm_vr_has_lower_variance_than_ssm():
    torch.manual_seed(6)
    model = ScoreMLP(4, hidden=16).double()
    x = 2 * torch.randn(16, 4, dtype=torch.float64)
    g = torch.Generator().manual_seed(7)
    var = {}
    for loss in (ssm_loss, ssm_vr_loss):
        draws = torch.stack([loss(model, x, 1, "gaussian", g, reduction="none").detach() for _ in range(400)])
        var[loss.__name__] = draws.var(0).mean().item()
    assert var["ssm_vr_loss"] < var["ssm_loss"]


def fit_linear(loss_of_model, d=2):
    """Minimise a deterministic objective over LinearScore with L-BFGS."""
    model = LinearScore(d).double()
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=500, tolerance_grad=1e-12,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_of_model(model)
        loss.backward()
        return loss

    opt.step(closure)
    return model.A.detach(), model.b.detach()


GAUSS = Gaussian([1.0, -0.5], [[1.5, 0.4], [0.4, 0.6]])


def test_ism_over_linear_models_recovers_the_empirical_gaussian_score():
    """Empirical ISM over s(x) = Ax + b is minimised by A = −M⁻¹, b = −A x̄ (M the sample
    covariance, biased): a closed form, exact up to the optimiser's tolerance."""
    x = GAUSS.sample(5000, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    A, b = fit_linear(lambda m: ism_loss(m, x))
    xc = x - x.mean(0)
    M = xc.T @ xc / len(x)
    torch.testing.assert_close(A, -torch.linalg.inv(M), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b, torch.linalg.inv(M) @ x.mean(0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("loss", [ssm_loss, ssm_vr_loss])
def test_sliced_score_matching_over_linear_models_recovers_the_gaussian_score(loss):
    x = GAUSS.sample(40_000, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    A, b = fit_linear(lambda m: loss(m, x, n_projections=1, generator=torch.Generator().manual_seed(10)))
    prec = torch.linalg.inv(GAUSS.cov)
    torch.testing.assert_close(A, -prec, atol=0.08, rtol=0.05)
    torch.testing.assert_close(b, prec @ GAUSS.mean, atol=0.08, rtol=0.05)


def test_dsm_over_linear_models_recovers_the_perturbed_gaussian_score():
    """DSM at σ targets p_σ = N(μ, Σ + σ²I): A = −(Σ + σ²I)⁻¹, b = (Σ + σ²I)⁻¹μ."""
    sigma = 0.7
    x = GAUSS.sample(40_000, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    A, b = fit_linear(lambda m: dsm_loss(m, x, sigma, generator=torch.Generator().manual_seed(12)))
    prec = torch.linalg.inv(GAUSS.perturbed(sigma).cov)
    torch.testing.assert_close(A, -prec, atol=0.03, rtol=0.03)
    torch.testing.assert_close(b, prec @ GAUSS.mean, atol=0.03, rtol=0.03)


def test_dsm_and_ncsn_at_the_true_score_take_their_closed_form_values():
    """Data N(0, v I) in d dims: DSM(s_σ) = d/(2σ²) − d/(2(v+σ²)) and
    NCSN(s_σ) = mean over σ of d v / (2(v + σ²))."""
    d, v = 3, 2.0
    g = torch.Generator().manual_seed(13)
    x = torch.sqrt(torch.tensor(v)) * torch.randn(200_000, d, generator=g, dtype=torch.float64)

    def true_score(x_tilde, sigma):
        s = sigma if not isinstance(sigma, torch.Tensor) else sigma[:, None]
        return -x_tilde / (v + s**2)

    sigma = 0.5
    dsm = dsm_loss(lambda xt: true_score(xt, sigma), x, sigma, generator=torch.Generator().manual_seed(14))
    assert abs(dsm.item() - (d / (2 * sigma**2) - d / (2 * (v + sigma**2)))) < 0.02
    sigmas = geometric_sigmas(5.0, 0.1, 6, dtype=torch.float64)
    ncsn = ncsn_loss(true_score, x, sigmas, generator=torch.Generator().manual_seed(15))
    expected = (d * v / (2 * (v + sigmas**2))).mean().item()
    assert abs(ncsn.item() - expected) < 0.02


def test_losses_are_shape_agnostic_on_images():
    """The same losses on (B, 1, 4, 4) images equal a flattened computation."""
    torch.manual_seed(16)
    w = torch.randn(16, 16, dtype=torch.float64) * 0.2

    def score_img(x, sigma=None):
        out = torch.tanh(x.flatten(1) @ w.T).reshape(x.shape)
        return out if sigma is None else out / torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1)

    def score_flat(x):
        return torch.tanh(x @ w.T)

    x = torch.randn(8, 1, 4, 4, dtype=torch.float64)
    xf = x.flatten(1)
    torch.testing.assert_close(ism_loss(score_img, x), ism_loss(score_flat, xf))
    torch.testing.assert_close(
        dsm_loss(score_img, x, 0.3, torch.Generator().manual_seed(1)),
        dsm_loss(score_flat, xf, 0.3, torch.Generator().manual_seed(1)),
    )
    torch.testing.assert_close(
        ssm_loss(score_img, x, 3, "gaussian", torch.Generator().manual_seed(2)),
        ssm_loss(score_flat, xf, 3, "gaussian", torch.Generator().manual_seed(2)),
    )
    # NCSN by hand, drawing the levels and the noise in the same order as the library
    sigmas = torch.tensor([1.0, 0.5, 0.1], dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 3, (8,), generator=g)
    z = torch.randn(x.shape, generator=g, dtype=torch.float64)
    s = sigmas[idx].reshape(-1, 1, 1, 1)
    by_hand = 0.5 * ((s * score_img(x + s * z, sigmas[idx]) + z) ** 2).flatten(1).sum(1).mean()
    torch.testing.assert_close(ncsn_loss(score_img, x, sigmas, torch.Generator().manual_seed(3)), by_hand)


def test_losses_carry_gradients_to_the_model():
    torch.manual_seed(17)
    model = ScoreMLP(2, hidden=8)
    x = torch.randn(16, 2)
    for loss in [ism_loss(model, x), ssm_loss(model, x), ssm_vr_loss(model, x), dsm_loss(model, x, 0.5),
                 esm_loss(model, x, -x)]:
        model.zero_grad()
        loss.backward()
        assert model.net[0].weight.grad.abs().sum() > 0


def test_losses_reject_bad_input():
    model = ScoreMLP(2)
    x = torch.randn(8, 2)
    for bad in [0.0, -0.1, float("nan")]:
        with pytest.raises(ValueError, match="sigma"):
            dsm_loss(model, x, bad)
    with pytest.raises(ValueError, match="largest to smallest"):
        ncsn_loss(lambda x, s: x, x, [0.1, 0.5, 1.0])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ism_loss(model, torch.randn(8))
    with pytest.raises(ValueError, match="same shape"):
        esm_loss(lambda x: x[:, :1], x, -x)
    with pytest.raises(ValueError, match="true_score"):
        esm_loss(model, x, torch.zeros(8, 3))
    with pytest.raises(ValueError, match="reduction"):
        dsm_loss(model, x, 0.5, reduction="sum")
    with pytest.raises(ValueError, match="kind"):
        ssm_loss(model, x, kind="uniform")


def _linear(dim, seed=0):
    torch.manual_seed(seed)
    model = LinearScore(dim)
    with torch.no_grad():
        model.A.add_(0.3 * torch.randn(dim, dim))
        model.b.add_(0.3 * torch.randn(dim))
    return model


def test_perturb_uses_the_given_noise():
    x, z = torch.randn(4, 3), torch.randn(4, 3)
    x_tilde, z_out = perturb(x, torch.tensor([0.5, 1.0, 2.0, 3.0]), z=z)
    assert z_out is z
    torch.testing.assert_close(x_tilde, x + torch.tensor([0.5, 1.0, 2.0, 3.0])[:, None] * z)
    with pytest.raises(ValueError, match="z must have the shape of x"):
        perturb(x, 0.5, z=torch.randn(4, 2))


def test_dsm_loss_with_given_noise_matches_closed_form_and_drawn_noise():
    model, x, sigma = _linear(3), torch.randn(8, 3), 0.7
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    s = (x + sigma * z) @ model.A.T + model.b
    torch.testing.assert_close(losses.dsm_loss(model, x, sigma, z=z), 0.5 * ((s + z / sigma) ** 2).sum(-1).mean())
    drawn = losses.dsm_loss(model, x, sigma, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(drawn, losses.dsm_loss(model, x, sigma, z=z))


def test_ssm_loss_with_given_projections_matches_closed_form():
    # For s(x) = Ax + b the Jacobian is A: vᵀ∇s v = vᵀAv exactly.
    model, x = _linear(3), torch.randn(6, 3)
    v = sample_projections((4, 6, 3), "gaussian", torch.Generator().manual_seed(1))
    s = x @ model.A.T + model.b
    vav = torch.einsum("mbi,ij,mbj->mb", v, model.A.detach(), v)
    expected = (vav + 0.5 * (v * s).sum(-1) ** 2).mean()
    torch.testing.assert_close(losses.ssm_loss(model, x, v=v), expected)
    expected_vr = vav.mean() + 0.5 * (s**2).sum(-1).mean()
    torch.testing.assert_close(losses.ssm_vr_loss(model, x, v=v), expected_vr)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_ssm_loss_draws_the_same_projections_it_would_be_given(kind):
    model, x = ScoreMLP(2, hidden=8), torch.randn(5, 2)
    g = torch.Generator().manual_seed(3)
    v = torch.stack([sample_projections(x.shape, kind, g) for _ in range(3)])
    drawn = losses.ssm_loss(model, x, n_projections=3, kind=kind, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(drawn, losses.ssm_loss(model, x, v=v))


def test_ssm_loss_rejects_projections_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"v must have shape \(M, \*x.shape\)"):
        losses.ssm_loss(_linear(2), torch.randn(5, 2), v=torch.randn(5, 2))


def test_ncsn_loss_at_matches_closed_form_and_ncsn_loss():
    torch.manual_seed(0)
    model = ScoreMLP(2, hidden=8, sigma_conditioned=True)
    x = torch.randn(6, 2)
    sigmas = torch.tensor([3.0, 1.0, 0.3])
    sigma, z = sigmas[torch.tensor([0, 2, 1, 1, 0, 2])], torch.randn(6, 2)
    s = model(x + sigma[:, None] * z, sigma)
    expected = 0.5 * ((sigma[:, None] * s + z) ** 2).sum(-1).mean()
    torch.testing.assert_close(losses.ncsn_loss_at(model, x, sigma, z=z), expected)
    # ncsn_loss draws the levels, then the noise, from one generator, and calls ncsn_loss_at.
    g = torch.Generator().manual_seed(7)
    idx = torch.randint(0, 3, (6,), generator=g)
    z = torch.randn(6, 2, generator=g)
    drawn = losses.ncsn_loss(model, x, sigmas, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(drawn, losses.ncsn_loss_at(model, x, sigmas[idx], z=z))


def test_edm_loss_is_the_weighted_denoising_error_with_log_normal_sigma():
    # EDM's form, computed here from the denoiser D = x̃ + σ²s: ½ λ(σ) ‖D − x‖², λ = (σ² + σ_d²)/(σσ_d)²,
    # with ln σ ~ N(P_mean, P_std²) and then z drawn from the same generator
    torch.manual_seed(0)
    model = ScoreMLP(2, hidden=8, sigma_conditioned=True)
    x, sd = torch.randn(6, 2), 0.7
    g = torch.Generator().manual_seed(3)
    sigma = (-0.5 + 0.8 * torch.randn(6, generator=g)).exp()
    z = torch.randn(6, 2, generator=g)
    x_tilde = x + sigma[:, None] * z
    denoised = x_tilde + sigma[:, None] ** 2 * model(x_tilde, sigma)
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
    expected = 0.5 * weight * ((denoised - x) ** 2).sum(-1)
    got = losses.edm_loss(model, x, sd, torch.Generator().manual_seed(3), "none", p_mean=-0.5, p_std=0.8)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="sigma_data"):
        losses.edm_loss(model, x, -1.0)
