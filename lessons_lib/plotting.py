"""Figures of the course. Every function draws on a given matplotlib ``ax`` and returns the
artists it made, so notebooks and widgets can update them in place."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ._validate import require_callable, require_count, require_range, require_tensor

__all__ = ["grid_2d", "plot_density_1d", "plot_density_2d", "plot_score_field", "score_error_grid",
           "score_error_by_region",
           "plot_score_error",
           "plot_samples", "image_grid"]


def grid_2d(xlim=(-5, 5), ylim=(-5, 5), n: int = 100):
    """A regular grid: returns (X, Y, points) with points of shape (n*n, 2) as float tensor."""
    xlim, ylim = require_range(xlim, "xlim"), require_range(ylim, "ylim")
    n = require_count(n, "n", minimum=2)
    xs = torch.linspace(*xlim, n)
    ys = torch.linspace(*ylim, n)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    return X, Y, torch.stack([X.reshape(-1), Y.reshape(-1)], dim=1)


def plot_density_1d(ax, log_prob: Callable, xs: torch.Tensor, label=None, **kwargs):
    """Plot p(x) = exp(log_prob(x)) over the 1-D grid ``xs`` (shape (n,)). Returns the line."""
    require_tensor(xs, "xs", dim=1)
    require_callable(log_prob, "log_prob")
    with torch.no_grad():
        p = torch.exp(log_prob(xs[:, None]))
    (line,) = ax.plot(xs.numpy(), p.numpy(), label=label, **kwargs)
    return line


def plot_density_2d(ax, log_prob: Callable, xlim=(-5, 5), ylim=(-5, 5), n: int = 120, cmap="Blues", **kwargs):
    """Filled contours of p over a 2-D box. Returns the contour set."""
    require_callable(log_prob, "log_prob")
    X, Y, pts = grid_2d(xlim, ylim, n)
    with torch.no_grad():
        p = torch.exp(log_prob(pts)).reshape(n, n)
    return ax.contourf(X.numpy(), Y.numpy(), p.numpy(), levels=20, cmap=cmap, **kwargs)


def plot_score_field(ax, score_fn: Callable, xlim=(-5, 5), ylim=(-5, 5), n: int = 15, normalize=True, **kwargs):
    """Arrows of the score field over a 2-D box, drawn to read at 100 % zoom.

    With ``normalize=True`` (default) every arrow has the same length, 0.8 of the grid spacing,
    so that every direction is visible; the colour then encodes the magnitude,
    log(1 + ‖s(x)‖), on the ``plasma`` colour map, and a black outline keeps light and dark
    arrows visible on light and dark backgrounds. With ``normalize=False`` arrow lengths are
    proportional to ‖s(x)‖ (matplotlib's autoscaling). Keyword arguments go to ``ax.quiver``.
    Returns the quiver (call ``set_clim`` on it to share one colour scale between panels).
    """
    require_callable(score_fn, "score_fn")
    X, Y, pts = grid_2d(xlim, ylim, n)
    with torch.no_grad():
        s = score_fn(pts).reshape(n, n, 2)
    u, v = s[..., 0].numpy(), s[..., 1].numpy()
    norm = np.hypot(u, v)
    if normalize:
        scale = np.where(norm > 0, norm, 1.0)
        u, v = u / scale, v / scale
        spacing = min((xlim[1] - xlim[0]), (ylim[1] - ylim[0])) / (n - 1)
        kwargs.setdefault("scale_units", "xy")
        kwargs.setdefault("angles", "xy")
        kwargs.setdefault("scale", 1 / (0.8 * spacing))
    kwargs.setdefault("cmap", "plasma")
    kwargs.setdefault("pivot", "mid")
    kwargs.setdefault("width", 0.006)
    kwargs.setdefault("headwidth", 3.5)
    kwargs.setdefault("headlength", 4)
    kwargs.setdefault("headaxislength", 3.5)
    kwargs.setdefault("edgecolor", "k")
    kwargs.setdefault("linewidth", 0.4)
    return ax.quiver(X.numpy(), Y.numpy(), u, v, np.log1p(norm), **kwargs)


def score_error_grid(score_fn: Callable, true_score: Callable, log_prob: Callable, xlim=(-5, 5), ylim=(-5, 5),
                     n: int = 100):
    """The score error ‖s_θ(x) − ∇log p(x)‖ and the density p(x) on a regular n×n grid.

    Returns ``(X, Y, error, density)``, each of shape (n, n) (``error`` and ``density`` as
    float64 numpy arrays), so the error can be mapped and summarised region by region.
    """
    X, Y, pts = grid_2d(xlim, ylim, n)
    pts = pts.double()
    with torch.no_grad():
        learned = score_fn(pts.to(torch.get_default_dtype())).double()
        error = (learned - true_score(pts).double()).norm(dim=-1).reshape(n, n)
        density = torch.exp(log_prob(pts).double()).reshape(n, n)
    return X, Y, error.numpy(), density.numpy()


def score_error_by_region(score_fn: Callable, true_score: Callable, log_prob: Callable, xlim=(-5, 5), ylim=(-5, 5),
                          n: int = 100, low_density: float = 1e-3) -> tuple[float, float]:
    """Median score error ‖s_θ − ∇log p‖ on the n×n grid of :func:`score_error_grid`, where the
    density is at least ``low_density`` · its maximum on the grid and where it is below:
    ``(median inside, median outside)`` (torch's median: the lower middle value of an even count)."""
    _, _, error, density = score_error_grid(score_fn, true_score, log_prob, xlim, ylim, n)
    error, rare = torch.from_numpy(error), torch.from_numpy(density < low_density * density.max())
    return float(error[~rare].median()), float(error[rare].median())


def plot_score_error(ax, score_fn: Callable, true_score: Callable, log_prob: Callable, xlim=(-5, 5), ylim=(-5, 5),
                     n: int = 100, low_density: float = 1e-3, vmax: float | None = None, cmap="magma"):
    """Map of the score error ‖s_θ(x) − ∇log p(x)‖ over a 2-D box, with the low-density region
    marked: a white dashed contour at p = ``low_density`` · max p (outside it there are almost
    no training samples) and solid contours of p inside it. Returns ``(mesh, contour)``.
    """
    X, Y, error, density = score_error_grid(score_fn, true_score, log_prob, xlim, ylim, n)
    mesh = ax.pcolormesh(X.numpy(), Y.numpy(), error, cmap=cmap, vmin=0.0, vmax=vmax, shading="auto")
    top = density.max()
    contour = ax.contour(X.numpy(), Y.numpy(), density, levels=[low_density * top], colors="w", linestyles="--",
                         linewidths=1.5)
    ax.contour(X.numpy(), Y.numpy(), density, levels=[0.1 * top, 0.5 * top], colors="w", linewidths=0.8, alpha=0.7)
    return mesh, contour


def plot_samples(ax, x: torch.Tensor, s: float = 2, alpha: float = 0.5, **kwargs):
    """Scatter 2-D samples of shape (n, 2). Returns the path collection."""
    require_tensor(x, "x", dim=2)
    if x.shape[1] != 2:
        raise ValueError(f"x must have shape (n, 2), got {tuple(x.shape)}")
    x = x.detach().cpu()
    return ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=s, alpha=alpha, **kwargs)


def image_grid(ax, images: torch.Tensor, nrow: int = 8, pad: int = 2, clip=(0.0, 1.0)):
    """Show a batch of images (B, 1, H, W) or (B, H, W) as one grid image. Returns the image."""
    require_tensor(images, "images", floating=False)
    nrow, pad = require_count(nrow, "nrow"), require_count(pad, "pad", minimum=0)
    imgs = images.detach().cpu().float()
    if imgs.dim() == 4:
        if imgs.shape[1] != 1:
            raise ValueError(f"image_grid shows grey images (B, 1, H, W), got {tuple(images.shape)}")
        imgs = imgs[:, 0]
    if imgs.dim() != 3:
        raise ValueError(f"images must have shape (B, 1, H, W) or (B, H, W), got {tuple(images.shape)}")
    b, h, w = imgs.shape
    ncol = min(nrow, b)
    nrows = (b + ncol - 1) // ncol
    canvas = torch.ones(nrows * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(b):
        r, c = divmod(i, ncol)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = imgs[i]
    if clip is not None:
        canvas = canvas.clamp(*clip)
    ax.set_axis_off()
    return ax.imshow(canvas.numpy(), cmap="gray", vmin=clip[0] if clip else None, vmax=clip[1] if clip else None)
