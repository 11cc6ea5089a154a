r"""Exercise checks: compare a student's function with the library's reference and say what is wrong.

Each ``check_<exercise>(fn)`` calls ``fn`` on a few seeded test cases (different dimensions,
batch sizes, noise levels, images where cheap), compares the result with the reference built
from the library (:mod:`lessons_lib.densities`, :mod:`lessons_lib.losses`,
:func:`lessons_lib.samplers.langevin_step`), and

* prints ``✓ <exercise> matches the reference on N test cases`` when every case agrees;
* prints ``○ <exercise>: not attempted yet ...`` when ``fn`` still raises
  ``NotImplementedError`` (so the rest of the notebook still runs), unless the notebook is being
  graded: then that is a failure too. Grading is on when nbgrader runs the notebook (it sets
  ``NBGRADER_EXECUTION`` to ``autograde`` or ``validate`` in the kernel's environment) or when
  ``LESSONS_LIB_GRADING=1``. Both are read from the environment the kernel *started* with as
  well as from ``os.environ``, and once on, grading stays on: a student's code cannot switch it
  off by changing ``os.environ``;
* fails with "not your own work: calls lessons_lib.<name>" when ``fn`` reaches the library's
  own implementation of the exercise, however it gets there (an import inside the function, an
  alias, ``getattr``, a lambda, the reference passed in directly): every call of ``fn`` runs
  under a profiler hook that watches for the code objects listed in :data:`OWN_WORK`;
* otherwise raises ``AssertionError`` with a diagnosis. The diagnosis comes from comparing the
  student's output with *known wrong answers* computed on the same inputs (the sign flipped,
  a factor 2 or σ² too many, the ½ missing, the sum instead of the mean over the batch, the
  noise without √2, ...) and from checking the shape, the type, that the result does not
  change between two calls on the same inputs, and, for losses, that the gradient reaches the
  model's parameters (``.grad`` compared with the reference's on a small model).

A wrong answer is named only when it explains *every* failing test case; otherwise the
message shows the numbers and the formula to aim for.

The exercises and their signatures (the reference of each is in :data:`REFERENCES`):

==========================  =================================================================
``gaussian_score``          ``(x, mean, cov)``: x (B, d) → −(x − μ)Σ⁻¹, shape (B, d)
``ism_loss``                ``(score_fn, x)`` → mean over the batch of tr ∇ₓs + ½‖s‖²
``ssm_loss``                ``(score_fn, x, v)``, v (M, *x.shape) → mean of vᵀ∇ₓs v + ½(vᵀs)²
``dsm_loss``                ``(score_fn, x, sigma, z)`` → ½ mean ‖s(x + σz) + z/σ‖²
``langevin_step``           ``(x, score, step_size, z)`` → x + ε·score + √(2ε)·z
``ncsn_loss``               ``(score_fn, x, sigma, z)``, sigma (B,) → ½ mean ‖σ·s(x + σz, σ) + z‖²
``reverse_sde_step``        ``(x, score, g, dt, z)`` → x + g²·score·dt + g·√dt·z (t → t − dt)
``probability_flow_step``   ``(x, score, g, dt)`` → x + ½·g²·score·dt (t → t − dt)
``annealed_langevin``       ``(score_fn, x, sigmas, step_lr, noise)``, noise (L, T, *x.shape) →
                            x after T steps x + εᵢ·s(x, σᵢ) + √(2εᵢ)·noise[i, t] at each level,
                            σ₁ first, εᵢ = step_lr·σᵢ²/σ_L²
==========================  =================================================================
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from . import autodiff, losses, samplers, sde
from .losses import _sum_event
from .autodiff import jacobian_trace, projected_jacobian, sample_projections
from .densities import Gaussian, GaussianMixture
from .nets import LinearScore, ScoreMLP
from .noise import geometric_sigmas, sigma_like
from .samplers import langevin_step
from .sde import probability_flow_step, reverse_sde_step

__all__ = [
    "check_gaussian_score",
    "check_ism_loss",
    "check_ssm_loss",
    "check_dsm_loss",
    "check_langevin_step",
    "check_ncsn_loss",
    "check_reverse_sde_step",
    "check_probability_flow_step",
    "check_annealed_langevin",
    "REFERENCES",
    "OWN_WORK",
]

Tensor = torch.Tensor

# Set to 1 to grade without nbgrader (nbgrader's own NBGRADER_EXECUTION is enough with it): a
# check whose exercise still raises NotImplementedError then fails instead of printing
# "not attempted yet".
GRADING_ENV = "LESSONS_LIB_GRADING"
NBGRADER_ENV = "NBGRADER_EXECUTION"

# Agreement with the reference (float32 inputs; the student may sum in another order).
RTOL, ATOL = 1e-4, 1e-5
# Agreement with a known wrong answer.
MISTAKE_RTOL, MISTAKE_ATOL = 1e-3, 1e-4


# --------------------------------------------------------------------------- the references
def _ref_gaussian_score(x, mean, cov):
    return Gaussian(mean, cov).score(x)


def _ref_ism_loss(score_fn, x):
    return losses.ism_loss(score_fn, x)


def _ref_ssm_loss(score_fn, x, v):
    return losses.ssm_loss(score_fn, x, v=v)


def _ref_dsm_loss(score_fn, x, sigma, z):
    return losses.dsm_loss(score_fn, x, sigma, z=z)


def _ref_ncsn_loss(score_fn, x, sigma, z):
    return losses.ncsn_loss_at(score_fn, x, sigma, z=z)


def _ref_annealed_langevin(score_fn, x, sigmas, step_lr, noise):
    """Annealed Langevin (Song & Ermon 2019) with the noise given: level i = 0, 1, ... (largest σ
    first), step t: x ← x + εᵢ·s(x, σᵢ) + √(2εᵢ)·noise[i, t], εᵢ = step_lr·σᵢ²/σ_L²."""
    sig = [float(s) for s in sigmas]
    for i, sigma in enumerate(sig):
        eps = step_lr * (sigma / sig[-1]) ** 2
        for t in range(noise.shape[1]):
            x = langevin_step(x, score_fn(x, sigma), eps, noise[i, t])
    return x


REFERENCES: dict[str, Callable] = {
    "gaussian_score": _ref_gaussian_score,
    "ism_loss": _ref_ism_loss,
    "ssm_loss": _ref_ssm_loss,
    "dsm_loss": _ref_dsm_loss,
    "langevin_step": langevin_step,
    "ncsn_loss": _ref_ncsn_loss,
    "reverse_sde_step": reverse_sde_step,
    "probability_flow_step": probability_flow_step,
    "annealed_langevin": _ref_annealed_langevin,
}
"""The reference solution of each exercise, with the exercise's signature, built on the library."""

