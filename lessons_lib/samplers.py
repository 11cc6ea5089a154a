r"""Langevin dynamics: sampling from a density when all you have is its score.

**Convention used everywhere in this course.** One step of the unadjusted Langevin algorithm
with step size ε is

.. math:: x \leftarrow x + \varepsilon\, s(x) + \sqrt{2\varepsilon}\, z, \qquad z\sim\mathcal N(0, I),

the Euler–Maruyama discretisation of the Langevin diffusion
:math:`dX_t = \nabla\log p(X_t)\,dt + \sqrt2\,dW_t`, whose stationary density is p. (Song &
Ermon's Algorithm 1 writes :math:`x + \tfrac{\alpha}{2}s + \sqrt{\alpha}z`, i.e. α = 2ε; their
code uses the form above.) As ε → 0 and the number of steps → ∞ the samples follow p; for
finite ε there is a bias, and for a Gaussian of variance v the chain diverges when ε > 2v
(each step multiplies x − μ by 1 − ε/v).

**Annealed Langevin** (Song & Ermon 2019) runs ``n_steps_each`` steps at each level of a
schedule σ₁ > … > σ_L (largest first), with the score of the perturbed density
:math:`s(x, \sigma_i) \approx \nabla\log p_{\sigma_i}(x)` and step size

.. math:: \varepsilon_i = \varepsilon\,\sigma_i^2/\sigma_L^2 ,

so ε (``step_size``; ermongroup/ncsn's ``step_lr``) is the step at the last, smallest level.
(Song & Ermon's argument for εᵢ ∝ σᵢ²: where ‖∇log p_σ‖ ∝ 1/σ, as it is near a thin data set
or for σ well above the data's spread, the ratio of the drift εᵢ·s to the noise √(2εᵢ)·z in one
step is the same at every level.) An optional final denoising step (Tweedie's formula) returns
:math:`x + \sigma_L^2\, s(x, \sigma_L)`, the posterior mean of the clean sample given the
noisy one; it is not in the 2019 paper, it comes with Song & Ermon 2020 ("Improved techniques
for training score-based generative models", NCSNv2), after Jolicoeur-Martineau et al. 2020.

In-painting (:func:`annealed_inpainting`) follows Song & Ermon 2019, Algorithm 2 (the known
pixels perturbed once per level, to the level about to be used), or optionally NCSNv2's code
(a fresh perturbation before every step).

Both samplers stop with :class:`DivergenceError` (a ``ValueError``) naming the step and the
step size as soon as the chain leaves its scale: an entry beyond 1000 × R, R the largest of
max |x_init|, σ₁ (annealed) and 1 (:mod:`lessons_lib._sampling`); a score that returns NaN or
inf is reported as a wrong score, not as a too-large step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._sampling import DivergenceError, Trajectory, evaluate_score
from ._validate import (
    as_tensor,
    require_batch,
    require_bool,
    require_callable,
    require_choice,
    require_count,
    require_positive,
    require_real,
    require_same_shape,
)
from .noise import validate_sigmas

__all__ = ["langevin", "mala", "mala_log_acceptance", "annealed_langevin", "annealed_inpainting", "langevin_step",
           "ula_stationary_1d", "ula_relaxation_time_1d", "annealed_langevin_law_1d",
           "DivergenceError"]

Tensor = torch.Tensor



def langevin_step(x: Tensor, score: Tensor, step_size: float, z: Tensor) -> Tensor:
    """One step x + ε·s(x) + √(2ε)·z, given the score at x and the Gaussian noise z."""
    return x + step_size * score + math.sqrt(2.0 * step_size) * z


def _step_advice(step_size: float) -> str:
    return (f"The score was finite, so the step size ε = {step_size:.3g} (step_size) is too large for it "
            "(for a Gaussian of variance v the chain is stable only for ε < 2v); try a smaller one.")


def _check_finite(x: Tensor, step: int, n_steps: int, step_size: float, where: str = "") -> None:
    """A non-finite state after a finite score (:func:`evaluate_score` refuses a NaN score): too large a step."""
    if not torch.isfinite(x).all():
        raise DivergenceError(
            f"Langevin chain diverged{where}: non-finite values after step {step} of {n_steps} "
            f"with step size ε = {step_size:.3g}. " + _step_advice(step_size)
        )




def langevin(
    score_fn: Callable[[Tensor], Tensor],
    x_init: Tensor,
    step_size: float,
    n_steps: int,
    generator: torch.Generator | None = None,
    record_every: int | None = None,
):
    """Unadjusted Langevin: n_steps of x ← x + ε·s(x) + √(2ε)·z from the batch ``x_init``.

    Returns the final batch; with ``record_every=k`` returns ``(x, trajectory)`` where
    ``trajectory`` has shape (T, *x_init.shape) and holds x_init and every k-th state.
    Raises :class:`DivergenceError` when the chain leaves its scale, an entry beyond 1000 × R with R
    the larger of max |x_init| and 1 (:mod:`lessons_lib._sampling`; the message says whether the
    score returned NaN/inf or the step size is too large).
    """
    x = require_batch(x_init, "x_init").detach().clone()
    eps = require_positive(step_size, "step_size")
    n_steps = require_count(n_steps, "n_steps", minimum=0)
    trajectory = Trajectory(x, record_every, what="Langevin chain", n_steps=n_steps, advice=_step_advice(eps))
    trajectory.where = f" with step size ε = {eps:.3g}"
    for t in range(1, n_steps + 1):
        s = evaluate_score(score_fn, x)
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = langevin_step(x, s, eps, z)
        trajectory.add(x, t)
    return trajectory.result(x)


def _ula_kernel_on(score_fn, eps, x):
    """ULA's transition matrix on the cell centres x (row j: where a chain at x_j goes, a softmax of
    the Gaussian log-density of N(x_j + ε s(x_j), 2ε), so that mass leaving the cells is put back in them)."""
    mean = x + eps * require_same_shape(score_fn(x[:, None]), x[:, None], "score_fn")[:, 0].double()
    return torch.softmax(-(x[None, :] - mean[:, None]) ** 2 / (4 * eps), dim=1)


def _ula_grid_kernel_1d(score_fn, step_size, centre, half_width, n_cells):
    """The cell centres x, ULA's transition matrix K on them and ε."""
    require_callable(score_fn, "score_fn")
    eps = require_positive(step_size, "step_size")
    centre = require_real(centre, "centre")
    half = require_positive(half_width, "half_width")
    n = require_count(n_cells, "n_cells", minimum=2)
    h = 2 * half / n
    x = h * (torch.arange(n, dtype=torch.float64) + 0.5 + round((centre - half) / h))
    return x, _ula_kernel_on(score_fn, eps, x), eps


