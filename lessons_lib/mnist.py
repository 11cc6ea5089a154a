r"""MNIST end to end: train a noise-conditional score network and sample digits from it.

Training (:func:`train_ncsn`, with :func:`lessons_lib.training.train`: Adam, an EMA of the
weights, a progress bar) draws a noise level for every image from a continuum,
ln σ ~ N(−1.2, 1.2²), and minimises EDM's loss (:func:`lessons_lib.losses.edm_loss`) of a
:class:`lessons_lib.nets.NCSNUNet` with EDM's preconditioning; ``--noise levels`` trains
instead at fixed levels with the σ²-weighted loss :func:`lessons_lib.losses.ncsn_loss`. One
network then knows every σ. Sampling (:func:`sample`) runs EDM's Heun sampler on the
probability-flow ODE (the default, :data:`HEUN`) or annealed Langevin over a geometric schedule
(:data:`ANNEALED`, lesson 06).

Which paper each ingredient comes from: the σ²-weighted loss over a geometric schedule and
annealed Langevin sampling are Song & Ermon 2019 (NCSN; they used σ₁ = 1, L = 10, no EMA and
no final denoising step). σ₁ about the largest distance between training points, the output
scaling s = f/σ, the EMA of the weights and the final denoising step are Song & Ermon 2020
("Improved techniques for training score-based generative models", NCSNv2). The probability-flow
ODE is Song et al. 2021; continuous log-normal σ, the preconditioning (c_skip, c_out, c_in), the
loss weighting, the ρ = 7 step schedule and the Heun sampler are Karras, Aittala, Aila & Laine
2022 ("Elucidating the design space of diffusion-based generative models", EDM).

Command line (``python -m lessons_lib.mnist --help``)::

    python -m lessons_lib.mnist train --steps 10000 --batch-size 64 --channels 48 96 96 --precision bfloat16 --out checkpoints/ncsn_mnist.pt
    python -m lessons_lib.mnist sample --checkpoint checkpoints/ncsn_mnist.pt --n 64 --out samples.npy
    python -m lessons_lib.mnist sample --method annealed --n 64 --out samples.npy

A checkpoint is a plain dictionary that ``torch.load(..., weights_only=True)`` reads: the EMA
weights (``model``), the network's ``config``, the ``sigmas`` and ``meta`` (how it was made).
While training, the full state (raw weights, optimiser, EMA, losses) is written every
``--checkpoint-every`` steps to ``<out>.state.pt``; ``--resume`` continues from it.

Training in several processes, on one machine or many, with ``torch.distributed``::

    torchrun --nproc_per_node=2 -m lessons_lib.mnist train --steps 10000 --batch-size 32 --channels 48 96 96 --precision bfloat16 --out ncsn.pt  # CPUs: gloo
    torchrun --nproc_per_node=4 -m lessons_lib.mnist train --device cuda --steps 10000 --batch-size 64 --channels 48 96 96 --out ncsn.pt  # GPUs: nccl

Each process trains on its own batches of ``--batch-size`` images and the gradients are
averaged (:func:`lessons_lib.training.train`), so a step sees N × ``--batch-size`` images (the
first line above: 2 × 32, the shipped recipe's 64); process 0 alone writes the checkpoint and
the training state, in the same format, and ``--resume`` works as in one process.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validate import check_count, check_positive
from .data import MNISTError, mnist_train_heldout
from .losses import edm_loss, ncsn_loss
from .nets import NCSNUNet
from .noise import check_sigmas, geometric_sigmas
from .samplers import annealed_langevin
from .sde import heun_sample, karras_sigmas
from .training import ema_model, process_rank, train
from .utils import get_device, make_generator, seed_everything

__all__ = ["DEFAULT_CHECKPOINT", "ANNEALED", "HEUN", "SAMPLING", "PRECISIONS", "autocast", "native_bfloat16", "sampler_settings", "n_evaluations", "Checkpoint", "load_checkpoint", "save_checkpoint", "sample",
           "train_ncsn", "main"]

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "ncsn_mnist.pt"

#: Annealed Langevin as lesson 06 runs it (Song & Ermon 2019): ``n_steps_each`` steps at each of
#: the checkpoint's levels (``sigmas``), step ε·σᵢ²/σ_L² with ε = ``step_lr``, a final Tweedie
#: denoising step (NCSNv2) — 15 × 20 + 1 = 301 network evaluations with the shipped checkpoint.
ANNEALED = {"n_steps_each": 20, "step_lr": 3e-5, "denoise": True}

#: EDM's sampler (Karras et al. 2022): Heun on the probability-flow ODE along
#: ``karras_sigmas(n_steps, sigma_min, sigma_max, rho)``, 2·n_steps − 1 network evaluations, with
#: fresh noise before each step (``churn`` = S_churn, EDM's ImageNet-64 value 40; with 18 steps
#: γ = min(40/18, √2 − 1) = √2 − 1) between σ = 0.05 and 50. ``churn=0`` is the deterministic
#: ODE solver. ``benchmarks/mnist_quality.py`` measures both.
HEUN = {"n_steps": 18, "sigma_min": 0.002, "sigma_max": 40.0, "rho": 7.0, "churn": 40.0}

#: The course's default sampler and its settings (``benchmarks/mnist_quality.py`` compares them).
SAMPLING = {"method": "heun", **HEUN}

METHODS = {"annealed": ANNEALED, "heun": HEUN}
LR_DECAYS = ("none", "cosine")  # train_ncsn's learning-rate schedules
PRECISIONS = ("float32", "bfloat16")  # the network's arithmetic in training and sampling (weights stay float32)

#: :func:`sample`'s default batch by device type. On a CPU larger batches run slower per image:
#: 177 ms per 100 images in batches of 100 against 278 in batches of 500 (the shipped network in
#: bfloat16 on 2 cores, 2026-11-30; 175–182 at 32 and 64); a GPU needs large batches to keep busy.
SAMPLE_BATCH = {"cpu": 100, "cuda": 500}


def sample_batch(device: torch.device) -> int:
    """:func:`sample`'s default batch on ``device``: its :data:`SAMPLE_BATCH` entry, 500 elsewhere."""
    return SAMPLE_BATCH.get(device.type, 500)


