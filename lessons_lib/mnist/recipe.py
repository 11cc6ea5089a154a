r"""Training a score network on MNIST: :data:`RECIPE` and :func:`train_ncsn`.

:data:`RECIPE` holds the settings the shipped checkpoint (:data:`~lessons_lib.mnist.checkpoint.SCORE_CHECKPOINT`)
was trained with; they are :func:`train_ncsn`'s and ``python -m lessons_lib.mnist train``'s
defaults, so the command without options retrains it. Its objective is EDM's (Karras, Aittala,
Aila & Laine 2022): every image gets its own noise level, ln σ ~ N(p_mean, p_std²), the network
is wrapped in EDM's preconditioning and trained on EDM's weighted denoising loss
(:func:`lessons_lib.losses.edm_loss`). ``objective="ncsn"`` trains instead at ``n_sigmas`` fixed
levels with NCSNv2's output scaling and the σ²-weighted loss of Song & Ermon 2019
(:func:`lessons_lib.losses.ncsn_loss`). Either way one network knows every σ, and the
checkpoint's ``sigmas`` are the geometric schedule ``sigma_max`` → ``sigma_min`` that annealed
Langevin walks by default.

Training runs :func:`lessons_lib.training.train`: Adam, an EMA of the weights (the checkpoint
holds the EMA), a progress bar, and under ``torchrun`` one process per device with the
gradients averaged, so a step sees (number of processes) × ``batch_size`` images.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._validate import require_count, require_positive, require_real, require_seed
from ..losses import edm_loss, ncsn_loss
from ..noise import geometric_sigmas
from ..training import ema_model, process_rank, train
from ..utils import get_device, seed_everything
from .checkpoint import Checkpoint, autocast, load_checkpoint, save_checkpoint, validate_precision
from .data import mnist_train_heldout
from .unet import NCSNUNet

__all__ = ["Recipe", "RECIPE", "OBJECTIVES", "LR_DECAYS", "train_ncsn"]

OBJECTIVES = ("edm", "ncsn")  # continuous σ with EDM's preconditioning and loss; NCSN's fixed levels
LR_DECAYS = ("none", "cosine")  # a constant learning rate; lr·(1 + cos(π·step/n_steps))/2


@dataclass(frozen=True)
class Recipe:
    """Every setting of :func:`train_ncsn` that shapes the weights."""

    n_steps: int                     # Adam steps
    batch_size: int                  # images per step and process
    lr: float                        # Adam's learning rate
    lr_decay: str                    # one of LR_DECAYS
    channels: tuple[int, int, int]   # the U-Net's widths at 28, 14 and 7 pixels
    objective: str                   # one of OBJECTIVES
    p_mean: float                    # edm: ln σ ~ N(p_mean, p_std²)
    p_std: float
    sigma_max: float                 # the checkpoint's geometric levels (ncsn: the training levels)
    sigma_min: float
    n_sigmas: int
    ema_decay: float                 # the EMA of the weights that the checkpoint holds
    precision: str                   # the network's arithmetic, one of PRECISIONS (weights stay float32)
    seed: int

    def __post_init__(self):
        require_count(self.n_steps, "n_steps")
        require_count(self.batch_size, "batch_size")
        require_positive(self.lr, "lr")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {self.lr_decay!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be 'edm' (continuous σ) or 'ncsn' (fixed σ levels), "
                             f"got {self.objective!r}")
        validate_precision(self.precision)
        require_real(self.p_mean, "p_mean")
        require_positive(self.p_std, "p_std")
        require_real(self.ema_decay, "ema_decay", 0.0, 1.0, open_lo=True, open_hi=True)
        if not isinstance(self.channels, tuple | list) or len(self.channels) != 3:
            raise ValueError(f"channels must give 3 widths (for 28, 14 and 7 pixels), got {self.channels!r}")
        for c in self.channels:
            require_count(c, "channels")
        require_seed(self.seed)
        self.sigmas()  # sigma_max > sigma_min > 0 and n_sigmas >= 2

    def sigmas(self) -> torch.Tensor:
        """The checkpoint's levels: ``geometric_sigmas(sigma_max, sigma_min, n_sigmas)``."""
        return geometric_sigmas(self.sigma_max, self.sigma_min, self.n_sigmas)

    def lr_at(self, step: int) -> float:
        """Adam's learning rate at ``step`` (counted from 0)."""
        if self.lr_decay == "none":
            return self.lr
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, self.n_steps) / self.n_steps))


#: The shipped checkpoint's recipe; the defaults of :func:`train_ncsn` and of ``python -m lessons_lib.mnist train``.
RECIPE = Recipe(
    n_steps=10_000, batch_size=64, lr=1e-3, lr_decay="none", channels=(48, 96, 96),
    objective="edm", p_mean=-1.2, p_std=1.2, sigma_max=10.0, sigma_min=0.01, n_sigmas=15,
    ema_decay=0.999, precision="bfloat16", seed=0,
)


