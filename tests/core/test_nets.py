import pytest
import torch

from lessons_lib import losses
from lessons_lib.nets import EnergyMLP, ScoreMLP


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


def test_score_mlp_checks_its_input():
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        ScoreMLP(2)(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="sigma"):
        ScoreMLP(2, sigma_conditioned=True)(torch.zeros(3, 2))
    out = ScoreMLP(2, sigma_conditioned=True)(torch.zeros(3, 2), torch.tensor([0.1, 1.0, 2.0]))
    assert out.shape == (3, 2)
