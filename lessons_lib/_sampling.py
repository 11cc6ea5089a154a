"""What every sampler shares: the score evaluated without a graph, the divergence check, and the
trajectory kept every ``record_every`` steps (the glossary in ``docs/contributing.md``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._validate import require_count, require_same_shape

Tensor = torch.Tensor


class DivergenceError(ValueError):
    """A sampler's chain produced NaN or infinite values (usually: the step size is too large)."""


def evaluate_score(score_fn: Callable, x: Tensor, *args) -> Tensor:
    """The score at x, without building an autograd graph (scores by autograd still work)."""
    with torch.no_grad():
        return require_same_shape(score_fn(x, *args), x, "score_fn").detach()


class Trajectory:
    """The states a sampler keeps: the start state and every ``record_every``-th step.

    ``record_every=None`` keeps nothing and :meth:`result` returns the final state alone;
    ``record_every=k`` makes :meth:`result` return ``(x, trajectory)``, the trajectory stacked
    along a new first dimension.
    """

    def __init__(self, x_init: Tensor, record_every: int | None):
        self.every = None if record_every is None else require_count(record_every, "record_every")
        self.states: list[Tensor] = [] if self.every is None else [x_init.detach().clone()]

    def add(self, x: Tensor, step: int) -> None:
        """Keep x if ``step`` (counted from 1) is a multiple of ``record_every``."""
        if self.every is not None and step % self.every == 0:
            self.states.append(x.detach().clone())

    def append(self, x: Tensor) -> None:
        """Keep x whatever its step (a final denoising step, say)."""
        if self.every is not None:
            self.states.append(x.detach().clone())

    def result(self, x: Tensor):
        return x if self.every is None else (x, torch.stack(self.states))
