"""Summaries of repeated measurements: which noise an error bar holds is in each name."""

from __future__ import annotations

import math

import torch

from ._validate import as_tensor

__all__ = ["mean_and_se", "mean_and_sd"]


def mean_and_se(values) -> tuple[float, float]:
    """Monte-Carlo average of ``values`` and its standard error σ̂/√n (the error of *one*
    evaluation: it shrinks as more samples are averaged)."""
    values = as_tensor(values, "values", dtype=torch.float64).reshape(-1)
    if len(values) < 2:
        raise ValueError(f"values: need at least 2 values for a standard error, got {len(values)}")
    return values.mean().item(), values.std().item() / math.sqrt(len(values))


def mean_and_sd(values) -> tuple[float, float]:
    """Mean of ``values`` and their standard deviation σ̂ (the spread *between* runs, e.g.
    training seeds: it does not shrink with more runs)."""
    values = as_tensor(values, "values", dtype=torch.float64).reshape(-1)
    if len(values) < 2:
        raise ValueError(f"values: need at least 2 values for a standard deviation, got {len(values)}")
    return values.mean().item(), values.std().item()
