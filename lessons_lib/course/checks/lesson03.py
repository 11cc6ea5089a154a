"""Lesson 03, sliced score matching: ``ssm_loss``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lessons_lib import autodiff, losses
from lessons_lib.autodiff import projected_jacobian

from .common import DIFFERENTIATE_HINT, loss_reduction_mistakes, points_case, scaled, sum_event
from .engine import Case, Exercise, Mistake, register

Tensor = torch.Tensor


def reference(score_fn, x, v):
    return losses.ssm_loss(score_fn, x, v=v)


def _cases() -> list[Case]:
    return [
        points_case(20, 6, 2, "linear", 3),
        points_case(21, 5, 1, "mlp", 2),
        points_case(22, 7, 3, "mlp", 4, "gaussian"),
        points_case(23, 8, 4, "mlp", 1),
    ]


def _terms(combine: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    """A wrong SSM: ``combine(vJv, v·s, s, v)`` (shapes (M, B), (M, B), (B, d), (M, B, d))."""

    def wrong(score_fn, x, v):
        x_in = x.detach().requires_grad_(True)
        with torch.enable_grad():
            s = score_fn(x_in)
            vjv = torch.stack([projected_jacobian(s, x_in, v_m) for v_m in v])
        vs = torch.stack([sum_event(v_m * s) for v_m in v])
        return combine(vjv, vs, s, v)

    return wrong


SSM_LOSS = register(Exercise(
    name="ssm_loss",
    lesson="03_sliced_score_matching",
    signature="(score_fn, x, v)",
    summary="mean of vᵀ∇ₓs v + ½(vᵀs)² over the given projections v (M, *x.shape) and the batch",
    formula=(
        "J_SSM = mean over the M projections and the batch of [ vᵀ∇ₓs(x) v + ½(vᵀs(x))² ], "
        "with the projections v you are given"
    ),
    reference=reference,
    forbidden=(losses.ssm_loss, losses.ssm_vr_loss, autodiff.projected_jacobian, autodiff.hutchinson_trace),
    points=3,
    cases=_cases,
    description="Check ``ssm_loss(score_fn, x, v)`` against :func:`lessons_lib.losses.ssm_loss` with the "
                "same projections (value and gradient), with Rademacher and Gaussian projections.",
    is_loss=True,
    reduce_hint="average over the projections and the batch (e.g. .mean() of an (M, B) tensor)",
    random_hint="use the projections v you are given; do not draw new ones",
    grad_hint=DIFFERENTIATE_HINT,
    mistakes=[
        Mistake("the ½ in front of (vᵀs)² is missing", _terms(lambda a, b, s, v: (a + b**2).mean())),
        Mistake(
            "the term vᵀ∇ₓs v has the wrong sign: it is + vᵀ∇ₓs v",
            _terms(lambda a, b, s, v: (-a + 0.5 * b**2).mean()),
        ),
        Mistake("the term vᵀ∇ₓs v is missing", _terms(lambda a, b, s, v: (0.5 * b**2).mean())),
        Mistake("the term ½(vᵀs)² is missing", _terms(lambda a, b, s, v: a.mean())),
        Mistake(
            "it uses ½‖s‖² instead of ½(vᵀs)²: that is the variance-reduced SSM-VR; this "
            "exercise asks for plain SSM",
            _terms(lambda a, b, s, v: a.mean() + 0.5 * sum_event(s**2).mean()),
        ),
        Mistake(
            "(vᵀs)² is the square of the dot product vᵀs = Σᵢ vᵢsᵢ, not the sum of squares Σᵢ (vᵢsᵢ)²",
            _terms(lambda a, b, s, v: (a + 0.5 * (v * s).pow(2).flatten(2).sum(-1)).mean()),
        ),
        Mistake(
            "it uses only the first projection v[0]; average over all M projections",
            _terms(lambda a, b, s, v: (a[0] + 0.5 * b[0] ** 2).mean()),
        ),
        Mistake(
            "it is the exact-trace ISM loss: the point of SSM is to replace tr ∇ₓs by vᵀ∇ₓs v",
            lambda score_fn, x, v: losses.ism_loss(score_fn, x),
        ),
        scaled(
            "it is the sum over the projections instead of the mean: divide by M",
            lambda score_fn, x, v: float(v.shape[0]),
            reference,
        ),
        scaled(
            "it is the sum over the projections and the batch instead of the mean",
            lambda score_fn, x, v: float(v.shape[0] * x.shape[0]),
            reference,
        ),
        *loss_reduction_mistakes(reference),
    ],
))
