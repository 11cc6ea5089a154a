r"""Densities whose score is known exactly: the reference for everything else.

A Gaussian :math:`\mathcal N(\mu, \Sigma)` in :math:`d` dimensions has

.. math::
    \log p(x) = -\tfrac12\big(d\log 2\pi + \log\det\Sigma + (x-\mu)^\top\Sigma^{-1}(x-\mu)\big),
    \qquad s(x) = \nabla_x \log p(x) = -\Sigma^{-1}(x-\mu).

A mixture :math:`p(x) = \sum_k \pi_k\,\mathcal N(x;\mu_k,\Sigma_k)` has the score
:math:`s(x) = \sum_k r_k(x)\,\big(-\Sigma_k^{-1}(x-\mu_k)\big)` with responsibilities
:math:`r_k(x) = \pi_k\mathcal N(x;\mu_k,\Sigma_k)/p(x)`: a responsibility-weighted average of the
components' scores.

Perturbing with Gaussian noise, :math:`\tilde x = x + \sigma z` with :math:`z\sim\mathcal N(0,I)`,
convolves the density with :math:`\mathcal N(0,\sigma^2 I)`; for these families that only adds
:math:`\sigma^2 I` to every covariance, so ``perturbed(sigma)`` is exact.

Points are batch-first with the dimension last: ``x`` has shape ``(..., d)`` (for 1-D data,
``(n, 1)``). Parameters are stored in float64; evaluation happens in the dtype of ``x``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._validate import (
    as_tensor,
    require_callable,
    require_count,
    require_generator,
    require_positive,
    require_sigma,
    require_tensor,
)

__all__ = ["Gaussian", "GaussianMixture", "noisy_score", "SampleErrors", "sample_errors", "density_from_score_1d",
           "fisher_constant_2d", "total_variation_1d"]


def _covariance(cov, d: int, name: str) -> torch.Tensor:
    """Accept a full (d, d) matrix or a scalar variance (isotropic); check it is SPD."""
    c = as_tensor(cov, name, dtype=torch.float64)
    if c.dim() == 0:
        if c <= 0:
            raise ValueError(f"{name}: a variance must be > 0, got {c.item()}")
        c = c * torch.eye(d, dtype=torch.float64)
    if c.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}) or be a scalar, got {tuple(c.shape)}")
    if not torch.allclose(c, c.T, rtol=1e-8, atol=1e-10):
        raise ValueError(f"{name} must be symmetric")
    chol, info = torch.linalg.cholesky_ex(c)
    if info != 0:
        eig_min = torch.linalg.eigvalsh(c).min().item()
        raise ValueError(f"{name} is not positive definite (smallest eigenvalue {eig_min:.3g})")
    return c


def _check_points(x: torch.Tensor, d: int, name: str = "x") -> torch.Tensor:
    require_tensor(x, name)
    if x.dim() == 0 or x.shape[-1] != d:
        raise ValueError(
            f"x must have shape (..., {d}) for a {d}-dimensional density, got {tuple(x.shape)}"
            + ("; for 1-D data use x[:, None]" if d == 1 and x.dim() == 1 else "")
        )
    return x


class Gaussian:
    """The Gaussian N(mean, cov) in any dimension.

    ``mean``: shape (d,) (a float is read as d = 1); ``cov``: shape (d, d), or a scalar variance
    for an isotropic Gaussian.
    """

    def __init__(self, mean, cov):
        m = as_tensor(mean, "mean", dtype=torch.float64)
        if m.dim() == 0:
            m = m.reshape(1)
        if m.dim() != 1:
            raise ValueError(f"mean must have shape (d,), got {tuple(m.shape)}")
        self.mean = m
        self.dim = m.shape[0]
        self.cov = _covariance(cov, self.dim, "cov")
        self._chol = torch.linalg.cholesky(self.cov)
        self._precision = torch.cholesky_inverse(self._chol)
        self._logdet = 2.0 * torch.log(torch.diagonal(self._chol)).sum()

    def __repr__(self) -> str:
        return f"Gaussian(mean={self.mean.tolist()}, cov={self.cov.tolist()})"

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; mean, cov), shape ``x.shape[:-1]``."""
        x = _check_points(x, self.dim)
        diff = x - self.mean.to(x)
        maha = torch.einsum("...i,ij,...j->...", diff, self._precision.to(x), diff)
        return -0.5 * (self.dim * math.log(2 * math.pi) + self._logdet.to(x) + maha)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """s(x) = -cov⁻¹ (x - mean), same shape as ``x``."""
        x = _check_points(x, self.dim)
        return -(x - self.mean.to(x)) @ self._precision.to(x)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=None) -> torch.Tensor:
        """n draws ``mean + L z`` with ``L Lᵀ = cov``; shape (n, d)."""
        n = require_count(n, "n", minimum=0)
        require_generator(generator)
        dtype = dtype or torch.get_default_dtype()
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return (self.mean + z @ self._chol.T).to(dtype)

    def perturbed(self, sigma) -> Gaussian:
        """The exact density of x + σz, z ~ N(0, I): N(mean, cov + σ²I)."""
        s = float(require_sigma(sigma))
        return Gaussian(self.mean, self.cov + s**2 * torch.eye(self.dim, dtype=torch.float64))


