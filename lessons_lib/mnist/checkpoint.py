"""A trained score network on disk and in memory, and the arithmetic it runs in.

A checkpoint is a plain dictionary that ``torch.load(..., weights_only=True)`` reads: the EMA
weights (``model``), the network's ``config`` (the keyword arguments of :class:`NCSNUNet`), the
``sigmas`` it was trained on (largest first) and ``meta`` (how it was made: command, data,
machine, seconds, the training objective). :data:`SCORE_CHECKPOINT` is the one the course ships.

The network's weights are always float32. Its arithmetic, in training and in sampling, is
float32 or bfloat16 under ``torch.autocast`` (:data:`PRECISIONS`): bfloat16 rounds the activations
to 8 bits of mantissa; it is faster on devices that compute in bfloat16 natively
(:func:`native_bfloat16`) and slower on those that emulate it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..noise import validate_sigmas
from ..utils import get_device
from .unet import NCSNUNet

__all__ = ["SCORE_CHECKPOINT", "PRECISIONS", "native_bfloat16", "validate_precision", "autocast", "Checkpoint",
           "save_checkpoint", "load_checkpoint"]

#: The score network the course ships (lessons 06 and 07); ``checkpoints/README.md`` says how it was made.
SCORE_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "ncsn_mnist.pt"

PRECISIONS = ("float32", "bfloat16")  # the network's arithmetic in training and sampling (weights stay float32)


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (a CPU with AVX512-BF16/AMX or ARM's BF16
    extension, a GPU from NVIDIA's Ampere on); elsewhere autocast emulates it, slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def validate_precision(precision: str) -> str:
    """``precision`` when it is one of :data:`PRECISIONS`; a ``ValueError`` naming them otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def autocast(device: torch.device, precision: str):
    """``torch.autocast`` in bfloat16 for ``precision="bfloat16"``, a no-op context for float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


@dataclass
class Checkpoint:
    """A trained score network with the σ schedule it was trained on (largest first).

    ``precision``: the arithmetic of :meth:`score`, "float32" or "bfloat16" under
    ``torch.autocast`` (the score then rounded to about 3 significant digits). ``model`` itself
    is always float32, e.g. for likelihoods, which differentiate it.
    """

    model: NCSNUNet
    sigmas: torch.Tensor
    meta: dict
    precision: str = "float32"

    def __post_init__(self):
        validate_precision(self.precision)

    def score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """s_θ(x, σ) without gradients, in float32 whatever ``precision`` the network ran in."""
        with torch.no_grad(), autocast(x.device, self.precision):
            return self.model(x, sigma).float()


def save_checkpoint(path, model: NCSNUNet, sigmas, meta: dict) -> None:
    """Write the weights, config, σ schedule and meta data, atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": dict(model.config),
        "sigmas": [float(s) for s in sigmas],
        "meta": meta,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path=None, device=None, precision: str | None = None) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (default: :data:`SCORE_CHECKPOINT`).

    ``precision`` of :meth:`Checkpoint.score`: "float32" or "bfloat16"; by default the precision
    the network was trained in (``meta["precision"]``, float32 when it is not recorded), but
    float32 on a device without native bfloat16 (:func:`native_bfloat16`), where it is faster.
    """
    path = Path(path) if path is not None else SCORE_CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; the course ships one at {SCORE_CHECKPOINT}, "
            "or make one with `python -m lessons_lib.mnist train --out PATH`"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = NCSNUNet(**payload["config"])
        model.load_state_dict(payload["model"])
    except Exception as err:  # a truncated or foreign file: say which file
        raise ValueError(f"{path} is not a score-network checkpoint of this course ({err})") from err
    dev = get_device(device)
    model.to(dev).eval()
    meta = payload.get("meta", {})
    if precision is None:
        precision = meta.get("precision", "float32") if native_bfloat16(dev) else "float32"
    return Checkpoint(model, validate_sigmas(payload["sigmas"]), meta, precision)
