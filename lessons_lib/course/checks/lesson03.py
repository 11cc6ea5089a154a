"""Lesson 03, sliced score matching: ``rademacher_variance``, ``ssm_loss``, ``ssm_vr_loss`` and the
written ``hutchinson_variance``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lessons_lib import autodiff, losses
from lessons_lib.autodiff import projected_jacobian

from .common import DIFFERENTIATE_HINT, loss_reduction_mistakes, points_case, scaled, sum_event
from .engine import Case, Exercise, Mistake, Written, register, seeded

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


# --------------------------------------------------------------------------- the variance formula
def variance_reference(A):
    return torch.tensor(autodiff.hutchinson_variance(A, "rademacher"), dtype=A.dtype)


def _matrix_case(seed: int, d: int, symmetric: bool) -> Case:
    def make(g: torch.Generator) -> tuple:
        a = torch.randn(d, d, generator=g, dtype=torch.float64)
        return ((a + a.T) / 2 if symmetric else a,)

    return Case(f"a {'symmetric' if symmetric else 'non-symmetric'} {d}×{d} matrix A", seeded(seed, make))


def _variance_cases() -> list[Case]:
    return [_matrix_case(50, 3, True), _matrix_case(51, 5, True), _matrix_case(52, 4, False),
            _matrix_case(53, 6, False)]


def _sym(A):
    return (A + A.T) / 2


def _off_diagonal_sq(M):
    return (M**2).sum() - (torch.diagonal(M) ** 2).sum()


RADEMACHER_VARIANCE = register(Exercise(
    name="rademacher_variance",
    lesson="03_sliced_score_matching",
    signature="(A)",
    summary="the exact variance of one Rademacher estimate vᵀAv of tr A, for any square A (not only symmetric)",
    formula="Var[vᵀAv] over v with independent ±1 entries, for any square A, as a tensor holding one number",
    reference=variance_reference,
    forbidden=(autodiff.hutchinson_variance, autodiff.linear_hutchinson_estimates),
    points=2,
    cases=_variance_cases,
    description="Check ``rademacher_variance(A)`` against :func:`lessons_lib.autodiff.hutchinson_variance` "
                "on symmetric and non-symmetric matrices.",
    mistakes=[
        Mistake("it is right for symmetric A only: when A_ij ≠ A_ji, the terms A_ij vᵢvⱼ and A_ji vⱼvᵢ "
                "are the same random variable, not two independent ones",
                lambda A: 2 * _off_diagonal_sq(A)),
        Mistake("the diagonal is included: that is the variance for Gaussian v; with vᵢ² = 1 the "
                "diagonal of a Rademacher estimate carries no randomness", lambda A: 2 * (_sym(A) ** 2).sum()),
        Mistake("the factor 2 is missing (or the sum runs over i < j only): each unordered pair {i, j} "
                "appears twice in the sum over i ≠ j, as S_ij and S_ji",
                lambda A: _off_diagonal_sq(_sym(A))),
        Mistake("it is the squared trace: the variance is E[(vᵀAv)²] − (tr A)², not (tr A)²",
                lambda A: torch.trace(A) ** 2),
    ],
))


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
    reduce_hint="average over the projections and the batch (the mean of the (M, B) per-projection, per-sample values)",
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


# --------------------------------------------------------------------------- SSM-VR
def vr_reference(score_fn, x, v):
    return losses.ssm_vr_loss(score_fn, x, v=v)


def _vr_cases() -> list[Case]:
    return [
        points_case(24, 6, 2, "linear", 3),
        points_case(25, 5, 1, "mlp", 2),
        points_case(26, 7, 3, "mlp", 4, "gaussian"),
        points_case(27, 8, 4, "mlp", 5),
    ]


SSM_VR_LOSS = register(Exercise(
    name="ssm_vr_loss",
    lesson="03_sliced_score_matching",
    signature="(score_fn, x, v)",
    summary="SSM-VR: mean of vᵀ∇ₓs v over the M given projections, plus ½‖s‖², averaged over the batch",
    formula=(
        "J_SSM-VR = mean over the batch of [ (1/M) Σₘ vₘᵀ∇ₓs(x) vₘ + ½‖s(x)‖² ], "
        "with the M projections v you are given"
    ),
    reference=vr_reference,
    forbidden=(losses.ssm_loss, losses.ssm_vr_loss, autodiff.projected_jacobian, autodiff.hutchinson_trace,
               autodiff.jacobian_trace, losses.ism_loss),
    points=3,
    cases=_vr_cases,
    description="Check ``ssm_vr_loss(score_fn, x, v)`` against :func:`lessons_lib.losses.ssm_vr_loss` with "
                "the same projections (value and gradient), with 1 to 5 Rademacher and Gaussian projections.",
    is_loss=True,
    reduce_hint="average the trace estimates over the projections, add ½‖s‖² once, then average over the batch",
    random_hint="use the projections v you are given; do not draw new ones",
    grad_hint=DIFFERENTIATE_HINT,
    mistakes=[
        Mistake(
            "it uses ½(vᵀs)², plain SSM; SSM-VR keeps the exact ½‖s‖²",
            _terms(lambda a, b, s, v: (a + 0.5 * b**2).mean()),
        ),
        Mistake(
            "½‖s‖² is added once per projection and summed over them: add it once per sample",
            _terms(lambda a, b, s, v: a.mean(0).mean() + v.shape[0] * 0.5 * sum_event(s**2).mean()),
        ),
        Mistake("the ½ in front of ‖s‖² is missing", _terms(lambda a, b, s, v: a.mean() + sum_event(s**2).mean())),
        Mistake(
            "the term vᵀ∇ₓs v has the wrong sign",
            _terms(lambda a, b, s, v: -a.mean() + 0.5 * sum_event(s**2).mean()),
        ),
        Mistake(
            "the trace estimates are summed over the M projections: average them",
            _terms(lambda a, b, s, v: a.sum(0).mean() + 0.5 * sum_event(s**2).mean()),
        ),
        Mistake(
            "it uses only the first projection v[0]; average over all M projections",
            _terms(lambda a, b, s, v: a[0].mean() + 0.5 * sum_event(s**2).mean()),
        ),
        *loss_reduction_mistakes(vr_reference),
    ],
))


HUTCHINSON_VARIANCE = register(Written(
    name="hutchinson_variance", lesson="03_sliced_score_matching",
    summary="the variance of a Rademacher estimate vᵀAv derived, and what it says about SSM's (vᵀs)²", points=3))
