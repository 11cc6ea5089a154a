r"""Derivatives that score matching needs: scores by autograd, and the trace of a Jacobian.

* An energy-based model :math:`p_\theta(x) = e^{-E_\theta(x)}/Z_\theta` has the score
  :math:`s_\theta(x) = -\nabla_x E_\theta(x)`: the normaliser :math:`Z_\theta` does not depend on
  :math:`x`, so it vanishes under :math:`\nabla_x`.
* Implicit score matching needs :math:`\operatorname{tr}\nabla_x s_\theta(x)`, the divergence of
  the score field. :func:`jacobian_trace` computes it exactly (D vector-Jacobian products per
  sample, one batched backward call); :func:`hutchinson_trace` estimates it with random
  projections, :math:`\operatorname{tr}A = \mathbb E_v[v^\top A v]` for any :math:`v` with
  :math:`\mathbb E[vv^\top] = I` (Rademacher ±1 entries or standard Gaussian).

Functions act on batches: ``f(x)`` maps a batch of shape ``(B, *event)`` to the same shape, and
each output row depends only on its own input row.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._validate import (
    as_tensor,
    require_batch,
    require_callable,
    require_choice,
    require_count,
    require_same_shape,
    require_tensor,
)

__all__ = [
    "score_from_log_prob",
    "score_from_energy",
    "jacobian_trace",
    "hutchinson_trace",
    "sample_projections",
    "hutchinson_variance",
    "linear_hutchinson_estimates",
]

Tensor = torch.Tensor


def _grad_of_sum(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """∇ₓ Σᵢ fn(x)ᵢ, keeping the graph when the caller is differentiating (training)."""
    require_tensor(x, "x")
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x_in = x if x.requires_grad else x.detach().requires_grad_(True)
        values = fn(x_in)
        if values.shape != x_in.shape[:1] and values.shape != x_in.shape[:-1]:
            raise ValueError(
                f"the log-density/energy must return one number per point, got shape "
                f"{tuple(values.shape)} for input of shape {tuple(x_in.shape)}"
            )
        (g,) = torch.autograd.grad(values.sum(), x_in, create_graph=keep_graph)
    return g if keep_graph else g.detach()


def score_from_log_prob(log_prob: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """The score s(x) = ∇ₓ log p(x) of a log-density, by autograd (Z may be unknown)."""

    def score(x: Tensor) -> Tensor:
        return _grad_of_sum(log_prob, x)

    return score


def score_from_energy(energy: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """The score s(x) = -∇ₓ E(x) of an energy-based model p ∝ exp(-E), by autograd."""

    def score(x: Tensor) -> Tensor:
        return -_grad_of_sum(energy, x)

    return score


def jacobian_trace(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    return_output: bool = False,
    chunk_size: int | None = None,
):
    """Exact tr(∂f/∂x) for every sample in the batch: shape (B,).

    One evaluation of ``f`` on the batch, then D vector-Jacobian products with the basis vectors
    e₁ … e_D (D = number of entries in one sample), batched into one backward call
    (``is_grads_batched``); the i-th product's entry i is ∂fᵢ/∂xᵢ for every sample at once,
    because each output row depends only on its own input row. The cost is D backward passes per
    sample and the memory D² numbers per sample; ``chunk_size`` bounds how many of the D products
    are computed at once. Where gradients are enabled the result is differentiable with respect
    to the parameters of ``f`` (it can be used in a loss). With ``return_output=True`` returns
    ``(trace, f(x))`` from the same evaluation.
    """
    x = require_batch(x)
    require_callable(f, "f")
    if chunk_size is not None:
        chunk_size = require_count(chunk_size, "chunk_size")
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x_in = x if x.requires_grad else x.detach().requires_grad_(True)
        out = require_same_shape(f(x_in), x_in, "f")
        b, d = x.shape[0], x[0].numel()
        step = chunk_size or d
        if not out.requires_grad:  # f does not depend on x
            return (torch.zeros(b, dtype=out.dtype, device=out.device), out) if return_output else out.new_zeros(b)
        diagonal = []
        for start in range(0, d, step):
            rows = torch.arange(start, min(start + step, d), device=x.device)
            basis = torch.zeros(len(rows), b, d, dtype=out.dtype, device=out.device)
            basis[torch.arange(len(rows)), :, rows] = 1.0
            (vjp,) = torch.autograd.grad(out, x_in, grad_outputs=basis.reshape(len(rows), *out.shape),
                                         create_graph=create_graph, retain_graph=True, is_grads_batched=True,
                                         allow_unused=True, materialize_grads=True)
            diagonal.append(vjp.reshape(len(rows), b, d)[torch.arange(len(rows)), :, rows])
        trace = torch.cat(diagonal).sum(0)
    if not create_graph:
        out = out.detach()
    return (trace, out) if return_output else trace


def sample_projections(
    shape, kind: str = "rademacher", generator: torch.Generator | None = None, dtype=None, device=None
) -> Tensor:
    """Random projection vectors v with E[v vᵀ] = I.

    ``kind="rademacher"``: independent ±1 entries (the lowest-variance choice for Hutchinson);
    ``kind="gaussian"``: standard normal entries.
    """
    dtype = dtype or torch.get_default_dtype()
    if not isinstance(shape, tuple | list | torch.Size):
        raise ValueError(f"shape must be a tuple of sizes such as (64, 2), got {shape!r}")
    shape = tuple(require_count(n, "shape", minimum=0) for n in shape)
    require_choice(kind, "kind", ("rademacher", "gaussian"))
    if kind == "rademacher":
        bits = torch.randint(0, 2, tuple(shape), generator=generator, device=device)
        return (2 * bits - 1).to(dtype)
    return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device)


def projected_jacobian(f_out: Tensor, x: Tensor, v: Tensor, create_graph: bool = True) -> Tensor:
    """vᵀ (∂f/∂x) v per sample, given f_out = f(x) computed from ``x`` with grad enabled.

    One vector-Jacobian product: u = vᵀJ, then Σ u ⊙ v over the event dimensions. With
    ``create_graph=False`` the result cannot be differentiated again (a loss needs the default),
    and the product costs several times less for a network.
    """
    (vjp,) = torch.autograd.grad(f_out, x, grad_outputs=v, create_graph=create_graph, retain_graph=True)
    return (vjp * v).flatten(1).sum(-1)


def hutchinson_trace(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    n_projections: int = 1,
    kind: str = "rademacher",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Hutchinson's unbiased estimate of tr(∂f/∂x): the mean of vᵀJv over ``n_projections``
    random vectors v per sample. Shape (B,). Costs one forward pass and ``n_projections``
    vector-Jacobian products, whatever the dimension.
    """
    x = require_batch(x)
    require_callable(f, "f")
    n_projections = require_count(n_projections, "n_projections")
    require_choice(kind, "kind", ("rademacher", "gaussian"))
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        out = require_same_shape(f(x_in), x_in, "f")
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for _ in range(n_projections):
            v = sample_projections(x.shape, kind, generator, x.dtype, x.device)
            total = total + projected_jacobian(out, x_in, v)
    return total / n_projections


