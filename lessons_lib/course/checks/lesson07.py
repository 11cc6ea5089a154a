"""Lesson 07, score SDEs: ``reverse_sde_step``, ``probability_flow_step``, ``pc_loop`` and
``divergence_integrand``; the written ``sigma_min_floor``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from lessons_lib import autodiff, sde
from lessons_lib.autodiff import projected_jacobian
from lessons_lib.samplers import langevin_step
from lessons_lib.sde import probability_flow_step, reverse_diffusion_step, reverse_sde_step

from .common import GIVEN_NOISE_HINT
from .engine import Case, Exercise, Mistake, Written, register, seeded


def _case(seed: int, shape: tuple[int, ...], g: float, dt: float, noise: bool) -> Case:
    def make(gen: torch.Generator) -> tuple:
        x = torch.randn(shape, generator=gen)
        score = -x + 0.5 * torch.randn(shape, generator=gen)
        z = torch.randn(shape, generator=gen)
        return (x, score, g, dt, z) if noise else (x, score, g, dt)

    what = "x, score and z" if noise else "x and score"
    return Case(f"{what} of shape {shape}, g = {g}, dt = {dt}", seeded(seed, make))


def _cases(noise: bool) -> Callable[[], list[Case]]:
    # g ≠ 1 and g ≠ 2, so that g, g² and ½g² are three different numbers in every case
    return lambda: [
        _case(60, (6, 2), 2.5, 0.03, noise),
        _case(61, (5, 1), 0.7, 0.1, noise),
        _case(62, (3, 1, 28, 28), 4.0, 0.01, noise),
    ]


def _g2dt(g: float, dt: float) -> float:
    return g**2 * dt


def _g_sqrt_dt(g: float, dt: float) -> float:
    return g * math.sqrt(dt)


# --------------------------------------------------------------------------- reverse_sde_step
def _reverse(drift: Callable[[float, float], float], noise: Callable[[float, float], float], keep_x: bool = True):
    """A wrong reverse-SDE step x + drift(g, dt)·score + noise(g, dt)·z."""
    return lambda x, score, g, dt, z: keep_x * x + drift(g, dt) * score + noise(g, dt) * z


REVERSE_SDE_STEP = register(Exercise(
    name="reverse_sde_step",
    lesson="07_score_sde",
    signature="(x, score, g, dt, z)",
    summary="one reverse-time Euler–Maruyama step x + g²·score·dt + g·√dt·z",
    formula="x + g²·score·dt + g·√dt·z with the z you are given (reverse-time Euler–Maruyama, from t to t − dt)",
    reference=reverse_sde_step,
    forbidden=(sde.reverse_sde_step, sde.reverse_sde_sample, sde.pc_sample),
    points=2,
    cases=_cases(noise=True),
    description="Check ``reverse_sde_step(x, score, g, dt, z)`` against :func:`lessons_lib.sde.reverse_sde_step` "
                "on points and on a batch of 28×28 images.",
    random_hint=GIVEN_NOISE_HINT,
    mistakes=[
        Mistake(
            "wrong sign on the score term: going backwards in time the drift −g²∇log p·dt becomes "
            "+g²·score·dt (the step moves towards higher density)",
            _reverse(lambda g, dt: -_g2dt(g, dt), _g_sqrt_dt),
        ),
        Mistake(
            "the score term has a ½: that is the probability-flow ODE's drift; the reverse SDE has "
            "g²·score·dt, twice as much, because its noise spreads the samples out again",
            _reverse(lambda g, dt: 0.5 * _g2dt(g, dt), _g_sqrt_dt),
        ),
        Mistake("the score is multiplied by g; the drift is g²·score·dt", _reverse(lambda g, dt: g * dt, _g_sqrt_dt)),
        Mistake(
            "the noise is multiplied by g²; the diffusion coefficient multiplies dW̄ once: g·√dt·z",
            _reverse(_g2dt, lambda g, dt: g**2 * math.sqrt(dt)),
        ),
        Mistake(
            "the noise is not scaled by √dt: a Brownian increment over dt has standard deviation √dt",
            _reverse(_g2dt, lambda g, dt: g),
        ),
        Mistake(
            "the noise is scaled by dt; a Brownian increment over dt has standard deviation √dt",
            _reverse(_g2dt, lambda g, dt: g * dt),
        ),
        Mistake(
            "the noise term g·√dt·z is missing (that would be a different ODE, not the reverse SDE)",
            _reverse(_g2dt, lambda g, dt: 0.0),
        ),
        Mistake(
            "the noise is subtracted: add g·√dt·z with the z you are given",
            _reverse(_g2dt, lambda g, dt: -_g_sqrt_dt(g, dt)),
        ),
        Mistake("the score term is not multiplied by dt", _reverse(lambda g, dt: g**2, _g_sqrt_dt)),
        Mistake(
            "it returns the increment g²·score·dt + g·√dt·z; return the new point x + ...",
            _reverse(_g2dt, _g_sqrt_dt, keep_x=False),
        ),
    ],
))


# --------------------------------------------------------------------------- probability_flow_step
def _flow(drift: Callable[[float, float], float], keep_x: bool = True):
    """A wrong probability-flow step x + drift(g, dt)·score."""
    return lambda x, score, g, dt: keep_x * x + drift(g, dt) * score


PROBABILITY_FLOW_STEP = register(Exercise(
    name="probability_flow_step",
    lesson="07_score_sde",
    signature="(x, score, g, dt)",
    summary="one Euler step of the probability-flow ODE x + ½g²·score·dt",
    formula="x + ½·g²·score·dt (Euler on the probability-flow ODE, from t to t − dt)",
    reference=probability_flow_step,
    forbidden=(sde.probability_flow_step, sde.ode_sample, sde.ode_encode),
    points=2,
    cases=_cases(noise=False),
    description="Check ``probability_flow_step(x, score, g, dt)`` against "
                ":func:`lessons_lib.sde.probability_flow_step` on points and on a batch of 28×28 images.",
    random_hint="the probability-flow ODE is deterministic: do not draw any noise",
    mistakes=[
        Mistake(
            "the ½ is missing: x + g²·score·dt is the reverse SDE's drift; without its noise the "
            "flow must move only half as far, ½·g²·score·dt",
            _flow(_g2dt),
        ),
        Mistake(
            "wrong sign: going from t to t − dt the velocity −½g²∇log p is reversed, x + ½·g²·score·dt",
            _flow(lambda g, dt: -0.5 * _g2dt(g, dt)),
        ),
        Mistake("the score is multiplied by ½·g; it must be ½·g² (g² = dσ²/dt)", _flow(lambda g, dt: 0.5 * g * dt)),
        Mistake("the score is multiplied by g; it must be ½·g²", _flow(lambda g, dt: g * dt)),
        Mistake("the factor is (½g)² = ¼g²; it must be ½·g²", _flow(lambda g, dt: 0.25 * _g2dt(g, dt))),
        Mistake("the score term is not multiplied by dt", _flow(lambda g, dt: 0.5 * g**2)),
        Mistake(
            "it returns the increment ½·g²·score·dt; return the new point x + ½·g²·score·dt",
            _flow(lambda g, dt: 0.5 * _g2dt(g, dt), keep_x=False),
        ),
    ],
))


# --------------------------------------------------------------------------- pc_loop
def pc_reference(score_fn, x, sigmas, snr, noise):
    """Song et al. 2021, Algorithm 2 (VE) with one corrector step: reverse-diffusion predictor from
    sigmas[k] to sigmas[k + 1] with noise[k, 0], then a Langevin step at sigmas[k + 1] with noise[k, 1],
    ε = 2(r·mean‖z‖/mean‖s‖)²."""
    for k in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[k]), float(sigmas[k + 1])
        x = reverse_diffusion_step(x, score_fn(x, sigma), sigma, sigma_next, noise[k, 0])
        s, z = score_fn(x, sigma_next), noise[k, 1]
        eps = 2.0 * (snr * float(z.flatten(1).norm(dim=1).mean() / s.flatten(1).norm(dim=1).mean())) ** 2
        x = langevin_step(x, s, eps, z)
    return x


def _pc_like(predict: str = "rd", corrector_at: str = "next", eps_rule: str = "batch", factor: float = 2.0,
             corrector: bool = True) -> Callable:
    """A wrong PC loop: ``predict`` "rd" or "em" (g²Δt in place of σ² − σ'², via the geometric grid) or
    "next" (score at σ'); corrector at "next" or "same" level; ε from batch-averaged norms ("batch")
    or per sample ("sample"); ε = factor·(r‖z‖/‖s‖)²."""

    def wrong(score_fn, x, sigmas, snr, noise):
        n = len(sigmas) - 1
        for k in range(n):
            sigma, sigma_next = float(sigmas[k]), float(sigmas[k + 1])
            var = sigma**2 - sigma_next**2
            if predict == "em":  # g(t)²Δt on a geometric grid: 2 log(σ/σ')·σ²
                var = 2 * math.log(sigma / sigma_next) * sigma**2
            at = sigma_next if predict == "next" else sigma
            x = x + var * score_fn(x, at) + math.sqrt(var) * noise[k, 0]
            if not corrector:
                continue
            level = sigma_next if corrector_at == "next" else sigma
            s, z = score_fn(x, level), noise[k, 1]
            if eps_rule == "batch":
                eps = factor * (snr * float(z.flatten(1).norm(dim=1).mean() / s.flatten(1).norm(dim=1).mean())) ** 2
            else:
                eps = factor * (snr * z.flatten(1).norm(dim=1) / s.flatten(1).norm(dim=1)) ** 2
                eps = eps.view(-1, *[1] * (x.dim() - 1))
            x = x + eps * s + (2 * eps) ** 0.5 * z
        return x

    return wrong


def _pc_case(seed: int, shape: tuple[int, ...], levels: tuple[float, float, int], snr: float, what: str,
             score: Callable) -> Case:
    sigma_max, sigma_min, n = levels

    def make(g: torch.Generator) -> tuple:
        sigmas = torch.tensor([sigma_min * (sigma_max / sigma_min) ** (1 - k / (n - 1)) for k in range(n)])
        x = sigma_max * torch.randn(shape, generator=g)
        return score, x, sigmas, snr, torch.randn((n - 1, 2, *shape), generator=g)

    return Case(f"{what}, x of shape {shape}, {n} levels from σ = {sigma_max} to {sigma_min}, snr = {snr}",
                seeded(seed, make))


def _gaussian_score(mean: float, var: float) -> Callable:
    return lambda x, sigma: -(x - mean) / (var + float(sigma) ** 2)


def _pc_cases() -> list[Case]:
    return [
        _pc_case(80, (64, 2), (5.0, 0.1, 5), 0.16, "the score of a perturbed Gaussian", _gaussian_score(1.0, 0.5)),
        _pc_case(81, (32, 1), (10.0, 0.05, 6), 0.3, "the score of a perturbed Gaussian", _gaussian_score(-2.0, 1.0)),
        _pc_case(82, (3, 1, 28, 28), (3.0, 0.1, 4), 0.16, "images, a perturbed Gaussian's score",
                 _gaussian_score(0.5, 0.05)),
    ]


PC_LOOP = register(Exercise(
    name="pc_loop",
    lesson="07_score_sde",
    signature="(score_fn, x_init, sigmas, snr, noise)",
    summary="predictor–corrector for VE: the reverse-diffusion predictor and one Langevin corrector step per level",
    formula=(
        "for k = 0 … N − 1, σ = sigmas[k], σ' = sigmas[k + 1]: x ← x + (σ² − σ'²)·score_fn(x, σ) + "
        "√(σ² − σ'²)·noise[k, 0]; then s = score_fn(x, σ'), z = noise[k, 1], ε = 2(r·mean‖z‖/mean‖s‖)², "
        "x ← x + ε·s + √(2ε)·z"
    ),
    reference=pc_reference,
    forbidden=(sde.pc_sample, sde.reverse_sde_sample, sde.reverse_diffusion_step),
    points=4,
    cases=_pc_cases,
    description="Check ``pc_loop(score_fn, x_init, sigmas, snr, noise)`` against Song et al.'s Algorithm 2 "
                "written with :func:`lessons_lib.sde.reverse_diffusion_step` and "
                ":func:`lessons_lib.samplers.langevin_step`, on points and on images.",
    random_hint="use noise[k, 0] for the predictor and noise[k, 1] for the corrector; do not draw new noise",
    mistakes=[
        Mistake("the predictor uses Euler–Maruyama's g²Δt; the reverse-diffusion predictor's variance step is "
                "σ² − σ'², the difference of the two levels' variances", _pc_like(predict="em")),
        Mistake("the predictor evaluates the score at the new level σ'; it uses the score at the current "
                "level σ = sigmas[k]", _pc_like(predict="next")),
        Mistake("the corrector runs at the old level σ; it corrects towards the new level, score_fn(x, σ')",
                _pc_like(corrector_at="same")),
        Mistake("ε is computed per sample; the authors' rule averages ‖z‖ and ‖s‖ over the batch first",
                _pc_like(eps_rule="sample")),
        Mistake("ε is (r‖z‖/‖s‖)²; the rule is ε = 2(r‖z‖/‖s‖)²", _pc_like(factor=1.0)),
        Mistake("the corrector step is missing: this is the reverse-diffusion predictor alone",
                _pc_like(corrector=False)),
    ],
))


# --------------------------------------------------------------------------- divergence_integrand
def divergence_reference(score_fn, x, sigma, g, v):
    """−½g²·vᵀ(∇ₓs)v per sample, by one vector-Jacobian product."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        return -0.5 * g**2 * projected_jacobian(score_fn(x, sigma), x, v, create_graph=False)


class _SmallScore(torch.nn.Module):
    """A fixed nonlinear σ-conditioned score with a non-symmetric Jacobian: tanh(W x)/σ."""

    def __init__(self, dim: int, g: torch.Generator):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(dim, dim, generator=g) / math.sqrt(dim))

    def forward(self, x, sigma):
        flat = x.flatten(1)
        return (torch.tanh(flat @ self.w.T) / float(sigma)).view_as(x)


def _div_case(seed: int, shape: tuple[int, ...], sigma: float, g_value: float) -> Case:
    def make(g: torch.Generator) -> tuple:
        model = _SmallScore(math.prod(shape[1:]), g)
        x = torch.randn(shape, generator=g)
        v = torch.randint(0, 2, shape, generator=g).float() * 2 - 1
        return model, x, sigma, g_value, v

    return Case(f"a small nonlinear score tanh(Wx)/σ, x and a Rademacher v of shape {shape}, σ = {sigma}, "
                f"g = {g_value}", seeded(seed, make))


def _div_cases() -> list[Case]:
    return [_div_case(90, (8, 2), 0.5, 2.5), _div_case(91, (4, 3), 2.0, 0.7), _div_case(92, (2, 1, 6, 6), 1.0, 4.0)]


def _div_like(factor: Callable[[float], float], reduce: str = "sum", square_v: bool = True) -> Callable:
    def wrong(score_fn, x, sigma, g, v):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (vjp,) = torch.autograd.grad((score_fn(x, sigma) * v).sum(), x)
        prod = (vjp * v) if square_v else vjp
        per = prod.flatten(1).sum(1) if reduce == "sum" else prod.flatten(1).mean(1)
        return factor(g) * per

    return wrong


DIVERGENCE_INTEGRAND = register(Exercise(
    name="divergence_integrand",
    lesson="07_score_sde",
    signature="(score_fn, x, sigma, g, v)",
    summary="Hutchinson's estimate of the probability-flow divergence −½g²·vᵀ(∇ₓs)v, one number per sample",
    formula="−½·g²·vᵀ(∇ₓ score_fn(x, σ))v per sample, by one vector-Jacobian product",
    reference=divergence_reference,
    forbidden=(sde.ode_log_likelihood, autodiff.projected_jacobian, autodiff.hutchinson_trace,
               autodiff.jacobian_trace),
    points=3,
    cases=_div_cases,
    description="Check ``divergence_integrand(score_fn, x, sigma, g, v)`` against −½g² times "
                ":func:`lessons_lib.autodiff.projected_jacobian`, on points and on small images.",
    random_hint="use the probe v you are given; do not draw a new one",
    mistakes=[
        Mistake("it returns the trace estimate vᵀ(∇ₓs)v itself; the integrand is the divergence of the "
                "velocity f = −½g²s, i.e. −½g² times it", _div_like(lambda g: 1.0)),
        Mistake("the sign is wrong: ∇·f = −½g²·tr∇ₓs", _div_like(lambda g: 0.5 * g**2)),
        Mistake("the ½ is missing: the velocity of the probability-flow ODE is −½g²s", _div_like(lambda g: -g**2)),
        Mistake("g where g² belongs: ∇·f = −½g²·tr∇ₓs", _div_like(lambda g: -0.5 * g)),
        Mistake("vᵀ(∇ₓs)v is averaged over the dimensions; it is a sum over them",
                _div_like(lambda g: -0.5 * g**2, reduce="mean")),
        Mistake("the vector-Jacobian product is summed without the second product with v: vᵀ(∇ₓs)v needs "
                "(vᵀ∇ₓs)·v", _div_like(lambda g: -0.5 * g**2, square_v=False)),
    ],
))


SIGMA_MIN_FLOOR = register(Written(
    name="sigma_min_floor", lesson="07_score_sde",
    summary="the bits/dim floor that σ_min puts under any model of p_σmin, derived", points=3))