def _model_and_loss(recipe: Recipe, train_images: torch.Tensor, device: torch.device):
    """The fresh network, its loss ``loss_fn(model, x, generator)`` and what the checkpoint records of both."""
    if recipe.objective == "edm":
        sigma_data = float(train_images.double().pow(2).mean().sqrt())  # σ_d: the RMS of the training pixels
        model = NCSNUNet(recipe.channels, preconditioning="edm", sigma_data=sigma_data).to(device)

        def loss_fn(m, x, g):
            with autocast(device, recipe.precision):
                return edm_loss(m, x, sigma_data, generator=g, p_mean=recipe.p_mean, p_std=recipe.p_std)
        return model, loss_fn, {"objective": "edm", "p_mean": recipe.p_mean, "p_std": recipe.p_std,
                                "sigma_data": sigma_data}
    model = NCSNUNet(recipe.channels).to(device)
    sigmas = recipe.sigmas().to(device)

    def loss_fn(m, x, g):
        with autocast(device, recipe.precision):
            return ncsn_loss(m, x, sigmas, generator=g)
    return model, loss_fn, {"objective": "ncsn", "n_sigmas": recipe.n_sigmas}


def _state_path(out: Path) -> Path:
    return out.with_name(out.stem + ".state.pt")


def train_ncsn(
    out,
    recipe: Recipe = RECIPE,
    *,
    device=None,
    data_dir=None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
    command: str = "",
    **changes,
) -> Checkpoint:
    """Train an :class:`NCSNUNet` by ``recipe`` and write the EMA checkpoint to ``out``.

    ``changes``: any fields of :class:`Recipe` to change (``n_steps=…``, ``objective="ncsn"``, …).
    ``data_dir``: the MNIST folder (:func:`lessons_lib.mnist.data.mnist_train_heldout`; the
    training images are its ``train``). ``precision="bfloat16"`` runs the network's forward and
    backward passes under ``torch.autocast`` in bfloat16 (convolutions and matrix products); the
    weights, Adam's state, the EMA and the loss stay float32.

    Every ``checkpoint_every`` steps (and at the end) writes ``out`` (EMA weights, small) and
    ``<out>.state.pt`` (everything needed to resume); under ``torchrun`` process 0 alone writes.
    ``resume=True`` continues from that state up to ``n_steps`` in total; the batches of a
    resumed run differ from an uninterrupted one. ``command`` is recorded in ``meta["commands"]``
    after those of the runs it resumes (``meta["command"]`` is the first, the one that chose the
    recipe).
    """
    recipe = dataclasses.replace(recipe, **changes)
    out = Path(out)
    checkpoint_every = require_count(checkpoint_every, "checkpoint_every")
    rank, world = process_rank()
    dev = get_device(device)
    split = mnist_train_heldout(data_dir)
    if rank == 0:
        print(split.source, file=sys.stderr)
    seed_everything(recipe.seed)
    model, loss_fn, training = _model_and_loss(recipe, split.train, dev)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    ema = ema_model(model, recipe.ema_decay)
    losses: list[float] = []
    seconds, commands = 0.0, [command]
    state_path = _state_path(out)
    if resume:
        if not state_path.is_file():
            raise FileNotFoundError(f"--resume: no training state at {state_path}")
        state = torch.load(state_path, map_location=dev, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        losses, seconds = list(state["losses"]), float(state["seconds"])
        commands = [*state.get("commands", []), command]
        if rank == 0:
            print(f"resuming from step {len(losses)} of {recipe.n_steps}", file=sys.stderr)
    start_step, t0 = len(losses), time.perf_counter()
    meta = {
        "command": commands[0], "commands": commands, "data": split.source, "n_train": int(split.train.shape[0]),
        "batch_size": recipe.batch_size, "lr": recipe.lr, "lr_decay": recipe.lr_decay, "ema_decay": recipe.ema_decay,
        "precision": recipe.precision, "seed": recipe.seed, "device": str(dev), "torch": str(torch.__version__),
        "threads": torch.get_num_threads(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "processes": world, "images_per_step": world * recipe.batch_size, "training": training,
    }

    def save(step: int) -> None:
        if rank != 0:  # every process holds the same weights; one writes them
            return
        elapsed = seconds + time.perf_counter() - t0
        info = dict(meta, steps=step, seconds=round(elapsed, 1), final_loss=float(np.mean(losses[-200:])))
        save_checkpoint(out, ema.module, recipe.sigmas(), info)
        tmp = state_path.with_name(state_path.name + ".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": ema.state_dict(),
                    "losses": losses, "seconds": elapsed, "commands": commands}, tmp)
        os.replace(tmp, state_path)

    def set_lr(step: int) -> None:
        for group in opt.param_groups:
            group["lr"] = recipe.lr_at(step)

    def after_step(step: int, loss: float) -> None:
        losses.append(loss)
        set_lr(start_step + step)
        if (start_step + step) % checkpoint_every == 0:
            save(start_step + step)

    set_lr(start_step)
    if recipe.n_steps > start_step:
        train(model, loss_fn, split.train, n_steps=recipe.n_steps - start_step, batch_size=recipe.batch_size,
              lr=recipe.lr, seed=recipe.seed + start_step, device=dev, progress=progress, optimizer=opt, ema=ema,
              callback=after_step, desc="NCSN on MNIST")
    save(len(losses))
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # the checkpoint is written before any process reads it
    return load_checkpoint(out, device=dev)
