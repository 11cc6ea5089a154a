"""Explorers of sampling: Langevin chains on a 2-D density (lesson 05), and a stored sampler
trajectory stepped through one state at a time (lesson 06)."""

from __future__ import annotations

import html
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .._validate import as_tensor, require_batch, require_count, require_range, require_seed
from ..noise import validate_sigmas
from ..plotting import image_grid, plot_density_2d
from ..samplers import DivergenceError, langevin
from ..utils import make_generator
from .base import Explorer, log_slider

__all__ = ["LangevinExplorer", "TrajectoryExplorer"]


class LangevinExplorer(Explorer):
    r"""Unadjusted Langevin dynamics on a 2-D density (lesson 05).

    Sliders for the step size ε (log scale) and the number of steps n; each update runs
    ``langevin(density.score, x_init, ε, n)`` with a fixed seed, x ← x + ε·s(x) + √(2ε)·z, and
    scatters the chains over the density's contours. ``message`` compares the fraction of
    chains nearest each component with the mixture weights, and says when ε is above 2v for the
    narrowest direction v of a component (``narrowest_variance``; a lone Gaussian that narrow
    would diverge there; in a mixture the chains thrown out of it reach the wider components and
    stay finite, wrongly weighted, up to a larger ε) and when chains have run far away; when the
    chain diverges it shows the :class:`DivergenceError`'s explanation instead (no NaN plot). ``x_init`` is the batch of
    start states, shape (n_chains, 2). Artists: ``scatter`` on the axes ``ax``; the last samples:
    ``samples`` (None after a divergence).
    """

    def __init__(self, density, x_init, step_size=0.05, n_steps=200, step_range=(1e-3, 3.0), max_steps=1000,
                 seed=0, xlim=(-5.0, 5.0), ylim=(-5.0, 5.0)):
        if getattr(density, "dim", None) != 2:
            raise ValueError("LangevinExplorer shows a 2-D density (dim = 2)")
        lo, hi = require_range(step_range, "step_range", positive=True)
        if require_batch(x_init, "x_init").dim() != 2 or x_init.shape[1] != 2:
            raise ValueError(f"x_init must have shape (n_chains, 2), got {tuple(x_init.shape)}")
        max_steps = require_count(max_steps, "max_steps")
        n_steps = require_count(n_steps, "n_steps", minimum=0, maximum=max_steps)
        self.density = density
        self.x_init = x_init
        self.seed = require_seed(seed)
        self.samples = None
        self.step_slider = log_slider(step_size, lo, hi, 0.05, name="step_size", description="step ε",
                                      readout_format=".3g", continuous_update=False)
        self.steps_slider = widgets.IntSlider(
            value=n_steps, min=0, max=max_steps, step=10, description="steps n", continuous_update=False,
        )
        fig, ax = plt.subplots(figsize=(6, 5.5), layout="constrained")
        plot_density_2d(ax, density.log_prob, xlim, ylim, alpha=0.7)
        self.scatter = ax.scatter(np.empty(0), np.empty(0), s=4, color="C3", alpha=0.6, label="Langevin chains")
        ax.set(xlabel="$x_1$", ylabel="$x_2$", xlim=xlim, ylim=ylim)
        self._legend = ax.legend(loc="upper right")
        self.ax = ax
        self._box = (xlim, ylim)
        covs = getattr(density, "covs", None)
        self.narrowest_variance = None if covs is None else float(torch.linalg.eigvalsh(covs.double()).min())
        super().__init__([self.step_slider, self.steps_slider], fig)

    def moving_artists(self) -> list:
        return [self.scatter, self._legend, self.ax.title]

    def draw(self) -> None:
        eps, n = float(self.step_slider.value), int(self.steps_slider.value)
        try:
            x = langevin(self.density.score, x_init=self.x_init, step_size=eps, n_steps=n,
                         generator=make_generator(self.seed))
        except DivergenceError as err:
            self.samples = None
            self.scatter.set_offsets(np.empty((0, 2)))
            self.ax.set_title(f"ε = {eps:.3g}, {n} steps: diverged")
            self.message.value = f"<b>Diverged.</b> {html.escape(str(err))}"
            return
        self.samples = x
        self.scatter.set_offsets(x.numpy())
        self.ax.set_title(f"ε = {eps:.3g}, {n} steps of x ← x + ε·s(x) + √(2ε)·z")
        (x_lo, x_hi), (y_lo, y_hi) = self._box
        inside = (x[:, 0] >= x_lo) & (x[:, 0] <= x_hi) & (x[:, 1] >= y_lo) & (x[:, 1] <= y_hi)
        nearest = self.density.responsibilities(x).argmax(-1)
        measured = torch.bincount(nearest, minlength=self.density.n_components).double() / len(x)
        fmt = " / ".join
        notes = []
        if self.narrowest_variance is not None and eps > 2 * self.narrowest_variance:
            notes.append(f"ε > 2v = {2 * self.narrowest_variance:.2f} for the narrowest component: a lone Gaussian "
                         "that narrow would diverge; here the chains it throws out reach the wider components, "
                         "so the weights are wrong")
        far = float(x.abs().max())
        if far > 1e3:
            notes.append(f"chains have run away (|x| up to {far:.1e}): the chain is about to diverge")
        self.message.value = (
            f"chains per component: {fmt(f'{v:.2f}' for v in measured.tolist())} "
            f"(weights {fmt(f'{v:.2f}' for v in self.density.weights.tolist())}) · "
            f"{1 - float(inside.double().mean()):.0%} of the chains outside the plotted box"
            + "".join(f" · <b>{html.escape(n)}</b>" for n in notes)
        )


