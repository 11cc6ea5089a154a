"""Lesson 02, explicit and implicit score matching: ``exact_trace``, ``ism_loss``, ``ebm_ism_loss`` and
the written ``ism_unbounded``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lessons_lib import autodiff, losses
from lessons_lib.autodiff import jacobian_trace, score_from_energy
from lessons_lib.nets import EnergyMLP

from .common import DIFFERENTIATE_HINT, loss_reduction_mistakes, mean_event, points_case, sum_event
from .engine import Case, Exercise, Mistake, Written, call, close, fail, register, seeded

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


# --------------------------------------------------------------------------- the exact trace
def trace_reference(score_fn, x):
    return jacobian_trace(score_fn, x)


def _trace_cases() -> list[Case]:
    return [
        points_case(14, 6, 2, "linear"),
        points_case(15, 5, 1, "mlp"),
        points_case(16, 7, 3, "mlp"),
        points_case(17, 4, 5, "mlp"),
    ]


def _jacobian(score_fn, x):
    """The full Jacobian ∂sᵢ/∂xⱼ per sample, shape (B, d, d), by a loop over the outputs."""
    x_in = x.detach().requires_grad_(True)
    with torch.enable_grad():
        s = score_fn(x_in)
        rows = [torch.autograd.grad(s[:, i].sum(), x_in, retain_graph=True)[0] for i in range(x.shape[1])]
    return torch.stack(rows, 1)


def _trace_keeps_graph(ex: Exercise, fn: Callable) -> None:
    """Exercise 2 uses the trace in a loss: when the values are right, the gradient of their sum
    with respect to the model's parameters must be the reference's."""
    __tracebackhide__ = True
    case = ex.cases()[1]  # an MLP, whose trace depends on its weights
    called = call(ex, fn, case)
    if called is None:
        return  # not attempted: the check itself says so
    got, args = called
    ref_args = case.build()
    expected = ex.reference(*ref_args)
    if not isinstance(got, Tensor) or got.shape != expected.shape or not close(got.detach(), expected.detach()):
        return  # wrong values: the cases diagnose them
    params = list(args[0].parameters())
    grads = torch.autograd.grad(got.sum(), params, allow_unused=True) if got.requires_grad else [None] * len(params)
    ref_grads = torch.autograd.grad(expected.sum(), list(ref_args[0].parameters()), allow_unused=True)
    if any((g is None) != (r is None) or (g is not None and not close(g, r, 1e-3, 1e-5))
           for g, r in zip(grads, ref_grads)):
        raise fail(ex, case, "the values are right, but no (or the wrong) gradient reaches the model's parameters: "
                             "exercise 2 trains through this trace, so keep the graph (create_graph=True in "
                             "torch.autograd.grad; no .detach(), .item() or torch.no_grad())")


EXACT_TRACE = register(Exercise(
    name="exact_trace",
    lesson="02_explicit_implicit_score_matching",
    signature="(score_fn, x)",
    summary="tr ∇ₓs(x) for every point of the batch, by a loop over the d coordinates, (B, d) → (B,)",
    formula="tr ∇ₓs(x) = Σᵢ ∂sᵢ/∂xᵢ (x) for every row x of the batch, shape (B,)",
    reference=trace_reference,
    forbidden=(autodiff.jacobian_trace, losses.ism_loss, autodiff.hutchinson_trace),
    points=2,
    cases=_trace_cases,
    description="Check ``exact_trace(score_fn, x)`` against :func:`lessons_lib.autodiff.jacobian_trace` on "
                "linear and MLP score models in 1 to 5 dimensions, and that the gradient of the traces with "
                "respect to the model's parameters is the reference's (exercise 2 trains through it).",
    random_hint="the exact trace is deterministic; compute Σᵢ ∂sᵢ/∂xᵢ, not a random estimate",
    precheck=_trace_keeps_graph,
    mistakes=[
        Mistake("it sums every entry of the Jacobian; the trace sums only the diagonal ∂sᵢ/∂xᵢ",
                lambda f, x: _jacobian(f, x).sum((1, 2))),
        Mistake("it returns only ∂s₁/∂x₁, the first diagonal entry: loop over all d coordinates",
                lambda f, x: _jacobian(f, x)[:, 0, 0]),
        Mistake("it averages the diagonal over the d coordinates; the trace is their sum",
                lambda f, x: _jacobian(f, x).diagonal(dim1=1, dim2=2).mean(-1)),
        Mistake("wrong sign: the trace of the Jacobian of s, not of −s",
                lambda f, x: -_jacobian(f, x).diagonal(dim1=1, dim2=2).sum(-1)),
    ],
))


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
    reduce_hint="average the per-sample values tr ∇ₓs + ½‖s‖² over the batch (a mean)",
    random_hint="the exact trace is deterministic; compute Σᵢ ∂sᵢ/∂xᵢ, not a random estimate",
    grad_hint=DIFFERENTIATE_HINT,
    mistakes=[
        Mistake("the ½ in front of ‖s‖² is missing", _terms(lambda t, s: t + sum_event(s**2))),
        Mistake("the trace term has the wrong sign: it is + tr ∇ₓs", _terms(lambda t, s: -t + 0.5 * sum_event(s**2))),
        Mistake("the trace term tr ∇ₓs is missing", _terms(lambda t, s: 0.5 * sum_event(s**2))),
        Mistake("the ½‖s‖² term is missing", _terms(lambda t, s: t)),
        Mistake("the ½ is on the trace too: only ‖s‖² carries ½", _terms(lambda t, s: 0.5 * t + 0.5 * sum_event(s**2))),
        Mistake(
            "‖s‖² is averaged over the dimensions; it is a sum over them",
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


# --------------------------------------------------------------------------- ISM for an energy
def ebm_reference(energy_fn, x):
    return losses.ism_loss(score_from_energy(energy_fn), x)


def _energy_case(seed: int, batch: int, dim: int) -> Case:
    def make(g: torch.Generator) -> tuple:
        return EnergyMLP(dim, hidden=16), torch.randn(batch, dim, generator=g)

    return Case(f"a small EnergyMLP, x of shape ({batch}, {dim})", seeded(seed, make))


def _ebm_cases() -> list[Case]:
    return [_energy_case(40, 6, 1), _energy_case(41, 5, 2), _energy_case(42, 7, 3)]


def _ebm_terms(combine: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    """A wrong EBM ISM: ``combine(laplacian, ∇E)`` per sample, averaged over the batch."""

    def wrong(energy_fn, x):
        x_in = x.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(energy_fn(x_in).sum(), x_in, create_graph=True)
            lap = sum(torch.autograd.grad(grad[:, i].sum(), x_in, create_graph=True)[0][:, i]
                      for i in range(x.shape[1]))
        return combine(lap, grad).mean()

    return wrong


EBM_ISM_LOSS = register(Exercise(
    name="ebm_ism_loss",
    lesson="02_explicit_implicit_score_matching",
    signature="(energy_fn, x)",
    summary="ISM of an energy-based model: mean of −ΔE + ½‖∇ₓE‖², exact Laplacian",
    formula="J_ISM = mean over the batch of [ −ΔE(x) + ½‖∇ₓE(x)‖² ], with ΔE = Σᵢ ∂²E/∂xᵢ² exactly",
    reference=ebm_reference,
    forbidden=(losses.ism_loss, autodiff.jacobian_trace, autodiff.score_from_energy, EnergyMLP.score),
    points=3,
    cases=_ebm_cases,
    description="Check ``ebm_ism_loss(energy_fn, x)`` against :func:`lessons_lib.losses.ism_loss` of "
                "−∇ₓE (value and gradient with respect to the energy's parameters) on small `EnergyMLP`s "
                "in 1 to 3 dimensions.",
    is_loss=True,
    reduce_hint="average the per-sample values −ΔE + ½‖∇E‖² over the batch (a mean)",
    random_hint="the exact Laplacian is deterministic; compute Σᵢ ∂²E/∂xᵢ², not a random estimate",
    grad_hint=DIFFERENTIATE_HINT + "; both differentiations with respect to x need it",
    error_hint=lambda message: (
        "the gradient ∇ₓE must itself be differentiated (for the Laplacian): compute it with "
        "create_graph=True" if "does not require grad" in message else ""
    ),
    mistakes=[
        Mistake("the Laplacian has the wrong sign: s = −∇E, so tr ∇ₓs = −ΔE",
                _ebm_terms(lambda lap, g: lap + 0.5 * sum_event(g**2))),
        Mistake("the ½ in front of ‖∇E‖² is missing", _ebm_terms(lambda lap, g: -lap + sum_event(g**2))),
        Mistake("the Laplacian term is missing", _ebm_terms(lambda lap, g: 0.5 * sum_event(g**2))),
        Mistake("the ½‖∇E‖² term is missing", _ebm_terms(lambda lap, g: -lap)),
        Mistake("‖∇E‖² is averaged over the dimensions; it is a sum over them",
                _ebm_terms(lambda lap, g: -lap + 0.5 * mean_event(g**2))),
        *loss_reduction_mistakes(ebm_reference),
    ],
))


ISM_UNBOUNDED = register(Written(
    name="ism_unbounded", lesson="02_explicit_implicit_score_matching",
    summary="why the ISM of a flexible model on a finite data set has no lower bound", points=3))
