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
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._validate import require_batch, require_choice, require_path
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
    return require_choice(precision, "precision", PRECISIONS)


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
        require_batch(x, "x", device=next(self.model.parameters()).device)
        with torch.no_grad(), autocast(x.device, self.precision):
            return self.model(x, sigma).float()


def _plain(value, where: str):
    """``value`` as ``torch.load(weights_only=True)`` reads it back: dicts with string keys, lists,
    strings, numbers, booleans, None and tensors; numpy scalars become the Python number they hold."""
    if isinstance(value, np.generic | np.ndarray) and np.ndim(value) == 0:
        return value.item()
    if value is None or isinstance(value, str | bool | int | float | torch.Tensor):
        return value
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError(f"{where} must have string keys, got {[k for k in value if not isinstance(k, str)]!r}")
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{where} is a {type(value).__name__}; a checkpoint's meta holds only numbers, strings, "
                     "booleans, None, tensors, and lists and dicts of them (what torch.load(weights_only=True) reads)")


def _checked(payload, path: Path) -> tuple[NCSNUNet, torch.Tensor, dict]:
    """The network, levels and meta of a checkpoint's dictionary, by the rules both :func:`save_checkpoint`
    (before it writes) and :func:`load_checkpoint` (after it reads) apply."""
    what = f"{path} is not a score-network checkpoint of this course"
    if not isinstance(payload, dict):
        raise ValueError(f"{what}: it holds a {type(payload).__name__}, not a dictionary")
    missing = [k for k in ("model", "config", "sigmas") if k not in payload]
    if missing:
        keys = sorted(map(str, payload))
        raise ValueError(f"{what}: it has no {', '.join(repr(k) for k in missing)} (its keys: {keys})")
    if not isinstance(payload["config"], dict):
        kind = type(payload["config"]).__name__
        raise ValueError(f"{what}: its 'config' is a {kind}, not NCSNUNet's keyword arguments")
    try:
        model = NCSNUNet(**payload["config"])
        model.load_state_dict(payload["model"])
    except (TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise ValueError(f"{what}: its weights do not fit NCSNUNet({payload['config']}) "
                         f"({str(err).splitlines()[0]})") from err
    try:
        sigmas = validate_sigmas(payload["sigmas"])
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from err
    meta = payload.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{what}: its 'meta' is a {type(meta).__name__}, not a dictionary")
    return model, sigmas, _plain(meta, "meta")


def read_torch_file(path: Path, what: str):
    """``torch.load(path, weights_only=True)`` with an error that names the file and says what it is
    not (``what``: "a score-network checkpoint of this course"), without torch's advice to
    turn ``weights_only`` off."""
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path} is not {what}: it holds Python objects other than tensors, numbers and "
                         "strings (a file written by other code; this course never writes those)") from err
    except (EOFError, RuntimeError, OSError, ValueError) as err:
        raise ValueError(f"{path} is not {what}: it is truncated or not a file torch.save wrote "
                         f"({type(err).__name__})") from err


def save_checkpoint(path, model: NCSNUNet, sigmas, meta: dict) -> None:
    """Write the weights, config, σ schedule and meta data, atomically (temporary file + rename).

    What it writes is first checked by the rules :func:`load_checkpoint` reads with (``sigmas``
    strictly decreasing, ``meta`` a dictionary of plain values: numpy scalars are converted, other
    objects refused), so a file it writes can always be read back; on any failure nothing is left
    behind (no partial file, no temporary file)."""
    path = require_path(path, "path")
    if not isinstance(model, NCSNUNet):
        raise ValueError(f"model must be an NCSNUNet, got {type(model).__name__}")
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a dictionary, got {type(meta).__name__}")
    sigmas = validate_sigmas(sigmas)
    payload = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": dict(model.config),
        "sigmas": [float(s) for s in sigmas],
        "meta": _plain(meta, "meta"),
    }
    _checked(payload, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path=None, device=None, precision: str | None = None) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (default: :data:`SCORE_CHECKPOINT`).

    ``precision`` of :meth:`Checkpoint.score`: "float32" or "bfloat16"; by default the precision
    the network was trained in (``meta["precision"]``, float32 when it is not recorded), but
    float32 on a device without native bfloat16 (:func:`native_bfloat16`), where it is faster.
    A file that is not such a checkpoint (foreign, truncated, without levels) is a ``ValueError``
    naming the file and what it lacks.
    """
    path = require_path(path, "path") if path is not None else SCORE_CHECKPOINT
    if precision is not None:
        validate_precision(precision)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; the course ships one at {SCORE_CHECKPOINT}, "
            "or make one with `python -m lessons_lib.mnist train --out PATH`"
        )
    dev = get_device(device)
    model, sigmas, meta = _checked(read_torch_file(path, "a score-network checkpoint of this course"), path)
    model.to(dev).eval()
    if precision is None:
        precision = meta.get("precision", "float32") if native_bfloat16(dev) else "float32"
    return Checkpoint(model, sigmas, meta, precision)