class TrajectoryExplorer(Explorer):
    r"""Step through a stored annealed-Langevin trajectory, one σ level at a time (lesson 06).

    ``trajectory`` has shape (T, B, 1, H, W) as an annealed sampler returns it with
    ``record_every=n_steps_each`` (:func:`lessons_lib.samplers.annealed_langevin`, or the MNIST
    application's annealed sampler): the start state, the batch at the end of each of the L levels
    of ``sigmas`` (largest first), and, when the sampler denoised, the Tweedie step
    x + σ_L²·s(x, σ_L) last; so T = L + 1 or L + 2.

    An integer slider (``slider``) picks the stored state; the figure shows that state's image
    grid (:func:`lessons_lib.plotting.image_grid`, pixel values clipped to [0, 1]) in one
    AxesImage, ``image`` on the axes ``ax``, whose data is swapped with ``set_data``: the grids of all states are
    computed once, so an update costs no network evaluation. The title and ``message`` name the
    state ("start: uniform noise", "after level i: σ = …", "denoised (Tweedie)"); the message
    also gives the range of the pixel values, which at large σ lie far outside [0, 1].
    """

    def __init__(self, trajectory, sigmas, nrow: int = 8, start_label: str = "start: uniform noise"):
        traj = as_tensor(trajectory, "trajectory").detach().cpu().float()
        nrow = require_count(nrow, "nrow")
        if traj.dim() != 5 or traj.shape[2] != 1 or traj.shape[0] < 2 or traj.shape[1] < 1:
            raise ValueError(
                "trajectory must have shape (T, B, 1, H, W): T stored states (the start state, the end of each level, "
                f"the denoised result if any) of B grey images, got {tuple(traj.shape)}"
            )
        sig = validate_sigmas(sigmas).double()
        n_levels, n_states = len(sig), traj.shape[0]
        if n_states not in (n_levels + 1, n_levels + 2):
            raise ValueError(
                f"a trajectory over {n_levels} σ levels stores {n_levels + 1} states (the start state and the end "
                f"of each level) or {n_levels + 2} (plus the denoised result), got {n_states}; record it with "
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
        self.ax = ax
        super().__init__([self.slider], fig)

    def moving_artists(self) -> list:
        return [self.image, self.ax.title]

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
        self.ax.set_title(text, fontsize=10)
        x = self.trajectory[k]
        self.message.value = (
            f"{html.escape(text)} · pixel values from {float(x.min()):.2f} to {float(x.max()):.2f} "
            f"(shown clipped to [0, 1])"
        )

