r"""Score-based generative modelling with SDEs: the continuous limit of many noise levels.

Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), *Score-based generative modeling
through stochastic differential equations*, turn the σ schedule of Song & Ermon (2019) into a
continuum. This module implements their **variance-exploding (VE) SDE** and its samplers, with
the same σ-conditioned score convention as :func:`lessons_lib.samplers.annealed_langevin`:
``score_fn(x, sigma)`` ≈ ∇ₓ log p_σ(x) receives σ as a Python float and returns the shape of x.

**The forward SDE.** With a geometric noise level :math:`\sigma(t) = \sigma_{\min}
(\sigma_{\max}/\sigma_{\min})^t` for :math:`t\in[0, 1]`,

.. math:: dx = g(t)\,dW_t,\qquad g(t) = \sqrt{\frac{d\sigma^2(t)}{dt}}
          = \sigma(t)\sqrt{2\log(\sigma_{\max}/\sigma_{\min})} .

Its transition kernel from time s to t is :math:`\mathcal N\big(x_s, (\sigma^2(t) -
\sigma^2(s))I\big)` (the variances of independent Gaussian increments add up to
:math:`\int_s^t g^2 = \sigma^2(t) - \sigma^2(s)`). Started from the data perturbed to the
smallest level, :math:`x(0) \sim p_{\sigma_{\min}}`, the marginal at time t is therefore exactly
:math:`p_t = p * \mathcal N(0, \sigma^2(t)I) = p_{\sigma(t)}`, the perturbed density of lesson
04 — so a network trained at every σ is a score model of every :math:`p_t`. At t = 1,
:math:`p_1 = p_{\sigma_{\max}} \approx \mathcal N(0, \sigma_{\max}^2 I)` when σ_max is large
compared with the data's distance from the origin and from each other: the **prior**.

**The reverse-time SDE** (Anderson 1982) runs the same marginals backwards, from t = 1 to 0:

.. math:: dx = -g^2(t)\,\nabla_x\log p_t(x)\,dt + g(t)\,d\bar W_t .

One Euler–Maruyama step of length Δt > 0 from t to t − Δt (:func:`reverse_sde_step`):
:math:`x \leftarrow x + g^2(t)\,s(x, \sigma(t))\,\Delta t + g(t)\sqrt{\Delta t}\,z`. The
**reverse-diffusion predictor** (Song et al. 2021, Algorithm 2 for VE;
:func:`reverse_diffusion_step`) reverses the discrete forward chain instead, with the exact
variance increment: :math:`x \leftarrow x + (\sigma^2 - \sigma'^2)\,s(x, \sigma) +
\sqrt{\sigma^2 - \sigma'^2}\,z`, σ = σ(t), σ' = σ(t − Δt). On the geometric σ(t),
g(t)²Δt = h/(1 − e^{−h})·(σ² − σ'²) with h = 2Δt·log(σ_max/σ_min): Euler–Maruyama overshoots the
variance step by 40 % with 24 steps of VESDE(50, 0.01), by 9 % with 100.

**Predictor–corrector** (Song et al. 2021, Algorithm 2 for VE, with Algorithm 4's corrector
step): after every predictor step, ``n_corrector`` Langevin steps
:math:`x \leftarrow x + \varepsilon s + \sqrt{2\varepsilon}z` (the course's convention,
:func:`lessons_lib.samplers.langevin_step`) at the new time. The corrector step is either set
by a signal-to-noise ratio r, :math:`\varepsilon = 2(r\|z\|/\|s\|)^2`
with the norms averaged over the batch as in the authors' code, or by annealed Langevin's rule
:math:`\varepsilon_i = \varepsilon\,\sigma_i^2/\sigma_{\min}^2`. With the predictor switched
off and the second rule, PC *is* annealed Langevin (Song & Ermon 2019) on the levels σ(tᵢ).

**The probability-flow ODE** (Song et al. 2021, §4.3) has the same marginals p_t, without noise:

.. math:: \frac{dx}{dt} = f(x, t) = -\tfrac12 g^2(t)\,\nabla_x\log p_t(x) .

Solved from t = 1 to 0 it maps prior samples to data (:func:`ode_sample`); from 0 to 1 it
encodes data as noise (:func:`ode_encode`); both directions are one deterministic map and its
inverse. Euler step (:func:`probability_flow_step`): :math:`x \leftarrow x + \tfrac12
g^2(t)\,s(x, \sigma(t))\,\Delta t`; the default is Heun's second-order method.

**Exact likelihood.** Along a solution of an ODE dx/dt = f, the log-density obeys the
instantaneous change of variables (Chen, Rubanova, Bettencourt & Duvenaud 2018, *Neural ODEs*):
:math:`\frac{d}{dt}\log p_t(x(t)) = -\nabla\cdot f(x(t), t)`. Hence, encoding x = x(0),

.. math:: \log p_0(x) = \log p_1(x(1)) + \int_0^1 \nabla\cdot f(x(t), t)\,dt,
          \qquad \nabla\cdot f = -\tfrac12 g^2(t)\,\operatorname{tr}\nabla_x s(x, \sigma(t)) .

The divergence is computed exactly (:func:`lessons_lib.autodiff.jacobian_trace`, D backward
passes) or estimated by Hutchinson's :math:`\operatorname{tr}A = \mathbb E[v^\top A v]` with one
set of projections v held fixed for the whole solve, as in FFJORD (Grathwohl, Chen,
Bettencourt, Sutskever & Duvenaud 2019), which makes the estimate of log p unbiased for the
discretised ODE.

**EDM's sampler** (Karras, Aittala, Aila & Laine 2022, Algorithm 1) solves the same ODE with σ
itself as the time variable: since dσ²/dt = g², the flow is :math:`dx/d\sigma = -\sigma\,
\nabla_x\log p_\sigma(x)`, whatever the schedule σ(t). :func:`lessons_lib.edm.heun_sample` takes Heun steps
in σ along :func:`lessons_lib.noise.karras_sigmas` (dense near σ_min) and ends with an Euler step to σ = 0,
which is the Tweedie denoising step x + σ²s.

Every sampler takes ``generator=`` for its noise, evaluates the score without building an
autograd graph, and raises :class:`lessons_lib.samplers.DivergenceError` (a ``ValueError``)
when the state leaves its scale: an entry beyond 1000 × R, R the largest of max |x_init|,
σ_max and 1 (:mod:`lessons_lib._sampling`), the message telling a score that returned NaN/inf
from too long a step. Time grids: ``n_steps`` equal steps of [0, 1] (equal steps
in log σ), or ``times=``, any strictly increasing grid in [0, 1] — samplers walk it from the
last time to the first. Times follow Song et al. 2021 (t = 0 is data); the σ list of
:mod:`lessons_lib.samplers` runs the other way (largest first).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._sampling import DivergenceError, Trajectory, checked_score, evaluate_score
from ._validate import (
    as_tensor,
    require_batch,
    require_callable,
    require_choice,
    require_count,
    require_positive,
    require_real,
    require_sigma,
    require_tensor,
)
from .autodiff import jacobian_trace, projected_jacobian, sample_projections
from .samplers import langevin_step

__all__ = [
    "VESDE",
    "reverse_sde_step",
    "reverse_diffusion_step",
    "PREDICTORS",
    "probability_flow_step",
    "reverse_sde_sample",
    "pc_sample",
    "ode_sample",
    "ode_encode",
    "ode_log_likelihood",
    "bits_per_dim",
]

Tensor = torch.Tensor


class VESDE:
    r"""The variance-exploding SDE dx = g(t) dW with σ(t) = σ_min (σ_max/σ_min)^t, t ∈ [0, 1].

    ``sigma(t)`` and ``g(t)`` accept a number (returning a float) or a tensor of times.
    σ(0) = σ_min, σ(1) = σ_max, g(t) = σ(t)·√(2 log(σ_max/σ_min)) = √(dσ²/dt).
    """

    def __init__(self, sigma_max: float = 50.0, sigma_min: float = 0.01):
        require_sigma(sigma_max, "sigma_max")
        require_sigma(sigma_min, "sigma_min")
        sigma_min, sigma_max = float(sigma_min), float(sigma_max)
        if not sigma_max > sigma_min:
            raise ValueError(f"sigma_max must be larger than sigma_min, got {sigma_max} and {sigma_min}")
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.log_ratio = math.log(sigma_max / sigma_min)

    def __repr__(self) -> str:
        return f"VESDE(sigma_max={self.sigma_max:g}, sigma_min={self.sigma_min:g})"

    @staticmethod
    def _check_t(t, name: str = "t"):
        if isinstance(t, torch.Tensor):
            if t.numel() == 0 or not torch.isfinite(t).all() or (t < 0).any() or (t > 1).any():
                raise ValueError(f"{name} must lie in [0, 1], got {t.detach().cpu().tolist()}")
            return t
        return require_real(t, name, 0.0, 1.0)  # t = 0 is data, t = 1 the prior

    def sigma(self, t):
        """σ(t) = σ_min·(σ_max/σ_min)^t, the noise level of the marginal p_t = p_σ(t)."""
        t = self._check_t(t)
        if isinstance(t, torch.Tensor):
            return self.sigma_min * torch.exp(t * self.log_ratio)
        return self.sigma_min * math.exp(t * self.log_ratio)

    def g(self, t):
        """The diffusion coefficient g(t) = √(dσ²/dt) = σ(t)·√(2 log(σ_max/σ_min))."""
        return self.sigma(t) * math.sqrt(2.0 * self.log_ratio)

    def kernel_std(self, t, s=0.0):
        """Standard deviation of the transition kernel x(t) | x(s) ~ N(x(s), (σ²(t) − σ²(s)) I), s ≤ t."""
        t, s = self._check_t(t), self._check_t(s, "s")
        if isinstance(t, torch.Tensor) or isinstance(s, torch.Tensor):
            diff = torch.as_tensor(self.sigma(t)) ** 2 - torch.as_tensor(self.sigma(s)) ** 2
            if (diff < 0).any():
                raise ValueError("kernel_std(t, s) needs s <= t")
            return diff.sqrt()
        if s > t:
            raise ValueError(f"kernel_std(t, s) needs s <= t, got t = {t}, s = {s}")
        return math.sqrt(self.sigma(t) ** 2 - self.sigma(s) ** 2)

    def time_grid(self, n_steps: int, dtype=torch.float64) -> Tensor:
        """n_steps + 1 equally spaced times 0 = t₀ < … < t_N = 1 (equal ratios σ(tᵢ₊₁)/σ(tᵢ))."""
        n_steps = require_count(n_steps, "n_steps")
        return torch.linspace(0.0, 1.0, n_steps + 1, dtype=dtype)

    def prior_sample(self, shape, generator: torch.Generator | None = None, dtype=None, device=None) -> Tensor:
        """Draws of the prior N(0, σ_max² I) of the given shape (batch first)."""
        dtype = dtype or torch.get_default_dtype()
        if not isinstance(shape, tuple | list | torch.Size) or not shape:
            raise ValueError(f"shape must be a tuple of sizes such as (64, 2), got {shape!r}")
        shape = tuple(require_count(n, "shape") for n in shape)
        return self.sigma_max * torch.randn(shape, generator=generator, dtype=dtype, device=device)

    def prior_log_prob(self, x: Tensor) -> Tensor:
        """log N(x; 0, σ_max² I) per sample, shape (B,), summed over all other dimensions."""
        x = require_batch(x)
        d = x[0].numel()
        return -0.5 * (x.flatten(1) ** 2).sum(1) / self.sigma_max**2 - d * (
            math.log(self.sigma_max) + 0.5 * math.log(2 * math.pi))


# --------------------------------------------------------------------------- single steps
def reverse_sde_step(x: Tensor, score: Tensor, g: float, dt: float, z: Tensor) -> Tensor:
    """One Euler–Maruyama step of the reverse-time SDE from t to t − dt:
    x + g²·score·dt + g·√dt·z, given the score at (x, t), g = g(t) and the noise z."""
    return x + g**2 * score * dt + g * math.sqrt(dt) * z


def reverse_diffusion_step(x: Tensor, score: Tensor, sigma: float, sigma_next: float, z: Tensor) -> Tensor:
    r"""One step of the reverse-diffusion predictor from level σ down to σ' < σ (Song et al. 2021,
    Algorithm 2, VE): x + (σ² − σ'²)·score + √(σ² − σ'²)·z, given the score at (x, σ) and the noise z.

    It reverses the discrete forward chain x' = x + √(σ² − σ'²)·z of the VE SDE, so its added
    variance is exactly the kernel's σ² − σ'²; Euler–Maruyama's g(t)²Δt approximates that
    increment (on the geometric σ(t) of :class:`VESDE` it overshoots it by h/(1 − e^{−h}),
    h = 2Δt·log(σ_max/σ_min))."""
    sigma, sigma_next = float(sigma), float(sigma_next)
    if not sigma > sigma_next >= 0.0:
        raise ValueError(f"the reverse-diffusion step needs sigma > sigma_next >= 0, got {sigma} and {sigma_next}")
    var = sigma**2 - sigma_next**2
    return x + var * score + math.sqrt(var) * z


PREDICTORS = ("euler_maruyama", "reverse_diffusion")
"""The predictors of :func:`reverse_sde_sample` and :func:`pc_sample`."""


def _check_predictor(predictor):
    """A predictor's name; ``None`` or ``False`` (no predictor) is returned as ``None``."""
    if predictor is None or predictor is False:
        return None
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS} (or None for no predictor), got {predictor!r}")
    return predictor


