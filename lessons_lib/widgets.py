"""Interactive explorers: thin ipywidgets controls over the library's pure functions.

Every explorer is an :class:`Explorer`: it owns one persistent matplotlib figure, a list of
controls and a message line. A change of any control calls :meth:`Explorer.draw`, which
updates the existing artists in place (``line.set_ydata``...); the figure is then rendered
once, to a PNG, into the explorer's one ``ipywidgets.Image`` (``picture``), whose bytes travel
to the browser as a binary message and replace the picture in place. Controls are wired with
``observe`` (not ``interact``, which swallows exceptions), so a test can set
``slider.value = v`` and any error reaches it. ``last_update_seconds`` records how long the
last update took.

Why an Image widget and not ``display(fig)`` in an Output widget: the inline backend renders the
figure twice per display (``bbox_inches="tight"`` measures it first) at the default compression,
base64-encodes it into JSON, and the browser rebuilds the output area each time.
``benchmarks/felt_latency.py`` measures both in JupyterLab (benchmarks/RESULTS.md: the σ
explorer's felt median went from 227 ms to 85 ms).

Display an explorer by leaving it as the last expression of a cell.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._validate import check_positive, check_sigma
from .autodiff import hutchinson_variance, linear_hutchinson_estimates
from .densities import GaussianMixture, total_variation_1d
from .noise import check_sigmas
from .plotting import grid_2d, image_grid, plot_density_2d
from .samplers import DivergenceError, langevin
from .utils import make_generator

__all__ = ["Explorer", "MixtureScoreExplorer", "ProjectionVarianceExplorer", "SigmaExplorer", "LangevinExplorer",
           "SigmaLevelExplorer", "SDETimeExplorer"]


class Explorer:
    """Base class: subclasses build ``self.fig`` and the artists, list their ``controls`` and
    implement :meth:`draw`, which reads the controls and updates the artists.

    A subclass whose axes never change (limits, ticks, labels, legends fixed) also returns the
    artists that do change from :meth:`moving_artists`; the rest of the figure is then rendered
    once, kept as a bitmap, and each update draws only those artists on top of it ("blitting",
    as matplotlib's animations do), which skips the text layout that dominates a full render."""

    def __init__(self, controls: list[widgets.Widget], fig: plt.Figure):
        self.controls = controls
        self.fig = fig
        plt.close(fig)  # shown only through the Image widget, never twice
        self.canvas = FigureCanvasAgg(fig)  # renders into memory, whatever the notebook's backend
        self._background = None
        # the figure as the browser shows it: at its own size, not stretched to the box's width
        self.picture = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start", max_width="100%"))
        self.message = widgets.HTML(value="")
        self.last_update_seconds = float("nan")
        for control in controls:
            control.observe(self._on_change, names="value")
        self.update()
        # The layout engine has placed the axes for the first figure; keep them there. Re-running
        # constrained layout on every update would cost a fifth of a render, and the axes would
        # shift as tick labels change width while one drags.
        fig.set_layout_engine("none")

    def draw(self) -> None:
        """Recompute from the controls' values and update the artists (subclasses)."""
        raise NotImplementedError

    def moving_artists(self) -> list | None:
        """The artists :meth:`draw` changes, if nothing else in the figure ever changes; ``None``
        (the default) renders the whole figure on every update."""
        return None

    def update(self) -> None:
        start = time.perf_counter()
        # The message that names the new values reaches the browser after the new figure, never
        # before it: whoever sees the message (a student, the browser test) sees its figure.
        with self.message.hold_sync():
            self.draw()
            self.picture.value = self.png()
        self.last_update_seconds = time.perf_counter() - start

    def render(self) -> None:
        """Bring the canvas up to date: a full draw, or the kept background plus the moving artists."""
        moving = self.moving_artists()
        if moving is None:
            self.canvas.draw()
            return
        for artist in moving:
            artist.set_animated(True)  # left out of full draws, hence out of the background
        if self._background is None:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        else:
            self.canvas.restore_region(self._background)
        for artist in moving:
            self.fig.draw_artist(artist)

    def png(self) -> bytes:
        """The figure as it is now, as PNG bytes (zlib level 1: faster to encode than the default
        level 6, for a larger file; ``benchmarks/felt_latency.py`` measures the whole path)."""
        self.render()
        buffer = io.BytesIO()
        PIL.Image.fromarray(np.asarray(self.canvas.buffer_rgba())).save(buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def _on_change(self, change) -> None:
        self.update()

    @property
    def widget(self) -> widgets.Widget:
        return widgets.VBox([widgets.HBox(self.controls), self.message, self.picture])

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget for JupyterLab, and beside it a PNG of the figure as it is now, which
        every reader that cannot run the widget shows instead: GitHub, nbviewer and the course
        book show the explorer's initial state, not an empty box."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.picture.value).decode("ascii")
        return bundle


# --- lessons 01–03 ---


def _slider(description: str, value: float, lo: float, hi: float, step: float, **kwargs) -> widgets.FloatSlider:
    return widgets.FloatSlider(value=value, min=lo, max=hi, step=step, description=description, **kwargs)


class MixtureScoreExplorer(Explorer):
    """A 1-D two-component mixture w·N(μ₁, σ₁²) + (1 − w)·N(μ₂, σ₂²): its density (top) and its
    score s(x) = d/dx log p(x) (bottom), both computed by :class:`GaussianMixture`.

    Sliders: ``weight`` (w), ``mean1``, ``mean2``, ``std1``, ``std2``. Each redraw updates
    ``density_line`` and ``score_line`` in place, evaluated on the grid ``xs``.
    """

    def __init__(self, weight=0.3, mean1=-2.0, mean2=2.0, std1=0.7, std2=1.0, xlim=(-6.0, 6.0), n: int = 400):
        self.xs = torch.linspace(xlim[0], xlim[1], n, dtype=torch.float64)
        self.weight = _slider("weight w", weight, 0.02, 0.98, 0.02)
        self.mean1 = _slider("mean μ₁", mean1, -4.0, 4.0, 0.1)
        self.mean2 = _slider("mean μ₂", mean2, -4.0, 4.0, 0.1)
        self.std1 = _slider("width σ₁", std1, 0.2, 2.0, 0.05)
        self.std2 = _slider("width σ₂", std2, 0.2, 2.0, 0.05)
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
        if A is None:
            g = make_generator(seed)
            B = torch.randn(dim, dim, generator=g, dtype=torch.float64)
            A = (B + B.T) / 2
        self.A0 = torch.as_tensor(A, dtype=torch.float64)
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


# --- lessons 04–05 ---


def _log_slider(value: float, lo: float, hi: float, step: float, **kwargs) -> widgets.FloatLogSlider:
    """A base-10 log slider from about ``lo`` to ``hi`` whose grid of exponents (spacing ``step``)
    contains ``value`` exactly, so the browser does not snap the initial value to a neighbour."""
    if not lo < value < hi:
        raise ValueError(f"the initial value {value} must lie inside ({lo}, {hi})")
    centre = math.log10(value)
    below = round((centre - math.log10(lo)) / step)
    above = round((math.log10(hi) - centre) / step)
    return widgets.FloatLogSlider(value=value, base=10, min=centre - below * step, max=centre + above * step,
                                  step=step, **kwargs)


class SigmaExplorer(Explorer):
    r"""Denoising score matching at one noise level (lesson 04): a log-scale slider over σ.

    For a 1-D ``density`` with an exact ``perturbed(σ)`` (a :class:`GaussianMixture`), each
    update draws the perturbed density :math:`p_\sigma = p * \mathcal N(0, \sigma^2)` beside
    p, its true score :math:`\nabla\log p_\sigma` beside the learned score
    ``learned_score(x, σ)`` (x of shape (n, 1), e.g. a σ-conditioned ``ScoreMLP``), shades
    where :math:`p_\sigma < 10^{-3}` (almost no noisy training samples there), and reports the
    trade-off in ``message``: the blur TV(p, p_σ) and the score errors where the data are and
    where they are not. Artists: ``density_line``, ``true_score_line``, ``learned_score_line``.
    """

    low_density = 1e-3

    def __init__(self, density, learned_score, xs=None, sigma=0.3, sigma_range=(0.02, 5.0), score_lim=8.0):
        if getattr(density, "dim", None) != 1:
            raise ValueError("SigmaExplorer shows a 1-D density (dim = 1) with an exact perturbed(sigma)")
        lo, hi = (float(check_sigma(s, "sigma_range")) for s in sigma_range)
        if not lo < float(check_sigma(sigma)) < hi:
            raise ValueError(f"sigma must lie inside sigma_range = {sigma_range}, got {sigma}")
        sigma = float(sigma)
        self.density = density
        self.learned_score = learned_score
        self.xs = torch.linspace(-8.0, 8.0, 601) if xs is None else xs
        self.slider = _log_slider(sigma, lo, hi, 0.01, description="σ", readout_format=".3f", continuous_update=True)
        fig, (ax_p, ax_s) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, layout="constrained")
        x = self.xs.numpy()
        self._p = torch.exp(density.log_prob(self.xs[:, None]))
        ax_p.plot(x, self._p.numpy(), color="0.5", ls="--", label="data density $p$")
        (self.density_line,) = ax_p.plot(x, np.zeros_like(x), color="C0", label=r"perturbed $p_\sigma = p * \mathcal{N}(0,\sigma^2)$")
        ax_p.set(ylabel="density", ylim=(0, 1.15 * float(self._p.max())))
        self._legend_p = ax_p.legend(loc="upper left")
        self._zero = ax_s.axhline(0.0, color="0.8", lw=0.8)
        (self.true_score_line,) = ax_s.plot(x, np.zeros_like(x), color="C0", label=r"true score $\nabla\log p_\sigma$")
        (self.learned_score_line,) = ax_s.plot(x, np.zeros_like(x), color="C3", ls="--", label=r"learned $s_\theta(x, \sigma)$")
        ax_s.set(xlabel="$x$", ylabel="score", ylim=(-score_lim, score_lim), xlim=(x[0], x[-1]))
        self._legend = ax_s.legend(loc="upper left")
        self._ax_s = ax_s
        self._shade = None
        super().__init__([self.slider], fig)

    def moving_artists(self) -> list:
        # the shading under everything else of the lower axes, which is therefore redrawn over it
        return [self.density_line, self._legend_p, self._shade, self._zero, self.true_score_line,
                self.learned_score_line, *self._ax_s.spines.values(), self._legend, self._title]

    def draw(self) -> None:
        sigma = float(self.slider.value)
        pts = self.xs[:, None]
        noisy = self.density.perturbed(sigma)
        p_sigma = torch.exp(noisy.log_prob(pts))
        true = noisy.score(pts)[:, 0]
        with torch.no_grad():
            learned = self.learned_score(pts, sigma)[:, 0].to(true)
        self.density_line.set_ydata(p_sigma.numpy())
        self.true_score_line.set_ydata(true.numpy())
        self.learned_score_line.set_ydata(learned.numpy())
        sparse = p_sigma < self.low_density * float(p_sigma.max())
        if self._shade is not None:
            self._shade.remove()
        self._shade = self._ax_s.fill_between(
            self.xs.numpy(), 0, 1, where=sparse.numpy(), color="0.9", transform=self._ax_s.get_xaxis_transform(),
            label="_nolegend_", zorder=0,
        )
        self._title = self.fig.suptitle(f"σ = {sigma:.3f}")
        error = (learned - true) ** 2
        weighted = 0.5 * float(torch.trapezoid(p_sigma * error, self.xs.to(error)))
        worst = float(error[sparse].sqrt().max()) if sparse.any() else 0.0
        blur = total_variation_1d(p_sigma, self._p, self.xs)
        self.message.value = (
            f"σ = {sigma:.3f} · blur TV(p, p<sub>σ</sub>) = {blur:.3f} · score error near the data "
            f"½E<sub>p<sub>σ</sub></sub>|s<sub>θ</sub> − ∇log p<sub>σ</sub>|² = {weighted:.3f} · "
            f"largest error in the grey region = {worst:.2f}"
        )


class LangevinExplorer(Explorer):
    r"""Unadjusted Langevin dynamics on a 2-D density (lesson 05).

    Sliders for the step size ε (log scale) and the number of steps n; each update runs
    ``langevin(density.score, x0, ε, n)`` with a fixed seed, x ← x + ε·s(x) + √(2ε)·z, and
    scatters the chains over the density's contours. ``message`` compares the fraction of
    chains nearest each component with the mixture weights; when the chain diverges it shows
    the :class:`DivergenceError`'s explanation instead (no NaN plot). Artists: ``scatter``;
    the last samples: ``samples`` (None after a divergence).
    """

    def __init__(self, density, x0, step_size=0.05, n_steps=200, step_range=(1e-3, 3.0), max_steps=1000,
                 seed=0, xlim=(-5.0, 5.0), ylim=(-5.0, 5.0)):
        if getattr(density, "dim", None) != 2:
            raise ValueError("LangevinExplorer shows a 2-D density (dim = 2)")
        lo, hi = (check_positive(v, "step_range") for v in step_range)
        self.density = density
        self.x0 = x0
        self.seed = seed
        self.samples = None
        self.step_slider = _log_slider(check_positive(step_size, "step_size"), lo, hi, 0.05, description="step ε", readout_format=".3g",
                                       continuous_update=False)
        self.steps_slider = widgets.IntSlider(
            value=n_steps, min=0, max=max_steps, step=10, description="steps n", continuous_update=False,
        )
        fig, ax = plt.subplots(figsize=(6, 5.5), layout="constrained")
        plot_density_2d(ax, density.log_prob, xlim, ylim, alpha=0.7)
        self.scatter = ax.scatter(np.empty(0), np.empty(0), s=4, color="C3", alpha=0.6, label="Langevin chains")
        ax.set(xlabel="$x_1$", ylabel="$x_2$", xlim=xlim, ylim=ylim)
        self._legend = ax.legend(loc="upper right")
        self._ax = ax
        self._box = (xlim, ylim)
        super().__init__([self.step_slider, self.steps_slider], fig)

    def moving_artists(self) -> list:
        return [self.scatter, self._legend, self._ax.title]

    def draw(self) -> None:
        eps, n = float(self.step_slider.value), int(self.steps_slider.value)
        try:
            x = langevin(self.density.score, self.x0, eps, n, generator=make_generator(self.seed))
        except DivergenceError as err:
            self.samples = None
            self.scatter.set_offsets(np.empty((0, 2)))
            self._ax.set_title(f"ε = {eps:.3g}, {n} steps: diverged")
            self.message.value = f"<b>Diverged.</b> {html.escape(str(err))}"
            return
        self.samples = x
        self.scatter.set_offsets(x.numpy())
        self._ax.set_title(f"ε = {eps:.3g}, {n} steps of x ← x + ε·s(x) + √(2ε)·z")
        (x_lo, x_hi), (y_lo, y_hi) = self._box
        inside = (x[:, 0] >= x_lo) & (x[:, 0] <= x_hi) & (x[:, 1] >= y_lo) & (x[:, 1] <= y_hi)
        nearest = self.density.responsibilities(x).argmax(-1)
        measured = torch.bincount(nearest, minlength=self.density.n_components).double() / len(x)
        fmt = " / ".join
        self.message.value = (
            f"chains per component: {fmt(f'{v:.2f}' for v in measured.tolist())} "
            f"(weights {fmt(f'{v:.2f}' for v in self.density.weights.tolist())}) · "
            f"{1 - float(inside.double().mean()):.0%} of the chains outside the plotted box"
        )


# --- lesson 06 ---


class SigmaLevelExplorer(Explorer):
    r"""Step through a stored annealed-Langevin trajectory, one σ level at a time (lesson 06).

    ``trajectory`` has shape (T, B, 1, H, W) as returned by
    ``lessons_lib.mnist.sample(..., record_every=n_steps_each)`` (or
    :func:`lessons_lib.samplers.annealed_langevin` with ``record_every=n_steps_each``): the start
    x₀, the batch at the end of each of the L levels of ``sigmas`` (largest first), and — when
    the sampler denoised — the Tweedie step x + σ_L²·s(x, σ_L) last; so T = L + 1 or L + 2.

    An integer slider (``slider``) picks the stored state; the figure shows that state's image
    grid (:func:`lessons_lib.plotting.image_grid`, pixel values clipped to [0, 1]) in one
    AxesImage, ``image``, whose data is swapped with ``set_data``: the grids of all states are
    computed once, so an update costs no network evaluation. The title and ``message`` name the
    state ("start: uniform noise", "after level i: σ = …", "denoised (Tweedie)"); the message
    also gives the range of the pixel values, which at large σ lie far outside [0, 1].
    """

    def __init__(self, trajectory, sigmas, nrow: int = 8, start_label: str = "start: uniform noise"):
        traj = torch.as_tensor(trajectory).detach().cpu().float()
        if traj.dim() != 5 or traj.shape[2] != 1 or traj.shape[0] < 2 or traj.shape[1] < 1:
            raise ValueError(
                "trajectory must have shape (T, B, 1, H, W): T stored states (x0, the end of each level, "
                f"the denoised result if any) of B grey images, got {tuple(traj.shape)}"
            )
        sig = check_sigmas(sigmas).double()
        n_levels, n_states = len(sig), traj.shape[0]
        if n_states not in (n_levels + 1, n_levels + 2):
            raise ValueError(
                f"a trajectory over {n_levels} σ levels stores {n_levels + 1} states (x0 and the end of each "
                f"level) or {n_levels + 2} (plus the denoised result), got {n_states}; record it with "
                "record_every = n_steps_each"
            )
        if not torch.isfinite(traj).all():
            raise ValueError("the trajectory holds NaN or infinite values")
        self.trajectory = traj
        self.sigmas = sig
        self.nrow = nrow
        self.start_label = start_label
        self.denoised = n_states == n_levels + 2
        # Every state's grid, drawn once on a scratch figure (not shown, not kept by pyplot).
        scratch = Figure().add_subplot()
        self.grids = [np.asarray(image_grid(scratch, traj[k], nrow=nrow).get_array()) for k in range(n_states)]
        self.slider = widgets.IntSlider(value=n_states - 1, min=0, max=n_states - 1, step=1, description="state",
                                        continuous_update=True)
        rows = math.ceil(traj.shape[1] / min(nrow, traj.shape[1]))
        cols = min(nrow, traj.shape[1])
        fig, ax = plt.subplots(figsize=(max(3.0, 0.6 * cols + 0.4), 0.6 * rows + 0.7), layout="constrained")
        self.image = image_grid(ax, traj[-1], nrow=nrow)
        self._ax = ax
        super().__init__([self.slider], fig)

    def moving_artists(self) -> list:
        return [self.image, self._ax.title]

    def label(self, k: int) -> str:
        """What stored state ``k`` is, in words."""
        n_levels = len(self.sigmas)
        if k == 0:
            return self.start_label
        if k <= n_levels:
            return f"after level {k} of {n_levels}: σ = {float(self.sigmas[k - 1]):.3g}"
        return f"denoised (Tweedie): x + σ_L²·s(x, σ_L), σ_L = {float(self.sigmas[-1]):.3g}"

    def draw(self) -> None:
        k = int(self.slider.value)
        self.image.set_data(self.grids[k])
        text = self.label(k)
        self._ax.set_title(text, fontsize=10)
        x = self.trajectory[k]
        self.message.value = (
            f"{html.escape(text)} · pixel values from {float(x.min()):.2f} to {float(x.max()):.2f} "
            f"(shown clipped to [0, 1])"
        )


# --- lesson 07 ---


class SDETimeExplorer(Explorer):
    r"""The marginals of the variance-exploding SDE on a 2-D mixture (lesson 07): a slider over t.

    At time t the SDE's marginal is the data perturbed to σ(t), :math:`p_t = p_{\sigma(t)}`
    (``density.perturbed(sde.sigma(t))``). Each update shows p_t as an image (``image``, its
    colour scale following the maximum), the direction of its score ∇log p_t as arrows
    (``quiver``, unit length; colour = log(1 + |score|)), and ``n_points`` data points pushed
    through the SDE's kernel from t = 0, x + √(σ²(t) − σ²_min)·z with one fixed z per point
    (``scatter``). ``message`` gives σ(t), g(t) and the largest score on the grid.
    """

    def __init__(self, density, sde, t=0.3, xlim=(-6.0, 6.0), ylim=(-6.0, 6.0), n: int = 120, n_arrows: int = 17,
                 n_points: int = 300, seed: int = 0):
        if getattr(density, "dim", None) != 2:
            raise ValueError("SDETimeExplorer shows a 2-D density (dim = 2) with an exact perturbed(sigma)")
        sde.sigma(t)  # a clear error for t outside [0, 1]
        self.density, self.sde = density, sde
        self.slider = widgets.FloatSlider(value=float(t), min=0.0, max=1.0, step=0.01, description="time t",
                                          readout_format=".2f", continuous_update=False)
        _, _, self._pts = grid_2d(xlim, ylim, n)
        self._pts = self._pts.double()
        X, Y, self._arrow_pts = grid_2d(xlim, ylim, n_arrows)
        self._arrow_pts = self._arrow_pts.double()
        self._n, self._n_arrows = n, n_arrows
        g = make_generator(seed)
        base = density.perturbed(sde.sigma_min).sample(n_points, generator=g, dtype=torch.float64)
        self._points = (base, torch.randn(base.shape, generator=g, dtype=torch.float64))
        fig, ax = plt.subplots(figsize=(6, 5.5), layout="constrained")
        self.image = ax.imshow(np.zeros((n, n)), origin="lower", extent=(*xlim, *ylim), cmap="Blues", aspect="auto")
        zeros = np.zeros((n_arrows, n_arrows))
        self.quiver = ax.quiver(X.numpy(), Y.numpy(), zeros, zeros, zeros, cmap="viridis", scale=30, width=0.004)
        self.scatter = ax.scatter(np.empty(0), np.empty(0), s=3, color="C3", alpha=0.6, label="data points through the SDE")
        ax.set(xlabel="$x_1$", ylabel="$x_2$", xlim=xlim, ylim=ylim)
        self._legend = ax.legend(loc="upper right", fontsize=8)
        self._ax = ax
        super().__init__([self.slider], fig)

    def moving_artists(self) -> list:
        return [self.image, self.quiver, self.scatter, *self._ax.spines.values(), self._legend, self._ax.title]

    def marginal(self, t: float):
        """p_t = p_σ(t), the SDE's marginal at time t."""
        return self.density.perturbed(self.sde.sigma(t))

    def draw(self) -> None:
        t = float(self.slider.value)
        sigma = self.sde.sigma(t)
        p_t = self.marginal(t)
        dens = torch.exp(p_t.log_prob(self._pts)).reshape(self._n, self._n).numpy()
        self.image.set_data(dens)
        self.image.set_clim(0.0, float(dens.max()))
        score = p_t.score(self._arrow_pts)
        norm = score.norm(dim=1).clamp_min(1e-300)
        unit = (score / norm[:, None]).reshape(self._n_arrows, self._n_arrows, 2).numpy()
        colour = np.log1p(norm.reshape(self._n_arrows, self._n_arrows).numpy())
        self.quiver.set_UVC(unit[..., 0], unit[..., 1], colour)
        self.quiver.set_clim(float(colour.min()), float(colour.max()) + 1e-12)
        base, z = self._points
        self.scatter.set_offsets((base + self.sde.kernel_std(t) * z).numpy())
        self._ax.set_title(f"$p_t = p_{{\\sigma(t)}}$ and its score at t = {t:.2f}, σ(t) = {sigma:.3g}")
        self.message.value = (
            f"t = {t:.2f} · σ(t) = {sigma:.3g} · g(t) = {self.sde.g(t):.3g} · "
            f"largest |score| on the grid {float(norm.max()):.3g}"
        )
