"""Explorers of noise: one σ level of denoising score matching on a 1-D density (lesson 04), and
the variance-exploding SDE's marginals over time on a 2-D density (lesson 07)."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from .._validate import require_callable, require_count, require_range, require_seed
from ..densities import total_variation_1d
from ..plotting import grid_2d
from ..utils import make_generator
from .base import Explorer, log_slider

__all__ = ["SigmaExplorer", "SDETimeExplorer"]


class SigmaExplorer(Explorer):
    r"""Denoising score matching at one noise level (lesson 04): a log-scale slider over σ.

    For a 1-D ``density`` with an exact ``perturbed(σ)`` (a :class:`GaussianMixture`), each
    update draws the perturbed density :math:`p_\sigma = p * \mathcal N(0, \sigma^2)` beside
    p, its true score :math:`\nabla\log p_\sigma` beside the learned score
    ``learned_score(x, σ)`` (x of shape (n, 1), e.g. a σ-conditioned ``ScoreMLP``), shades
    where :math:`p_\sigma < 10^{-3}\max p_\sigma` (few noisy training samples there), and, in a
    third panel, the scaled error :math:`\sigma\,|s_\theta - \nabla\log p_\sigma|` on a log
    scale: the error of the network's output f = σ·s_θ, which the σ²-weighted loss charges the
    same at every level. Where that error stays about level as σ falls (within a factor of a few
    in lesson 04's run), the score error itself grows about like 1/σ, near the data too.
    ``message`` reports the blur TV(p, p_σ), the mean score error under :math:`p_\sigma` (where
    the data are), σ times it, and the largest error in the shaded region. Artists:
    ``density_line``, ``true_score_line``, ``learned_score_line``, ``error_line``.
    """

    low_density = 1e-3

    def __init__(self, density, learned_score, xs=None, sigma=0.3, sigma_range=(0.02, 5.0), score_lim=8.0):
        if getattr(density, "dim", None) != 1:
            raise ValueError("SigmaExplorer shows a 1-D density (dim = 1) with an exact perturbed(sigma)")
        lo, hi = require_range(sigma_range, "sigma_range", positive=True)
        require_callable(learned_score, "learned_score")
        self.density = density
        self.learned_score = learned_score
        self.xs = torch.linspace(-8.0, 8.0, 601) if xs is None else xs
        self.slider = log_slider(sigma, lo, hi, 0.01, name="sigma", description="σ", readout_format=".3f",
                                 continuous_update=True)
        fig, (ax_p, ax_s, ax_e) = plt.subplots(3, 1, figsize=(8, 7), sharex=True, layout="constrained",
                                               height_ratios=(1, 1, 0.8))
        x = self.xs.numpy()
        self._p = torch.exp(density.log_prob(self.xs[:, None]))
        ax_p.plot(x, self._p.numpy(), color="0.5", ls="--", label="data density $p$")
        (self.density_line,) = ax_p.plot(x, np.zeros_like(x), color="C0",
                                         label=r"perturbed $p_\sigma = p * \mathcal{N}(0,\sigma^2)$")
        ax_p.set(ylabel="density", ylim=(0, 1.15 * float(self._p.max())))
        self._legend_p = ax_p.legend(loc="upper left")
        self._zero = ax_s.axhline(0.0, color="0.8", lw=0.8)
        (self.true_score_line,) = ax_s.plot(x, np.zeros_like(x), color="C0", label=r"true score $\nabla\log p_\sigma$")
        (self.learned_score_line,) = ax_s.plot(x, np.zeros_like(x), color="C3", ls="--",
                                               label=r"learned $s_\theta(x, \sigma)$")
        ax_s.set(ylabel="score", ylim=(-score_lim, score_lim), xlim=(x[0], x[-1]))
        self._legend = ax_s.legend(loc="upper left")
        (self.error_line,) = ax_e.semilogy(x, np.ones_like(x), color="C3",
                                           label=r"$\sigma\,|s_\theta - \nabla\log p_\sigma|$")
        ax_e.set(xlabel="$x$", ylabel="σ · |error|", ylim=(1e-3, 30.0))
        ax_e.legend(loc="upper left")
        self._ax_s, self._ax_e = ax_s, ax_e
        self._shade = None
        super().__init__([self.slider], fig)

    def moving_artists(self) -> list:
        # the shading under everything else of the lower axes, which is therefore redrawn over it
        return [self.density_line, self._legend_p, self._shade, self._zero, self.true_score_line,
                self.learned_score_line, *self._ax_s.spines.values(), self._legend, self.error_line, self._title]

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
        error = (learned - true).abs()
        self.error_line.set_ydata((sigma * error).clamp_min(1e-4).numpy())
        near = float(torch.trapezoid(p_sigma * error, self.xs.to(error)))
        blur = total_variation_1d(p_sigma, self._p, self.xs)
        self.message.value = (
            f"σ = {sigma:.3f} · blur TV(p, p<sub>σ</sub>) = {blur:.3f} · mean score error under p<sub>σ</sub>, "
            f"E|s<sub>θ</sub> − ∇log p<sub>σ</sub>| = {near:.3f}, σ × that = {sigma * near:.3f} · "
            + (f"largest |error| in the grey region = {float(error[sparse].max()):.2f}" if sparse.any()
               else "no grey region on the plotted range")
        )



class SDETimeExplorer(Explorer):
    r"""The marginals of the variance-exploding SDE on a 2-D mixture (lesson 07): a slider over t.

    At time t the SDE's marginal is the data perturbed to σ(t), :math:`p_t = p_{\sigma(t)}`
    (``density.perturbed(sde.sigma(t))``). Each update shows p_t as an image (``image``, its
    colour scale following the maximum), the direction of its score ∇log p_t as arrows
    (``quiver``, unit length; colour = log(1 + |score|)), and ``n_points`` data points pushed
    through the SDE's kernel from t = 0, x + √(σ²(t) − σ²_min)·z with one fixed z per point
    (``scatter``), all on the axes ``ax``. ``message`` gives σ(t), g(t) and the largest score on the grid.
    """

    def __init__(self, density, sde, t=0.3, xlim=(-6.0, 6.0), ylim=(-6.0, 6.0), n: int = 120, n_arrows: int = 17,
                 n_points: int = 300, seed: int = 0):
        if getattr(density, "dim", None) != 2:
            raise ValueError("SDETimeExplorer shows a 2-D density (dim = 2) with an exact perturbed(sigma)")
        if not hasattr(sde, "sigma") or not hasattr(sde, "kernel_std"):
            raise ValueError(f"sde must be a VESDE, got {type(sde).__name__}")
        sde.sigma(t)  # a clear error for t outside [0, 1]
        n, n_arrows = require_count(n, "n", minimum=2), require_count(n_arrows, "n_arrows", minimum=2)
        n_points, seed = require_count(n_points, "n_points"), require_seed(seed)
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
        self.scatter = ax.scatter(np.empty(0), np.empty(0), s=3, color="C3", alpha=0.6,
                                  label="data points through the SDE")
        ax.set(xlabel="$x_1$", ylabel="$x_2$", xlim=xlim, ylim=ylim)
        self._legend = ax.legend(loc="upper right", fontsize=8)
        self.ax = ax
        super().__init__([self.slider], fig)

    def moving_artists(self) -> list:
        return [self.image, self.quiver, self.scatter, *self.ax.spines.values(), self._legend, self.ax.title]

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
        self.ax.set_title(f"$p_t = p_{{\\sigma(t)}}$ and its score at t = {t:.2f}, σ(t) = {sigma:.3g}")
        self.message.value = (
            f"t = {t:.2f} · σ(t) = {sigma:.3g} · g(t) = {self.sde.g(t):.3g} · "
            f"largest |score| on the grid {float(norm.max()):.3g}"
        )