def _lattice_window(centre, half_width, cell_width):
    """The first index k₀ and the centres h(k + ½) of the lattice cells that cover centre ± half_width."""
    first = math.floor((centre - half_width) / cell_width)
    k = torch.arange(first, math.ceil((centre + half_width) / cell_width), dtype=torch.float64)
    return first, cell_width * (k + 0.5)


def _start_law(start_density, x):
    weights = require_same_shape(torch.as_tensor(start_density(x[:, None])), x[:, None], "start_density")[:, 0]
    weights = weights.double()
    if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("start_density must return finite, non-negative weights, not all zero, on the cells")
    return weights / weights.sum()


def annealed_langevin_law_1d(score_fn: Callable[[Tensor, float], Tensor], start_density: Callable[[Tensor], Tensor],
                             sigmas, n_steps_each: int, step_size: float, centre: float, half_widths,
                             cell_width: float = 0.05) -> list[tuple[Tensor, Tensor]]:
    r"""The law of :func:`annealed_langevin`'s chains in one dimension, computed rather than sampled:
    what infinitely many chains from ``start_density`` would give, with the same schedule and steps
    :math:`\varepsilon_i = \varepsilon\,\sigma_i^2/\sigma_L^2`.

    The line is cut into cells of width ``cell_width`` (0 is a cell edge). Level i keeps the cells
    that cover centre ± ``half_widths[i]``, builds ULA's transition matrix :math:`K_i` on them, as
    :func:`ula_stationary_1d` does, with the score ``score_fn(x, σᵢ)``, and applies it
    ``n_steps_each`` times: :math:`\pi \leftarrow \pi K_i`. Returns L + 1 pairs ``(x, prob)``, the
    start (on level 1's cells) and the law after each level. Each window must hold its level's
    mass: more than 10⁻⁶ of the mass outside the next level's window is refused."""
    require_callable(score_fn, "score_fn")
    require_callable(start_density, "start_density")
    sigmas = validate_sigmas(sigmas).tolist()
    n_steps = require_count(n_steps_each, "n_steps_each")
    eps = require_positive(step_size, "step_size")
    centre = require_real(centre, "centre")
    h = require_positive(cell_width, "cell_width")
    halves = [require_positive(w, "half_widths") for w in (half_widths if hasattr(half_widths, "__len__") else [])]
    if len(halves) != len(sigmas):
        raise ValueError(f"half_widths must give one window per level ({len(sigmas)}), got {half_widths!r}")
    first, x = _lattice_window(centre, halves[0], h)
    laws = [(x, _start_law(start_density, x))]
    prob = laws[0][1]
    for i, (sigma, half) in enumerate(zip(sigmas, halves)):
        new_first, new_x = _lattice_window(centre, half, h)
        moved = torch.zeros(len(new_x), dtype=torch.float64)
        lo, hi = max(first, new_first), min(first + len(x), new_first + len(new_x))
        if hi > lo:
            moved[lo - new_first:hi - new_first] = prob[lo - first:hi - first]
        if 1.0 - moved.sum().item() > 1e-6:
            raise ValueError(f"half_widths[{i}] = {half:g} leaves {1.0 - moved.sum().item():.2g} of "
                             "the chains' mass outside that level's cells: widen it")
        kernel = _ula_kernel_on(lambda y, s=sigma: score_fn(y, s), eps * sigma**2 / sigmas[-1] ** 2, new_x)
        prob = moved / moved.sum()
        for _ in range(n_steps):
            prob = prob @ kernel
        first, x = new_first, new_x
        laws.append((x, prob))
    return laws


