"""Lesson 07, score SDEs: ``reverse_sde_step`` and ``probability_flow_step``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from lessons_lib import sde
from lessons_lib.sde import probability_flow_step, reverse_sde_step

from .common import GIVEN_NOISE_HINT
from .engine import Case, Exercise, Mistake, register, seeded


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
