"""Lesson 05, Langevin dynamics: ``langevin_step``, ``annealed_langevin_loop``, ``mala_log_acceptance``
and the written ``relaxation_time``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from lessons_lib import samplers
from lessons_lib.noise import geometric_sigmas
from lessons_lib.samplers import langevin_step
from lessons_lib.toy_data import mixture_1d, mixture_2d

from .common import GIVEN_NOISE_HINT
from .engine import Case, Exercise, Mistake, Written, close, fail, register, seeded


# --------------------------------------------------------------------------- langevin_step
def _step_case(seed: int, shape: tuple[int, ...], step_size: float) -> Case:
    def make(g: torch.Generator) -> tuple:
        x = torch.randn(shape, generator=g)
        return x, -x + 0.5 * torch.randn(shape, generator=g), step_size, torch.randn(shape, generator=g)

    return Case(f"x, score and z of shape {shape}, step_size = {step_size}", seeded(seed, make))


def _step_cases() -> list[Case]:
    return [_step_case(40, (6, 2), 0.1), _step_case(41, (5, 1), 0.01), _step_case(42, (3, 1, 28, 28), 0.2)]


def _step(score_factor: Callable[[float], float], noise_factor: Callable[[float], float], keep_x: bool = True):
    """A wrong step x + a(ε)·score + b(ε)·z (without x when ``keep_x`` is False)."""
    return lambda x, score, eps, z: keep_x * x + score_factor(eps) * score + noise_factor(eps) * z


def _sqrt2(eps: float) -> float:
    return math.sqrt(2 * eps)


LANGEVIN_STEP = register(Exercise(
    name="langevin_step",
    lesson="05_langevin_dynamics",
    signature="(x, score, step_size, z)",
    summary="one Langevin step x + ε·score + √(2ε)·z",
    formula="x + ε·score + √(2ε)·z with the z you are given (the course's Langevin convention)",
    reference=langevin_step,
    forbidden=(samplers.langevin_step,),
    points=2,
    cases=_step_cases,
    description="Check ``langevin_step(x, score, step_size, z)`` against "
                ":func:`lessons_lib.samplers.langevin_step` on points and on a batch of 28×28 images.",
    random_hint=GIVEN_NOISE_HINT,
    mistakes=[
        Mistake("the noise term is √ε·z: it must be √(2ε)·z (the √2 is missing)", _step(lambda e: e, math.sqrt)),
        Mistake(
            "this is the x + (ε/2)·score + √ε·z convention (Song & Ermon's Algorithm 1 with α = ε); "
            "this course uses x + ε·score + √(2ε)·z",
            _step(lambda e: e / 2, math.sqrt),
        ),
        Mistake(
            "the noise is scaled by ε: it must be √(2ε)·z (noise grows like the square root of the step)",
            _step(lambda e: e, lambda e: e),
        ),
        Mistake("the noise is scaled by 2ε: take the square root, √(2ε)·z", _step(lambda e: e, lambda e: 2 * e)),
        Mistake(
            "wrong sign on the score term: Langevin moves uphill in log-density, x + ε·score",
            _step(lambda e: -e, _sqrt2),
        ),
        Mistake(
            "the noise is subtracted: add √(2ε)·z with the z you are given",
            _step(lambda e: e, lambda e: -_sqrt2(e)),
        ),
        Mistake("the noise term √(2ε)·z is missing", _step(lambda e: e, lambda e: 0.0)),
        Mistake("the score term ε·score is missing", _step(lambda e: 0.0, _sqrt2)),
        Mistake("the score is not multiplied by the step size ε", _step(lambda e: 1.0, _sqrt2)),
        Mistake(
            "it returns the increment ε·score + √(2ε)·z; return the new point x + ε·score + √(2ε)·z",
            _step(lambda e: e, _sqrt2, keep_x=False),
        ),
    ],
))


# --------------------------------------------------------------------------- mala_log_acceptance
def _mala_case(seed: int, which: str, batch: int, step_size: float) -> Case:
    def make(g: torch.Generator) -> tuple:
        p = mixture_1d() if which == "1-D" else mixture_2d()
        x = 3 * torch.randn(batch, p.dim, generator=g, dtype=torch.float64)
        y = langevin_step(x, p.score(x), step_size, torch.randn(x.shape, generator=g, dtype=torch.float64))
        return p.log_prob, p.score, x, y, step_size

    return Case(f"the lesson's {which} mixture (exact log p and score), {batch} chains, y a Langevin proposal "
                f"from x, step_size = {step_size}", seeded(seed, make))


def _mala_cases() -> list[Case]:
    return [_mala_case(64, "1-D", 32, 0.5), _mala_case(65, "2-D", 32, 0.3), _mala_case(66, "2-D", 16, 1.0)]


def _mala_like(q_scale: float = 4.0, swap: bool = False, correction: bool = True, clamp: bool = True,
               p_sign: float = 1.0, reduce: str = "sum", exp: bool = False) -> Callable:
    """A wrong log acceptance: log q(b|a) = −‖b − a − ε s(a)‖²/(q_scale·ε) (reduced by ``reduce``)."""

    def wrong(log_prob, score_fn, x, y, eps):
        def log_q(b, a):
            sq = (b - a - eps * score_fn(a)) ** 2
            return -(sq.sum(1) if reduce == "sum" else sq.mean(1)) / (q_scale * eps)

        ratio = p_sign * (log_prob(y) - log_prob(x))
        if correction:
            ratio = ratio + (log_q(y, x) - log_q(x, y) if swap else log_q(x, y) - log_q(y, x))
        out = ratio.clamp(max=0.0) if clamp else ratio
        return out.exp() if exp else out

    return wrong


MALA_LOG_ACCEPTANCE = register(Exercise(
    name="mala_log_acceptance",
    lesson="05_langevin_dynamics",
    signature="(log_prob, score_fn, x, y, step_size)",
    summary="MALA's log acceptance probability for the Langevin proposal x → y",
    formula=(
        "log α = min(0, log p(y) − log p(x) + log q(x|y) − log q(y|x)), one number per chain, with the "
        "Langevin proposal's log q(b|a) = −‖b − a − ε·s(a)‖²/(4ε) (its constant cancels)"
    ),
    reference=samplers.mala_log_acceptance,
    forbidden=(samplers.mala_log_acceptance, samplers.mala),
    points=3,
    cases=_mala_cases,
    description="Check ``mala_log_acceptance(log_prob, score_fn, x, y, step_size)`` against "
                ":func:`lessons_lib.samplers.mala_log_acceptance` on the 1-D and 2-D mixtures.",
    mistakes=[
        Mistake("the proposal correction log q(x|y) − log q(y|x) is missing: the Langevin proposal is not "
                "symmetric, so this is random-walk Metropolis's rule, not MALA's", _mala_like(correction=False)),
        Mistake("the two proposal terms are swapped: the ratio is p(y)·q(x|y) / (p(x)·q(y|x)), the "
                "reverse move's proposal density on top", _mala_like(swap=True)),
        Mistake("the proposal's variance is 2ε, so log q(b|a) = −‖b − a − ε s(a)‖²/(4ε), not /(2ε)",
                _mala_like(q_scale=2.0)),
        Mistake("the target ratio is upside down: p(y)/p(x), the density at the proposal on top",
                _mala_like(p_sign=-1.0)),
        Mistake("the minimum with 0 is missing: a probability is at most 1, so log α ≤ 0",
                _mala_like(clamp=False)),
        Mistake("it returns α, not log α", _mala_like(exp=True)),
        Mistake("‖·‖² is averaged over the dimensions: sum over them", _mala_like(reduce="mean")),
    ],
))


# --------------------------------------------------------------------------- written
RELAXATION_TIME = register(Written(
    name="relaxation_time", lesson="05_langevin_dynamics",
    summary="the relaxation time of the two-mode chain, read from the trace, and the steps it implies",
    points=3))


# --------------------------------------------------------------------------- annealed_langevin_loop
def annealed_reference(score_fn, x, sigmas, step_size, noise):
    """Annealed Langevin (Song & Ermon 2019) with the noise given: level i = 0, 1, ... (largest σ
    first), step t: x ← x + εᵢ·s(x, σᵢ) + √(2εᵢ)·noise[i, t], εᵢ = step_size·σᵢ²/σ_L²."""
    sig = [float(s) for s in sigmas]
    for i, sigma in enumerate(sig):
        eps = step_size * (sigma / sig[-1]) ** 2
        for t in range(noise.shape[1]):
            x = langevin_step(x, score_fn(x, sigma), eps, noise[i, t])
    return x


def _gaussian_noisy_score(mean: float, var: float) -> Callable:
    """The score of N(mean, var·I) perturbed to level σ: −(x − mean)/(var + σ²)."""
    return lambda x, sigma: -(x - mean) / (var + float(sigma) ** 2)


def _annealed_case(seed: int, shape: tuple[int, ...], levels: tuple[float, float, int], n_steps: int,
                   step_size: float, what: str, score: Callable) -> Case:
    sigma_max, sigma_min, n = levels
    schedule = geometric_sigmas(sigma_max=sigma_max, sigma_min=sigma_min, n=n)

    def make(g: torch.Generator) -> tuple:
        x = 2 * torch.rand(shape, generator=g) - 1
        return score, x, schedule, step_size, torch.randn((len(schedule), n_steps, *shape), generator=g)

    return Case(
        f"{what}, x of shape {shape}, {len(schedule)} levels from σ = {sigma_max} to {sigma_min}, "
        f"{n_steps} steps each, step_size = {step_size}",
        seeded(seed, make),
    )


def _annealed_cases() -> list[Case]:
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


def _annealed_like(step: Callable, noise_scale: Callable = lambda eps, size: math.sqrt(2 * eps),
                   order: Callable = lambda sig: sig, restart: bool = False, score_sigma: Callable | None = None):
    """A wrong annealed sampler: levels visited in ``order(σ's)``, step ``step(σᵢ, σ's, step_size)``,
    noise scaled by ``noise_scale(εᵢ, step_size)``, each level restarted from the initial x if
    ``restart``, the score evaluated at ``score_sigma(σᵢ, σ's)`` (default σᵢ)."""

    def wrong(score_fn, x, sigmas, step_size, noise):
        sig = [float(s) for s in sigmas]
        x_init, out = x, x
        for i, sigma in enumerate(order(sig)):
            eps = step(sigma, sig, step_size)
            x = x_init if restart else out
            for t in range(noise.shape[1]):
                at = score_sigma(sigma, sig) if score_sigma else sigma
                x = x + eps * score_fn(x, at) + noise_scale(eps, step_size) * noise[i, t]
            out = x
        return out

    return wrong


def _right_step(sigma: float, sig: list, size: float) -> float:
    return size * (sigma / sig[-1]) ** 2


_WRONG_ORDER = (
    "the levels run in the wrong order: annealing starts at the largest σ (sigmas[0]) and ends at the smallest"
)


def _levels_seen(fn: Callable, case: Case) -> list[float] | None:
    """The σ passed to the score at each call when ``fn`` runs on ``case`` (None if ``fn`` still
    raises NotImplementedError or fails otherwise: the run reports that with its case)."""
    score, x, sigmas, step_size, noise = case.build()
    seen: list[float] = []

    def recording(x_, sigma):
        seen.append(float(sigma))
        return score(x_, sigma)

    try:
        fn(recording, x, sigmas, step_size, noise)
    except Exception:  # noqa: BLE001 - reported with its case by the run
        return None
    return seen


def _check_levels(ex: Exercise, fn: Callable) -> None:
    """Before the values: the order and number of the score's calls."""
    __tracebackhide__ = True
    case = ex.cases()[0]
    seen = _levels_seen(fn, case)
    if seen is None:
        return
    _, _, sigmas, _, noise = case.build()
    expected = [float(s) for s in sigmas for _ in range(noise.shape[1])]
    if len(seen) != len(expected):
        raise fail(ex, case, f"it evaluated the score {len(seen)} times; with {len(sigmas)} levels of "
                   f"{noise.shape[1]} steps it takes {len(expected)} evaluations, one per step")
    if not close(torch.tensor(seen), torch.tensor(expected)):
        if close(torch.tensor(seen), torch.tensor(expected[::-1])):
            problem = _WRONG_ORDER
        else:
            shown = ", ".join(f"{s:.3g}" for s in seen[:8]) + (", ..." if len(seen) > 8 else "")
            problem = (f"the score was called with σ = {shown}; at step t of level i call "
                       "score_fn(x, sigmas[i]), largest σ first")
        raise fail(ex, case, problem)


ANNEALED_LANGEVIN_LOOP = register(Exercise(
    name="annealed_langevin_loop",
    lesson="05_langevin_dynamics",
    signature="(score_fn, x, sigmas, step_size, noise)",
    summary="the annealed sampler, level by level, εᵢ = step_size·σᵢ²/σ_L², noise (L, T, *x.shape) given",
    formula=(
        "for each level i from the largest σ to the smallest, with the step εᵢ of part (a) (step_size at the "
        "last level), T steps "
        "x ← x + εᵢ·score_fn(x, σᵢ) + √(2εᵢ)·noise[i, t], each level continuing from the previous "
        "level's x"
    ),
    reference=annealed_reference,
    forbidden=(samplers.annealed_langevin, samplers.annealed_inpainting),
    points=5,
    cases=_annealed_cases,
    description="Check ``annealed_langevin_loop(score_fn, x, sigmas, step_size, noise)`` against a loop over "
                ":func:`lessons_lib.samplers.langevin_step` (the same as "
                ":func:`lessons_lib.samplers.annealed_langevin` with the noise given): first the order and "
                "number of the score's calls, then the values, naming the usual mistakes (level order, step "
                "not ∝ σ², noise not √(2εᵢ)).",
    random_hint="use noise[i, t] at step t of level i; do not draw new noise with torch.randn",
    precheck=_check_levels,
    mistakes=[
        Mistake(_WRONG_ORDER, _annealed_like(_right_step, order=lambda sig: sig[::-1])),
        Mistake(
            "the step is the same at every level: part (a) asks how it must grow with σᵢ for the ratio of "
            "drift to noise to be the same at every level",
            _annealed_like(lambda s, sig, size: size),
        ),
        Mistake(
            "the step grows like σᵢ: where ‖s‖ ∝ 1/σᵢ the ratio of drift to noise, √(εᵢ/2)·‖s‖/‖z‖, then "
            "still falls as σᵢ grows; redo part (a)",
            _annealed_like(lambda s, sig, size: size * s / sig[-1]),
        ),
        Mistake(
            "the step is step_size·σᵢ²: divide by σ_L², so that step_size is the step at the last level",
            _annealed_like(lambda s, sig, size: size * s**2),
        ),
        Mistake(
            "the step is normalised by the first level, step_size·σᵢ²/σ₁²: normalise by the last one, σ_L²",
            _annealed_like(lambda s, sig, size: size * (s / sig[0]) ** 2),
        ),
        Mistake(
            "the noise is scaled by √εᵢ: it must be √(2εᵢ) (the √2 is missing)",
            _annealed_like(_right_step, lambda eps, size: math.sqrt(eps)),
        ),
        Mistake("the noise is scaled by εᵢ: it must be √(2εᵢ)", _annealed_like(_right_step, lambda eps, size: eps)),
        Mistake(
            "the noise is scaled by √(2·step_size), the last level's step: use the step of the current "
            "level, √(2εᵢ)",
            _annealed_like(_right_step, lambda eps, size: math.sqrt(2 * size)),
        ),
        Mistake(
            "every level starts again from the initial x: each level must continue from where the "
            "previous one ended",
            _annealed_like(_right_step, restart=True),
        ),
        Mistake(
            "the score is always evaluated at the smallest σ: use score_fn(x, σᵢ) of the current level",
            _annealed_like(_right_step, score_sigma=lambda s, sig: sig[-1]),
        ),
    ],
))