def ula_stationary_1d(score_fn: Callable[[Tensor], Tensor], step_size: float, centre: float, half_width: float,
                      n_cells: int = 500) -> tuple[Tensor, Tensor]:
    r"""ULA's stationary law in one dimension, computed rather than sampled: ``(x, prob)``, the
    centres of ``n_cells`` equal cells covering centre ± ``half_width`` (shifted so that 0 is a cell
    edge) and their probabilities (float64, summing to 1).

    One step moves a chain at x to :math:`\mathcal N(x + \varepsilon s(x), 2\varepsilon)`; on the grid
    that is a transition matrix K (row j: a softmax of the Gaussian log-density from cell j), and
    the stationary vector solves :math:`\pi = K^\top\pi`, :math:`\sum\pi = 1`. For a Gaussian of
    variance v it has variance :math:`2v/(2 - \varepsilon/v)`, the Gaussian analysis of lesson 05.
    The grid must cover the law's mass: a chain leaving it is not represented."""
    x, kernel, _ = _ula_grid_kernel_1d(score_fn, step_size, centre, half_width, n_cells)
    n = len(x)
    system = kernel.T - torch.eye(n, dtype=torch.float64)
    system[-1] = 1.0  # Σπ = 1 in place of one of the (linearly dependent) balance equations
    return x, torch.linalg.solve(system, torch.eye(n, dtype=torch.float64)[-1])


