"""Input checks shared by the library: the one validation layer of the public API.

Every public function and class checks its inputs through these functions, so bad input fails
with a ``ValueError`` that **names the argument** and says what was expected (or what to pass
instead), before torch fails deep inside or a NaN travels on silently:

* numbers: :func:`require_count` (whole numbers), :func:`require_seed`, :func:`require_real`
  (finite reals, optionally in a range), :func:`require_positive`, :func:`require_sigma`;
  ``None``, ``bool``, strings, ``inf`` and ``nan`` are refused; numpy scalars and 0-d tensors
  are read as the Python number they hold;
* tensors: :func:`require_tensor` (type, dtype, device, number of dimensions, finiteness),
  :func:`require_batch` (a floating batch with a leading batch dimension),
  :func:`require_same_shape`; a numpy array or a list is refused with the call that converts
  it, :func:`as_tensor` converts one explicitly where the API accepts arrays (parameters);
* the rest: :func:`require_choice`, :func:`require_callable`, :func:`require_bool`,
  :func:`require_generator`, :func:`require_module`, :func:`require_path`, :func:`require_range`
  (an interval ``(lo, hi)``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

__all__ = ["as_tensor", "require_count", "require_seed", "require_real", "require_positive", "require_sigma",
           "require_tensor", "require_batch", "require_same_shape", "require_choice", "require_callable",
           "require_bool", "require_generator", "require_module", "require_path", "require_range", "SEED_LIMIT"]

#: torch's generators take seeds below 2⁶⁴.
SEED_LIMIT = 2**64


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} ({value.dtype})"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _scalar(value, name: str, what: str):
    """The Python number a scalar holds (int or float), or a ValueError naming ``name``."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dim() <= 1 and value.device.type != "meta":
        value = value.item()
    elif isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {_show(value)}")
    return value.item() if isinstance(value, np.generic) else value


def _traced(x: torch.Tensor) -> bool:
    """Inside a ``torch.func`` transform (vmap, jacrev), which cannot branch on the data."""
    return torch._C._functorch.is_functorch_wrapped_tensor(x)


def as_tensor(value, name: str, dtype=None) -> torch.Tensor:
    """Convert ``value`` (a number, list, numpy array or tensor) to a finite floating tensor,
    explicitly; a clear error if that is impossible."""
    if value is None or isinstance(value, str | bytes):
        raise ValueError(f"{name} must be a number or an array of numbers, got {_show(value)}")
    try:
        t = torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a number or an array of numbers, got {_show(value)}") from err
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, but contains NaN or infinite values")
    return t


