"""Reproducibility and device choice."""

from __future__ import annotations

import random

import numpy as np
import torch

from ._validate import require_seed

__all__ = ["seed_everything", "get_device", "make_generator"]


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators; return a fresh torch.Generator
    seeded the same way, for functions that take ``generator=``."""
    seed = require_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return make_generator(seed)


def make_generator(seed: int, device="cpu") -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed``."""
    seed = require_seed(seed)
    try:
        generator = torch.Generator(device=get_device(device) if isinstance(device, str) else device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} cannot hold a generator; use 'cpu' or 'cuda'") from err
    return generator.manual_seed(seed)


def get_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: CPU unless asked otherwise.

    ``None`` or ``"cpu"``: the CPU. ``"cuda"`` (or ``"cuda:N"``): that GPU, with a clear error
    if none is available (never a silent fall-back to a slow CPU). ``"auto"``: CUDA when
    available, else the CPU.
    """
    if device is None:
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str | torch.device):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N', 'auto' or a torch.device, got {device!r}")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'auto'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} was asked for but CUDA is not available on this machine; "
            "use device='cpu' (or 'auto' to take a GPU only when there is one)"
        )
    return dev

