"""Lesson 04, denoising score matching: ``dsm_loss``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lessons_lib import losses
from lessons_lib.nets import ScoreMLP

from .common import GIVEN_NOISE_HINT, loss_reduction_mistakes, noisy_point, scaled, sum_event
from .engine import Case, Exercise, Mistake, register, seeded

Tensor = torch.Tensor


def reference(score_fn, x, sigma, z):
    return losses.dsm_loss(score_fn, x, sigma, z=z)


def _case(seed: int, batch: int, dim: int, sigma: float) -> Case:
    def make(g: torch.Generator) -> tuple:
        x, z = torch.randn(batch, dim, generator=g), torch.randn(batch, dim, generator=g)
        return ScoreMLP(dim, hidden=16), x, sigma, z

    return Case(f"a small MLP score model, x and z of shape ({batch}, {dim}), sigma = {sigma}", seeded(seed, make))


def _cases() -> list[Case]:
    return [_case(30, 6, 2, 0.3), _case(31, 5, 1, 1.5), _case(32, 8, 3, 0.7)]


def _like(noisy: Callable, target: Callable) -> Callable[..., Tensor]:
    """A wrong DSM: ½ mean ‖s(noisy(x, σ, z)) + target(z, σ)‖²."""
    def wrong(score_fn, x, sigma, z):
        return (0.5 * sum_event((score_fn(noisy(x, sigma, z)) + target(z, sigma)) ** 2)).mean()

    return wrong


DSM_LOSS = register(Exercise(
    name="dsm_loss",
    lesson="04_denoising_score_matching",
    signature="(score_fn, x, sigma, z)",
    summary="½ mean ‖s(x + σz) + z/σ‖² for the given noise z",
    formula="J_DSM = ½ · mean over the batch of ‖s(x + σz) + z/σ‖² (summed over dimensions), with the z you are given",
    reference=reference,
    forbidden=(losses.dsm_loss, losses.ncsn_loss, losses.ncsn_loss_at),
    points=2,
    cases=_cases,
    description="Check ``dsm_loss(score_fn, x, sigma, z)`` against :func:`lessons_lib.losses.dsm_loss` with "
                "the same noise (value and gradient) at σ = 0.3, 1.5, 0.7.",
    is_loss=True,
    reduce_hint="sum the squares over the dimensions of each sample, then average over the batch",
    random_hint=GIVEN_NOISE_HINT,
    mistakes=[
        Mistake(
            "wrong sign on the target: the score of N(x, σ²I) at x̃ = x + σz is −z/σ, so the "
            "loss is ½‖s(x̃) + z/σ‖²",
            _like(noisy_point, lambda z, sigma: -z / sigma),
        ),
        Mistake(
            "it uses z instead of z/σ: the score of N(x, σ²I) at x̃ = x + σz is −(x̃ − x)/σ² = −z/σ",
            _like(noisy_point, lambda z, sigma: z),
        ),
        Mistake(
            "it uses z/σ² instead of z/σ: (x̃ − x)/σ² = σz/σ² = z/σ",
            _like(noisy_point, lambda z, sigma: z / sigma**2),
        ),
        Mistake(
            "the model is evaluated at the clean x; evaluate it at the noisy point x̃ = x + σz",
            _like(lambda x, sigma, z: x, lambda z, sigma: z / sigma),
        ),
        Mistake(
            "the noisy point is x̃ = x + σz, not x + z",
            _like(lambda x, sigma, z: x + z, lambda z, sigma: z / sigma),
        ),
        scaled(
            "it is σ² times the reference: the σ² weighting belongs to the NCSN loss, plain DSM at "
            "one σ has none",
            lambda score_fn, x, sigma, z: sigma**2,
            reference,
        ),
        *loss_reduction_mistakes(reference),
    ],
))
