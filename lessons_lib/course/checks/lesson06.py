"""Lesson 06, a noise-conditional score network on MNIST: ``ncsn_loss_at``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lessons_lib import losses
from lessons_lib.nets import ScoreMLP
from lessons_lib.noise import geometric_sigmas, sigma_like

from .common import FlatScore, broadcast_hint, loss_reduction_mistakes, noisy_point, sum_event
from .engine import Case, Exercise, Mistake, register, seeded


def reference(score_fn, x, sigma, z):
    return losses.ncsn_loss_at(score_fn, x, sigma, z=z)


def _case(seed: int, shape: tuple[int, ...]) -> Case:
    schedule = geometric_sigmas(sigma_max=5.0, sigma_min=0.1, n=6)

    def make(g: torch.Generator) -> tuple:
        model = ScoreMLP(shape[1], hidden=16, sigma_conditioned=True) if len(shape) == 2 else FlatScore(shape[1:])
        x = torch.randn(shape, generator=g)
        sigma = schedule[torch.randint(0, len(schedule), (shape[0],), generator=g)]
        return model, x, sigma, torch.randn(shape, generator=g)

    what = "points" if len(shape) == 2 else "images"
    return Case(
        f"a small σ-conditioned score model on {what}, x and z of shape {shape}, sigma of shape ({shape[0]},) "
        "with levels between 0.1 and 5",
        seeded(seed, make),
    )


def _cases() -> list[Case]:
    return [_case(50, (6, 2)), _case(51, (5, 3)), _case(52, (4, 1, 28, 28))]


def _like(weight: Callable, noisy: Callable, target: Callable, score_sigma: Callable = lambda s: s):
    """A wrong NCSN loss: ½ mean ‖weight(σ)·s(noisy(x, σ, z), σ') + target(z, σ)‖²."""

    def wrong(score_fn, x, sigma, z):
        s_b = sigma_like(sigma, x)
        s = score_fn(noisy(x, s_b, z), score_sigma(sigma))
        return (0.5 * sum_event((weight(s_b) * s + target(z, s_b)) ** 2)).mean()

    return wrong


def _plus_z(z, sigma):
    return z


def _weighted_by_sigma(score_fn, x, sigma, z):
    s_b = sigma_like(sigma, x)
    return (0.5 * sigma * sum_event((score_fn(x + s_b * z, sigma) + z / s_b) ** 2)).mean()


NCSN_LOSS_AT = register(Exercise(
    name="ncsn_loss_at",
    lesson="06_mnist_ncsn",
    signature="(score_fn, x, sigma, z)",
    summary="½ mean ‖σ·s(x + σz, σ) + z‖² at the given levels, sigma (B,): one σ per sample",
    formula=(
        "J_NCSN = ½ · mean over the batch of ‖σ·s(x + σz, σ) + z‖² (summed over dimensions), "
        "each sample with its own σ, score_fn(x_tilde, sigma)"
    ),
    reference=reference,
    forbidden=(losses.ncsn_loss, losses.ncsn_loss_at, losses.dsm_loss),
    points=3,
    cases=_cases,
    description="Check ``ncsn_loss_at(score_fn, x, sigma, z)`` against :func:`lessons_lib.losses.ncsn_loss_at` "
                "with the same levels and noise (value and gradient), on points and on 28×28 images.",
    is_loss=True,
    reduce_hint="sum the squares over the dimensions of each sample, then average over the batch",
    random_hint="use the noise z and the levels sigma you are given; do not draw new ones",
    error_hint=broadcast_hint,
    mistakes=[
        Mistake(
            "there is no σ² weighting: this is plain DSM ½‖s + z/σ‖²; the NCSN loss weights each "
            "level by σ², ½‖σ·s + z‖²",
            _like(lambda s: 1.0, noisy_point, lambda z, s: z / s),
        ),
        Mistake(
            "wrong sign: the loss is ½‖σ·s(x̃, σ) + z‖² (the target score is −z/σ)",
            _like(lambda s: s, noisy_point, lambda z, s: -z),
        ),
        Mistake(
            "the score is multiplied by σ²; the σ² weight of ½‖s + z/σ‖² becomes ½‖σ·s + z‖²",
            _like(lambda s: s**2, noisy_point, _plus_z),
        ),
        Mistake("it is weighted by σ instead of σ²: ½σ‖s + z/σ‖²", _weighted_by_sigma),
        Mistake(
            "the model is evaluated at the clean x; evaluate it at the noisy point x̃ = x + σz",
            _like(lambda s: s, lambda x, s, z: x, _plus_z),
        ),
        Mistake("the noisy point is x̃ = x + σz, not x + z", _like(lambda s: s, lambda x, s, z: x + z, _plus_z)),
        Mistake(
            "every sample uses the first level sigma[0]; each sample has its own level sigma[i]",
            lambda score_fn, x, sigma, z: reference(score_fn, x, sigma[:1].expand_as(sigma), z),
        ),
        *loss_reduction_mistakes(reference),
    ],
))
