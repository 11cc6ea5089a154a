"""Pieces several lessons' exercises share: the loss-reduction mistakes, hints, a small image model."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from lessons_lib.autodiff import sample_projections
from lessons_lib.nets import LinearScore, ScoreMLP

from .engine import Case, Mistake, seeded

Tensor = torch.Tensor

DIFFERENTIATE_HINT = (
    "the derivative inside the loss is not differentiable itself, so training cannot differentiate "
    "through it: autograd has to build a graph of the derivative (torch.autograd.grad's create_graph "
    "option), and the derivative must not be detached"
)
GIVEN_NOISE_HINT = "use the noise z you are given; do not draw new noise with torch.randn"


def sum_event(t: Tensor) -> Tensor:
    """Sum over every dimension but the batch dimension (‖·‖² of each sample)."""
    return t.flatten(1).sum(-1)


def mean_event(t: Tensor) -> Tensor:
    """The mistake of averaging over the event dimensions instead of summing."""
    return t.flatten(1).mean(-1)


def scaled(message: str, factor: Callable[..., float], reference: Callable) -> Mistake:
    """The reference times a factor computed from the inputs (2, ½, the batch size, σ², ...)."""
    return Mistake(message, lambda *args: factor(*args) * reference(*args))


def loss_reduction_mistakes(reference: Callable, over: str = "the batch") -> list[Mistake]:
    """Wrong factors every loss exercise can get: the ½, the batch reduction, the event sum, the sign."""
    return [
        scaled("it is twice the reference: the ½ in front of the loss is missing", lambda *a: 2.0, reference),
        scaled("it is half the reference: a ½ too many", lambda *a: 0.5, reference),
        scaled(
            f"it is the sum over {over} instead of the mean: the loss averages over the batch",
            lambda score_fn, x, *rest: float(x.shape[0]),
            reference,
        ),
        scaled(
            "it is the reference divided by the number of entries per sample: you averaged over "
            "the dimensions of each sample. Sum over them (‖·‖² is a sum), average over the batch",
            lambda score_fn, x, *rest: 1.0 / x[0].numel(),
            reference,
        ),
        scaled("wrong sign: the loss is the negative of the reference", lambda *a: -1.0, reference),
    ]


class FlatScore(nn.Module):
    """A small σ-conditioned score model on images: a :class:`ScoreMLP` on the flattened pixels."""

    def __init__(self, shape: tuple[int, ...], hidden: int = 16):
        super().__init__()
        self.mlp = ScoreMLP(math.prod(shape), hidden=hidden, n_layers=1, sigma_conditioned=True)

    def forward(self, x: Tensor, sigma) -> Tensor:
        return self.mlp(x.flatten(1), sigma).view_as(x)


def broadcast_hint(message: str) -> str:
    """The hint for an error raised while a (B,) σ meets an x of shape (B, ...)."""
    if "size of tensor" in message or "broadcast" in message:
        return (
            "sigma has shape (B,), one level per sample: reshape it so it broadcasts against x "
            "(e.g. sigma.view(-1, *[1] * (x.dim() - 1)) gives shape (B, 1, ...))"
        )
    return ""


def points_case(seed: int, batch: int, dim: int, model: str, n_projections: int = 0, kind: str = "rademacher") -> Case:
    """A batch of points and a small score model (``"linear"`` or ``"mlp"``); with
    ``n_projections`` also projections v of shape (n_projections, batch, dim)."""

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
    return Case(label, seeded(seed, make))


def noisy_point(x, sigma, z):
    """x̃ = x + σz, the point where a denoising loss evaluates the model."""
    return x + sigma * z