def _predict(predictor: str, score_fn, sde: VESDE, x: Tensor, t: float, t_next: float, generator) -> Tensor:
    """One predictor step from t down to t_next < t, with the score at (x, σ(t))."""
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    score = evaluate_score(score_fn, x, sde.sigma(t))
    if predictor == "reverse_diffusion":
        return reverse_diffusion_step(x, score, sde.sigma(t), sde.sigma(t_next), z)
    return reverse_sde_step(x, score, sde.g(t), t - t_next, z)


def probability_flow_step(x: Tensor, score: Tensor, g: float, dt: float) -> Tensor:
    """One Euler step of the probability-flow ODE from t to t − dt: x + ½·g²·score·dt.
    (A negative dt steps forward in time, towards noise.)"""
    return x + 0.5 * g**2 * score * dt


# --------------------------------------------------------------------------- grids and checks
def _grid(sde: VESDE, n_steps, times) -> list[float]:
    """The increasing time grid as a list of floats, from ``n_steps`` or an explicit ``times``."""
    if not isinstance(sde, VESDE):
        raise ValueError(f"sde must be a VESDE, got {type(sde).__name__}")
    if times is None:
        if n_steps is None:
            raise ValueError("give the number of steps n_steps, or a time grid times=")
        return sde.time_grid(n_steps).tolist()
    if n_steps is not None:
        raise ValueError("give either n_steps or times=, not both")
    grid = as_tensor(times, "times", dtype=torch.float64)
    if grid.dim() != 1 or grid.numel() < 2:
        raise ValueError(f"times must be a 1-D grid of at least 2 times, got shape {tuple(grid.shape)}")
    VESDE._check_t(grid, "times")
    if not (grid[1:] > grid[:-1]).all():
        raise ValueError(
            "times must be strictly increasing (t = 0 is data, t = 1 the prior; samplers walk the "
            f"grid backwards), got {[round(v, 4) for v in grid.tolist()]}")
    return grid.tolist()