OWN_WORK: dict[str, tuple[Callable, ...]] = {
    "gaussian_score": (Gaussian.score, GaussianMixture.score),
    "ism_loss": (losses.ism_loss, autodiff.jacobian_trace),
    "ssm_loss": (losses.ssm_loss, losses.ssm_vr_loss, autodiff.projected_jacobian, autodiff.hutchinson_trace),
    "dsm_loss": (losses.dsm_loss, losses.ncsn_loss, losses.ncsn_loss_at),
    "langevin_step": (samplers.langevin_step,),
    "ncsn_loss": (losses.ncsn_loss, losses.ncsn_loss_at, losses.dsm_loss),
    "reverse_sde_step": (sde.reverse_sde_step, sde.reverse_sde_sample, sde.pc_sample),
    "probability_flow_step": (sde.probability_flow_step, sde.ode_sample, sde.ode_encode),
    "annealed_langevin": (samplers.annealed_langevin, samplers.annealed_inpainting),
}
"""For each exercise, the library functions that *are* its answer (or contain it): an answer that
calls one of them, directly or not, is not the student's own work (nor one that calls the
exercise's entry in :data:`REFERENCES`). The building blocks a lesson teaches before the
exercise (autograd, a score model, the Gaussian's log-density, the single Langevin step inside
the annealed sampler) stay free."""


# --------------------------------------------------------------------------- the machinery
@dataclass(frozen=True)
class _Case:
    """One test case: ``build()`` returns fresh arguments (same seed, same values) every call."""

    label: str
    build: Callable[[], tuple]


@dataclass(frozen=True)
class _Mistake:
    """A typical wrong answer: ``wrong(*args)`` is what it returns; ``message`` explains it."""

    message: str
    wrong: Callable[..., Tensor]


@dataclass(frozen=True)
class _Exercise:
    """An exercise: its reference (in REFERENCES under ``name``), test cases, known mistakes,
    and the hints its messages use."""

    name: str
    formula: str
    cases: Callable[[], list[_Case]]
    mistakes: Sequence[_Mistake]
    is_loss: bool = False
    reduce_hint: str = ""
    random_hint: str = "use the inputs you are given and do not draw new random numbers"
    error_hint: Callable[[str], str] = lambda message: ""
    grad_hint: str = ""

    @property
    def reference(self) -> Callable:
        return REFERENCES[self.name]


def _seeded(seed: int, make: Callable[[torch.Generator], tuple]) -> Callable[[], tuple]:
    """``make(generator)`` run with everything random seeded (model weights included) and the
    caller's global random state left untouched."""

    def build() -> tuple:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return make(torch.Generator().manual_seed(seed))

    return build


def _shape(t) -> str:
    return str(tuple(t.shape)) if isinstance(t, Tensor) else type(t).__name__


def _describe(t: Tensor) -> str:
    """A short rendering of a value for a message: a scalar, or the first row."""
    t = t.detach().double()
    if t.dim() == 0:
        return f"{t.item():.6g}"
    row = t.reshape(t.shape[0], -1)[0]
    vals = ", ".join(f"{v:.4g}" for v in row[:4].tolist()) + (", ..." if row.numel() > 4 else "")
    return f"first row [{vals}]"


def _close(a: Tensor, b: Tensor, rtol: float = RTOL, atol: float = ATOL) -> bool:
    a, b = a.detach().double(), b.detach().double()
    return a.shape == b.shape and bool(torch.isfinite(a).all()) and torch.allclose(a, b, rtol=rtol, atol=atol)


def _type_problem(ex: _Exercise, got) -> str | None:
    if isinstance(got, Tensor):
        return None
    if ex.is_loss and isinstance(got, (int, float)):
        return (
            f"it returned a Python {type(got).__name__}, not a torch tensor. Keep the loss a tensor "
            "(no .item(), no float(...)): training has to differentiate it"
        )
    if ex.is_loss:
        return f"it returned a {type(got).__name__}; a loss is a torch tensor holding one number"
    return f"it returned a {type(got).__name__}; return a torch.Tensor"


def _shape_problem(ex: _Exercise, got: Tensor, expected: Tensor) -> str | None:
    if got.shape == expected.shape:
        return None
    if ex.is_loss:
        return (
            f"it returned a tensor of shape {_shape(got)}; the loss is a single number (shape ()): "
            f"{ex.reduce_hint}"
        )
    if got.dim() == expected.dim() == 2 and got.shape == expected.shape[::-1]:
        return (
            f"it returned shape {_shape(got)}, expected {_shape(expected)}: it looks transposed "
            "(batch first: one row per point)"
        )
    if got.shape == expected.shape[:1]:
        return (
            f"it returned one number per point (shape {_shape(got)}); the result is a vector per "
            f"point, shape {_shape(expected)}"
        )
    return f"it returned shape {_shape(got)}, expected {_shape(expected)}"


class NotOwnWorkError(AssertionError):
    """The answer calls the library's own implementation of the exercise."""


def _qualified(code) -> str:
    functions = [*REFERENCES.values(), *(f for fns in OWN_WORK.values() for f in fns)]
    module = {f.__code__: f.__module__ for f in functions}.get(code, "lessons_lib")
    return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"


def _guarded_call(ex: _Exercise, fn: Callable, args: tuple):
    """``fn(*args)`` under a profiler hook that records any call of the exercise's library
    implementation (:data:`OWN_WORK`); such a call, or an answer that removes the hook, fails."""
    __tracebackhide__ = True
    own = {f.__code__ for f in OWN_WORK.get(ex.name, ())}
    watched = own | {REFERENCES[ex.name].__code__}
    seen: list = []

    def hook(frame, event, arg):
        if event == "call" and frame.f_code in watched:
            seen.append(frame.f_code)

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        result = fn(*args)
    finally:
        removed = sys.getprofile() is not hook
        sys.setprofile(previous)
        if seen or removed:
            # name the library function rather than the check's own wrapper around it
            named = next((code for code in seen if code in own), seen[0]) if seen else None
            what = f"calls {_qualified(named)}" if seen else "it switched off the check's call tracing (sys.setprofile)"
            raise NotOwnWorkError(
                f"{ex.name}: not your own work: {what}, the library's implementation of this "
                "exercise. Write the computation yourself from the formula "
                f"({ex.formula}); the check compares it with that implementation."
            )
    return result


def _call(ex: _Exercise, fn: Callable, case: _Case):
    """``(result, args)`` of ``fn`` on fresh inputs of the case; ``None`` while ``fn`` still
    raises NotImplementedError. Any other error becomes an AssertionError naming the case; a
    call of the library's implementation of the exercise raises :class:`NotOwnWorkError`."""
    __tracebackhide__ = True
    args = case.build()
    try:
        return _guarded_call(ex, fn, args), args
    except NotImplementedError:
        return None
    except NotOwnWorkError:
        raise
    except Exception as err:  # the student's code failed: say where, keep the traceback
        hint = ex.error_hint(str(err))
        raise AssertionError(
            f"{ex.name} raised {type(err).__name__}: {err}\n  test case: {case.label}"
            + (f"\n  Hint: {hint}" if hint else "")
        ) from err


def _fail(ex: _Exercise, case: _Case, problem: str, got=None, expected=None) -> AssertionError:
    lines = [f"{ex.name} is not right yet: {problem}.", f"  test case: {case.label}"]
    if isinstance(got, Tensor) and isinstance(expected, Tensor) and got.shape == expected.shape:
        lines.append(f"  got      {_describe(got)}")
        lines.append(f"  expected {_describe(expected)}")
    lines.append(f"  The exercise asks for {ex.formula}.")
    return AssertionError("\n".join(lines))


def _explains(mistake: _Mistake, case: _Case, got: Tensor) -> bool:
    """Does the wrong answer ``mistake`` give the student's result on this case?"""
    try:
        wrong = mistake.wrong(*case.build())
    except RuntimeError:  # a wrong answer that cannot even be computed here explains nothing
        return False
    return _close(got, wrong, MISTAKE_RTOL, MISTAKE_ATOL)