def _softmax_components(log_joint: torch.Tensor) -> torch.Tensor:
    """softmax over the last (component) dimension, computed with that dimension moved to the
    front: torch's CPU kernel is several times slower over a last dimension of two or three."""
    return torch.softmax(log_joint.movedim(-1, 0).contiguous(), dim=0).movedim(0, -1)


class GaussianMixture:
    """Σₖ weights[k] · N(means[k], covs[k]) in any dimension.

    ``weights``: shape (K,), positive, summing to one. ``means``: shape (K, d) (shape (K,) is
    read as 1-D). ``covs``: shape (K, d, d), or (K,) scalar variances (isotropic components),
    or a single scalar shared by all components.
    """

    def __init__(self, weights, means, covs):
        w = as_tensor(weights, "weights", dtype=torch.float64)
        if w.dim() != 1 or w.numel() == 0:
            raise ValueError(f"weights must have shape (K,), got {tuple(w.shape)}")
        if (w <= 0).any():
            raise ValueError(f"weights must all be > 0, got {w.tolist()}")
        if abs(w.sum().item() - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to one, got sum {w.sum().item():.6g}")
        m = as_tensor(means, "means", dtype=torch.float64)
        if m.dim() == 1:
            m = m[:, None]
        if m.dim() != 2 or m.shape[0] != w.shape[0]:
            raise ValueError(
                f"means must have shape (K, d) with K = {w.shape[0]} components, got {tuple(m.shape)}"
            )
        k, d = m.shape
        c = as_tensor(covs, "covs", dtype=torch.float64)
        if c.dim() == 0:
            c = c.expand(k)
        if c.dim() == 1:
            if c.shape[0] != k:
                raise ValueError(f"covs must have K = {k} variances, got {c.shape[0]}")
            covs_list = [_covariance(c[i], d, f"covs[{i}]") for i in range(k)]
        elif c.shape == (k, d, d):
            covs_list = [_covariance(c[i], d, f"covs[{i}]") for i in range(k)]
        else:
            raise ValueError(f"covs must have shape ({k}, {d}, {d}) or ({k},), got {tuple(c.shape)}")
        self.weights = w / w.sum()
        self.means = m
        self.covs = torch.stack(covs_list)
        self.dim = d
        self.n_components = k
        self._chol = torch.linalg.cholesky(self.covs)
        self._precision = torch.cholesky_inverse(self._chol)
        self._logdet = 2.0 * torch.log(torch.diagonal(self._chol, dim1=-2, dim2=-1)).sum(-1)

    def __repr__(self) -> str:
        return (
            f"GaussianMixture(weights={self.weights.tolist()}, means={self.means.tolist()}, "
            f"covs={self.covs.tolist()})"
        )

    def _component_terms(self, x: torch.Tensor):
        """Per component: log(πₖ N(x; μₖ, Σₖ)) and the component score, in x's dtype."""
        x = _check_points(x, self.dim)
        diff = x[..., None, :] - self.means.to(x)  # (..., K, d)
        prec_diff = torch.einsum("kij,...kj->...ki", self._precision.to(x), diff)
        maha = (diff * prec_diff).sum(-1)
        log_norm = -0.5 * (self.dim * math.log(2 * math.pi) + self._logdet.to(x) + maha)
        return torch.log(self.weights.to(x)) + log_norm, -prec_diff

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = logsumexpₖ (log πₖ + log N(x; μₖ, Σₖ)), shape ``x.shape[:-1]``."""
        log_joint, _ = self._component_terms(x)
        return torch.logsumexp(log_joint, dim=-1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """rₖ(x) = p(component k | x), shape ``x.shape[:-1] + (K,)``."""
        log_joint, _ = self._component_terms(x)
        return _softmax_components(log_joint)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """s(x) = Σₖ rₖ(x) · (-Σₖ⁻¹(x - μₖ)), same shape as ``x``."""
        log_joint, comp_scores = self._component_terms(x)
        r = _softmax_components(log_joint)
        return (r[..., None] * comp_scores).sum(-2)

    def sample(
        self, n: int, generator: torch.Generator | None = None, dtype=None, return_labels: bool = False
    ):
        """n draws: a component k ~ Categorical(π), then x ~ N(μₖ, Σₖ). Shape (n, d).

        With ``return_labels=True`` also returns the component index of each draw.
        """
        n = require_count(n, "n", minimum=0)
        require_generator(generator)
        dtype = dtype or torch.get_default_dtype()
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator) if n else (
            torch.zeros(0, dtype=torch.long)
        )
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[labels] + torch.einsum("nij,nj->ni", self._chol[labels], z)
        x = x.to(dtype)
        return (x, labels) if return_labels else x

    def perturbed(self, sigma) -> GaussianMixture:
        """The exact density of x + σz, z ~ N(0, I): every covariance gains σ²I."""
        s = float(require_sigma(sigma))
        eye = torch.eye(self.dim, dtype=torch.float64)
        return GaussianMixture(self.weights, self.means, self.covs + s**2 * eye)

    def mean(self) -> torch.Tensor:
        """The exact mean Σₖ πₖ μₖ, shape (d,), float64."""
        return (self.weights[:, None] * self.means).sum(0)

    def covariance(self) -> torch.Tensor:
        """The exact covariance Σₖ πₖ (Σₖ + (μₖ − m)(μₖ − m)ᵀ), m the mean; shape (d, d), float64."""
        centred = self.means - self.mean()
        outer = centred[:, :, None] * centred[:, None, :]
        return (self.weights[:, None, None] * (self.covs + outer)).sum(0)

    def component_fractions(self, x: torch.Tensor) -> torch.Tensor:
        """The fraction of the points x (shape (n, d)) whose most responsible component is k,
        shape (K,), float64: how a sampler's output splits between the modes."""
        labels = self.responsibilities(x.to(torch.float64)).argmax(-1).reshape(-1)
        return torch.bincount(labels, minlength=self.n_components).double() / labels.numel()

    def posterior_mean(self, y: torch.Tensor, sigma) -> torch.Tensor:
        r"""E[x | x + σz = y], computed from the posterior directly (not through the score).

        Given the observation, component k has posterior weight rₖ(y) under the *perturbed*
        mixture, and within it x | y is Gaussian with mean
        μₖ + Σₖ(Σₖ + σ²I)⁻¹(y − μₖ). Tweedie's formula says the result also equals
        y + σ²∇log p_σ(y); the lessons check that numerically.
        """
        s = float(require_sigma(sigma))
        y = _check_points(y, self.dim)
        noisy = self.perturbed(s)
        r = noisy.responsibilities(y)  # (..., K)
        gain = self.covs @ noisy._precision  # Σₖ (Σₖ + σ²I)⁻¹, (K, d, d)
        diff = y[..., None, :] - self.means.to(y)
        cond_means = self.means.to(y) + torch.einsum("kij,...kj->...ki", gain.to(y), diff)
        return (r[..., None] * cond_means).sum(-2)


def noisy_score(density):
    """The exact σ-conditioned score ``score_fn(x, sigma)`` = ∇ₓ log p_σ(x) of a density with an
    exact ``perturbed(sigma)`` (a :class:`Gaussian` or :class:`GaussianMixture`): the convention
    of :func:`lessons_lib.samplers.annealed_langevin` and :mod:`lessons_lib.sde`, with the true
    score in place of a network. The perturbed densities are cached per σ."""
    if not hasattr(density, "perturbed"):
        raise ValueError(f"density must have an exact perturbed(sigma), got {type(density).__name__}")
    cache: dict[float, object] = {}

    def score(x: torch.Tensor, sigma) -> torch.Tensor:
        key = float(require_sigma(sigma))
        if key not in cache:
            cache[key] = density.perturbed(key)
        return cache[key].score(x)

    return score


class SampleErrors(NamedTuple):
    """How far samples are from a mixture: the largest error of the mode weights (by
    :meth:`GaussianMixture.component_fractions`), the distance between the sample mean and the
    mean, and the covariance error relative to the covariance (Frobenius norms)."""

    weight: float
    mean: float
    covariance: float

    def __str__(self) -> str:
        return f"weights ±{self.weight:.3f}, mean {self.mean:.3f}, covariance {self.covariance:.3f} (rel.)"


def sample_errors(mixture: GaussianMixture, x: torch.Tensor) -> SampleErrors:
    """Compare samples ``x`` (shape (n, d)) with the exact weights and moments of ``mixture``."""
    x = _check_points(x, mixture.dim).to(torch.float64).reshape(-1, mixture.dim)
    cov = mixture.covariance()
    sample_cov = torch.cov(x.T).reshape(mixture.dim, mixture.dim)
    return SampleErrors(
        float((mixture.component_fractions(x) - mixture.weights).abs().max()),
        float(torch.linalg.norm(x.mean(0) - mixture.mean())),
        float(torch.linalg.norm(sample_cov - cov) / torch.linalg.norm(cov)),
    )


def _check_grid(xs) -> torch.Tensor:
    """A 1-D grid: shape (n,) with n >= 2, finite, strictly increasing; returned in float64."""
    require_tensor(xs, "xs", dim=1)
    if xs.numel() < 2:
        raise ValueError(f"xs must be a 1-D tensor of at least 2 grid points, got {xs!r:.80}")
    g = xs.detach().to(torch.float64)
    if not torch.isfinite(g).all() or not (g[1:] > g[:-1]).all():
        raise ValueError("xs must be finite and strictly increasing")
    return g


def _trapezoid_cumulative(values: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """∫_{xs[0]}^{xs[i]} f for every i by the trapezoid rule (first entry 0)."""
    pieces = 0.5 * (values[1:] + values[:-1]) * (xs[1:] - xs[:-1])
    return torch.cat([pieces.new_zeros(1), torch.cumsum(pieces, 0)])


def density_from_score_1d(score_fn, xs: torch.Tensor) -> torch.Tensor:
    r"""Recover a normalised 1-D density on a grid from its score alone.

    The score is the derivative of the log-density, so up to the (unknown) constant
    :math:`\log p(x_0)`

    .. math:: \log p(x) = \log p(x_0) + \int_{x_0}^{x} s(u)\,du ,

    and the constant is fixed by :math:`\int p = 1`. Both integrals use the trapezoid rule on
    ``xs``, so the grid must cover the mass and be fine enough for the score. The normalisation is
    over the grid only: for a score whose :math:`e^{\int s}` is not integrable on the line (a
    learned score that turns back towards −∞ or +∞ far from the data), the result depends on the
    grid's range, and masses read off it describe that window, not a density.

    ``score_fn`` maps points of shape (n, 1) to scores of shape (n, 1) (a ``ScoreMLP(1)``, a
    density's ``score``...); ``xs`` is a strictly increasing grid of shape (n,). Returns the
    density on the grid, shape (n,), float64, integrating to one by the trapezoid rule.
    """
    g = _check_grid(xs)
    require_callable(score_fn, "score_fn")
    with torch.no_grad():
        s = score_fn(xs[:, None])
    if not isinstance(s, torch.Tensor) or s.shape != (g.numel(), 1):
        raise ValueError(f"score_fn must map points of shape (n, 1) to scores of shape (n, 1), got {s!r:.80}")
    log_p = _trapezoid_cumulative(s[:, 0].to(torch.float64), g)
    p = torch.exp(log_p - log_p.max())
    return p / _trapezoid_cumulative(p, g)[-1]


def fisher_constant_2d(density, half_width: float = 10.0, n: int = 801) -> float:
    r"""The constant :math:`C = \tfrac12\,\mathbb E_p\|\nabla_x\log p(x)\|^2` of a 2-D density by
    quadrature: a Riemann sum of :math:`p\cdot\tfrac12\|s\|^2` on an ``n`` × ``n`` grid over
    :math:`[-h, h]^2`, ``h = half_width``, in float64. It is ESM minus ISM for every model (lesson 02)
    and the ESM of the zero model. ``density`` has ``log_prob`` and ``score`` on points (B, 2)."""
    half_width = float(require_positive(half_width, "half_width"))
    n = require_count(n, "n", minimum=2)
    u = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(u, u, indexing="xy")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
    with torch.no_grad():
        weight = density.log_prob(points).exp()
        half_sq = 0.5 * (density.score(points).to(torch.float64) ** 2).sum(-1)
    return float((weight * half_sq).sum() * (u[1] - u[0]) ** 2)


def total_variation_1d(p: torch.Tensor, q: torch.Tensor, xs: torch.Tensor) -> float:
    r"""Total-variation distance :math:`\tfrac12\int|p(x) - q(x)|\,dx` between two densities
    given by their values on the grid ``xs`` (trapezoid rule); 0 for equal densities, 1 for
    densities with disjoint supports."""
    g = _check_grid(xs)
    p, q = require_tensor(p, "p"), require_tensor(q, "q")
    if p.shape != g.shape or q.shape != g.shape:
        raise ValueError(f"p and q must hold one value per grid point, shape {tuple(g.shape)}")
    diff = (p.to(torch.float64) - q.to(torch.float64)).abs()
    return 0.5 * float(_trapezoid_cumulative(diff, g)[-1])