def _start(x: Tensor, name: str) -> Tensor:
    return require_batch(x, name).detach().clone()


#: What the SDE and ODE samplers say when a finite score moved the chain off its scale.
STEP_ADVICE = ("The score was finite, so the steps are too long for it: take more steps (n_steps or a finer "
               "times= grid), or a smaller corrector step (snr or step_size).")


def _trajectory(sde: VESDE, x: Tensor, record_every, what: str) -> Trajectory:
    """The trajectory and divergence check of a sampler of ``sde``: scale R ≥ σ_max."""
    return Trajectory(x, record_every, sigma_max=sde.sigma_max, what=f"the {what}", advice=STEP_ADVICE)


def _check(x: Tensor, step: int, n_steps: int, t: float, what: str, at: str = "t") -> None:
    """A non-finite state after a finite score (:func:`evaluate_score` refuses a NaN score)."""
    if not torch.isfinite(x).all():
        raise DivergenceError(
            f"the {what} diverged: non-finite values after step {step} of {n_steps} (at {at} = {t:.3g}). "
            + STEP_ADVICE)


# --------------------------------------------------------------------------- stochastic samplers
def reverse_sde_sample(
    score_fn: Callable[[Tensor, float], Tensor],
    sde: VESDE,
    x_init: Tensor,
    n_steps: int | None = None,
    generator: torch.Generator | None = None,
    *,
    times=None,
    predictor: str = "euler_maruyama",
    denoise: bool = False,
    record_every: int | None = None,
):
    """Sample the reverse-time SDE, from x_init at t = 1 down to t = 0.

    Each step from t down to t' of the grid is ``predictor="euler_maruyama"`` (default,
    :func:`reverse_sde_step`: x + g(t)²·s·(t − t') + g(t)·√(t − t')·z) or
    ``"reverse_diffusion"`` (:func:`reverse_diffusion_step`: x + (σ² − σ'²)·s + √(σ² − σ'²)·z
    with σ = σ(t), σ' = σ(t'), Song et al. 2021's VE predictor), with s = s(x, σ(t)).
    ``n_steps`` network evaluations (one per step), plus one if ``denoise`` adds the final
    Tweedie step x + σ_min²·s(x, σ_min). ``x_init`` (any shape, batch first, at t = 1) is usually
    ``sde.prior_sample``. Returns the batch at t = 0 (samples of p_σmin; with ``times=``, at the
    grid's first time); with ``record_every=k`` ``(x, trajectory)`` with the start state and the
    state after every k-th step (the denoised batch, if asked for, last).
    """
    grid = _grid(sde, n_steps, times)
    predictor = _check_predictor(predictor)
    if predictor is None:
        raise ValueError(f"reverse_sde_sample needs a predictor, one of {PREDICTORS}")
    x = _start(x_init, "x_init")
    trajectory = _trajectory(sde, x, record_every, "reverse SDE")
    n = len(grid) - 1
    for k in range(n, 0, -1):
        x = _predict(predictor, score_fn, sde, x, grid[k], grid[k - 1], generator)
        _check(x, n - k + 1, n, grid[k], "reverse SDE")
        trajectory.add(x, n - k + 1)
    return _finish(score_fn, sde, x, grid[0], denoise, trajectory)