def _diagnose_values(ex: _Exercise, fn: Callable, failing: list[tuple[_Case, Tensor]]) -> str:
    """Name the known wrong answer that explains every failing case, else describe the gap."""
    for mistake in ex.mistakes:
        if all(_explains(mistake, case, got) for case, got in failing):
            return mistake.message
    case, got = failing[0]
    if not torch.isfinite(got.detach()).all():
        return "it returned NaN or infinite values"
    again, _ = _call(ex, fn, case)
    if isinstance(again, Tensor) and not _close(again, got, 1e-6, 1e-7):
        return f"it returns different values for the same inputs: {ex.random_hint}"
    expected = ex.reference(*case.build())
    if got.dim() == 0 and expected.abs() > 0:
        return f"its value differs from the reference (ratio got/expected = {got.item() / expected.item():.4g})"
    return "its values differ from the reference"


def _gradient_problem(ex: _Exercise, got: Tensor, args: tuple, case: _Case) -> str | None:
    """A loss must carry the reference's gradient to the parameters of the model ``args[0]``."""
    detached = (
        "the loss is detached: no gradient reaches the model's parameters, so training could not "
        "learn from it. Do not use .item(), .detach(), .numpy() or torch.no_grad() on the way"
    )
    if not got.requires_grad:
        return detached
    got_grads = torch.autograd.grad(got, list(args[0].parameters()), allow_unused=True)
    if all(g is None for g in got_grads):
        return detached
    ref_args = case.build()
    ref_grads = torch.autograd.grad(ex.reference(*ref_args), list(ref_args[0].parameters()), allow_unused=True)
    for g, r in zip(got_grads, ref_grads):
        if (g is None) != (r is None) or (g is not None and not _close(g, r, 1e-3, 1e-5)):
            return "the value is right but its gradient with respect to the model's parameters is not: " + (
                ex.grad_hint or "part of the computation is detached (.detach(), .data, torch.no_grad())"
            )
    return None


