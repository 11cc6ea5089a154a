"""What every sampler shares: the score evaluated without a graph, the divergence check, and the
trajectory kept every ``record_every`` steps (the glossary in ``docs/contributing.md``).

**Divergence means "left the scale", not only "became inf".** A sampler's chain has a scale
R, the largest of max |x_init| (the largest entry of the start state), σ_max (the largest
noise level, for the samplers that have one) and 1. The chain *diverges* when an entry of its
state exceeds :data:`SCALE_MULTIPLE` × R (or stops being finite): no sampler of the course moves
a healthy chain that far (a Langevin chain stays near the data, an SDE or ODE sampler within a
few σ_max of the origin), while an unstable step grows the state geometrically, well past it
within a few dozen steps. Every state the :class:`Trajectory` sees (every step of every sampler)
is checked, whether it is kept or not.

:class:`DivergenceError` then tells the two causes apart:

* **a wrong score**: ``score_fn`` returned NaN or inf at a finite state
  (:func:`evaluate_score` checks every evaluation); a smaller step would not help;
* **a too-large step**: the score was finite, yet the state left the scale: the sampler's
  message names its step size or number of steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._validate import require_callable, require_count, require_same_shape

Tensor = torch.Tensor

#: A chain diverges when an entry of its state exceeds this multiple of its scale R.
SCALE_MULTIPLE = 1000.0

#: What a sampler says when a finite score moved the chain off its scale.
STEP_ADVICE = ("the score was finite, so the step is too large for it: take smaller steps "
               "(a smaller step_size, or more steps n_steps)")


class DivergenceError(ValueError):
    """A sampler's chain left its scale (entries beyond ``SCALE_MULTIPLE`` × R, or NaN/inf): the
    message says whether the score function returned NaN/inf (a wrong score) or the step is too large."""


def chain_scale(x_init: Tensor, sigma_max: float | None = None) -> float:
    """R: the largest of max |x_init|, σ_max (when given) and 1."""
    top = float(x_init.detach().abs().amax()) if x_init.numel() else 0.0
    return max(1.0, top, float(sigma_max or 0.0))


def evaluate_score(score_fn: Callable, x: Tensor, *args) -> Tensor:
    """The score at x, without building an autograd graph (scores by autograd still work).

    Raises :class:`DivergenceError` naming ``score_fn`` when it returns NaN or inf at a finite x:
    the score is wrong there, whatever the step size."""
    require_callable(score_fn, "score_fn")
    with torch.no_grad():
        s = score_fn(x, *args)
    return checked_score(s, x, *args)


def checked_score(s: Tensor, x: Tensor, *args) -> Tensor:
    """``s``, the output of ``score_fn(x, *args)``, detached, once it has x's shape and is finite
    (:func:`evaluate_score`'s checks, for a caller that needed the graph of the same evaluation)."""
    s = require_same_shape(s, x, "score_fn").detach()
    if s.is_floating_point() and not torch.isfinite(s).all():
        at = "".join(f", σ = {a:.3g}" if isinstance(a, float) else ", σ per sample" for a in args)
        bad = int((~torch.isfinite(s)).sum())
        where = "at a finite x" if torch.isfinite(x).all() else "at an x that is itself not finite"
        raise DivergenceError(
            f"score_fn returned NaN or infinite values {where} ({bad} of {s.numel()} entries{at}): the sampler "
            "diverged because the score function is wrong there; a smaller step size would not help. Check "
            "score_fn on these inputs (a log of 0, a division by 0, an overflow)."
        )
    return s


class Trajectory:
    """The states a sampler keeps (the start state and every ``record_every``-th step), and the
    divergence check of every state it is shown (:data:`SCALE_MULTIPLE` × :func:`chain_scale`).

    ``record_every=None`` keeps nothing and :meth:`result` returns the final state alone;
    ``record_every=k`` makes :meth:`result` return ``(x, trajectory)``, the trajectory stacked
    along a new first dimension. ``sigma_max``: the sampler's largest noise level, part of the
    scale. ``what`` names the sampler in messages, ``n_steps`` its number of steps, ``advice``
    says what to change when a finite score moved the chain off its scale; ``where`` (set by the
    sampler as it runs, e.g. the noise level) is added to the message.
    """

    def __init__(self, x_init: Tensor, record_every: int | None, *, sigma_max: float | None = None,
                 what: str = "the sampler", n_steps: int | None = None, advice: str = STEP_ADVICE):
        self.every = None if record_every is None else require_count(record_every, "record_every")
        self.states: list[Tensor] = [] if self.every is None else [x_init.detach().clone()]
        self.scale = chain_scale(x_init, sigma_max)
        self.limit = SCALE_MULTIPLE * self.scale
        self.scale_of = ("the largest of max |x_init|, σ_max and 1" if sigma_max is not None
                         else "the larger of max |x_init| and 1")  # only the scales this sampler has
        self.what, self.n_steps, self.advice = what, n_steps, advice
        self.where = ""
        self.last_step = 0

    def check(self, x: Tensor, step: int) -> Tensor:
        """x, if every entry is finite and within ``limit``; else a :class:`DivergenceError`."""
        top = float(x.detach().abs().amax()) if x.numel() else 0.0
        if top <= self.limit:  # False for NaN
            return x
        of = f" of {self.n_steps}" if self.n_steps is not None else ""
        state = (f"non-finite values after step {step}{of}{self.where}" if top != top or top == float("inf")
                 else f"it left the scale after step {step}{of}{self.where}: max |x| = {top:.3g} > "
                      f"{SCALE_MULTIPLE:g} × R = {self.limit:.3g}")
        raise DivergenceError(
            f"{self.what} diverged: {state} (R = {self.scale:.3g}, {self.scale_of}). "
            f"{self.advice}"
        )

    def add(self, x: Tensor, step: int) -> None:
        """Check x, and keep it if ``step`` (counted from 1) is a multiple of ``record_every``."""
        self.check(x, step)
        self.last_step = step
        if self.every is not None and step % self.every == 0:
            self.states.append(x.detach().clone())

    def append(self, x: Tensor) -> None:
        """Check x, and keep it whatever its step (a final denoising step, say)."""
        self.check(x, self.last_step)
        if self.every is not None:
            self.states.append(x.detach().clone())

    def result(self, x: Tensor):
        return x if self.every is None else (x, torch.stack(self.states))
