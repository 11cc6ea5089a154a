r"""Score-matching objectives, written as in the papers (with their ½).

All losses take a batch ``x`` of shape ``(B, *event)`` (2-D points, 1×28×28 images, ...), sum
over the event dimensions and **average over the batch**; ``reduction="none"`` returns the
per-sample values instead. ``score_fn`` maps a batch to a batch of the same shape.

Explicit score matching (needs the true score :math:`s`, so only for teaching):

.. math:: J_\mathrm{ESM}(\theta) = \tfrac12\,\mathbb E_p\big\|s_\theta(x) - s(x)\big\|^2 .

Implicit score matching (Hyvärinen 2005), equal to ESM up to a constant that does not depend
on θ, by integration by parts:

.. math:: J_\mathrm{ISM}(\theta) = \mathbb E_p\big[\operatorname{tr}\nabla_x s_\theta(x)
          + \tfrac12\|s_\theta(x)\|^2\big].

Sliced score matching (Song et al. 2019) with projections :math:`v`, :math:`\mathbb E[vv^\top]=I`:

.. math:: J_\mathrm{SSM} = \mathbb E_{p,v}\big[v^\top\nabla_x s_\theta(x)\,v
          + \tfrac12 (v^\top s_\theta(x))^2\big], \qquad
          J_\mathrm{SSM\text{-}VR} = \mathbb E_{p,v}\big[v^\top\nabla_x s_\theta(x)\,v\big]
          + \tfrac12\,\mathbb E_p\|s_\theta(x)\|^2 .

Both have expectation :math:`J_\mathrm{ISM}`; SSM-VR replaces :math:`(v^\top s)^2` by its mean
:math:`\|s\|^2`, which removes part of the variance.

Denoising score matching (Vincent 2011) at noise level σ, with
:math:`\tilde x = x + \sigma z`, whose conditional score is
:math:`\nabla_{\tilde x}\log q(\tilde x\mid x) = -(\tilde x - x)/\sigma^2 = -z/\sigma`:

.. math:: J_\mathrm{DSM}(\theta) = \tfrac12\,\mathbb E\big\|s_\theta(\tilde x) + z/\sigma\big\|^2
          = J_\mathrm{ESM}(\theta; p_\sigma) + C_\sigma .

The noise-conditional loss (Song & Ermon 2019) draws one level per sample uniformly from the
schedule and weights level σ by λ(σ) = σ², which puts every level's term on the same scale
(d/2 for a model that outputs zero). The weight balances the levels against each other; it
does not make the small-σ gradient less noisy relative to its mean (lesson 04 §6):

.. math:: J_\mathrm{NCSN}(\theta) = \mathbb E_{\sigma}\,\tfrac12\,\sigma^2\,
          \mathbb E\big\|s_\theta(\tilde x, \sigma) + z/\sigma\big\|^2
          = \mathbb E_{\sigma}\,\tfrac12\,\mathbb E\big\|\sigma\, s_\theta(\tilde x, \sigma) + z\big\|^2 .

EDM (Karras, Aittala, Aila & Laine 2022) draws σ from a continuum instead, ln σ ~ N(P_mean,
P_std²), and weights the denoiser's error by λ(σ) = (σ² + σ_d²)/(σσ_d)², σ_d the data's RMS.
With Tweedie's denoiser D = x̃ + σ²s_θ, :math:`\|D - x\|^2/\sigma^2 = \|\sigma s_\theta + z\|^2`, so
EDM's loss is the σ²-weighted one times 1 + σ²/σ_d², which gives the large levels more weight:

.. math:: J_\mathrm{EDM}(\theta) = \mathbb E_{\ln\sigma\sim\mathcal N}\,\tfrac12\,\lambda(\sigma)\,
          \mathbb E\big\|D_\theta(\tilde x, \sigma) - x\big\|^2
          = \mathbb E_{\sigma}\,\tfrac12\Big(1 + \frac{\sigma^2}{\sigma_d^2}\Big)
          \mathbb E\big\|\sigma\, s_\theta(\tilde x, \sigma) + z\big\|^2 .
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._validate import (
    require_batch,
    require_callable,
    require_choice,
    require_count,
    require_positive,
    require_real,
    require_same_shape,
)
from .autodiff import jacobian_trace, projected_jacobian, sample_projections
from .noise import perturb, sigma_like, validate_sigmas

__all__ = ["esm_loss", "ism_loss", "ssm_loss", "ssm_vr_loss", "dsm_loss", "ncsn_loss", "ncsn_loss_at", "edm_loss"]

Tensor = torch.Tensor


def _sum_event(t: Tensor) -> Tensor:
    """Sum over every dimension but the batch dimension."""
    return t.flatten(1).sum(-1)


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    if require_choice(reduction, "reduction", ("mean", "none")) == "mean":
        return per_sample.mean()
    return per_sample


def esm_loss(score_fn: Callable, x: Tensor, true_score, reduction: str = "mean") -> Tensor:
    """½ E‖s_θ(x) − s(x)‖². ``true_score`` is a tensor shaped like x or a function of x."""
    x = require_batch(x)
    require_callable(score_fn, "score_fn")
    target = true_score(x) if callable(true_score) else true_score
    require_same_shape(target, x, "true_score")
    s = require_same_shape(score_fn(x), x, "score_fn")
    return _reduce(0.5 * _sum_event((s - target) ** 2), reduction)


def ism_loss(score_fn: Callable, x: Tensor, reduction: str = "mean", chunk_size: int | None = None):
    """E[tr ∇ₓs_θ(x) + ½‖s_θ(x)‖²] with the exact Jacobian trace (cost grows with dimension)."""
    x = require_batch(x)
    require_callable(score_fn, "score_fn")
    trace, s = jacobian_trace(score_fn, x, return_output=True, chunk_size=chunk_size)
    return _reduce(trace + 0.5 * _sum_event(s**2), reduction)


def _sliced(score_fn, x, v, n_projections, kind, generator, variance_reduced: bool, reduction: str):
    """SSM (or SSM-VR) with the projections ``v`` of shape (M, *x.shape), or M = ``n_projections``
    fresh ones of ``kind`` when ``v`` is None; averaged over the M projections."""
    x = require_batch(x)
    require_callable(score_fn, "score_fn")
    if v is None:
        n_projections = require_count(n_projections, "n_projections")
        v = torch.stack(
            [sample_projections(x.shape, kind, generator, x.dtype, x.device) for _ in range(n_projections)]
        )
    elif not isinstance(v, torch.Tensor) or v.dim() != x.dim() + 1 or v.shape[1:] != x.shape:
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ValueError(f"v must have shape (M, *x.shape) = (M, {', '.join(map(str, x.shape))}), got {shape}")
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        s = require_same_shape(score_fn(x_in), x_in, "score_fn")
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for v_m in v.to(x):
            term = projected_jacobian(s, x_in, v_m)
            if not variance_reduced:
                term = term + 0.5 * _sum_event(v_m * s) ** 2
            total = total + term
        per_sample = total / v.shape[0]
        if variance_reduced:
            per_sample = per_sample + 0.5 * _sum_event(s**2)
    return _reduce(per_sample, reduction)


def ssm_loss(
    score_fn: Callable,
    x: Tensor,
    n_projections: int = 1,
    kind: str = "rademacher",
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    *,
    v: Tensor | None = None,
) -> Tensor:
    """E_v[vᵀ∇ₓs_θ(x)v + ½(vᵀs_θ(x))²], averaged over ``n_projections`` vectors per sample.

    ``v``: the projections to use, shape (M, *x.shape), instead of drawing ``n_projections``
    of ``kind`` (the mean is then over these M projections).
    """
    return _sliced(score_fn, x, v, n_projections, kind, generator, False, reduction)


def ssm_vr_loss(
    score_fn: Callable,
    x: Tensor,
    n_projections: int = 1,
    kind: str = "rademacher",
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    *,
    v: Tensor | None = None,
) -> Tensor:
    """E_v[vᵀ∇ₓs_θ(x)v] + ½‖s_θ(x)‖²: SSM with the (vᵀs)² term replaced by its mean.

    ``v``: the projections to use, shape (M, *x.shape), as in :func:`ssm_loss`.
    """
    return _sliced(score_fn, x, v, n_projections, kind, generator, True, reduction)


def dsm_loss(
    score_fn: Callable,
    x: Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    *,
    z: Tensor | None = None,
) -> Tensor:
    """½ E‖s_θ(x + σz) + z/σ‖² at one noise level σ; ``score_fn(x_tilde)``.

    ``z``: the standard normal noise to use (shape of x) instead of drawing it.
    """
    x = require_batch(x)
    require_callable(score_fn, "score_fn")
    x_tilde, z = perturb(x, sigma, generator, z=z)
    s = require_same_shape(score_fn(x_tilde), x, "score_fn")
    return _reduce(0.5 * _sum_event((s + z / sigma_like(sigma, x)) ** 2), reduction)


def ncsn_loss(
    score_fn: Callable,
    x: Tensor,
    sigmas,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> Tensor:
    """σ²-weighted DSM over a schedule: ½ E‖σ·s_θ(x + σz, σ) + z‖², σ uniform over ``sigmas``.

    ``score_fn(x_tilde, sigma)`` receives ``sigma`` as a tensor of shape (B,): each sample's
    own level. Draws the levels, then calls :func:`ncsn_loss_at`.
    """
    x = require_batch(x)
    require_callable(score_fn, "score_fn")
    sigmas = validate_sigmas(sigmas).to(x)
    idx = torch.randint(0, len(sigmas), (x.shape[0],), generator=generator, device=x.device)
    return ncsn_loss_at(score_fn, x, sigmas[idx], generator, reduction)


def ncsn_loss_at(
    score_fn: Callable,
    x: Tensor,
    sigma,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    *,
    z: Tensor | None = None,
) -> Tensor:
    """½ E‖σ·s_θ(x + σz, σ) + z‖² at given levels: ``sigma`` of shape (B,) (one per sample) or a
    number; ``z``: the standard normal noise to use (shape of x) instead of drawing it.
    ``score_fn(x_tilde, sigma)`` receives ``sigma`` as given.
    """
    x = require_batch(x)
    require_callable(score_fn, "score_fn")
    x_tilde, z = perturb(x, sigma, generator, z=z)
    s = require_same_shape(score_fn(x_tilde, sigma), x, "score_fn")
    return _reduce(0.5 * _sum_event((sigma_like(sigma, x) * s + z) ** 2), reduction)


def edm_loss(
    score_fn: Callable,
    x: Tensor,
    sigma_data: float,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    *,
    p_mean: float = -1.2,
    p_std: float = 1.2,
) -> Tensor:
    """EDM's loss (Karras et al. 2022): ln σ ~ N(``p_mean``, ``p_std``²) per sample, then
    ½(1 + σ²/σ_d²)·E‖σ·s_θ(x + σz, σ) + z‖² = ½λ(σ)·E‖D_θ(x̃, σ) − x‖², λ = (σ² + σ_d²)/(σσ_d)².

    ``sigma_data`` σ_d: the RMS of the data. ``score_fn(x_tilde, sigma)`` receives σ of shape
    (B,). The defaults P_mean = −1.2, P_std = 1.2 are EDM's.
    """
    x = require_batch(x)
    require_callable(score_fn, "score_fn")
    sigma_data = require_positive(sigma_data, "sigma_data")
    p_std = require_positive(p_std, "p_std")
    p_mean = require_real(p_mean, "p_mean")
    log_sigma = p_mean + p_std * torch.randn(x.shape[0], generator=generator, dtype=x.dtype, device=x.device)
    sigma = log_sigma.exp()
    per_sample = ncsn_loss_at(score_fn, x, sigma, generator, reduction="none")
    return _reduce((1 + (sigma / sigma_data) ** 2) * per_sample, reduction)
