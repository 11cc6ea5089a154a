"""Input checks shared by the library: every public function fails with a ValueError
that names the argument and says what was expected, before torch fails deep inside."""

from __future__ import annotations

import math

import torch


def as_tensor(value, name: str, dtype=None) -> torch.Tensor:
    """Convert ``value`` to a floating tensor, with a clear error if that is impossible."""
    try:
        t = torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}") from err
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def require_sigma(sigma, name: str = "sigma"):
    """A noise level must be a finite number > 0 (or a tensor of them). Returns it unchanged."""
    if isinstance(sigma, torch.Tensor):
        if sigma.numel() == 0:
            raise ValueError(f"{name} is empty")
        if not torch.isfinite(sigma).all() or (sigma <= 0).any():
            raise ValueError(f"{name} must be > 0 and finite, got {sigma.detach().cpu().tolist()}")
        return sigma
    try:
        value = float(sigma)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a positive number, got {sigma!r}") from err
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be > 0 and finite, got {sigma!r}")
    return sigma


def require_positive(value, name: str) -> float:
    """A positive finite scalar (step sizes, learning rates)."""
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from err
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
    return v


def require_count(value, name: str, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (numbers of steps, projections, samples)."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def require_batch(x, name: str = "x") -> torch.Tensor:
    """A batch: a floating tensor with a leading batch dimension and at least one more."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(
            f"{name} must have shape (batch, ...) with at least 2 dimensions, got shape "
            f"{tuple(x.shape)}; for 1-D data use shape (n, 1), e.g. x[:, None]"
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def require_same_shape(out: torch.Tensor, x: torch.Tensor, what: str) -> torch.Tensor:
    """The score of a batch has the batch's shape; say so if a function gets it wrong."""
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{what} must return a torch.Tensor, got {type(out).__name__}")
    if out.shape != x.shape:
        raise ValueError(
            f"{what} returned shape {tuple(out.shape)} for input of shape {tuple(x.shape)}; "
            "a score has the same shape as its input"
        )
    return out
