r"""EDM's sampler (Karras, Aittala, Aila & Laine 2022, "Elucidating the design space of
diffusion-based generative models"): Heun's method on the probability-flow ODE written in σ,
dx/dσ = −σ·∇ₓ log p_σ(x), along a decreasing list of levels (:func:`lessons_lib.noise.karras_sigmas`),
with the optional stochastic "churn" of their Algorithm 2. It needs no SDE object: only σ levels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._sampling import Trajectory, evaluate_score
from ._validate import as_tensor, require_batch, require_range, require_real

__all__ = ["heun_sample"]

Tensor = torch.Tensor


def heun_sample(
    score_fn: Callable[[Tensor, float], Tensor],
    x_init: Tensor,
    sigmas,
    *,
    churn: float = 0.0,
    churn_range: tuple[float, float] = (0.05, 50.0),
    generator: torch.Generator | None = None,
    record_every: int | None = None,
):
    r"""EDM's deterministic sampler: Heun's method on dx/dσ = −σ·s(x, σ) along ``sigmas``.

    ``sigmas``: decreasing levels ending with 0, e.g. :func:`~lessons_lib.noise.karras_sigmas`;
    ``x_init``: draws at the first level, usually σ₀·z with z standard normal. Each step from σ to σ' < σ is Euler,
    x' = x + (σ' − σ)·d with d = −σ·s(x, σ), corrected by the slope d' at (x', σ') when σ' > 0:
    x' = x + (σ' − σ)(d + d')/2. Network evaluations: 2n − 1 for n + 1 levels. The last step,
    Euler to σ = 0, is Tweedie's x + σ²·s(x, σ). Returns the images (with ``record_every=k``,
    ``(x, trajectory)`` with the start state and the state after every k-th level).

    ``churn`` S > 0 is EDM's stochastic sampler (Algorithm 2, S_noise = 1): before each step from
    a level σ inside ``churn_range``, fresh noise raises the level to σ̂ = (1 + γ)σ,
    x ← x + √(σ̂² − σ²)·z with γ = min(S/n, √2 − 1), and the Heun step starts from (x, σ̂). The
    added noise lets the sampler correct errors of the network, like Langevin's; z comes from
    ``generator``. Same number of evaluations.

    Raises :class:`~lessons_lib.samplers.DivergenceError` when the state leaves its scale, an
    entry beyond 1000 × R with R the largest of max |x_init|, σ₀ and 1 (:mod:`lessons_lib._sampling`).
    """
    levels = as_tensor(sigmas, "sigmas", dtype=torch.float64)
    if levels.dim() != 1 or levels.numel() < 2 or levels[-1] != 0 or (levels[:-1] <= 0).any() \
            or not (levels[1:] < levels[:-1]).all():
        raise ValueError("sigmas must be strictly decreasing positive levels followed by 0, e.g. "
                         f"karras_sigmas(sigma_max, sigma_min, n); got {[round(v, 4) for v in levels.tolist()]}")
    levels = levels.tolist()
    churn = require_real(churn, "churn", 0.0)
    churn_range = require_range(churn_range, "churn_range")
    x = require_batch(x_init, "x_init").detach().clone()
    trajectory = Trajectory(x, record_every, sigma_max=levels[0], what="the Heun sampler", n_steps=len(levels) - 1,
                            advice="The score was finite, so the steps are too long for it: take more levels "
                                   "(a larger n in karras_sigmas).")
    n = len(levels) - 1
    gamma = min(churn / n, math.sqrt(2) - 1)
    for i in range(n):
        sigma, sigma_next = levels[i], levels[i + 1]
        if gamma > 0 and churn_range[0] <= sigma <= churn_range[1]:
            sigma_hat = sigma * (1 + gamma)
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + math.sqrt(sigma_hat**2 - sigma**2) * z
            sigma = sigma_hat
        d = -sigma * evaluate_score(score_fn, x, sigma)
        x_next = x + (sigma_next - sigma) * d
        if sigma_next > 0:
            d_next = -sigma_next * evaluate_score(score_fn, x_next, sigma_next)
            x_next = x + (sigma_next - sigma) * 0.5 * (d + d_next)
        x = x_next
        trajectory.where = f" (at σ = {sigma_next:.3g})"
        trajectory.add(x, i + 1)
    return trajectory.result(x)