def sampler_settings(method: str = SAMPLING["method"], **settings) -> dict:
    """The settings of ``method`` ("annealed" or "heun"): its defaults updated by ``settings``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    allowed = set(METHODS[method]) | ({"sigmas"} if method == "annealed" else set())
    unknown = set(settings) - allowed
    if unknown:
        raise ValueError(f"the {method} sampler takes {sorted(allowed)}, got {sorted(unknown)}")
    return {**METHODS[method], **settings}


def n_evaluations(checkpoint: "Checkpoint | None", method: str = SAMPLING["method"], **settings) -> int:
    """Network evaluations per digit of :func:`sample` with these settings (annealed Langevin
    counts the checkpoint's levels unless ``sigmas=`` is given)."""
    cfg = sampler_settings(method, **settings)
    if method == "heun":
        return 2 * check_count(cfg["n_steps"], "n_steps", minimum=2) - 1
    levels = len(cfg["sigmas"]) if "sigmas" in cfg else len(checkpoint.sigmas)
    return levels * check_count(cfg["n_steps_each"], "n_steps_each") + bool(cfg["denoise"])


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (a CPU with AVX512-BF16/AMX or ARM's BF16
    extension, a GPU from NVIDIA's Ampere on); elsewhere autocast emulates it, slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def autocast(device: torch.device, precision: str):
    """``torch.autocast`` in bfloat16 for ``precision="bfloat16"``, a no-op context for float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


@dataclass
class Checkpoint:
    """A trained score network with the σ schedule it was trained on (largest first).

    ``precision``: the arithmetic of :meth:`score` ("float32", or "bfloat16" under
    ``torch.autocast``: 1.7 times as fast per evaluation on the course's 2-core CPU, which has
    native bfloat16, the score rounded to about 3 significant digits). ``model`` itself is always float32, e.g. for likelihoods.
    """

    model: NCSNUNet
    sigmas: torch.Tensor
    meta: dict
    precision: str = "float32"

    def __post_init__(self):
        _check_precision(self.precision)

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
    """Load a checkpoint written by :func:`save_checkpoint` (default: the shipped one).

    ``precision`` of :meth:`Checkpoint.score`: "float32" or "bfloat16"; by default the precision
    the network was trained in (``meta["precision"]``, float32 for older checkpoints), but
    float32 on a device without native bfloat16 (:func:`native_bfloat16`), where it is faster.
    """
    path = Path(path) if path is not None else DEFAULT_CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; the course ships one at {DEFAULT_CHECKPOINT}, "
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
    return Checkpoint(model, check_sigmas(payload["sigmas"]), meta, precision)


def sample(
    checkpoint: Checkpoint,
    n: int,
    method: str = SAMPLING["method"],
    *,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
    record_every: int | None = None,
    progress: bool = False,
    **settings,
):
    """Draw ``n`` digits from the checkpoint's score network.

    ``method="heun"`` (the default, :data:`HEUN`): EDM's Heun sampler
    (:func:`lessons_lib.sde.heun_sample`, stochastic unless ``churn=0``) from σ_max·z, z
    standard normal, along :func:`lessons_lib.sde.karras_sigmas`. ``method="annealed"`` (:data:`ANNEALED`): annealed
    Langevin (:func:`lessons_lib.samplers.annealed_langevin`) from uniform noise on [0, 1] over
    the checkpoint's levels or ``sigmas=``. Keyword ``settings`` override the method's defaults.

    Runs in batches of ``batch_size`` (default :data:`SAMPLE_BATCH` for the checkpoint's device)
    on the checkpoint's device. Returns images (n, 1, 28, 28)
    on the CPU (not clipped: pixel values slightly outside [0, 1] are part of the sample); with
    ``record_every`` also the trajectory (T, n, 1, 28, 28): every ``record_every``-th Langevin
    step, or every ``record_every``-th Heun level. ``progress`` shows a tqdm bar over the
    network evaluations of all batches.
    """
    n = check_count(n, "n")
    device = next(checkpoint.model.parameters()).device
    batch_size = check_count(sample_batch(device) if batch_size is None else batch_size, "batch_size")
    cfg = sampler_settings(method, **settings)
    if record_every is not None:
        record_every = check_count(record_every, "record_every")
    generator = generator if generator is not None else make_generator(0, device)
    outs, trajs = [], []
    n_batches = math.ceil(n / batch_size)
    per_batch = n_evaluations(checkpoint, method, **settings)
    bar = tqdm(total=n_batches * per_batch, desc=f"sampling {n} digits", unit="eval", disable=not progress)

    def score(x: torch.Tensor, sigma) -> torch.Tensor:
        bar.update(1)
        return checkpoint.score(x, sigma)

    if method == "heun":
        levels = karras_sigmas(cfg["n_steps"], cfg["sigma_min"], cfg["sigma_max"], cfg["rho"])
    else:
        levels = check_sigmas(cfg.get("sigmas", checkpoint.sigmas)).tolist()
    for b in range(n_batches):
        m = min(batch_size, n - b * batch_size)
        if method == "heun":
            x0 = float(levels[0]) * torch.randn((m, 1, 28, 28), generator=generator, device=device)
            out = heun_sample(score, x0, levels, churn=cfg["churn"], generator=generator,
                              record=record_every is not None)
            if record_every is not None:
                out = (out[0], out[1][::record_every])
        else:
            x0 = torch.rand((m, 1, 28, 28), generator=generator, device=device)
            out = annealed_langevin(score, x0, levels, cfg["n_steps_each"], cfg["step_lr"], generator=generator,
                                    record_every=record_every, denoise=cfg["denoise"])
        if record_every is None:
            outs.append(out.cpu())
        else:
            outs.append(out[0].cpu())
            trajs.append(out[1].cpu())
    bar.close()
    images = torch.cat(outs)
    return images if record_every is None else (images, torch.cat(trajs, dim=1))


def _state_path(out: Path) -> Path:
    return out.with_name(out.stem + ".state.pt")


def train_ncsn(
    out,
    *,
    steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    lr_decay: str = "none",
    channels: tuple[int, int, int] = (32, 64, 64),
    sigma_max: float = 10.0,
    sigma_min: float = 0.01,
    n_sigmas: int = 15,
    noise: str = "edm",
    p_mean: float = -1.2,
    p_std: float = 1.2,
    ema_decay: float = 0.999,
    precision: str = "float32",
    seed: int = 0,
    device=None,
    data_dir=None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
    command: str = "",
) -> Checkpoint:
    """Train :class:`NCSNUNet` and write the EMA checkpoint to ``out``.

    ``noise="edm"`` (the default): continuous σ, ln σ ~ N(``p_mean``, ``p_std``²), EDM's
    preconditioning and loss (:func:`edm_loss`, σ_d the RMS of the training images).
    ``noise="levels"``: NCSNv2's output scaling and the σ²-weighted loss :func:`ncsn_loss` at the
    ``n_sigmas`` fixed levels. Either way the checkpoint's ``sigmas`` are the geometric schedule
    ``sigma_max`` → ``sigma_min`` that annealed Langevin walks by default.

    ``channels``: the U-Net's widths at 28, 14 and 7 pixels. ``lr_decay="cosine"`` lowers Adam's
    learning rate from ``lr`` at step 0 to 0 at step ``steps`` as lr·(1 + cos(π·step/steps))/2;
    ``"none"`` keeps it constant.

    ``precision="bfloat16"`` runs the network's forward and backward passes under
    ``torch.autocast`` in bfloat16 (convolutions and matrix products; the weights, Adam's state,
    the EMA and the loss stay float32): about twice as fast on CPUs with native bfloat16
    (``benchmarks/RESULTS.md``), at 8 bits of mantissa in the activations.

    Every ``checkpoint_every`` steps (and at the end) writes ``out`` (EMA weights, small) and
    ``<out>.state.pt`` (everything needed to resume). ``resume=True`` continues from that state
    up to ``steps`` in total; the batches of a resumed run differ from an uninterrupted one.
    """
    out = Path(out)
    steps = check_count(steps, "steps")
    checkpoint_every = check_count(checkpoint_every, "checkpoint_every")
    if lr_decay not in LR_DECAYS:
        raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {lr_decay!r}")
    _check_precision(precision)
    rank, world = process_rank()
    dev = get_device(device)
    split = mnist_train_heldout(data_dir)
    if rank == 0:
        print(split.source, file=sys.stderr)
    sigmas = geometric_sigmas(sigma_max, sigma_min, n_sigmas)
    seed_everything(seed)
    if noise == "edm":
        sigma_data = float(split.train.double().pow(2).mean().sqrt())
        model = NCSNUNet(channels, preconditioning="edm", sigma_data=sigma_data).to(dev)

        def loss_fn(m, x, g):
            with autocast(dev, precision):
                return edm_loss(m, x, sigma_data, generator=g, p_mean=p_mean, p_std=p_std)
        training = {"noise": "edm", "p_mean": p_mean, "p_std": p_std, "sigma_data": sigma_data}
    elif noise == "levels":
        model = NCSNUNet(channels).to(dev)

        def loss_fn(m, x, g):
            with autocast(dev, precision):
                return ncsn_loss(m, x, sigmas.to(x), generator=g)
        training = {"noise": "levels", "n_sigmas": n_sigmas}
    else:
        raise ValueError(f"noise must be 'edm' (continuous σ) or 'levels' (fixed σ levels), got {noise!r}")
    opt = torch.optim.Adam(model.parameters(), lr=check_positive(lr, "lr"))
    ema = ema_model(model, ema_decay)
    losses: list[float] = []
    seconds = 0.0
    state_path = _state_path(out)
    if resume:
        if not state_path.is_file():
            raise FileNotFoundError(f"--resume: no training state at {state_path}")
        state = torch.load(state_path, map_location=dev, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        losses, seconds = list(state["losses"]), float(state["seconds"])
        if rank == 0:
            print(f"resuming from step {len(losses)} of {steps}", file=sys.stderr)
    start_step, t0 = len(losses), time.perf_counter()
    meta = {
        "command": command, "data": split.source, "n_train": int(split.train.shape[0]), "batch_size": batch_size,
        "lr": lr, "lr_decay": lr_decay, "ema_decay": ema_decay, "precision": precision, "seed": seed, "device": str(dev), "torch": str(torch.__version__),
        "threads": torch.get_num_threads(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "processes": world, "images_per_step": world * batch_size, "training": training,
    }

    def save(step: int) -> None:
        if rank != 0:  # every process holds the same weights; one writes them
            return
        elapsed = seconds + time.perf_counter() - t0
        info = dict(meta, steps=step, seconds=round(elapsed, 1), final_loss=float(np.mean(losses[-200:])))
        save_checkpoint(out, ema.module, sigmas, info)
        tmp = state_path.with_name(state_path.name + ".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": ema.state_dict(),
                    "losses": losses, "seconds": elapsed}, tmp)
        os.replace(tmp, state_path)

    def set_lr(step: int) -> None:
        if lr_decay == "cosine":
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))

    def callback(step: int, loss: float) -> None:
        losses.append(loss)
        set_lr(start_step + step)
        if (start_step + step) % checkpoint_every == 0:
            save(start_step + step)

    set_lr(start_step)
    if steps > start_step:
        train(model, loss_fn, split.train, n_steps=steps - start_step,
              batch_size=batch_size, lr=lr, seed=seed + start_step, device=dev, progress=progress, optimizer=opt,
              ema=ema, callback=callback, desc="NCSN on MNIST")
    save(len(losses))
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # the checkpoint is written before any process reads it
    return load_checkpoint(out, device=dev)


def _save_png(images: torch.Tensor, path: Path, nrow: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import image_grid

    n = images.shape[0]
    ncol = min(nrow, n)
    fig, ax = plt.subplots(figsize=(ncol * 0.5 + 0.2, math.ceil(n / ncol) * 0.5 + 0.2))
    image_grid(ax, images, nrow=nrow)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _join_processes(device: str) -> str:
    """Under torchrun (``WORLD_SIZE`` > 1) join the process group, gloo on CPUs and nccl on GPUs;
    return the device this process trains on (its own GPU, ``cuda:LOCAL_RANK``)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else device


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lessons_lib.mnist", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train a noise-conditional score network on MNIST")
    tr.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT)
    tr.add_argument("--steps", type=int, default=6000)
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--lr-decay", choices=LR_DECAYS, default="none", help="cosine: lr → 0 at the last step")
    tr.add_argument("--channels", type=int, nargs=3, default=[32, 64, 64], metavar=("C28", "C14", "C7"),
                    help="the U-Net's widths at 28, 14 and 7 pixels")
    tr.add_argument("--sigma-max", type=float, default=10.0)
    tr.add_argument("--sigma-min", type=float, default=0.01)
    tr.add_argument("--n-sigmas", type=int, default=15)
    tr.add_argument("--noise", choices=["edm", "levels"], default="edm",
                    help="edm: continuous σ with EDM's preconditioning and loss; levels: the n-sigmas fixed levels")
    tr.add_argument("--p-mean", type=float, default=-1.2, help="edm: mean of ln σ")
    tr.add_argument("--p-std", type=float, default=1.2, help="edm: standard deviation of ln σ")
    tr.add_argument("--ema-decay", type=float, default=0.999)
    tr.add_argument("--precision", choices=PRECISIONS, default="float32",
                    help="bfloat16: the network's arithmetic under torch.autocast (weights stay float32)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--checkpoint-every", type=int, default=500)
    tr.add_argument("--resume", action="store_true", help="continue from <out>.state.pt")
    tr.add_argument("--data", type=Path, default=None, help="MNIST directory (default: $LESSONS_LIB_MNIST_DIR)")
    tr.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    tr.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    tr.add_argument("--no-progress", action="store_true")
    sa = sub.add_parser("sample", help="draw digits from a checkpoint (EDM's Heun sampler or annealed Langevin)")
    sa.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    sa.add_argument("--n", type=int, default=64)
    sa.add_argument("--out", type=Path, default=Path("samples.npy"), help=".npy file (a PNG grid is written beside it)")
    sa.add_argument("--method", choices=sorted(METHODS), default=SAMPLING["method"])
    sa.add_argument("--steps", type=int, default=None, help=f"heun: steps (default {HEUN['n_steps']})")
    sa.add_argument("--steps-each", type=int, default=None,
                    help=f"annealed: steps per level (default {ANNEALED['n_steps_each']})")
    sa.add_argument("--step-lr", type=float, default=None, help=f"annealed: ε (default {ANNEALED['step_lr']:g})")
    sa.add_argument("--no-denoise", action="store_true", help="annealed: no final denoising step")
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--device", default="cpu")
    sa.add_argument("--precision", choices=PRECISIONS, default=None,
                    help="the network's arithmetic (default: the precision it was trained in, "
                         "float32 on a machine without native bfloat16)")
    sa.add_argument("--threads", type=int, default=None)
    sa.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.cmd == "train":
            args.device = _join_processes(args.device)
            ck = train_ncsn(args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            lr_decay=args.lr_decay, channels=tuple(args.channels),
                            sigma_max=args.sigma_max, sigma_min=args.sigma_min, n_sigmas=args.n_sigmas,
                            noise=args.noise, p_mean=args.p_mean, p_std=args.p_std,
                            ema_decay=args.ema_decay, precision=args.precision, seed=args.seed, device=args.device, data_dir=args.data,
                            checkpoint_every=args.checkpoint_every, resume=args.resume,
                            progress=not args.no_progress, command="python -m lessons_lib.mnist " + " ".join(
                                sys.argv[1:] if argv is None else argv))
            if process_rank()[0] == 0:
                print(f"wrote {args.out} ({ck.meta['steps']} steps, {ck.meta['seconds']:.0f} s, "
                      f"final loss {ck.meta['final_loss']:.3f}, {ck.meta['processes']} process(es))")
        else:
            ck = load_checkpoint(args.checkpoint, device=args.device, precision=args.precision)
            start = time.perf_counter()
            given = {"n_steps": args.steps, "n_steps_each": args.steps_each, "step_lr": args.step_lr,
                     "denoise": False if args.no_denoise else None}
            settings = {k: v for k, v in given.items() if v is not None}
            images = sample(ck, args.n, args.method, generator=make_generator(args.seed, get_device(args.device)),
                            progress=not args.no_progress, **settings)
            np.save(args.out, images.numpy())
            png = args.out.with_suffix(".png")
            _save_png(images, png, nrow=min(10, args.n))
            print(f"wrote {args.out} and {png}: {args.n} samples in {time.perf_counter() - start:.1f} s")
    except (ValueError, OSError, MNISTError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