def ula_relaxation_time_1d(score_fn: Callable[[Tensor], Tensor], step_size: float, centre: float,
                           half_width: float, n_cells: int = 500) -> float:
    r"""ULA's relaxation time in one dimension, in Langevin time (steps × ε), from the same grid
    kernel K as :func:`ula_stationary_1d`:

    .. math:: \tau = -\varepsilon / \ln|\lambda_2|,

    λ₂ the eigenvalue of K of second-largest modulus (the largest is 1). After n steps the chain's
    law is within a multiple of :math:`|\lambda_2|^n = e^{-n\varepsilon/\tau}` of the stationary
    law. For a Gaussian of variance v one step multiplies x − μ by 1 − ε/v, so
    :math:`\tau = -\varepsilon/\ln|1 - \varepsilon/v|`: v as ε → 0 (the diffusion's), shorter
    for large ε. Between two separated modes τ is the time scale of crossings."""
    _, kernel, eps = _ula_grid_kernel_1d(score_fn, step_size, centre, half_width, n_cells)
    second = torch.linalg.eigvals(kernel).abs().sort(descending=True).values[1].item()
    return math.inf if second >= 1.0 else (0.0 if second == 0.0 else -eps / math.log(second))


def mala_log_acceptance(log_prob: Callable[[Tensor], Tensor], score_fn: Callable[[Tensor], Tensor], x: Tensor,
                        y: Tensor, step_size: float) -> Tensor:
    r"""The log of MALA's acceptance probability for the move x → y, one number per chain (Roberts &
    Tweedie 1996):

    .. math:: \log\alpha = \min\{0,\ \log p(y) - \log p(x) + \log q(x\mid y) - \log q(y\mid x)\},
       \qquad \log q(b\mid a) = -\frac{\|b - a - \varepsilon s(a)\|^2}{4\varepsilon} + \text{const},

    q being the Langevin proposal :math:`\mathcal N(a + \varepsilon s(a), 2\varepsilon I)`. ``log_prob``
    need only be known up to a constant (it cancels); it is what a score model does not provide.
    """
    eps = require_positive(step_size, "step_size")
    x, y = require_batch(x, "x"), require_batch(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    with torch.no_grad():
        return _mala_log_acceptance(log_prob(x), log_prob(y), x, y, evaluate_score(score_fn, x),
                                    evaluate_score(score_fn, y), eps)


def _mala_log_acceptance(log_p_x, log_p_y, x, y, s_x, s_y, eps):
    """MALA's log α from the log-densities and scores at both points (computed once by the caller)."""
    def log_q(b, a, s_a):  # log q(b | a) up to a constant
        return -(b - a - eps * s_a).flatten(1).pow(2).sum(1) / (4 * eps)

    return (log_p_y - log_p_x + log_q(x, y, s_y) - log_q(y, x, s_x)).clamp(max=0.0)


def mala(
    log_prob: Callable[[Tensor], Tensor],
    score_fn: Callable[[Tensor], Tensor],
    x_init: Tensor,
    step_size: float,
    n_steps: int,
    generator: torch.Generator | None = None,
    record_every: int | None = None,
):
    """Metropolis-adjusted Langevin (MALA): the Langevin step x + ε·s(x) + √(2ε)·z as a proposal y,
    accepted with probability exp(:func:`mala_log_acceptance`), otherwise the chain stays at x.

    p is then exactly stationary for every ε, but the acceptance needs log p up to a constant,
    which a learned score does not give. Returns ``(x, acceptance)``, acceptance being the fraction
    of proposals accepted over all steps and chains; with ``record_every=k`` returns
    ``(x, acceptance, trajectory)``. Random numbers per step: the proposal's z, then the uniform u.
    """
    x = require_batch(x_init, "x_init").detach().clone()
    eps = require_positive(step_size, "step_size")
    n_steps = require_count(n_steps, "n_steps", minimum=0)
    trajectory = Trajectory(x, record_every)
    accepted = 0.0
    with torch.no_grad():
        s_x, log_p_x = evaluate_score(score_fn, x), log_prob(x)
    for t in range(1, n_steps + 1):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        y = langevin_step(x, s_x, eps, z)
        _check_finite(y, t, n_steps, eps)
        with torch.no_grad():
            s_y, log_p_y = evaluate_score(score_fn, y), log_prob(y)
        u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype, device=x.device)
        accept = torch.log(u) < _mala_log_acceptance(log_p_x, log_p_y, x, y, s_x, s_y, eps)
        keep = accept.view(-1, *[1] * (x.dim() - 1))
        x, s_x, log_p_x = torch.where(keep, y, x), torch.where(keep, s_y, s_x), torch.where(accept, log_p_y, log_p_x)
        accepted += float(accept.double().mean())
        trajectory.add(x, t)
    acceptance = accepted / max(n_steps, 1)
    if record_every is None:
        return x, acceptance
    x, traj = trajectory.result(x)
    return x, acceptance, traj


