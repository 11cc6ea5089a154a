"""Lesson 01, the score function: ``gaussian_score``."""

from __future__ import annotations

import torch

from lessons_lib.densities import Gaussian, GaussianMixture

from .common import scaled
from .engine import Case, Exercise, Mistake, register, seeded


def reference(x, mean, cov):
    return Gaussian(mean, cov).score(x)


def _case(seed: int, batch: int, dim: int) -> Case:
    def make(g: torch.Generator) -> tuple:
        a = torch.randn(dim, dim, generator=g)
        cov = a @ a.T / dim + 0.5 * torch.eye(dim)  # positive definite, correlated coordinates
        cov = (cov + cov.T) / 2  # exactly symmetric in floating point
        mean = torch.randn(dim, generator=g)
        x = mean + 1.5 * torch.randn(batch, dim, generator=g)
        return x, mean, cov

    return Case(f"x of shape ({batch}, {dim}), mean of shape ({dim},), cov of shape ({dim}, {dim})", seeded(seed, make))


def _cases() -> list[Case]:
    return [_case(0, 5, 1), _case(1, 7, 2), _case(2, 4, 3), _case(3, 6, 5)]


def _times(x, mean, matrix):
    """(x − μ) M for a batch of rows."""
    return (x - mean) @ matrix


GAUSSIAN_SCORE = register(Exercise(
    name="gaussian_score",
    lesson="01_score_function",
    signature="(x, mean, cov)",
    summary="the score −Σ⁻¹(x − μ) of a Gaussian, x (B, d) → (B, d)",
    formula="s(x) = ∇ₓ log N(x; μ, Σ) = −Σ⁻¹(x − μ) for every row x of the batch, shape (B, d)",
    reference=reference,
    forbidden=(Gaussian.score, GaussianMixture.score),
    points=2,
    cases=_cases,
    description="Check ``gaussian_score(x, mean, cov)`` = −(x − μ)Σ⁻¹ against "
                ":meth:`lessons_lib.densities.Gaussian.score` on 1-, 2-, 3- and 5-dimensional Gaussians "
                "with correlated covariances.",
    mistakes=[
        scaled(
            "wrong sign: the score points towards the mean (uphill in log-density), s(x) = −Σ⁻¹(x − μ)",
            lambda *a: -1.0,
            reference,
        ),
        Mistake(
            "it multiplies by the covariance Σ; the score needs its inverse, the precision Σ⁻¹ "
            "(torch.linalg.inv(cov), or better torch.linalg.solve)",
            lambda x, mean, cov: -_times(x, mean, cov),
        ),
        Mistake(
            "wrong sign, and it multiplies by Σ instead of Σ⁻¹: s(x) = −Σ⁻¹(x − μ)",
            lambda x, mean, cov: _times(x, mean, cov),
        ),
        Mistake("the mean is not subtracted: use x − μ", lambda x, mean, cov: -x @ torch.linalg.inv(cov)),
        Mistake(
            "it divides by the variances (the diagonal of Σ) only; these covariances have "
            "off-diagonal terms (correlated coordinates): use the full inverse Σ⁻¹",
            lambda x, mean, cov: -(x - mean) / torch.diagonal(cov),
        ),
        Mistake(
            "it divides by the standard deviations: the score of N(μ, σ²) is −(x − μ)/σ², "
            "the inverse of the covariance, not of its square root",
            lambda x, mean, cov: -_times(x, mean, torch.linalg.inv(torch.linalg.cholesky(cov)).T),
        ),
        scaled(
            "it is twice the score: the ½ in log p = −½(x − μ)ᵀΣ⁻¹(x − μ) + const cancels the 2 "
            "from differentiating the quadratic form",
            lambda *a: 2.0,
            reference,
        ),
        scaled(
            "it is half the score: differentiating −½(x − μ)ᵀΣ⁻¹(x − μ) gives −Σ⁻¹(x − μ), the ½ cancels",
            lambda *a: 0.5,
            reference,
        ),
    ],
))
