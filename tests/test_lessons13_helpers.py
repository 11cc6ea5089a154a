"""Helpers added for lessons 01–03: Hutchinson's variance on a linear field, mean ± spread,
the energy-based MLP, and the one timing function."""

import math

import pytest
import torch

from lessons_lib import losses
from lessons_lib.autodiff import hutchinson_trace, hutchinson_variance, linear_hutchinson_estimates
from lessons_lib.nets import EnergyMLP
from lessons_lib.training import step_costs
from lessons_lib.utils import make_generator, mean_and_sd, mean_and_se


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


def test_mean_and_se_and_mean_and_sd():
    values = torch.tensor([1.0, 2.0, 3.0, 6.0])
    sd = values.std().item()
    assert mean_and_sd(values) == pytest.approx((3.0, sd))
    assert mean_and_se(values) == pytest.approx((3.0, sd / 2))
    assert mean_and_sd([0.5, 1.5]) == pytest.approx((1.0, math.sqrt(0.5)))
    with pytest.raises(ValueError, match="at least 2"):
        mean_and_se([1.0])


def test_energy_mlp_score_is_minus_the_gradient_and_ism_uses_its_laplacian():
    torch.manual_seed(0)
    model = EnergyMLP(2, hidden=16).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    assert model(x).shape == (5,)
    # −∇E by central finite differences
    h = 1e-6
    fd = torch.stack([-(model(x + h * e) - model(x - h * e)) / (2 * h) for e in torch.eye(2, dtype=torch.float64)], 1)
    torch.testing.assert_close(model.score(x), fd, atol=1e-6, rtol=1e-6)
    # ISM of s = −∇E is E[−ΔE + ½‖∇E‖²]: written out with two explicit backward passes
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xr).sum(), xr, create_graph=True)
    laplacian = sum(torch.autograd.grad(g[:, i].sum(), xr, create_graph=True)[0][:, i] for i in range(2))
    want = (-laplacian + 0.5 * (g**2).sum(-1)).mean()
    got = losses.ism_loss(model.score, x)
    torch.testing.assert_close(got, want)
    # trainable: the same parameter gradients as the written-out loss; the output bias is a constant
    # added to E (a factor in Z), invisible to the score, so it gets none
    params = list(model.parameters())
    grads_got = torch.autograd.grad(got, params[:-1], retain_graph=True)
    grads_want = torch.autograd.grad(want, params[:-1])
    for a, b in zip(grads_got, grads_want):
        torch.testing.assert_close(a, b)
    assert torch.autograd.grad(got, params[-1], allow_unused=True)[0] is None
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(3, 3))


def test_step_costs_times_every_objective_at_every_dimension_and_restores_threads():
    before = torch.get_num_threads()
    seen = []

    def loss(model, batch, gen):
        seen.append((batch.shape, torch.get_num_threads()))
        return losses.dsm_loss(model, batch, 0.5, generator=gen)

    costs = step_costs({"a": loss, "b": loss}, [2, 3], hidden=8, batch_size=4, n_steps=2, warmup=1)
    assert list(costs) == ["a", "b"] and all(len(v) == 2 and all(t > 0 for t in v) for v in costs.values())
    assert {shape for shape, _ in seen} == {torch.Size([4, 2]), torch.Size([4, 3])}
    assert {threads for _, threads in seen} == {1}
    assert torch.get_num_threads() == before