def annealed_langevin(
    score_fn: Callable[[Tensor, float], Tensor],
    x_init: Tensor,
    sigmas,
    n_steps_each: int = 100,
    step_size: float = 2e-5,
    generator: torch.Generator | None = None,
    record_every: int | None = None,
    denoise: bool = False,
):
    """Annealed Langevin dynamics over σ₁ > … > σ_L (Song & Ermon 2019).

    At level i, ``n_steps_each`` steps of x ← x + εᵢ·s(x, σᵢ) + √(2εᵢ)·z with
    εᵢ = step_size · σᵢ²/σ_L². ``score_fn(x, sigma)`` receives σᵢ as a Python float.
    With ``denoise=True`` a last step x ← x + σ_L²·s(x, σ_L) removes the remaining noise
    (Tweedie's formula; the final denoising step of Song & Ermon 2020, not of the 2019 paper).

    Returns the final batch; with ``record_every=k`` returns ``(x, trajectory)`` holding x_init and
    every k-th state (``record_every=n_steps_each`` keeps the state at the end of each level;
    the denoised result, if asked for, is appended last).
    """
    return _annealed(score_fn, x_init, sigmas, n_steps_each, step_size, generator, record_every, denoise)


def annealed_inpainting(
    score_fn: Callable[[Tensor, float], Tensor],
    image: Tensor,
    mask: Tensor,
    sigmas,
    n_steps_each: int = 100,
    step_size: float = 2e-5,
    generator: torch.Generator | None = None,
    record_every: int | None = None,
    denoise: bool = False,
    x_init: Tensor | None = None,
    known_noise: str = "per_level",
):
    r"""Fill in the unknown pixels of ``image`` by annealed Langevin (Song & Ermon 2019, Algorithm 2).

    ``mask`` (broadcastable to ``image``) is 1 where the pixel is known and 0 where it is to be
    generated. The unknown part follows the annealed chain of :func:`annealed_langevin`. The
    known part is held at the data *perturbed to the level about to be used*,
    :math:`y_i = x + \sigma_i z`, so that the chain only ever evaluates :math:`s(\cdot, \sigma_i)`
    on images whose known pixels are a plausible sample of :math:`p_{\sigma_i}`:

    * ``known_noise="per_level"`` (the default; Song & Ermon 2019, Algorithm 2 and their code):
      :math:`z` is drawn once at the start of level i, the known pixels are set to
      :math:`y_i` before the level's first step and reset to the same :math:`y_i` after every
      step;
    * ``known_noise="per_step"`` (Song & Ermon 2020, NCSNv2's code): a fresh :math:`z` before
      every step, the known pixels set to :math:`x + \sigma_i z` just before the score is
      evaluated.

    With ``denoise=True`` the known pixels are set to :math:`x + \sigma_L z` (the last level's
    :math:`y_L` with ``"per_level"``, a fresh draw with ``"per_step"``) before the final
    Tweedie step. The known pixels come out exact. ``x_init``: the starting values of the unknown
    pixels (default uniform on [0, 1], drawn with ``generator``). Random numbers are drawn from
    ``generator`` in this order: ``x_init`` (if not given), then per level [the known-pixel noise
    (``"per_level"``)], per step [the known-pixel noise (``"per_step"``), the Langevin noise],
    and [the known-pixel noise (``"per_step"``)] before denoising.
    """
    image = require_batch(image, "image")
    mask = as_tensor(mask, "mask").to(image)
    try:
        mask = mask.expand_as(image)
    except RuntimeError as err:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to image {tuple(image.shape)}") from err
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError("mask must hold only 0 (unknown pixel) and 1 (known pixel)")
    require_choice(known_noise, "known_noise", ("per_level", "per_step"))  # Song & Ermon 2019, NCSNv2
    if x_init is None:
        x_init = torch.rand(image.shape, generator=generator, dtype=image.dtype, device=image.device)
    x_init = require_same_shape(x_init, image, "x_init")
    held: dict[str, Tensor] = {}

    def perturbed_known(sigma: float) -> Tensor:
        return image + sigma * torch.randn(image.shape, generator=generator, dtype=image.dtype, device=image.device)

    def clamp(x: Tensor, y: Tensor) -> Tensor:
        return mask * y + (1 - mask) * x

    def before_level(x: Tensor, sigma: float) -> Tensor:
        if known_noise == "per_level":
            held["y"] = perturbed_known(sigma)
            return clamp(x, held["y"])
        return x

    def before_step(x: Tensor, sigma: float) -> Tensor:
        return clamp(x, perturbed_known(sigma)) if known_noise == "per_step" else x

    def after_step(x: Tensor, sigma: float) -> Tensor:
        return clamp(x, held["y"]) if known_noise == "per_level" else x

    def before_denoise(x: Tensor, sigma: float) -> Tensor:
        return clamp(x, held["y"] if known_noise == "per_level" else perturbed_known(sigma))

    out = _annealed(score_fn, x_init, sigmas, n_steps_each, step_size, generator, record_every, denoise,
                    hooks=dict(before_level=before_level, before_step=before_step, after_step=after_step,
                               before_denoise=before_denoise))
    if record_every is None:
        return clamp(out, image)
    x, trajectory = out
    return clamp(x, image), trajectory


