"""Lesson 01, the score function: ``gaussian_score``, ``mixture_score`` and the written ``maximal_angle``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lessons_lib.densities import Gaussian, GaussianMixture

from .common import scaled
from .engine import Case, Exercise, Mistake, Written, call, fail, register, seeded


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
            "wrong sign: yours points downhill in log-density; the score points uphill "
            "(within 90° of the direction to the mean)",
            lambda *a: -1.0,
            reference,
        ),
        Mistake(
            "it multiplies by the covariance Σ; the score needs its inverse, the precision Σ⁻¹ "
            "(solving a linear system with Σ is better than inverting it)",
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


# --------------------------------------------------------------------------- the mixture score
def mixture_reference(x, weights, means, covs):
    return GaussianMixture(weights, means, covs).score(x)


def _mixture_case(seed: int, batch: int, dim: int, k: int, far: float = 0.0) -> Case:
    """K correlated components; with ``far`` > 0 the points lie about ``far`` from every mean, where
    each πₖ N(x; μₖ, Σₖ) underflows to 0 in floating point."""

    def make(g: torch.Generator) -> tuple:
        weights = torch.rand(k, generator=g) + 0.2
        weights = weights / weights.sum()
        means = 2.0 * torch.randn(k, dim, generator=g)
        a = torch.randn(k, dim, dim, generator=g)
        covs = a @ a.transpose(-1, -2) / dim + 0.5 * torch.eye(dim)
        covs = (covs + covs.transpose(-1, -2)) / 2
        direction = torch.randn(batch, dim, generator=g)
        if far:
            x = far * direction / direction.norm(dim=-1, keepdim=True)
        else:
            x = means[torch.randint(0, k, (batch,), generator=g)] + 1.5 * direction
        return x, weights, means, covs

    where = f", points at distance {far:g} from the origin" if far else ""
    return Case(f"x of shape ({batch}, {dim}), {k} components{where}", seeded(seed, make))


def _mixture_cases() -> list[Case]:
    return [_mixture_case(30, 6, 1, 2), _mixture_case(31, 7, 2, 3), _mixture_case(32, 5, 3, 4),
            _mixture_case(33, 6, 2, 3, far=40.0)]


def _component_parts(x, weights, means, covs):
    """log πₖ + log N(x; μₖ, Σₖ), shape (B, K), and the component scores, shape (B, K, d)."""
    precision = torch.linalg.inv(covs)
    diff = x[:, None, :] - means
    comp = -torch.einsum("kij,bkj->bki", precision, diff)
    maha = -(diff * comp).sum(-1)
    log_joint = torch.log(weights) - 0.5 * (maha + torch.logdet(2 * torch.pi * covs))
    return log_joint, comp


def _mixture_from(weights_of: Callable) -> Callable:
    """A mixture score Σₖ wₖ(log_joint) · component score, with the weights computed by ``weights_of``."""

    def wrong(x, weights, means, covs):
        log_joint, comp = _component_parts(x, weights, means, covs)
        return (weights_of(log_joint, weights)[..., None] * comp).sum(1)

    return wrong


def _naive_mixture(x, weights, means, covs):
    """rₖ = πₖpₖ / Σⱼ πⱼpⱼ with the densities exponentiated first (0/0 far from the data)."""
    log_joint, comp = _component_parts(x, weights, means, covs)
    joint = log_joint.exp()
    return ((joint / joint.sum(-1, keepdim=True))[..., None] * comp).sum(1)


def _mixture_precheck(ex: Exercise, fn: Callable) -> None:
    """Far from every mean a sum of exponentiated densities underflows: say so before the numbers."""
    __tracebackhide__ = True
    case = _mixture_cases()[-1]
    result = call(ex, fn, case)
    if result is None:
        return
    got, _ = result
    if isinstance(got, torch.Tensor) and got.shape == case.build()[0].shape and not torch.isfinite(got).all():
        raise fail(ex, case, "it returns NaN far from the data: each πₖ N(x; μₖ, Σₖ) underflows to 0 there, "
                   "so Σₖ πₖ pₖ(x) is 0 and the responsibilities are 0/0 (underflow)")


MIXTURE_SCORE = register(Exercise(
    name="mixture_score",
    lesson="01_score_function",
    signature="(x, weights, means, covs)",
    summary="the score of a Gaussian mixture, stable far from the data, x (B, d) → (B, d)",
    formula=("s(x) = Σₖ rₖ(x) · (−Σₖ⁻¹(x − μₖ)) with the responsibilities rₖ(x) = πₖ N(x; μₖ, Σₖ) / "
             "Σⱼ πⱼ N(x; μⱼ, Σⱼ), computed without underflow, for every row x of the batch"),
    reference=mixture_reference,
    forbidden=(GaussianMixture.score, GaussianMixture.responsibilities, GaussianMixture.log_prob,
               GaussianMixture._component_terms, Gaussian.score),
    points=3,
    cases=_mixture_cases,
    description="Check ``mixture_score(x, weights, means, covs)`` against "
                ":meth:`lessons_lib.densities.GaussianMixture.score` on mixtures of 2 to 4 correlated "
                "components in 1 to 3 dimensions, including points 40 units from the origin.",
    precheck=_mixture_precheck,
    mistakes=[
        Mistake("the responsibilities are missing: it sums the component scores with weight one each",
                _mixture_from(lambda lj, w: torch.ones_like(lj))),
        Mistake("it weights the component scores by the mixture weights πₖ alone; the weights are the "
                "responsibilities rₖ(x) = p(component k | x), which depend on x",
                _mixture_from(lambda lj, w: w.expand_as(lj))),
        Mistake("the responsibilities leave out the weights πₖ: rₖ ∝ πₖ N(x; μₖ, Σₖ)",
                _mixture_from(lambda lj, w: torch.softmax(lj - torch.log(w), -1))),
        Mistake("the responsibilities are not normalised: divide by Σⱼ πⱼ N(x; μⱼ, Σⱼ) (a softmax of the "
                "log-joints)", _mixture_from(lambda lj, w: lj.exp())),
        Mistake("wrong sign: each component's score is −Σₖ⁻¹(x − μₖ)",
                lambda *a: -mixture_reference(*a)),
    ],
))


MAXIMAL_ANGLE = register(Written(
    name="maximal_angle", lesson="01_score_function",
    summary="the largest angle between a Gaussian's score and the direction to its mean, derived", points=3))
