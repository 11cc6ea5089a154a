r"""Noise levels and Gaussian perturbation.

Perturbing data with :math:`\tilde x = x + \sigma z`, :math:`z \sim \mathcal N(0, I)`, turns the
data density :math:`p` into :math:`p_\sigma = p * \mathcal N(0, \sigma^2 I)`.

The σ schedule is listed **from largest to smallest**, :math:`\sigma_1 > \sigma_2 > \dots >
\sigma_L`, the order of Song & Ermon (2019) and of annealed Langevin sampling, which starts at
the largest noise. (Song et al. 2021 index the other way round.) Every schedule constructor
takes its arguments in that order too: ``(sigma_max, sigma_min, n)``.
"""

from __future__ import annotations

import math

import torch

from ._validate import as_tensor, require_batch, require_count, require_generator, require_positive, require_sigma

__all__ = ["geometric_sigmas", "karras_sigmas", "perturb", "sigma_like", "tweedie_denoise", "validate_sigmas"]


def geometric_sigmas(sigma_max: float, sigma_min: float, n: int, dtype=None) -> torch.Tensor:
    """n noise levels in geometric progression from ``sigma_max`` down to ``sigma_min``.

    σᵢ = σ_max · (σ_min/σ_max)^((i-1)/(n-1)), i = 1..n: a constant ratio between neighbours,
    largest first.
    """
    require_sigma(sigma_max, "sigma_max")
    require_sigma(sigma_min, "sigma_min")
    n = require_count(n, "n", minimum=2)
    if not sigma_max > sigma_min:
        raise ValueError(f"sigma_max must be larger than sigma_min, got {sigma_max} and {sigma_min}")
    exps = torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64)
    return torch.exp(exps).to(dtype or torch.get_default_dtype())


def karras_sigmas(sigma_max: float, sigma_min: float, n: int, rho: float = 7.0) -> torch.Tensor:
    r"""EDM's noise levels (Karras et al. 2022, eq. 5), largest first, then 0: n + 1 values

    .. math:: \sigma_i = \Big(\sigma_{\max}^{1/\rho} + \tfrac{i}{n-1}\big(\sigma_{\min}^{1/\rho}
              - \sigma_{\max}^{1/\rho}\big)\Big)^{\rho},\quad i = 0 … n-1, \qquad \sigma_n = 0 .

    ρ = 7 (the paper's) spends most steps at small σ; ρ = 1 is equal steps in σ, and ρ → ∞
    equal ratios (:func:`geometric_sigmas`). Float64.
    """
    require_sigma(sigma_max, "sigma_max")
    require_sigma(sigma_min, "sigma_min")
    n = require_count(n, "n", minimum=2)
    rho = require_positive(rho, "rho")
    if not sigma_max > sigma_min:
        raise ValueError(f"sigma_max must be larger than sigma_min, got {sigma_max} and {sigma_min}")
    ramp = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    inv = sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return torch.cat([inv**rho, torch.zeros(1, dtype=torch.float64)])


def validate_sigmas(sigmas) -> torch.Tensor:
    """A σ schedule: a 1-D tensor of positive levels, strictly decreasing (largest first)."""
    s = as_tensor(sigmas, "sigmas") if not isinstance(sigmas, torch.Tensor) else sigmas
    if s.dim() != 1 or s.numel() == 0:
        raise ValueError(f"sigmas must be a non-empty 1-D list of noise levels, got shape {tuple(s.shape)}")
    require_sigma(s, "sigmas")
    if s.numel() > 1 and not (s[1:] < s[:-1]).all():
        raise ValueError(
            "sigmas must be listed from largest to smallest (σ₁ > σ₂ > … > σ_L, the order of "
            f"Song & Ermon 2019), got {[round(v, 4) for v in s.tolist()]}"
        )
    return s


def sigma_like(sigma, x: torch.Tensor) -> torch.Tensor:
    """σ as a tensor that broadcasts against the batch x: shape (B, 1, 1, ...).

    ``sigma`` is a number (one level for the whole batch) or a tensor of shape (B,) (one level
    per sample).
    """
    require_sigma(sigma)
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.dim() == 0:
        s = s.expand(x.shape[0])
    if s.shape != x.shape[:1]:
        raise ValueError(
            f"sigma must be a number or have shape (batch,) = ({x.shape[0]},), got {tuple(s.shape)}"
        )
    return s.view(x.shape[0], *([1] * (x.dim() - 1)))


def perturb(x: torch.Tensor, sigma, generator: torch.Generator | None = None, *, z=None):
    """x̃ = x + σz with z ~ N(0, I). Returns ``(x_tilde, z)``.

    ``sigma``: a number, or a tensor of shape (B,) with one level per sample. ``z``: the noise
    to use (shape of x) instead of drawing it.
    """
    x = require_batch(x)
    s = sigma_like(sigma, x)
    require_generator(generator)
    if z is None:
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    elif not isinstance(z, torch.Tensor) or z.shape != x.shape:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"z must have the shape of x, {tuple(x.shape)}, got {shape}")
    else:
        z = require_batch(z, "z")
    return x + s * z, z


def tweedie_denoise(score_fn, x_noisy: torch.Tensor, sigma) -> torch.Tensor:
    """Tweedie's formula E[x | x̃] = x̃ + σ²·s(x̃), with ``score_fn(x̃)`` ≈ ∇log p_σ(x̃) (Robbins 1956;
    Miyasawa 1961; Efron 2011): the posterior mean of the clean x under Gaussian noise of known σ.
    ``sigma``: a number or one level per sample, shape (B,)."""
    x_noisy = require_batch(x_noisy, "x_noisy")
    return x_noisy + sigma_like(sigma, x_noisy) ** 2 * score_fn(x_noisy)
