"""Lesson 02, explicit and implicit score matching: ``ism_loss``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lessons_lib import autodiff, losses
from lessons_lib.autodiff import jacobian_trace

from .common import DIFFERENTIATE_HINT, loss_reduction_mistakes, mean_event, points_case, sum_event
from .engine import Case, Exercise, Mistake, register

Tensor = torch.Tensor


def reference(score_fn, x):
    return losses.ism_loss(score_fn, x)


def _cases() -> list[Case]:
    return [
        points_case(10, 6, 2, "linear"),
        points_case(11, 5, 1, "mlp"),
        points_case(12, 8, 3, "mlp"),
        points_case(13, 7, 4, "mlp"),
    ]


def _trace_and_score(score_fn, x):
    """Exact tr ∇ₓs per sample, shape (B,), and s(x)."""
    return jacobian_trace(score_fn, x, return_output=True)


def _terms(combine: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    """A wrong ISM: ``combine(trace, s)`` gives per-sample values, averaged over the batch."""

    def wrong(score_fn, x):
        trace, s = _trace_and_score(score_fn, x)
        return combine(trace, s).mean()

    return wrong


def _sum_of_jacobian(score_fn, x):
    """Σᵢⱼ ∂sᵢ/∂xⱼ per sample: every entry of the Jacobian, not only its diagonal."""
    x_in = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(score_fn(x_in).sum(), x_in)
    return sum_event(g)


ISM_LOSS = register(Exercise(
    name="ism_loss",
    lesson="02_explicit_implicit_score_matching",
    signature="(score_fn, x)",
    summary="mean over the batch of tr ∇ₓs + ½‖s‖², with the exact trace",
    formula="J_ISM = mean over the batch of [ tr ∇ₓs(x) + ½‖s(x)‖² ], with the exact trace Σᵢ ∂sᵢ/∂xᵢ",
    reference=reference,
    forbidden=(losses.ism_loss, autodiff.jacobian_trace),
    points=3,
    cases=_cases,
    description="Check ``ism_loss(score_fn, x)`` against :func:`lessons_lib.losses.ism_loss` (value and "
                "gradient with respect to the model's parameters) on linear and MLP score models in 1 to 4 "
                "dimensions.",
    is_loss=True,
    reduce_hint="average the per-sample values tr ∇ₓs + ½‖s‖² over the batch with .mean()",
    random_hint="the exact trace is deterministic; compute Σᵢ ∂sᵢ/∂xᵢ, not a random estimate",
    grad_hint=DIFFERENTIATE_HINT,
    mistakes=[
        Mistake("the ½ in front of ‖s‖² is missing", _terms(lambda t, s: t + sum_event(s**2))),
        Mistake("the trace term has the wrong sign: it is + tr ∇ₓs", _terms(lambda t, s: -t + 0.5 * sum_event(s**2))),
        Mistake("the trace term tr ∇ₓs is missing", _terms(lambda t, s: 0.5 * sum_event(s**2))),
        Mistake("the ½‖s‖² term is missing", _terms(lambda t, s: t)),
        Mistake("the ½ is on the trace too: only ‖s‖² carries ½", _terms(lambda t, s: 0.5 * t + 0.5 * sum_event(s**2))),
        Mistake(
            "‖s‖² is averaged over the dimensions; it is a sum over them: (s**2).sum(dim=-1)",
            _terms(lambda t, s: t + 0.5 * mean_event(s**2)),
        ),
        Mistake(
            "the 'trace' sums every entry of the Jacobian; the trace sums only the diagonal "
            "∂sᵢ/∂xᵢ (differentiate each output sᵢ with respect to its own input xᵢ)",
            lambda score_fn, x: (
                _sum_of_jacobian(score_fn, x) + 0.5 * sum_event(_trace_and_score(score_fn, x)[1] ** 2)
            ).mean(),
        ),
        *loss_reduction_mistakes(reference),
    ],
))