def hutchinson_variance(A: Tensor, kind: str = "rademacher") -> float:
    r"""Closed-form variance of one Hutchinson estimate :math:`v^\top A v` of tr A.

    Only the symmetric part :math:`S = (A + A^\top)/2` enters :math:`v^\top A v`. Rademacher:
    :math:`2\sum_{i\ne j} S_{ij}^2` (the diagonal contributes no randomness, since
    :math:`v_i^2 = 1`); Gaussian: :math:`2\|S\|_F^2`. With M projections divide by M.
    """
    A = as_tensor(A, "A", dtype=torch.float64)
    if A.dim() != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {tuple(A.shape)}")
    require_choice(kind, "kind", ("rademacher", "gaussian"))
    sym = (A + A.T) / 2
    if kind == "rademacher":
        return 2 * float((sym**2).sum() - (torch.diagonal(sym) ** 2).sum())
    return 2 * float((sym**2).sum())


def linear_hutchinson_estimates(
    A: Tensor, n_repeats: int, n_projections: int = 1, kind: str = "rademacher",
    generator: torch.Generator | None = None,
) -> Tensor:
    """``n_repeats`` independent Hutchinson estimates of tr A, each the mean of vᵀAv over
    ``n_projections`` projections: :func:`hutchinson_trace` applied to the linear field
    f(x) = Ax (whose Jacobian is A everywhere) at ``n_repeats`` points. Shape (n_repeats,)."""
    A = as_tensor(A, "A", dtype=torch.float64)
    if A.dim() != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {tuple(A.shape)}")
    n_repeats = require_count(n_repeats, "n_repeats")
    x = torch.zeros(n_repeats, A.shape[0], dtype=torch.float64)
    return hutchinson_trace(lambda y: y @ A.T, x, n_projections, kind=kind, generator=generator).detach()
