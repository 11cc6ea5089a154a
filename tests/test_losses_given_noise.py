"""The losses accept their randomness explicitly (noise z, projections v, per-sample levels),
as the exercises do; with it they match closed forms, and drawing it inside gives the same
result as drawing it outside from the same generator."""

import pytest
import torch

from lessons_lib import losses
from lessons_lib.autodiff import sample_projections
from lessons_lib.nets import LinearScore, ScoreMLP
from lessons_lib.noise import perturb


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