def _finish(score_fn, sde: VESDE, x: Tensor, t0: float, denoise: bool, trajectory: Trajectory):
    if denoise:
        sigma = sde.sigma(t0)
        x = x + sigma**2 * evaluate_score(score_fn, x, sigma)
        _check(x, 1, 1, t0, "final denoising step")
        trajectory.append(x)
    return trajectory.result(x)


def pc_sample(
    score_fn: Callable[[Tensor, float], Tensor],
    sde: VESDE,
    x_init: Tensor,
    n_steps: int | None = None,
    n_corrector: int = 1,
    snr: float | None = 0.16,
    generator: torch.Generator | None = None,
    *,
    step_size: float | None = None,
    predictor: str | None = "reverse_diffusion",
    times=None,
    denoise: bool = False,
    record_every: int | None = None,
):
    r"""Predictor–corrector sampling (Song et al. 2021, Algorithm 2 for VE with the corrector of
    Algorithm 4).

    For each step from t down to t' of the grid: one predictor step, by default the
    reverse-diffusion predictor x + (σ² − σ'²)·s(x, σ) + √(σ² − σ'²)·z with σ = σ(t), σ' = σ(t')
    (:func:`reverse_diffusion_step`, Algorithm 2's; ``predictor="euler_maruyama"`` takes
    :func:`reverse_sde_step` instead; ``predictor=None`` skips it), then ``n_corrector`` Langevin steps
    x ← x + ε·s(x, σ(t')) + √(2ε)·z at the new time (the corrector). The corrector's step is

    * ``snr=r`` (default 0.16, the paper's value for VE): ε = 2·(r·‖z‖/‖s‖)², with ‖z‖ and ‖s‖
      the per-sample norms averaged over the batch, as in the authors' code;
    * ``step_size=ε`` (then ``snr`` is ignored): annealed Langevin's ε·σ(t')²/σ(t₀)², with σ(t₀)
      the smallest level of the grid.

    ``predictor=None`` with ``step_size`` is annealed Langevin (lesson 05) on the levels σ(t) of
    the grid below t = 1, draw for draw. Network evaluations: ``n_steps·(1 + n_corrector)``
    (``n_steps·n_corrector`` without a predictor; +1 with ``denoise``). Returns the batch at
    t = 0; with ``record_every=k`` ``(x, trajectory)`` with the start state and the state after
    every k-th predictor–corrector step.
    """
    grid = _grid(sde, n_steps, times)
    n_corrector = require_count(n_corrector, "n_corrector", minimum=0)
    if step_size is not None:
        step_size = require_positive(step_size, "step_size")
    elif snr is None:
        raise ValueError("give the corrector's signal-to-noise ratio snr= or its annealed step size step_size=")
    else:
        snr = require_positive(snr, "snr")
    predictor = _check_predictor(predictor)
    if predictor is None and n_corrector == 0:
        raise ValueError("with predictor=None and n_corrector=0 the sampler would do nothing")
    x = _start(x_init, "x_init")
    trajectory = _trajectory(sde, x, record_every, "predictor–corrector sampler")
    sigma_last = sde.sigma(grid[0])
    n = len(grid) - 1
    for k in range(n, 0, -1):
        t, t_next = grid[k], grid[k - 1]
        if predictor is not None:
            x = _predict(predictor, score_fn, sde, x, t, t_next, generator)
            _check(x, n - k + 1, n, t, "predictor")
        sigma = sde.sigma(t_next)
        for _ in range(n_corrector):
            s = evaluate_score(score_fn, x, sigma)
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            if step_size is not None:
                eps = step_size * (sigma / sigma_last) ** 2
            else:
                ratio = z.flatten(1).norm(dim=1).mean() / s.flatten(1).norm(dim=1).mean().clamp_min(1e-30)
                eps = 2.0 * (snr * float(ratio)) ** 2
            x = langevin_step(x, s, eps, z)
            _check(x, n - k + 1, n, t_next, "corrector")
        trajectory.add(x, n - k + 1)
    return _finish(score_fn, sde, x, grid[0], denoise, trajectory)


