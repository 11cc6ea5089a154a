"""Explorers of the score itself: a 1-D mixture's density and score (lesson 01), and the variance
of Hutchinson's trace estimate against the number of projections (lesson 03)."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from .._validate import as_tensor, require_count, require_range, require_seed
from ..autodiff import hutchinson_variance, linear_hutchinson_estimates
from ..densities import GaussianMixture
from ..utils import make_generator
from .base import Explorer, float_slider

__all__ = ["MixtureScoreExplorer", "ProjectionVarianceExplorer"]


class MixtureScoreExplorer(Explorer):
    """A 1-D two-component mixture w·N(μ₁, σ₁²) + (1 − w)·N(μ₂, σ₂²): its density (top) and its
    score s(x) = d/dx log p(x) (bottom), both computed by :class:`GaussianMixture`.

    Sliders: ``weight`` (w), ``mean1``, ``mean2``, ``std1``, ``std2``. Each redraw updates
    ``density_line`` and ``score_line`` in place, evaluated on the grid ``xs``.
    """

    def __init__(self, weight=0.3, mean1=-2.0, mean2=2.0, std1=0.7, std2=1.0, xlim=(-6.0, 6.0), n: int = 400):
        xlim, n = require_range(xlim, "xlim"), require_count(n, "n", minimum=2)
        self.xs = torch.linspace(xlim[0], xlim[1], n, dtype=torch.float64)
        self.weight = float_slider("weight w", weight, 0.02, 0.98, 0.02, name="weight")
        self.mean1 = float_slider("mean μ₁", mean1, -4.0, 4.0, 0.1, name="mean1")
        self.mean2 = float_slider("mean μ₂", mean2, -4.0, 4.0, 0.1, name="mean2")
        self.std1 = float_slider("width σ₁", std1, 0.2, 2.0, 0.05, name="std1")
        self.std2 = float_slider("width σ₂", std2, 0.2, 2.0, 0.05, name="std2")
        fig, (self.ax_density, self.ax_score) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
        (self.density_line,) = self.ax_density.plot(self.xs.numpy(), np.zeros(n), color="C0")
        (self.score_line,) = self.ax_score.plot(self.xs.numpy(), np.zeros(n), color="C3")
        self.ax_score.axhline(0.0, color="grey", lw=0.8)
        self.ax_density.set(ylabel="density p(x)", title="mixture density and its score")
        self.ax_score.set(xlabel="x", ylabel="score d/dx log p(x)")
        fig.tight_layout()
        super().__init__([self.weight, self.mean1, self.mean2, self.std1, self.std2], fig)

    def mixture(self) -> GaussianMixture:
        """The mixture described by the sliders' current values."""
        w = self.weight.value
        return GaussianMixture(
            [w, 1.0 - w], [[self.mean1.value], [self.mean2.value]], [self.std1.value**2, self.std2.value**2]
        )

    def draw(self) -> None:
        mix = self.mixture()
        p = mix.log_prob(self.xs[:, None]).exp().numpy()
        s = mix.score(self.xs[:, None])[:, 0].numpy()
        self.density_line.set_ydata(p)
        self.score_line.set_ydata(s)
        self.ax_density.set_ylim(0.0, 1.1 * p.max())
        bound = min(float(np.abs(s).max()), 15.0)
        self.ax_score.set_ylim(-1.1 * bound, 1.1 * bound)
        modes = self.xs[:-1].numpy()[(s[:-1] > 0) & (s[1:] <= 0)]  # the score crosses zero downwards
        self.message.value = "modes of p (score crosses 0 downwards) near x = " + ", ".join(f"{m:.2f}" for m in modes)