def require_count(value, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number >= ``minimum`` (and <= ``maximum``): numbers of steps, projections, samples."""
    bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    v = _scalar(value, name, f"a whole number {bound}")
    if not (math.isfinite(v) and v == int(v)) or v < minimum or (maximum is not None and v > maximum):
        raise ValueError(f"{name} must be a whole number {bound}, got {_show(value)}")
    return int(v)


def require_seed(value, name: str = "seed") -> int:
    """A seed for torch's generators: a whole number from 0 to 2⁶⁴ − 1."""
    return require_count(value, name, minimum=0, maximum=SEED_LIMIT - 1)


def require_real(value, name: str, lo: float | None = None, hi: float | None = None, *,
                 open_lo: bool = False, open_hi: bool = False) -> float:
    """A finite real number (optionally within [lo, hi]; ``open_lo``/``open_hi`` exclude the ends)."""
    interval = ""
    if lo is not None or hi is not None:
        left, right = "(" if open_lo or lo is None else "[", ")" if open_hi or hi is None else "]"
        interval = f" in {left}{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}{right}"
    v = float(_scalar(value, name, "a finite number" + interval))
    below = lo is not None and (v <= lo if open_lo else v < lo)
    above = hi is not None and (v >= hi if open_hi else v > hi)
    if not math.isfinite(v) or below or above:
        raise ValueError(f"{name} must be a finite number{interval}, got {_show(value)}")
    return v


def require_positive(value, name: str) -> float:
    """A positive finite scalar (step sizes, learning rates)."""
    v = float(_scalar(value, name, "a positive number"))
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be > 0 and finite, got {_show(value)}")
    return v


def require_sigma(sigma, name: str = "sigma"):
    """A noise level must be a finite number > 0 (or a tensor of them). Returns it unchanged."""
    if isinstance(sigma, torch.Tensor) and sigma.numel() != 1:
        if sigma.numel() == 0:
            raise ValueError(f"{name} is empty")
        require_tensor(sigma, name, finite=False)
        if not torch.isfinite(sigma).all() or (sigma <= 0).any():
            raise ValueError(f"{name} must be > 0 and finite, got {sigma.detach().cpu().tolist()}")
        return sigma
    require_positive(sigma, name)
    return sigma


def require_tensor(x, name: str, *, floating: bool = True, dim: int | None = None, min_dim: int | None = None,
                   device=None, finite: bool = True) -> torch.Tensor:
    """A torch.Tensor, floating-point unless ``floating=False``, with ``dim`` (or at least ``min_dim``)
    dimensions, on ``device`` when given, finite unless ``finite=False``. Returns it unchanged.

    A numpy array or a list is refused with the conversion to write; so are integer, boolean and
    complex tensors (``x.float()``), tensors on another device (``x.to(device)``) and meta tensors."""
    if not isinstance(x, torch.Tensor):
        hint = (f"; convert it with torch.as_tensor({name}, dtype=torch.float32)"
                if isinstance(x, np.ndarray | list | tuple | numbers.Number) and not isinstance(x, bool) else "")
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}{hint}")
    if x.device.type == "meta":
        raise ValueError(f"{name} is a meta tensor (a shape without data); pass a tensor on the CPU or a GPU")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; use {name}.float()")
    if dim is not None and x.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimension(s), got shape {tuple(x.shape)}")
    if min_dim is not None and x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s), got shape {tuple(x.shape)}")
    if device is not None and x.device != torch.device(device):
        raise ValueError(f"{name} is on {x.device} but the computation is on {torch.device(device)}; "
                         f"move it with {name}.to({str(torch.device(device))!r})")
    if finite and x.is_floating_point() and not _traced(x) and not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, but contains NaN or infinite values")
    return x


def require_batch(x, name: str = "x", *, device=None, finite: bool = True) -> torch.Tensor:
    """A batch: a finite floating tensor with a leading batch dimension and at least one more.

    ``finite=False`` skips the finiteness check (it is skipped anyway inside ``torch.func``
    transforms, which cannot branch on data)."""
    require_tensor(x, name, device=device, finite=False)
    if x.dim() < 2:
        raise ValueError(
            f"{name} must have shape (batch, ...) with at least 2 dimensions, got shape "
            f"{tuple(x.shape)}; for 1-D data use shape (n, 1), e.g. x[:, None]"
        )
    if finite and not _traced(x) and not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, but contains NaN or infinite values")
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


def require_choice(value, name: str, choices) -> str:
    """One of ``choices`` (strings), or a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {_show(value)}")
    return value


def require_callable(fn, name: str):
    """A function (or a module) to call, e.g. ``score_fn``."""
    if not callable(fn):
        raise ValueError(f"{name} must be a function, e.g. a score s(x) or a network, got {_show(fn)}")
    return fn


def require_bool(value, name: str) -> bool:
    """True or False (numpy's too), never a string such as "no"."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {_show(value)}")
    return bool(value)


def require_path(path, name: str = "path"):
    """A file's path: a string or an ``os.PathLike`` (returned as a ``pathlib.Path``)."""
    import os
    from pathlib import Path

    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ValueError(f"{name} must be a file path (a string or pathlib.Path), got {_show(path)}")
    return Path(path)


def require_module(model, name: str = "model"):
    """A network: a ``torch.nn.Module``."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{name} must be a torch.nn.Module (a network), got {_show(model)}")
    return model


def require_generator(generator, name: str = "generator"):
    """None (the global generator) or a torch.Generator, e.g. ``make_generator(seed)``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"{name} must be a torch.Generator (e.g. lessons_lib.utils.make_generator(0)) or None, "
                         f"got {_show(generator)}")
    return generator


def require_range(value, name: str, *, positive: bool = False) -> tuple[float, float]:
    """An interval ``(lo, hi)`` of finite numbers with lo < hi (both > 0 with ``positive``)."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (lo, hi), got {_show(value)}")
    check = require_positive if positive else require_real
    lo, hi = (check(v, name) for v in value)
    if not lo < hi:
        raise ValueError(f"{name} must be (lo, hi) with lo < hi, got {_show(value)}")
    return lo, hi
