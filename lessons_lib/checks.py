"""Exercise checks for lessons 01–03 (temporary: the homework branch's checks.py replaces this).

Each check runs the student's function on seeded inputs and compares it with the reference.
It prints a success line, prints "not attempted yet" when the stub raises NotImplementedError,
and raises AssertionError with a diagnosis otherwise.
"""

from __future__ import annotations

import torch

from .autodiff import jacobian_trace, projected_jacobian
from .densities import Gaussian
from .nets import ScoreMLP
from .utils import make_generator

__all__ = ["check_gaussian_score", "check_ism_loss", "check_ssm_loss"]


def _attempt(name: str, fn, *args):
    """Call the student's function; None (after a message) if it is still the stub."""
    try:
        return fn(*args)
    except NotImplementedError:
        print(f"{name}: not attempted yet (the stub raises NotImplementedError)")
        return None


def _compare(name: str, got, want: torch.Tensor, atol: float = 1e-5) -> None:
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{name} must return a torch.Tensor, got {type(got).__name__}")
    if got.shape != want.shape:
        raise AssertionError(f"{name} returned shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    err = (got.detach().double() - want.detach().double()).abs().max().item()
    if err > atol * (1 + want.abs().max().item()):
        raise AssertionError(f"{name} differs from the reference by up to {err:.3g}")


def check_gaussian_score(gaussian_score) -> None:
    """gaussian_score(x, mean, cov) against Gaussian(mean, cov).score on a random 3-D Gaussian."""
    g = make_generator(0)
    L = torch.randn(3, 3, generator=g, dtype=torch.float64)
    cov = L @ L.T + 0.5 * torch.eye(3, dtype=torch.float64)
    mean = torch.randn(3, generator=g, dtype=torch.float64)
    x = torch.randn(16, 3, generator=g, dtype=torch.float64)
    got = _attempt("gaussian_score", gaussian_score, x, mean, cov)
    if got is None:
        return
    want = Gaussian(mean, cov).score(x)
    if isinstance(got, torch.Tensor) and got.shape == want.shape:
        if torch.allclose(got, -want, atol=1e-6):
            raise AssertionError("gaussian_score has the wrong sign: the score points towards the mean")
        if torch.allclose(got, -(x - mean) @ cov.T, atol=1e-6):
            raise AssertionError("gaussian_score multiplies by cov; the score needs its inverse")
    _compare("gaussian_score", got, want)
    print("gaussian_score: correct (matches Gaussian.score on a 3-D example)")


def _model(dim: int) -> ScoreMLP:
    torch.manual_seed(0)
    return ScoreMLP(dim, hidden=16).double()


def check_ism_loss(ism_loss) -> None:
    """ism_loss(score_fn, x) = mean over the batch of tr ∇s + ½‖s‖²."""
    model = _model(3)
    x = torch.randn(32, 3, generator=make_generator(1), dtype=torch.float64)
    got = _attempt("ism_loss", ism_loss, model, x)
    if got is None:
        return
    trace, s = jacobian_trace(model, x, return_output=True)
    want = (trace + 0.5 * (s**2).sum(-1)).mean()
    if isinstance(got, torch.Tensor) and got.dim() == 0:
        if torch.isclose(got.double(), (trace + (s**2).sum(-1)).mean(), atol=1e-6):
            raise AssertionError("ism_loss: the ½ in front of ‖s‖² is missing")
        if torch.isclose(got.double(), (0.5 * (s**2).sum(-1)).mean(), atol=1e-6):
            raise AssertionError("ism_loss: the trace of the Jacobian is missing")
    _compare("ism_loss", got, want)
    print("ism_loss: correct (matches the exact-trace reference on a small MLP)")


def check_ssm_loss(ssm_loss) -> None:
    """ssm_loss(score_fn, x, v) = mean over projections and batch of vᵀ∇s v + ½(vᵀs)²."""
    model = _model(3)
    g = make_generator(2)
    x = torch.randn(32, 3, generator=g, dtype=torch.float64)
    v = torch.randn(4, 32, 3, generator=g, dtype=torch.float64)
    got = _attempt("ssm_loss", ssm_loss, model, x, v)
    if got is None:
        return
    with torch.enable_grad():
        x_in = x.clone().requires_grad_(True)
        s = model(x_in)
        vjv = torch.stack([projected_jacobian(s, x_in, vi) for vi in v])
        vs = (v * s).sum(-1)
    want = (vjv + 0.5 * vs**2).mean()
    if isinstance(got, torch.Tensor) and got.dim() == 0:
        if torch.isclose(got.double(), (vjv + vs**2).mean(), atol=1e-6):
            raise AssertionError("ssm_loss: the ½ in front of (vᵀs)² is missing")
        if torch.isclose(got.double(), (vjv + 0.5 * (s**2).sum(-1)).mean(), atol=1e-6):
            raise AssertionError("ssm_loss: that is SSM-VR (½‖s‖²); the exercise asks for ½(vᵀs)²")
    _compare("ssm_loss", got, want)
    print("ssm_loss: correct (matches the reference on a small MLP with 4 projections)")