def _annealed(score_fn, x_init, sigmas, n_steps_each, step_size, generator, record_every, denoise, hooks=None):
    """The annealed loop shared by sampling and in-painting. ``hooks`` (in-painting) maps
    ``before_level``, ``before_step``, ``after_step`` and ``before_denoise`` to functions
    ``(x, σ) -> x`` that constrain x at those points."""
    hooks = hooks or {}
    identity = lambda x, sigma: x
    before_level, before_step, after_step, before_denoise = (
        hooks.get(k, identity) for k in ("before_level", "before_step", "after_step", "before_denoise"))
    x = require_batch(x_init, "x_init").detach().clone()
    sig = [float(s) for s in validate_sigmas(sigmas)]
    n_steps_each = require_count(n_steps_each, "n_steps_each")
    step_size = require_positive(step_size, "step_size")
    denoise = require_bool(denoise, "denoise")
    total = len(sig) * n_steps_each
    trajectory = Trajectory(x, record_every, sigma_max=sig[0], what="annealed Langevin", n_steps=total,
                            advice=_step_advice(step_size).replace("step size ε", "last level's step size ε"))
    t = 0
    for i, sigma in enumerate(sig):
        eps = step_size * (sigma / sig[-1]) ** 2
        trajectory.where = f" at noise level {i + 1} (σ = {sigma:.3g}, step εᵢ = {eps:.3g})"
        x = before_level(x, sigma)
        for _ in range(n_steps_each):
            t += 1
            x = before_step(x, sigma)
            s = evaluate_score(score_fn, x, sigma)
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = langevin_step(x, s, eps, z)
            x = after_step(x, sigma)
            trajectory.add(x, t)
    if denoise:
        x = before_denoise(x, sig[-1])
        x = x + sig[-1] ** 2 * evaluate_score(score_fn, x, sig[-1])
        trajectory.where = " in the final denoising step"
        trajectory.append(x)
    return trajectory.result(x)
