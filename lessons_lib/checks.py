"""Exercise checks (TEMPORARY minimal version on branch lessons45: only the two checks that
lessons 04 and 05 need; the full module from the homework branch replaces it at merge).

Each check runs the student's function and the library's reference on seeded inputs, prints a
success line, prints "not attempted yet" when the stub raises NotImplementedError, and raises
AssertionError with a diagnosis otherwise.
"""

from __future__ import annotations

import math

import torch

from .losses import dsm_loss as _dsm_loss
from .noise import perturb
from .samplers import langevin_step as _langevin_step
from .utils import make_generator

__all__ = ["check_dsm_loss", "check_langevin_step"]


def _attempt(name: str, fn, *args):
    """Call the student's function; None when it is still the stub."""
    try:
        return fn(*args)
    except NotImplementedError:
        print(f"{name}: not attempted yet (the stub raises NotImplementedError).")
        return None


def check_dsm_loss(student_fn) -> None:
    """``dsm_loss(score_fn, x, sigma, z)`` = ½ mean over the batch of ‖s(x + σz) + z/σ‖²."""
    g = make_generator(1)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    weight = torch.randn(3, 3, generator=g, dtype=torch.float64)

    def score_fn(y):
        return torch.tanh(y @ weight) - y

    for sigma in (0.1, 1.0):
        _, z = perturb(x, sigma, make_generator(2))
        expected = _dsm_loss(score_fn, x, sigma, generator=make_generator(2))
        got = _attempt("dsm_loss", student_fn, score_fn, x, sigma, z)
        if got is None:
            return
        got = torch.as_tensor(got, dtype=torch.float64)
        assert got.dim() == 0, f"dsm_loss must return a scalar, got shape {tuple(got.shape)}"
        if not torch.isclose(got, expected, rtol=1e-6):
            ratio = float(got / expected)
            hints = {0.5: "forgot to sum over dimensions? the loss sums over dimensions and averages over the batch", 3.0: "averaged over dimensions instead of summing?", 2.0: "missing the ½?"}
            hint = next((h for r, h in hints.items() if math.isclose(ratio, r, rel_tol=1e-3)), "")
            raise AssertionError(
                f"dsm_loss at σ = {sigma}: expected {float(expected):.6g}, got {float(got):.6g}. "
                f"The target is −z/σ at x̃ = x + σz: ½ mean ‖s(x̃) + z/σ‖². {hint}"
            )
    print("dsm_loss: correct ✓")


def check_langevin_step(student_fn) -> None:
    """``langevin_step(x, score, step_size, z)`` = x + ε·score + √(2ε)·z."""
    g = make_generator(3)
    x, score, z = (torch.randn(32, 2, generator=g, dtype=torch.float64) for _ in range(3))
    for eps in (0.01, 0.5):
        got = _attempt("langevin_step", student_fn, x, score, eps, z)
        if got is None:
            return
        expected = _langevin_step(x, score, eps, z)
        assert isinstance(got, torch.Tensor) and got.shape == x.shape, (
            f"langevin_step must return a tensor of shape {tuple(x.shape)}"
        )
        if not torch.allclose(got, expected, rtol=1e-6, atol=1e-9):
            if torch.allclose(got, x + eps / 2 * score + math.sqrt(eps) * z):
                hint = "that is Song & Ermon's α/2 form; this course uses x + ε·s + √(2ε)·z."
            elif torch.allclose(got, x + eps * score + eps * z):
                hint = "the noise has standard deviation √(2ε), not ε."
            else:
                hint = "expected x + ε·score + √(2ε)·z."
            raise AssertionError(f"langevin_step with ε = {eps}: wrong result; {hint}")
    print("langevin_step: correct ✓")