def _initial_environment() -> dict[str, str]:
    """The environment this process started with (Linux: /proc/self/environ), which assignments
    to ``os.environ`` do not change; elsewhere an empty dict."""
    try:
        raw = open("/proc/self/environ", "rb").read()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _asks_for_grading(env) -> bool:
    explicit = env.get(GRADING_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return explicit or env.get(NBGRADER_ENV, "") in ("autograde", "validate")


_GRADING_SEEN = _asks_for_grading(os.environ) or _asks_for_grading(_initial_environment())


def _grading() -> bool:
    """Grading mode: an exercise not attempted fails its check. On when nbgrader runs the
    notebook (``NBGRADER_EXECUTION``) or with ``LESSONS_LIB_GRADING=1``, in the environment the
    kernel started with or at any check since; once on, it stays on."""
    global _GRADING_SEEN
    _GRADING_SEEN = _GRADING_SEEN or _asks_for_grading(os.environ)
    return _GRADING_SEEN


def _run(ex: _Exercise, fn: Callable) -> None:
    """Check ``fn`` on every case of the exercise: print success / not attempted, or raise."""
    __tracebackhide__ = True  # IPython and pytest show the student's cell, not this machinery
    cases = ex.cases()
    results = []
    for case in cases:
        called = _call(ex, fn, case)
        if called is None:
            if _grading():
                raise AssertionError(
                    f"{ex.name}: not attempted: it still raises NotImplementedError. Replace "
                    "`raise NotImplementedError` with your solution before you submit."
                )
            print(
                f"○ {ex.name}: not attempted yet (it still raises NotImplementedError). Replace "
                "`raise NotImplementedError` with your solution and run this cell again."
            )
            return
        got, args = called
        expected = ex.reference(*case.build())
        problem = _type_problem(ex, got) or _shape_problem(ex, got, expected)
        if problem:
            raise _fail(ex, case, problem)
        results.append((case, got, args, expected))
    failing = [(case, got) for case, got, _, expected in results if not _close(got, expected)]
    if failing:
        case, got = failing[0]
        expected = next(e for c, _, _, e in results if c is case)
        raise _fail(ex, case, _diagnose_values(ex, fn, failing), got, expected)
    if ex.is_loss:
        for case, got, args, _ in results:
            problem = _gradient_problem(ex, got, args, case)
            if problem:
                raise _fail(ex, case, problem)
    print(f"✓ {ex.name} matches the reference on {len(cases)} test cases")


# --------------------------------------------------------------------------- shared pieces
def _mean_event(t: Tensor) -> Tensor:
    """The mistake of averaging over the event dimensions instead of summing."""
    return t.flatten(1).mean(-1)


def _scaled(message: str, factor: Callable[..., float], name: str) -> _Mistake:
    """The reference times a factor computed from the inputs (2, ½, the batch size, σ², ...)."""
    return _Mistake(message, lambda *args: factor(*args) * REFERENCES[name](*args))


def _loss_reduction_mistakes(name: str, over: str = "the batch") -> list[_Mistake]:
    """Wrong factors every loss exercise can get: the ½, the batch reduction, the event sum."""
    return [
        _scaled("it is twice the reference: the ½ in front of the loss is missing", lambda *a: 2.0, name),
        _scaled("it is half the reference: a ½ too many", lambda *a: 0.5, name),
        _scaled(
            f"it is the sum over {over} instead of the mean: use .mean() over the batch, not .sum()",
            lambda score_fn, x, *rest: float(x.shape[0]),
            name,
        ),
        _scaled(
            "it is the reference divided by the number of entries per sample: you averaged over "
            "the dimensions of each sample. Sum over them (‖·‖² is a sum), average over the batch",
            lambda score_fn, x, *rest: 1.0 / x[0].numel(),
            name,
        ),
        _scaled("wrong sign: the loss is the negative of the reference", lambda *a: -1.0, name),
    ]


class _FlatScore(nn.Module):
    """A small σ-conditioned score model on images: a :class:`ScoreMLP` on the flattened pixels."""

    def __init__(self, shape: tuple[int, ...], hidden: int = 16):
        super().__init__()
        self.mlp = ScoreMLP(math.prod(shape), hidden=hidden, n_layers=1, sigma_conditioned=True)

    def forward(self, x: Tensor, sigma) -> Tensor:
        return self.mlp(x.flatten(1), sigma).view_as(x)


def _broadcast_hint(message: str) -> str:
    if "size of tensor" in message or "broadcast" in message:
        return (
            "sigma has shape (B,), one level per sample: reshape it so it broadcasts against x "
            "(e.g. sigma.view(-1, *[1] * (x.dim() - 1)) gives shape (B, 1, ...))"
        )
    return ""


_DIFFERENTIATE_HINT = (
    "when you differentiate with torch.autograd.grad, pass create_graph=True so that training "
    "can differentiate through the derivative (and do not .detach() it)"
)


# --------------------------------------------------------------------------- gaussian_score
def _gaussian_case(seed: int, batch: int, dim: int) -> _Case:
    def make(g: torch.Generator) -> tuple:
        a = torch.randn(dim, dim, generator=g)
        cov = a @ a.T / dim + 0.5 * torch.eye(dim)  # positive definite, correlated coordinates
        cov = (cov + cov.T) / 2  # exactly symmetric in floating point
        mean = torch.randn(dim, generator=g)
        x = mean + 1.5 * torch.randn(batch, dim, generator=g)
        return x, mean, cov

    return _Case(f"x of shape ({batch}, {dim}), mean of shape ({dim},), cov of shape ({dim}, {dim})", _seeded(seed, make))


def _gaussian_cases() -> list[_Case]:
    return [_gaussian_case(0, 5, 1), _gaussian_case(1, 7, 2), _gaussian_case(2, 4, 3), _gaussian_case(3, 6, 5)]


def _times(x: Tensor, mean: Tensor, matrix: Tensor) -> Tensor:
    """(x − μ) M for a batch of rows."""
    return (x - mean) @ matrix


_GAUSSIAN_SCORE = _Exercise(
    name="gaussian_score",
    formula="s(x) = ∇ₓ log N(x; μ, Σ) = −Σ⁻¹(x − μ) for every row x of the batch, shape (B, d)",
    cases=_gaussian_cases,
    mistakes=[
        _scaled(
            "wrong sign: the score points towards the mean (uphill in log-density), "
            "s(x) = −Σ⁻¹(x − μ)",
            lambda *a: -1.0,
            "gaussian_score",
        ),
        _Mistake(
            "it multiplies by the covariance Σ; the score needs its inverse, the precision Σ⁻¹ "
            "(torch.linalg.inv(cov), or better torch.linalg.solve)",
            lambda x, mean, cov: -_times(x, mean, cov),
        ),
        _Mistake(
            "wrong sign, and it multiplies by Σ instead of Σ⁻¹: s(x) = −Σ⁻¹(x − μ)",
            lambda x, mean, cov: _times(x, mean, cov),
        ),
        _Mistake(
            "the mean is not subtracted: use x − μ",
            lambda x, mean, cov: -x @ torch.linalg.inv(cov),
        ),
        _Mistake(
            "it divides by the variances (the diagonal of Σ) only; these covariances have "
            "off-diagonal terms (correlated coordinates): use the full inverse Σ⁻¹",
            lambda x, mean, cov: -(x - mean) / torch.diagonal(cov),
        ),
        _Mistake(
            "it divides by the standard deviations: the score of N(μ, σ²) is −(x − μ)/σ², "
            "the inverse of the covariance, not of its square root",
            lambda x, mean, cov: -_times(x, mean, torch.linalg.inv(torch.linalg.cholesky(cov)).T),
        ),
        _scaled(
            "it is twice the score: the ½ in log p = −½(x − μ)ᵀΣ⁻¹(x − μ) + const cancels the 2 "
            "from differentiating the quadratic form",
            lambda *a: 2.0,
            "gaussian_score",
        ),
        _scaled(
            "it is half the score: differentiating −½(x − μ)ᵀΣ⁻¹(x − μ) gives −Σ⁻¹(x − μ), "
            "the ½ cancels",
            lambda *a: 0.5,
            "gaussian_score",
        ),
    ],
)


def check_gaussian_score(gaussian_score: Callable) -> None:
    """Check ``gaussian_score(x, mean, cov)`` = −(x − μ)Σ⁻¹ against
    :meth:`lessons_lib.densities.Gaussian.score` on 1-, 2-, 3- and 5-dimensional Gaussians with
    correlated covariances."""
    __tracebackhide__ = True
    _run(_GAUSSIAN_SCORE, gaussian_score)


# --------------------------------------------------------------------------- ism_loss and ssm_loss
def _points_case(seed: int, batch: int, dim: int, model: str, n_projections: int = 0, kind: str = "rademacher") -> _Case:
    """A batch of points and a small score model; with ``n_projections`` also projections v."""

    def make(g: torch.Generator) -> tuple:
        score_fn = LinearScore(dim) if model == "linear" else ScoreMLP(dim, hidden=16)
        if model == "linear":
            with torch.no_grad():
                score_fn.A.add_(0.3 * torch.randn(dim, dim, generator=g))
                score_fn.b.add_(0.3 * torch.randn(dim, generator=g))
        x = torch.randn(batch, dim, generator=g)
        if not n_projections:
            return score_fn, x
        return score_fn, x, sample_projections((n_projections, batch, dim), kind, g)

    label = f"a {'linear' if model == 'linear' else 'small MLP'} score model, x of shape ({batch}, {dim})"
    if n_projections:
        label += f", v of shape ({n_projections}, {batch}, {dim}) ({kind})"
    return _Case(label, _seeded(seed, make))


def _ism_cases() -> list[_Case]:
    return [
        _points_case(10, 6, 2, "linear"),
        _points_case(11, 5, 1, "mlp"),
        _points_case(12, 8, 3, "mlp"),
        _points_case(13, 7, 4, "mlp"),
    ]


def _trace_and_score(score_fn, x):
    """Exact tr ∇ₓs per sample, shape (B,), and s(x)."""
    return jacobian_trace(score_fn, x, return_output=True)


def _ism_terms(combine: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
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
    return _sum_event(g)


_ISM_LOSS = _Exercise(
    name="ism_loss",
    formula="J_ISM = mean over the batch of [ tr ∇ₓs(x) + ½‖s(x)‖² ], with the exact trace Σᵢ ∂sᵢ/∂xᵢ",
    cases=_ism_cases,
    is_loss=True,
    reduce_hint="average the per-sample values tr ∇ₓs + ½‖s‖² over the batch with .mean()",
    random_hint="the exact trace is deterministic; compute Σᵢ ∂sᵢ/∂xᵢ, not a random estimate",
    grad_hint=_DIFFERENTIATE_HINT,
    mistakes=[
        _Mistake("the ½ in front of ‖s‖² is missing", _ism_terms(lambda t, s: t + _sum_event(s**2))),
        _Mistake(
            "the trace term has the wrong sign: it is + tr ∇ₓs",
            _ism_terms(lambda t, s: -t + 0.5 * _sum_event(s**2)),
        ),
        _Mistake("the trace term tr ∇ₓs is missing", _ism_terms(lambda t, s: 0.5 * _sum_event(s**2))),
        _Mistake("the ½‖s‖² term is missing", _ism_terms(lambda t, s: t)),
        _Mistake(
            "the ½ is on the trace too: only ‖s‖² carries ½",
            _ism_terms(lambda t, s: 0.5 * t + 0.5 * _sum_event(s**2)),
        ),
        _Mistake(
            "‖s‖² is averaged over the dimensions; it is a sum over them: (s**2).sum(dim=-1)",
            _ism_terms(lambda t, s: t + 0.5 * _mean_event(s**2)),
        ),
        _Mistake(
            "the 'trace' sums every entry of the Jacobian; the trace sums only the diagonal "
            "∂sᵢ/∂xᵢ (differentiate each output sᵢ with respect to its own input xᵢ)",
            lambda score_fn, x: (
                _sum_of_jacobian(score_fn, x) + 0.5 * _sum_event(_trace_and_score(score_fn, x)[1] ** 2)
            ).mean(),
        ),
        *_loss_reduction_mistakes("ism_loss"),
    ],
)


def check_ism_loss(ism_loss: Callable) -> None:
    """Check ``ism_loss(score_fn, x)`` against :func:`lessons_lib.losses.ism_loss` (value and
    gradient with respect to the model's parameters) on linear and MLP score models in 1 to 4
    dimensions."""
    __tracebackhide__ = True
    _run(_ISM_LOSS, ism_loss)


def _ssm_cases() -> list[_Case]:
    return [
        _points_case(20, 6, 2, "linear", 3),
        _points_case(21, 5, 1, "mlp", 2),
        _points_case(22, 7, 3, "mlp", 4, "gaussian"),
        _points_case(23, 8, 4, "mlp", 1),
    ]


def _ssm_terms(combine: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    """A wrong SSM: ``combine(vJv, v·s, s, v)`` (shapes (M, B), (M, B), (B, d), (M, B, d))."""

    def wrong(score_fn, x, v):
        x_in = x.detach().requires_grad_(True)
        with torch.enable_grad():
            s = score_fn(x_in)
            vjv = torch.stack([projected_jacobian(s, x_in, v_m) for v_m in v])
        vs = torch.stack([_sum_event(v_m * s) for v_m in v])
        return combine(vjv, vs, s, v)

    return wrong


_SSM_LOSS = _Exercise(
    name="ssm_loss",
    formula=(
        "J_SSM = mean over the M projections and the batch of [ vᵀ∇ₓs(x) v + ½(vᵀs(x))² ], "
        "with the projections v you are given"
    ),
    cases=_ssm_cases,
    is_loss=True,
    reduce_hint="average over the projections and the batch (e.g. .mean() of an (M, B) tensor)",
    random_hint="use the projections v you are given; do not draw new ones",
    grad_hint=_DIFFERENTIATE_HINT,
    mistakes=[
        _Mistake("the ½ in front of (vᵀs)² is missing", _ssm_terms(lambda a, b, s, v: (a + b**2).mean())),
        _Mistake(
            "the term vᵀ∇ₓs v has the wrong sign: it is + vᵀ∇ₓs v",
            _ssm_terms(lambda a, b, s, v: (-a + 0.5 * b**2).mean()),
        ),
        _Mistake("the term vᵀ∇ₓs v is missing", _ssm_terms(lambda a, b, s, v: (0.5 * b**2).mean())),
        _Mistake("the term ½(vᵀs)² is missing", _ssm_terms(lambda a, b, s, v: a.mean())),
        _Mistake(
            "it uses ½‖s‖² instead of ½(vᵀs)²: that is the variance-reduced SSM-VR; this "
            "exercise asks for plain SSM",
            _ssm_terms(lambda a, b, s, v: a.mean() + 0.5 * _sum_event(s**2).mean()),
        ),
        _Mistake(
            "(vᵀs)² is the square of the dot product vᵀs = Σᵢ vᵢsᵢ, not the sum of squares Σᵢ (vᵢsᵢ)²",
            _ssm_terms(lambda a, b, s, v: (a + 0.5 * (v * s).pow(2).flatten(2).sum(-1)).mean()),
        ),
        _Mistake(
            "it uses only the first projection v[0]; average over all M projections",
            _ssm_terms(lambda a, b, s, v: (a[0] + 0.5 * b[0] ** 2).mean()),
        ),
        _Mistake(
            "it is the exact-trace ISM loss: the point of SSM is to replace tr ∇ₓs by vᵀ∇ₓs v",
            lambda score_fn, x, v: losses.ism_loss(score_fn, x),
        ),
        _scaled(
            "it is the sum over the projections instead of the mean: divide by M",
            lambda score_fn, x, v: float(v.shape[0]),
            "ssm_loss",
        ),
        _scaled(
            "it is the sum over the projections and the batch instead of the mean",
            lambda score_fn, x, v: float(v.shape[0] * x.shape[0]),
            "ssm_loss",
        ),
        *_loss_reduction_mistakes("ssm_loss"),
    ],
)


def check_ssm_loss(ssm_loss: Callable) -> None:
    """Check ``ssm_loss(score_fn, x, v)`` against :func:`lessons_lib.losses.ssm_loss` with the
    same projections (value and gradient), with Rademacher and Gaussian projections."""
    __tracebackhide__ = True
    _run(_SSM_LOSS, ssm_loss)


# --------------------------------------------------------------------------- dsm_loss
def _dsm_case(seed: int, batch: int, dim: int, sigma: float) -> _Case:
    def make(g: torch.Generator) -> tuple:
        return ScoreMLP(dim, hidden=16), torch.randn(batch, dim, generator=g), sigma, torch.randn(batch, dim, generator=g)

    return _Case(f"a small MLP score model, x and z of shape ({batch}, {dim}), sigma = {sigma}", _seeded(seed, make))


def _dsm_cases() -> list[_Case]:
    return [_dsm_case(30, 6, 2, 0.3), _dsm_case(31, 5, 1, 1.5), _dsm_case(32, 8, 3, 0.7)]


def _dsm_like(noisy: Callable, target: Callable) -> Callable[..., Tensor]:
    """A wrong DSM: ½ mean ‖s(noisy(x, σ, z)) + target(z, σ)‖²."""
    return lambda score_fn, x, sigma, z: (0.5 * _sum_event((score_fn(noisy(x, sigma, z)) + target(z, sigma)) ** 2)).mean()


def _x_tilde(x, sigma, z):
    return x + sigma * z


_DSM_LOSS = _Exercise(
    name="dsm_loss",
    formula="J_DSM = ½ · mean over the batch of ‖s(x + σz) + z/σ‖² (summed over dimensions), with the z you are given",
    cases=_dsm_cases,
    is_loss=True,
    reduce_hint="sum the squares over the dimensions of each sample, then average over the batch",
    random_hint="use the noise z you are given; do not draw new noise with torch.randn",
    mistakes=[
        _Mistake(
            "wrong sign on the target: the score of N(x, σ²I) at x̃ = x + σz is −z/σ, so the "
            "loss is ½‖s(x̃) + z/σ‖²",
            _dsm_like(_x_tilde, lambda z, sigma: -z / sigma),
        ),
        _Mistake(
            "it uses z instead of z/σ: the score of N(x, σ²I) at x̃ = x + σz is −(x̃ − x)/σ² = −z/σ",
            _dsm_like(_x_tilde, lambda z, sigma: z),
        ),
        _Mistake(
            "it uses z/σ² instead of z/σ: (x̃ − x)/σ² = σz/σ² = z/σ",
            _dsm_like(_x_tilde, lambda z, sigma: z / sigma**2),
        ),
        _Mistake(
            "the model is evaluated at the clean x; evaluate it at the noisy point x̃ = x + σz",
            _dsm_like(lambda x, sigma, z: x, lambda z, sigma: z / sigma),
        ),
        _Mistake(
            "the noisy point is x̃ = x + σz, not x + z",
            _dsm_like(lambda x, sigma, z: x + z, lambda z, sigma: z / sigma),
        ),
        _scaled(
            "it is σ² times the reference: the σ² weighting belongs to the NCSN loss, plain DSM at "
            "one σ has none",
            lambda score_fn, x, sigma, z: sigma**2,
            "dsm_loss",
        ),
        *_loss_reduction_mistakes("dsm_loss"),
    ],
)


def check_dsm_loss(dsm_loss: Callable) -> None:
    """Check ``dsm_loss(score_fn, x, sigma, z)`` against :func:`lessons_lib.losses.dsm_loss`
    with the same noise (value and gradient) at σ = 0.3, 1.5, 0.7."""
    __tracebackhide__ = True
    _run(_DSM_LOSS, dsm_loss)


# --------------------------------------------------------------------------- langevin_step
def _langevin_case(seed: int, shape: tuple[int, ...], step_size: float) -> _Case:
    def make(g: torch.Generator) -> tuple:
        x = torch.randn(shape, generator=g)
        return x, -x + 0.5 * torch.randn(shape, generator=g), step_size, torch.randn(shape, generator=g)

    return _Case(f"x, score and z of shape {shape}, step_size = {step_size}", _seeded(seed, make))


def _langevin_cases() -> list[_Case]:
    return [
        _langevin_case(40, (6, 2), 0.1),
        _langevin_case(41, (5, 1), 0.01),
        _langevin_case(42, (3, 1, 28, 28), 0.2),
    ]


def _step(score_factor: Callable[[float], float], noise_factor: Callable[[float], float], keep_x: bool = True):
    """A wrong step x + a(ε)·score + b(ε)·z (without x when ``keep_x`` is False)."""
    return lambda x, score, eps, z: keep_x * x + score_factor(eps) * score + noise_factor(eps) * z


def _sqrt2(eps: float) -> float:
    return math.sqrt(2 * eps)


_LANGEVIN_STEP = _Exercise(
    name="langevin_step",
    formula="x + ε·score + √(2ε)·z with the z you are given (the course's Langevin convention)",
    cases=_langevin_cases,
    random_hint="use the noise z you are given; do not draw new noise with torch.randn",
    mistakes=[
        _Mistake(
            "the noise term is √ε·z: it must be √(2ε)·z (the √2 is missing)",
            _step(lambda e: e, math.sqrt),
        ),
        _Mistake(
            "this is the x + (ε/2)·score + √ε·z convention (Song & Ermon's Algorithm 1 with α = ε); "
            "this course uses x + ε·score + √(2ε)·z",
            _step(lambda e: e / 2, math.sqrt),
        ),
        _Mistake(
            "the noise is scaled by ε: it must be √(2ε)·z (noise grows like the square root of the step)",
            _step(lambda e: e, lambda e: e),
        ),
        _Mistake("the noise is scaled by 2ε: take the square root, √(2ε)·z", _step(lambda e: e, lambda e: 2 * e)),
        _Mistake(
            "wrong sign on the score term: Langevin moves uphill in log-density, x + ε·score",
            _step(lambda e: -e, _sqrt2),
        ),
        _Mistake(
            "the noise is subtracted: add √(2ε)·z with the z you are given",
            _step(lambda e: e, lambda e: -_sqrt2(e)),
        ),
        _Mistake("the noise term √(2ε)·z is missing", _step(lambda e: e, lambda e: 0.0)),
        _Mistake("the score term ε·score is missing", _step(lambda e: 0.0, _sqrt2)),
        _Mistake("the score is not multiplied by the step size ε", _step(lambda e: 1.0, _sqrt2)),
        _Mistake(
            "it returns the increment ε·score + √(2ε)·z; return the new point x + ε·score + √(2ε)·z",
            _step(lambda e: e, _sqrt2, keep_x=False),
        ),
    ],
)


def check_langevin_step(langevin_step: Callable) -> None:
    """Check ``langevin_step(x, score, step_size, z)`` against
    :func:`lessons_lib.samplers.langevin_step` on points and on a batch of 28×28 images."""
    __tracebackhide__ = True
    _run(_LANGEVIN_STEP, langevin_step)


# --------------------------------------------------------------------------- ncsn_loss
def _ncsn_case(seed: int, shape: tuple[int, ...]) -> _Case:
    schedule = geometric_sigmas(5.0, 0.1, 6)

    def make(g: torch.Generator) -> tuple:
        model = ScoreMLP(shape[1], hidden=16, sigma_conditioned=True) if len(shape) == 2 else _FlatScore(shape[1:])
        x = torch.randn(shape, generator=g)
        sigma = schedule[torch.randint(0, len(schedule), (shape[0],), generator=g)]
        return model, x, sigma, torch.randn(shape, generator=g)

    what = "points" if len(shape) == 2 else "images"
    return _Case(
        f"a small σ-conditioned score model on {what}, x and z of shape {shape}, sigma of shape ({shape[0]},) "
        "with levels between 0.1 and 5",
        _seeded(seed, make),
    )


def _ncsn_cases() -> list[_Case]:
    return [_ncsn_case(50, (6, 2)), _ncsn_case(51, (5, 3)), _ncsn_case(52, (4, 1, 28, 28))]


def _ncsn_like(weight: Callable, noisy: Callable, target: Callable, score_sigma: Callable = lambda s: s):
    """A wrong NCSN loss: ½ mean ‖weight(σ)·s(noisy(x, σ, z), σ') + target(z, σ)‖²."""

    def wrong(score_fn, x, sigma, z):
        s_b = sigma_like(sigma, x)
        s = score_fn(noisy(x, s_b, z), score_sigma(sigma))
        return (0.5 * _sum_event((weight(s_b) * s + target(z, s_b)) ** 2)).mean()

    return wrong


def _plus_z(z, sigma):
    return z


_NCSN_LOSS = _Exercise(
    name="ncsn_loss",
    formula=(
        "J_NCSN = ½ · mean over the batch of ‖σ·s(x + σz, σ) + z‖² (summed over dimensions), "
        "each sample with its own σ, score_fn(x_tilde, sigma)"
    ),
    cases=_ncsn_cases,
    is_loss=True,
    reduce_hint="sum the squares over the dimensions of each sample, then average over the batch",
    random_hint="use the noise z and the levels sigma you are given; do not draw new ones",
    error_hint=_broadcast_hint,
    mistakes=[
        _Mistake(
            "there is no σ² weighting: this is plain DSM ½‖s + z/σ‖²; the NCSN loss weights each "
            "level by σ², ½‖σ·s + z‖²",
            _ncsn_like(lambda s: 1.0, _x_tilde, lambda z, s: z / s),
        ),
        _Mistake(
            "wrong sign: the loss is ½‖σ·s(x̃, σ) + z‖² (the target score is −z/σ)",
            _ncsn_like(lambda s: s, _x_tilde, lambda z, s: -z),
        ),
        _Mistake(
            "the score is multiplied by σ²; the σ² weight of ½‖s + z/σ‖² becomes ½‖σ·s + z‖²",
            _ncsn_like(lambda s: s**2, _x_tilde, _plus_z),
        ),
        _Mistake(
            "it is weighted by σ instead of σ²: ½σ‖s + z/σ‖²",
            lambda score_fn, x, sigma, z: (
                0.5 * sigma * _sum_event((score_fn(x + sigma_like(sigma, x) * z, sigma) + z / sigma_like(sigma, x)) ** 2)
            ).mean(),
        ),
        _Mistake(
            "the model is evaluated at the clean x; evaluate it at the noisy point x̃ = x + σz",
            _ncsn_like(lambda s: s, lambda x, s, z: x, _plus_z),
        ),
        _Mistake(
            "the noisy point is x̃ = x + σz, not x + z",
            _ncsn_like(lambda s: s, lambda x, s, z: x + z, _plus_z),
        ),
        _Mistake(
            "every sample uses the first level sigma[0]; each sample has its own level sigma[i]",
            lambda score_fn, x, sigma, z: REFERENCES["ncsn_loss"](score_fn, x, sigma[:1].expand_as(sigma), z),
        ),
        *_loss_reduction_mistakes("ncsn_loss"),
    ],
)


def check_ncsn_loss(ncsn_loss: Callable) -> None:
    """Check ``ncsn_loss(score_fn, x, sigma, z)`` against :func:`lessons_lib.losses.ncsn_loss_at`
    with the same levels and noise (value and gradient), on points and on 28×28 images."""
    __tracebackhide__ = True
    _run(_NCSN_LOSS, ncsn_loss)


# --------------------------------------------------------------------------- reverse_sde_step, probability_flow_step
def _sde_step_case(seed: int, shape: tuple[int, ...], g: float, dt: float, noise: bool) -> _Case:
    def make(gen: torch.Generator) -> tuple:
        x = torch.randn(shape, generator=gen)
        score = -x + 0.5 * torch.randn(shape, generator=gen)
        z = torch.randn(shape, generator=gen)
        return (x, score, g, dt, z) if noise else (x, score, g, dt)

    what = "x, score and z" if noise else "x and score"
    return _Case(f"{what} of shape {shape}, g = {g}, dt = {dt}", _seeded(seed, make))


def _sde_step_cases(noise: bool) -> Callable[[], list[_Case]]:
    # g ≠ 1 and g ≠ 2, so that g, g² and ½g² are three different numbers in every case
    return lambda: [
        _sde_step_case(60, (6, 2), 2.5, 0.03, noise),
        _sde_step_case(61, (5, 1), 0.7, 0.1, noise),
        _sde_step_case(62, (3, 1, 28, 28), 4.0, 0.01, noise),
    ]


def _reverse(drift: Callable[[float, float], float], noise: Callable[[float, float], float], keep_x: bool = True):
    """A wrong reverse-SDE step x + drift(g, dt)·score + noise(g, dt)·z."""
    return lambda x, score, g, dt, z: keep_x * x + drift(g, dt) * score + noise(g, dt) * z


def _g2dt(g: float, dt: float) -> float:
    return g**2 * dt


def _g_sqrt_dt(g: float, dt: float) -> float:
    return g * math.sqrt(dt)


_REVERSE_SDE_STEP = _Exercise(
    name="reverse_sde_step",
    formula="x + g²·score·dt + g·√dt·z with the z you are given (reverse-time Euler–Maruyama, from t to t − dt)",
    cases=_sde_step_cases(noise=True),
    random_hint="use the noise z you are given; do not draw new noise with torch.randn",
    mistakes=[
        _Mistake(
            "wrong sign on the score term: going backwards in time the drift −g²∇log p·dt becomes "
            "+g²·score·dt (the step moves towards higher density)",
            _reverse(lambda g, dt: -_g2dt(g, dt), _g_sqrt_dt),
        ),
        _Mistake(
            "the score term has a ½: that is the probability-flow ODE's drift; the reverse SDE has "
            "g²·score·dt, twice as much, because its noise spreads the samples out again",
            _reverse(lambda g, dt: 0.5 * _g2dt(g, dt), _g_sqrt_dt),
        ),
        _Mistake("the score is multiplied by g; the drift is g²·score·dt", _reverse(lambda g, dt: g * dt, _g_sqrt_dt)),
        _Mistake(
            "the noise is multiplied by g²; the diffusion coefficient multiplies dW̄ once: g·√dt·z",
            _reverse(_g2dt, lambda g, dt: g**2 * math.sqrt(dt)),
        ),
        _Mistake(
            "the noise is not scaled by √dt: a Brownian increment over dt has standard deviation √dt",
            _reverse(_g2dt, lambda g, dt: g),
        ),
        _Mistake(
            "the noise is scaled by dt; a Brownian increment over dt has standard deviation √dt",
            _reverse(_g2dt, lambda g, dt: g * dt),
        ),
        _Mistake("the noise term g·√dt·z is missing (that would be a different ODE, not the reverse SDE)",
                 _reverse(_g2dt, lambda g, dt: 0.0)),
        _Mistake("the noise is subtracted: add g·√dt·z with the z you are given",
                 _reverse(_g2dt, lambda g, dt: -_g_sqrt_dt(g, dt))),
        _Mistake("the score term is not multiplied by dt", _reverse(lambda g, dt: g**2, _g_sqrt_dt)),
        _Mistake(
            "it returns the increment g²·score·dt + g·√dt·z; return the new point x + ...",
            _reverse(_g2dt, _g_sqrt_dt, keep_x=False),
        ),
    ],
)


def check_reverse_sde_step(reverse_sde_step: Callable) -> None:
    """Check ``reverse_sde_step(x, score, g, dt, z)`` against
    :func:`lessons_lib.sde.reverse_sde_step` on points and on a batch of 28×28 images."""
    __tracebackhide__ = True
    _run(_REVERSE_SDE_STEP, reverse_sde_step)


def _flow(drift: Callable[[float, float], float], keep_x: bool = True):
    """A wrong probability-flow step x + drift(g, dt)·score."""
    return lambda x, score, g, dt: keep_x * x + drift(g, dt) * score


_PROBABILITY_FLOW_STEP = _Exercise(
    name="probability_flow_step",
    formula="x + ½·g²·score·dt (Euler on the probability-flow ODE, from t to t − dt)",
    cases=_sde_step_cases(noise=False),
    random_hint="the probability-flow ODE is deterministic: do not draw any noise",
    mistakes=[
        _Mistake(
            "the ½ is missing: x + g²·score·dt is the reverse SDE's drift; without its noise the "
            "flow must move only half as far, ½·g²·score·dt",
            _flow(_g2dt),
        ),
        _Mistake(
            "wrong sign: going from t to t − dt the velocity −½g²∇log p is reversed, x + ½·g²·score·dt",
            _flow(lambda g, dt: -0.5 * _g2dt(g, dt)),
        ),
        _Mistake("the score is multiplied by ½·g; it must be ½·g² (g² = dσ²/dt)", _flow(lambda g, dt: 0.5 * g * dt)),
        _Mistake("the score is multiplied by g; it must be ½·g²", _flow(lambda g, dt: g * dt)),
        _Mistake("the factor is (½g)² = ¼g²; it must be ½·g²", _flow(lambda g, dt: 0.25 * _g2dt(g, dt))),
        _Mistake("the score term is not multiplied by dt", _flow(lambda g, dt: 0.5 * g**2)),
        _Mistake("it returns the increment ½·g²·score·dt; return the new point x + ½·g²·score·dt",
                 _flow(lambda g, dt: 0.5 * _g2dt(g, dt), keep_x=False)),
    ],
)


def check_probability_flow_step(probability_flow_step: Callable) -> None:
    """Check ``probability_flow_step(x, score, g, dt)`` against
    :func:`lessons_lib.sde.probability_flow_step` on points and on a batch of 28×28 images."""
    __tracebackhide__ = True
    _run(_PROBABILITY_FLOW_STEP, probability_flow_step)


# --------------------------------------------------------------------------- annealed_langevin
def _gaussian_noisy_score(mean: float, var: float) -> Callable:
    """The score of N(mean, var·I) perturbed to level σ: −(x − mean)/(var + σ²) (σ a number or
    a 0-d tensor)."""
    return lambda x, sigma: -(x - mean) / (var + float(sigma) ** 2)


def _annealed_case(seed: int, shape: tuple[int, ...], sigmas: tuple[float, float, int], n_steps: int,
                   step_lr: float, what: str, score: Callable) -> _Case:
    schedule = geometric_sigmas(*sigmas)

    def make(g: torch.Generator) -> tuple:
        x = 2 * torch.rand(shape, generator=g) - 1
        return score, x, schedule, step_lr, torch.randn((len(schedule), n_steps, *shape), generator=g)

    return _Case(
        f"{what}, x of shape {shape}, {len(schedule)} levels from σ = {sigmas[0]} to {sigmas[1]}, "
        f"{n_steps} steps each, step_lr = {step_lr}",
        _seeded(seed, make),
    )


def _annealed_cases() -> list[_Case]:
    return [
        _annealed_case(60, (64, 2), (2.0, 0.5, 3), 4, 0.05, "the score of a perturbed Gaussian",
                       _gaussian_noisy_score(1.0, 0.5)),
        _annealed_case(61, (16, 1), (3.0, 0.3, 4), 3, 0.01, "the score of a perturbed Gaussian",
                       _gaussian_noisy_score(-2.0, 1.0)),
        _annealed_case(62, (3, 1, 28, 28), (1.0, 0.1, 3), 2, 0.001, "images, a perturbed Gaussian's score",
                       _gaussian_noisy_score(0.5, 0.05)),
        _annealed_case(63, (8, 2), (2.0, 0.2, 3), 3, 0.01, "a score that is 0 everywhere (only the noise moves x)",
                       lambda x, sigma: torch.zeros_like(x)),
    ]


def _annealed_like(step: Callable, noise_scale: Callable = lambda eps, lr: math.sqrt(2 * eps),
                   order: Callable = lambda sig: sig, restart: bool = False, score_sigma: Callable = None):
    """A wrong annealed sampler: levels visited in ``order(σ's)``, step ``step(σᵢ, σ's, step_lr)``,
    noise scaled by ``noise_scale(εᵢ, step_lr)``, each level restarted from x0 if ``restart``,
    the score evaluated at ``score_sigma(σᵢ, σ's)`` (default σᵢ)."""

    def wrong(score_fn, x, sigmas, step_lr, noise):
        sig = [float(s) for s in sigmas]
        x0, out = x, x
        for i, sigma in enumerate(order(sig)):
            eps = step(sigma, sig, step_lr)
            x = x0 if restart else out
            for t in range(noise.shape[1]):
                at = score_sigma(sigma, sig) if score_sigma else sigma
                x = x + eps * score_fn(x, at) + noise_scale(eps, step_lr) * noise[i, t]
            out = x
        return out

    return wrong


def _right_step(sigma: float, sig: list, lr: float) -> float:
    return lr * (sigma / sig[-1]) ** 2


_ANNEALED_LANGEVIN = _Exercise(
    name="annealed_langevin",
    formula=(
        "for each level i from the largest σ to the smallest, with εᵢ = step_lr·σᵢ²/σ_L², T steps "
        "x ← x + εᵢ·score_fn(x, σᵢ) + √(2εᵢ)·noise[i, t], each level continuing from the previous "
        "level's x"
    ),
    cases=_annealed_cases,
    random_hint="use noise[i, t] at step t of level i; do not draw new noise with torch.randn",
    mistakes=[
        _Mistake(
            "the levels run in the wrong order: annealing starts at the largest σ (sigmas[0]) and "
            "ends at the smallest",
            _annealed_like(_right_step, order=lambda sig: sig[::-1]),
        ),
        _Mistake(
            "the step is the same at every level: it must grow like σᵢ², εᵢ = step_lr·σᵢ²/σ_L²",
            _annealed_like(lambda s, sig, lr: lr),
        ),
        _Mistake(
            "the step grows like σᵢ: it must grow like σᵢ², εᵢ = step_lr·σᵢ²/σ_L²",
            _annealed_like(lambda s, sig, lr: lr * s / sig[-1]),
        ),
        _Mistake(
            "the step is step_lr·σᵢ²: divide by σ_L², so that step_lr is the step at the last level",
            _annealed_like(lambda s, sig, lr: lr * s**2),
        ),
        _Mistake(
            "the step is normalised by the first level, step_lr·σᵢ²/σ₁²: normalise by the last one, σ_L²",
            _annealed_like(lambda s, sig, lr: lr * (s / sig[0]) ** 2),
        ),
        _Mistake(
            "the noise is scaled by √εᵢ: it must be √(2εᵢ) (the √2 is missing)",
            _annealed_like(_right_step, lambda eps, lr: math.sqrt(eps)),
        ),
        _Mistake(
            "the noise is scaled by εᵢ: it must be √(2εᵢ)",
            _annealed_like(_right_step, lambda eps, lr: eps),
        ),
        _Mistake(
            "the noise is scaled by √(2·step_lr), the last level's step: use the step of the current "
            "level, √(2εᵢ)",
            _annealed_like(_right_step, lambda eps, lr: math.sqrt(2 * lr)),
        ),
        _Mistake(
            "every level starts again from the initial x: each level must continue from where the "
            "previous one ended",
            _annealed_like(_right_step, restart=True),
        ),
        _Mistake(
            "the score is always evaluated at the smallest σ: use score_fn(x, σᵢ) of the current level",
            _annealed_like(_right_step, score_sigma=lambda s, sig: sig[-1]),
        ),
    ],
)


def _levels_seen(fn: Callable, case: _Case) -> list[float] | None:
    """The σ passed to the score at each call when ``fn`` runs on ``case`` (None if ``fn`` still
    raises NotImplementedError or fails otherwise: :func:`_run` reports that)."""
    score, x, sigmas, step_lr, noise = case.build()
    seen: list[float] = []

    def recording(x_, sigma):
        seen.append(float(sigma))
        return score(x_, sigma)

    try:
        fn(recording, x, sigmas, step_lr, noise)
    except Exception:  # noqa: BLE001 - reported with its case by _run
        return None
    return seen


def check_annealed_langevin(annealed_langevin: Callable) -> None:
    """Check ``annealed_langevin(score_fn, x, sigmas, step_lr, noise)`` against a loop over
    :func:`lessons_lib.samplers.langevin_step` (the same as :func:`lessons_lib.samplers.annealed_langevin`
    with the noise given): first the order and number of the score's calls, then the values,
    naming the usual mistakes (level order, step not ∝ σ², noise not √(2εᵢ))."""
    __tracebackhide__ = True
    case = _annealed_cases()[0]
    seen = _levels_seen(annealed_langevin, case)
    if seen is not None:
        _, _, sigmas, _, noise = case.build()
        expected = [float(s) for s in sigmas for _ in range(noise.shape[1])]
        if len(seen) != len(expected):
            raise _fail(_ANNEALED_LANGEVIN, case, f"it evaluated the score {len(seen)} times; with "
                        f"{len(sigmas)} levels of {noise.shape[1]} steps it takes {len(expected)} evaluations, "
                        "one per step")
        if not _close(torch.tensor(seen), torch.tensor(expected)):
            if _close(torch.tensor(seen), torch.tensor(expected[::-1])):
                problem = ("the levels run in the wrong order: annealing starts at the largest σ "
                           "(sigmas[0]) and ends at the smallest")
            else:
                shown = ", ".join(f"{s:.3g}" for s in seen[:8]) + (", ..." if len(seen) > 8 else "")
                problem = (f"the score was called with σ = {shown}; at step t of level i call "
                           "score_fn(x, sigmas[i]), largest σ first")
            raise _fail(_ANNEALED_LANGEVIN, case, problem)
    _run(_ANNEALED_LANGEVIN, annealed_langevin)
