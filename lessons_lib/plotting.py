"""Figures of the course. Every function draws on a given matplotlib ``ax`` and returns the
artists it made, so notebooks and widgets can update them in place."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["grid_2d", "plot_density_1d", "plot_density_2d", "plot_score_field", "plot_samples", "image_grid"]


def grid_2d(xlim=(-5, 5), ylim=(-5, 5), n: int = 100):
    """A regular grid: returns (X, Y, points) with points of shape (n*n, 2) as float tensor."""
    xs = torch.linspace(*xlim, n)
    ys = torch.linspace(*ylim, n)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    return X, Y, torch.stack([X.reshape(-1), Y.reshape(-1)], dim=1)


def plot_density_1d(ax, log_prob: Callable, xs: torch.Tensor, label=None, **kwargs):
    """Plot p(x) = exp(log_prob(x)) over the 1-D grid ``xs`` (shape (n,)). Returns the line."""
    with torch.no_grad():
        p = torch.exp(log_prob(xs[:, None]))
    (line,) = ax.plot(xs.numpy(), p.numpy(), label=label, **kwargs)
    return line


def plot_density_2d(ax, log_prob: Callable, xlim=(-5, 5), ylim=(-5, 5), n: int = 120, cmap="Blues", **kwargs):
    """Filled contours of p over a 2-D box. Returns the contour set."""
    X, Y, pts = grid_2d(xlim, ylim, n)
    with torch.no_grad():
        p = torch.exp(log_prob(pts)).reshape(n, n)
    return ax.contourf(X.numpy(), Y.numpy(), p.numpy(), levels=20, cmap=cmap, **kwargs)


def plot_score_field(ax, score_fn: Callable, xlim=(-5, 5), ylim=(-5, 5), n: int = 20, normalize=True, **kwargs):
    """Arrows of the score field over a 2-D box (lengths normalised by default, colour = norm).
    Returns the quiver."""
    X, Y, pts = grid_2d(xlim, ylim, n)
    with torch.no_grad():
        s = score_fn(pts).reshape(n, n, 2)
    u, v = s[..., 0].numpy(), s[..., 1].numpy()
    norm = np.hypot(u, v)
    if normalize:
        scale = np.where(norm > 0, norm, 1.0)
        u, v = u / scale, v / scale
    kwargs.setdefault("cmap", "viridis")
    return ax.quiver(X.numpy(), Y.numpy(), u, v, np.log1p(norm), **kwargs)


def plot_samples(ax, x: torch.Tensor, s: float = 2, alpha: float = 0.5, **kwargs):
    """Scatter 2-D samples of shape (n, 2). Returns the path collection."""
    x = x.detach().cpu()
    return ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=s, alpha=alpha, **kwargs)


def image_grid(ax, images: torch.Tensor, nrow: int = 8, pad: int = 2, clip=(0.0, 1.0)):
    """Show a batch of images (B, 1, H, W) or (B, H, W) as one grid image. Returns the image."""
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