# --------------------------------------------------------------------------- the probability-flow ODE
def _drift(score_fn, sde: VESDE, x: Tensor, t: float) -> Tensor:
    """f(x, t) = −½ g(t)² s(x, σ(t)), the velocity of the probability-flow ODE."""
    return -0.5 * sde.g(t) ** 2 * evaluate_score(score_fn, x, sde.sigma(t))


def _check_method(method: str) -> str:
    return require_choice(method, "method", ("euler", "heun"))


def _solve(score_fn, sde: VESDE, x: Tensor, grid: list[float], method: str, trajectory: Trajectory, what: str):
    """Integrate dx/dt = f(x, t) along ``grid`` (either direction) by Euler or Heun."""
    method = _check_method(method)
    n = len(grid) - 1
    for k in range(n):
        t, t_next = grid[k], grid[k + 1]
        f = _drift(score_fn, sde, x, t)
        x_euler = x + (t_next - t) * f
        if method == "heun":
            x = x + 0.5 * (t_next - t) * (f + _drift(score_fn, sde, x_euler, t_next))
        else:
            x = x_euler
        _check(x, k + 1, n, t_next, what)
        trajectory.add(x, k + 1)
    return x


def ode_sample(
    score_fn: Callable[[Tensor, float], Tensor],
    sde: VESDE,
    x_init: Tensor,
    n_steps: int | None = None,
    *,
    times=None,
    method: str = "heun",
    denoise: bool = False,
    record_every: int | None = None,
):
    """Decode: solve the probability-flow ODE dx/dt = −½g²s from x_init at t = 1 to t = 0.

    Deterministic. ``method="heun"`` (default, second order: 2 evaluations per step) or
    ``"euler"`` (1 per step; the step is :func:`probability_flow_step`). With ``record_every=k``
    returns ``(x, trajectory)`` with the start state and the state after every k-th step, from
    t = 1 down to 0 (the denoised batch, if asked for, last).
    """
    grid = _grid(sde, n_steps, times)
    x = _start(x_init, "x_init")
    trajectory = _trajectory(sde, x, record_every, "probability-flow ODE")
    x = _solve(score_fn, sde, x, grid[::-1], method, trajectory, "probability-flow ODE")
    return _finish(score_fn, sde, x, grid[0], denoise, trajectory)