class ProjectionVarianceExplorer(Explorer):
    """Hutchinson's estimate of tr(A) with M random projections, repeated ``n_repeats`` times.

    The field is linear, f(x) = A x, so its Jacobian is the matrix A everywhere (given, or a
    random symmetric d×d matrix built from ``seed``). The ``diagonal`` control multiplies A's
    diagonal by a factor c, A(c) = c·diag(A) + (A − diag(A)): c = 0 leaves only off-diagonal
    entries, large c makes A diagonally dominant. Left: histogram of the ``n_repeats`` estimates
    (1/M)Σₘ vₘᵀ A(c) vₘ (``hist``, a step patch) with the exact trace marked. Right: the measured
    variance against M on log-log axes with the closed forms 2Σ_{i≠j}A_ij²/M (Rademacher) and
    2‖A‖_F²/M (Gaussian) for the current c. Controls: ``n_projections`` (M), ``kind`` and
    ``diagonal`` (c). The estimates are :func:`~lessons_lib.autodiff.linear_hutchinson_estimates`
    with a generator seeded with ``seed`` for every setting, so a notebook that calls that
    function with the same matrix, count and seed prints exactly the numbers shown here.
    """

    M_VALUES = (1, 2, 4, 8, 16, 32, 64)
    DIAGONAL_SCALES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)

    def __init__(self, A=None, dim: int = 10, n_repeats: int = 2000, seed: int = 0, bins: int = 40):
        dim, seed = require_count(dim, "dim"), require_seed(seed)
        n_repeats, bins = require_count(n_repeats, "n_repeats", minimum=2), require_count(bins, "bins")
        if A is None:
            g = make_generator(seed)
            B = torch.randn(dim, dim, generator=g, dtype=torch.float64)
            A = (B + B.T) / 2
        self.A0 = as_tensor(A, "A", dtype=torch.float64)
        if self.A0.dim() != 2 or self.A0.shape[0] != self.A0.shape[1]:
            raise ValueError(f"A must be a square matrix, got shape {tuple(self.A0.shape)}")
        self.n_repeats = n_repeats
        self.seed = seed
        self.bins = bins
        self.n_projections = widgets.SelectionSlider(
            options=list(self.M_VALUES), value=1, description="projections M", continuous_update=False
        )
        self.kind = widgets.ToggleButtons(options=["rademacher", "gaussian"], value="rademacher", description="v")
        self.diagonal = widgets.SelectionSlider(
            options=list(self.DIAGONAL_SCALES), value=1.0, description="diagonal × c", continuous_update=False
        )
        fig, (self.ax_hist, self.ax_var) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        self.hist = self.ax_hist.stairs(np.zeros(bins), np.linspace(-1.0, 1.0, bins + 1), fill=True, alpha=0.6)
        self.trace_line = self.ax_hist.axvline(0.0, color="k", ls="--", label="exact tr A")
        self.ax_hist.set(xlabel="estimate of tr A", ylabel="density", title="Hutchinson estimates")
        self.ax_hist.legend(loc="upper right")
        ms = np.array(self.M_VALUES, dtype=float)
        self.formula_lines = {}
        for name, color in (("rademacher", "C0"), ("gaussian", "C1")):
            (self.formula_lines[name],) = self.ax_var.loglog(ms, ms, color=color, label=f"{name}: closed form / M")
        (self.var_point,) = self.ax_var.loglog([1.0], [1.0], "o", color="k", label="measured (current setting)")
        self.ax_var.set(xlabel="number of projections M", ylabel="variance of the estimate", title="variance ∝ 1/M",
                        xticks=list(self.M_VALUES), xticklabels=[str(m) for m in self.M_VALUES])
        self.ax_var.minorticks_off()
        self.ax_var.legend(loc="lower left")
        super().__init__([self.n_projections, self.kind, self.diagonal], fig)

    @property
    def A(self) -> torch.Tensor:
        """The matrix for the current ``diagonal`` factor c: c·diag(A) + off-diagonal part."""
        diag = torch.diag(torch.diagonal(self.A0))
        return self.A0 - diag + float(self.diagonal.value) * diag

    @property
    def trace(self) -> float:
        return float(torch.trace(self.A))

    @property
    def variance_formula(self) -> dict:
        """Closed-form variance of one projection, per kind, for the current matrix."""
        return {kind: hutchinson_variance(self.A, kind) for kind in ("rademacher", "gaussian")}

    def estimates(self, n_projections: int, kind: str) -> torch.Tensor:
        """``n_repeats`` independent Hutchinson estimates of tr A, each from M projections."""
        return linear_hutchinson_estimates(self.A, self.n_repeats, n_projections, kind, make_generator(self.seed))

    def draw(self) -> None:
        m, kind = self.n_projections.value, self.kind.value
        formula, trace = self.variance_formula, self.trace
        width = 4 * max(max(formula.values()), 1e-12) ** 0.5
        self.edges = np.linspace(trace - width, trace + width, self.bins + 1)
        est = self.estimates(m, kind).numpy()
        values, _ = np.histogram(est, bins=self.edges, density=True)
        self.hist.set_data(values, self.edges)
        self.ax_hist.set_xlim(self.edges[0], self.edges[-1])
        self.ax_hist.set_ylim(0.0, 1.1 * max(values.max(), 1e-12))
        self.trace_line.set_xdata([trace, trace])
        self.trace_line.set_label(f"exact tr A = {trace:.2f}")
        self.ax_hist.legend(loc="upper right")
        ms = np.array(self.M_VALUES, dtype=float)
        for name, line in self.formula_lines.items():
            line.set_ydata(np.maximum(formula[name], 1e-12) / ms)
        var = float(est.var(ddof=1))
        self.var_point.set_data([m], [var])
        top = max(formula.values())
        self.ax_var.set_ylim(max(min(formula.values()), 1e-3 * top) / ms[-1] / 2, 2 * top)
        self.message.value = (
            f"c = {self.diagonal.value:g}, M = {m}, {kind}: mean {est.mean():.3f} (exact {trace:.3f}), "
            f"variance {var:.3f} (closed form {formula[kind] / m:.3f})"
        )

