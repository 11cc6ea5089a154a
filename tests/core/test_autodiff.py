"""Scores by autograd and Jacobian traces against analytic values and the full Jacobian."""

import math

import pytest
import torch
from torch import nn

from lessons_lib.autodiff import (
    hutchinson_trace,
    hutchinson_variance,
    jacobian_trace,
    linear_hutchinson_estimates,
    projected_jacobian,
    sample_projections,
    score_from_energy,
    score_from_log_prob,
)
from lessons_lib.densities import Gaussian
from lessons_lib.nets import ScoreMLP
from lessons_lib.utils import make_generator


def full_jacobian_trace(f, x):
    """Reference: the whole Jacobian of the batch function, one sample at a time."""
    out = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda v: f(v.unsqueeze(0)).squeeze(0), xi)
        out.append(jac.reshape(xi.numel(), xi.numel()).trace())
    return torch.stack(out)


class ConvScore(nn.Module):
    """A small image-shaped score model: (B, 1, 4, 4) → (B, 1, 4, 4)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.tanh(self.conv1(x)))


def test_score_from_energy_drops_the_normaliser():
    """E(x) = ½(x−μ)ᵀΣ⁻¹(x−μ) + any constant: −∇E is the Gaussian score."""
    dist = Gaussian([1.0, -1.0], [[2.0, 0.3], [0.3, 0.5]])
    prec = torch.linalg.inv(dist.cov).float()

    def energy(x):
        d = x - dist.mean.float()
        return 0.5 * torch.einsum("bi,ij,bj->b", d, prec, d) + 123.0

    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(score_from_energy(energy)(x), dist.score(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(score_from_log_prob(dist.log_prob)(x), dist.score(x), rtol=1e-4, atol=1e-5)


def test_score_from_log_prob_rejects_non_scalar_outputs():
    with pytest.raises(ValueError, match="one number per point"):
        score_from_log_prob(lambda x: x)(torch.zeros(3, 2))


@pytest.mark.parametrize("model_fn, shape", [(lambda: ScoreMLP(5, hidden=16), (6, 5)), (ConvScore, (3, 1, 4, 4))])
def test_exact_trace_equals_trace_of_full_jacobian(model_fn, shape):
    torch.manual_seed(0)
    model = model_fn().double()
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(jacobian_trace(model, x), full_jacobian_trace(model, x))
    trace, out = jacobian_trace(model, x, return_output=True, chunk_size=2)
    torch.testing.assert_close(trace, full_jacobian_trace(model, x))
    torch.testing.assert_close(out, model(x))


def test_exact_trace_of_a_linear_map_is_its_matrix_trace():
    a = torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = torch.randn(3, 4, dtype=torch.float64)
    expected = torch.full((3,), a.trace().item(), dtype=torch.float64)
    torch.testing.assert_close(jacobian_trace(lambda v: v @ a.T, x), expected)


def test_exact_trace_of_a_constant_map_is_zero_and_differentiable_in_x():
    x = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(jacobian_trace(lambda v: torch.ones_like(v), x), torch.zeros(3, dtype=torch.float64))
    # f(x) = x³ entrywise: tr ∂f/∂x = 3 Σ xᵢ², whose gradient in x is 6x
    x.requires_grad_(True)
    jacobian_trace(lambda v: v**3, x).sum().backward()
    torch.testing.assert_close(x.grad, 6 * x.detach())


def test_exact_trace_is_differentiable_in_the_parameters():
    torch.manual_seed(2)
    model = ScoreMLP(3, hidden=8).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    jacobian_trace(model, x).sum().backward()
    # the output bias does not change the Jacobian: its gradient is None (zero)
    grad_exact = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    model.zero_grad()
    full_jacobian_trace_with_graph = sum(
        torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0)).squeeze(0), xi, create_graph=True).trace()
        for xi in x
    )
    full_jacobian_trace_with_graph.backward()
    for g, p in zip(grad_exact, model.parameters()):
        torch.testing.assert_close(g, p.grad if p.grad is not None else torch.zeros_like(p))
    assert any(g.abs().sum() > 0 for g in grad_exact)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_hutchinson_mean_converges_to_exact_trace(kind):
    torch.manual_seed(3)
    model = ScoreMLP(6, hidden=16).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    exact = jacobian_trace(model, x)
    g = torch.Generator().manual_seed(4)
    draws = torch.stack([hutchinson_trace(model, x, 1, kind, g) for _ in range(2000)])
    se = draws.std(0) / 2000**0.5
    assert ((draws.mean(0) - exact).abs() < 4 * se + 1e-9).all()
    many = hutchinson_trace(model, x, n_projections=2000, kind=kind, generator=g)
    assert ((many - exact).abs() < 4 * se + 1e-9).all()


def test_hutchinson_on_images_and_is_unbiased_for_a_known_matrix():
    """For f(x) = A x on flattened 2×2 images, vᵀAv averages to tr A."""
    a = torch.randn(4, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    def f(x):
        return (x.flatten(1) @ a.T).reshape(x.shape)

    x = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    est = hutchinson_trace(f, x, n_projections=20_000, generator=torch.Generator().manual_seed(6))
    # Rademacher variance per draw: 2 Σ_{i≠j} ((A_ij + A_ji)/2)²
    sym = (a + a.T) / 2
    var = 2 * (sym**2).sum() - 2 * (sym.diagonal() ** 2).sum()
    se = (var / 20_000).sqrt()
    assert ((est - a.trace()).abs() < 4 * se).all()


def test_projections_have_identity_second_moment():
    g = torch.Generator().manual_seed(7)
    for kind in ["rademacher", "gaussian"]:
        v = sample_projections((100_000, 3), kind, g, torch.float64)
        torch.testing.assert_close(v.T @ v / 100_000, torch.eye(3, dtype=torch.float64), atol=0.02, rtol=0)
    assert set(sample_projections((1000,), "rademacher", g).unique().tolist()) == {-1.0, 1.0}
    with pytest.raises(ValueError, match="rademacher"):
        sample_projections((3,), "uniform")


def test_trace_functions_check_their_input():
    model = ScoreMLP(2)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        jacobian_trace(model, torch.zeros(2))
    with pytest.raises(ValueError, match="same shape"):
        jacobian_trace(lambda x: x.sum(1, keepdim=True), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="n_projections"):
        hutchinson_trace(model, torch.zeros(3, 2), n_projections=0)


def test_projected_jacobian_without_create_graph_has_the_same_value():
    g = torch.Generator().manual_seed(70)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    out = torch.tanh(x @ a)
    v = torch.randn(5, 3, generator=g, dtype=torch.float64)
    with_graph = projected_jacobian(out, x, v)
    without = projected_jacobian(out, x, v, create_graph=False)
    torch.testing.assert_close(without, with_graph.detach())
    assert with_graph.requires_grad and not without.requires_grad


def test_hutchinson_variance_closed_forms_match_a_written_out_sum():
    A = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0], [4.0, 1.0, 2.0]], dtype=torch.float64)
    S = (A + A.T) / 2
    off = sum(S[i, j] ** 2 for i in range(3) for j in range(3) if i != j)
    assert hutchinson_variance(A, "rademacher") == pytest.approx(2 * off.item())
    assert hutchinson_variance(A, "gaussian") == pytest.approx(2 * (off + (torch.diagonal(S) ** 2).sum()).item())
    with pytest.raises(ValueError, match="kind"):
        hutchinson_variance(A, "uniform")
    with pytest.raises(ValueError, match="square"):
        hutchinson_variance(torch.zeros(2, 3))


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_linear_estimates_are_hutchinson_on_the_linear_field_and_match_the_closed_form(kind):
    A = torch.randn(6, 6, generator=make_generator(0), dtype=torch.float64)
    est = linear_hutchinson_estimates(A, 20000, 2, kind, make_generator(5))
    again = hutchinson_trace(lambda y: y @ A.T, torch.zeros(20000, 6, dtype=torch.float64), 2, kind=kind,
                             generator=make_generator(5))
    torch.testing.assert_close(est, again.detach())
    assert est.mean().item() == pytest.approx(torch.trace(A).item(), abs=4 * est.std().item() / math.sqrt(20000))
    assert est.var().item() == pytest.approx(hutchinson_variance(A, kind) / 2, rel=0.05)