def ode_encode(
    score_fn: Callable[[Tensor, float], Tensor],
    sde: VESDE,
    x_data: Tensor,
    n_steps: int | None = None,
    *,
    times=None,
    method: str = "heun",
    record_every: int | None = None,
):
    """Encode: solve the probability-flow ODE forward, from data x_data at t = 0 to t = 1.

    The inverse of :func:`ode_sample` on the same grid (up to the discretisation error).
    """
    grid = _grid(sde, n_steps, times)
    x = _start(x_data, "x_data")
    trajectory = _trajectory(sde, x, record_every, "probability-flow ODE (encoding)")
    x = _solve(score_fn, sde, x, grid, method, trajectory, "probability-flow ODE (encoding)")
    return trajectory.result(x)


# --------------------------------------------------------------------------- likelihood
def _needs_graph(out: Tensor) -> Tensor:
    if not out.requires_grad:
        raise ValueError(
            "the divergence needs the derivative of score_fn with respect to x, but score_fn returned "
            "a tensor without an autograd graph (it runs under torch.no_grad?). Pass the network "
            "itself, e.g. checkpoint.model rather than checkpoint.score.")
    return out


def _score_and_trace_fn(score_fn, x: Tensor, divergence: str, n_projections: int, generator):
    """(s(x, σ), tr ∇ₓ s(x, σ) per sample) as a function of (x, σ): the trace exact, or Hutchinson
    with fixed v, whose forward pass also gives the score (one network evaluation, not two)."""
    if divergence == "exact":
        def score_and_trace(y: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
            return evaluate_score(score_fn, y, sigma), jacobian_trace(lambda u: score_fn(u, sigma), y).detach()

        with torch.enable_grad():  # one probe: torch.func would silently return zeros under no_grad
            _needs_graph(score_fn(x[:1].detach().requires_grad_(True), 1.0))
        return score_and_trace
    if divergence == "hutchinson":
        n_projections = require_count(n_projections, "n_projections")
        v = sample_projections((n_projections, *x.shape), "rademacher", generator, x.dtype, x.device)

        def score_and_trace(y: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
            with torch.enable_grad():
                y_in = y.detach().requires_grad_(True)
                out = _needs_graph(score_fn(y_in, sigma))
                score = checked_score(out, y, sigma)
                total = sum(projected_jacobian(out, y_in, v[k], create_graph=False)
                            for k in range(n_projections))
            return score, total / n_projections
        return score_and_trace
    require_choice(divergence, "divergence", ("exact", "hutchinson"))


def ode_log_likelihood(
    score_fn: Callable[[Tensor, float], Tensor],
    sde: VESDE,
    x: Tensor,
    n_steps: int | None = None,
    divergence: str = "exact",
    generator: torch.Generator | None = None,
    *,
    times=None,
    method: str = "heun",
    n_projections: int = 1,
    prior_log_prob: Callable[[Tensor], Tensor] | None = None,
    return_latent: bool = False,
):
    r"""log p₀(x) per sample (nats, shape (B,)) by the instantaneous change of variables.

    Encodes x along the probability-flow ODE to t = 1 while integrating the divergence of its
    velocity, ∇·f = −½g²(t)·tr∇ₓs(x, σ(t)), with the same method; then
    log p₀(x) = log p₁(x(1)) + ∫₀¹ ∇·f dt. ``divergence="exact"``: the full Jacobian trace (D
    backward passes per evaluation; for small D); ``"hutchinson"``: vᵀ(∇ₓs)v averaged over
    ``n_projections`` Rademacher vectors v per sample, drawn once from ``generator`` and kept for
    the whole solve (FFJORD), an unbiased estimate. ``prior_log_prob``: log p₁ (default the
    prior N(0, σ_max² I), ``sde.prior_log_prob``). Here p₀ is the model of p_σmin, the data
    perturbed to the smallest level. With ``return_latent=True`` returns ``(log_p, x(1))``.
    """
    grid = _grid(sde, n_steps, times)
    method = _check_method(method)
    x = _start(x, "x")
    require_callable(score_fn, "score_fn")
    n_projections = require_count(n_projections, "n_projections")
    score_and_trace = _score_and_trace_fn(score_fn, x, divergence, n_projections, generator)

    def velocity_and_divergence(y: Tensor, t: float) -> tuple[Tensor, Tensor]:
        """f = −½g²s and ∇·f = −½g²·tr∇ₓs at (y, t); with Hutchinson, from one network evaluation."""
        score, trace = score_and_trace(y, sde.sigma(t))
        return -0.5 * sde.g(t) ** 2 * score, -0.5 * sde.g(t) ** 2 * trace

    integral = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    n = len(grid) - 1
    guard = _trajectory(sde, x, None, "probability-flow ODE (likelihood)")
    for k in range(n):
        t, t_next = grid[k], grid[k + 1]
        f, div = velocity_and_divergence(x, t)
        x_euler = x + (t_next - t) * f
        if method == "heun":
            f2, div2 = velocity_and_divergence(x_euler, t_next)
            x = x + 0.5 * (t_next - t) * (f + f2)
            integral = integral + 0.5 * (t_next - t) * (div + div2)
        else:
            x = x_euler
            integral = integral + (t_next - t) * div
        _check(x, k + 1, n, t_next, "probability-flow ODE (likelihood)")
        guard.add(x, k + 1)
    with torch.no_grad():
        log_p1 = sde.prior_log_prob(x) if prior_log_prob is None else prior_log_prob(x)
    if log_p1.shape != integral.shape:
        raise ValueError(f"prior_log_prob must return one value per sample, shape {tuple(integral.shape)}, "
                         f"got {tuple(log_p1.shape)}")
    log_p = (log_p1 + integral).detach()
    return (log_p, x) if return_latent else log_p


def bits_per_dim(log_p: Tensor, dim: int, n_levels: int = 256) -> Tensor:
    r"""Bits per dimension of data with ``n_levels`` grey levels scaled to [0, 1]:
    :math:`-\log p/(D\log 2) + \log_2 n_{\text{levels}}`, from the log-density ``log_p`` (nats)
    of the continuous (dequantised) images. The second term converts a density on [0, 1]^D
    into one on the 0…255 scale."""
    dim = require_count(dim, "dim")
    log_p = require_tensor(log_p, "log_p")
    return -log_p / (dim * math.log(2)) + math.log2(require_count(n_levels, "n_levels"))
