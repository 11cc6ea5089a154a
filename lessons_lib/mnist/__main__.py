"""The command line: ``python -m lessons_lib.mnist train|sample`` (``--help`` lists the options).

``train``'s defaults are :data:`lessons_lib.mnist.recipe.RECIPE`, the shipped checkpoint's
recipe; ``sample`` offers every sampler of :data:`lessons_lib.mnist.sampling.SAMPLERS`
(``--method``) and their settings as flags. Examples::

    python -m lessons_lib.mnist train --out ncsn.pt
    python -m lessons_lib.mnist sample --checkpoint ncsn.pt --n 64 --out samples.npy
    python -m lessons_lib.mnist sample --method annealed --n-steps-each 5 --n 64 --out samples.npy
    torchrun --nproc_per_node=2 -m lessons_lib.mnist train --batch-size 32 --out ncsn.pt  # CPUs: gloo
    torchrun --nproc_per_node=4 -m lessons_lib.mnist train --device cuda --out ncsn.pt   # GPUs: nccl

Under ``torchrun`` each process trains on its own batches of ``--batch-size`` images and the
gradients are averaged, so a step sees N × ``--batch-size`` images (the first ``torchrun`` line:
2 × 32, the recipe's 64); process 0 alone writes the checkpoint and the training state, and
``--resume`` works as in one process.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .._validate import require_count, require_seed
from ..training import process_rank
from ..utils import get_device, make_generator
from .checkpoint import PRECISIONS, SCORE_CHECKPOINT, load_checkpoint
from .data import MNISTError
from .recipe import LR_DECAYS, OBJECTIVES, RECIPE, Recipe, train_ncsn
from .sampling import DEFAULT_SAMPLER, SAMPLERS, sample, sampler_settings

PROG = "python -m lessons_lib.mnist"


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (and exit code 2), as every other error of the CLI."""

    def error(self, message):
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _train_parser(sub) -> None:
    tr = sub.add_parser("train", help="train a noise-conditional score network on MNIST (defaults: the shipped recipe)")
    tr.add_argument("--out", type=Path, default=SCORE_CHECKPOINT)
    tr.add_argument("--n-steps", type=int, default=RECIPE.n_steps)
    tr.add_argument("--batch-size", type=int, default=RECIPE.batch_size, help="images per step and process")
    tr.add_argument("--lr", type=float, default=RECIPE.lr)
    tr.add_argument("--lr-decay", choices=LR_DECAYS, default=RECIPE.lr_decay, help="cosine: lr → 0 at the last step")
    tr.add_argument("--channels", type=int, nargs=3, default=list(RECIPE.channels), metavar=("C28", "C14", "C7"),
                    help="the U-Net's widths at 28, 14 and 7 pixels")
    tr.add_argument("--objective", choices=OBJECTIVES, default=RECIPE.objective,
                    help="edm: continuous σ with EDM's preconditioning and loss; ncsn: the n-sigmas fixed levels")
    tr.add_argument("--p-mean", type=float, default=RECIPE.p_mean, help="edm: mean of ln σ")
    tr.add_argument("--p-std", type=float, default=RECIPE.p_std, help="edm: standard deviation of ln σ")
    tr.add_argument("--sigma-max", type=float, default=RECIPE.sigma_max)
    tr.add_argument("--sigma-min", type=float, default=RECIPE.sigma_min)
    tr.add_argument("--n-sigmas", type=int, default=RECIPE.n_sigmas)
    tr.add_argument("--ema-decay", type=float, default=RECIPE.ema_decay)
    tr.add_argument("--precision", choices=PRECISIONS, default=RECIPE.precision,
                    help="the network's arithmetic, bfloat16 under torch.autocast (weights stay float32)")
    tr.add_argument("--seed", type=int, default=RECIPE.seed)
    tr.add_argument("--checkpoint-every", type=int, default=500)
    tr.add_argument("--resume", action="store_true", help="continue from <out>.state.pt")
    tr.add_argument("--data-dir", type=Path, default=None, help="MNIST folder (default: $LESSONS_LIB_MNIST_DIR)")
    tr.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    tr.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    tr.add_argument("--no-progress", action="store_true")


def _sampler_flags() -> dict[str, dataclasses.Field]:
    """Every setting of a registered sampler that has a ``help``: its flag's destination → its field."""
    return {f.name: f for s in SAMPLERS.values() for f in dataclasses.fields(s) if "help" in f.metadata}


def _sample_parser(sub) -> None:
    sa = sub.add_parser("sample", help="draw digits from a checkpoint with one of the registered samplers")
    sa.add_argument("--checkpoint", type=Path, default=SCORE_CHECKPOINT)
    sa.add_argument("--n", type=int, default=64)
    sa.add_argument("--out", type=Path, default=Path("samples.npy"), help=".npy file (a PNG grid is written beside it)")
    sa.add_argument("--method", choices=sorted(SAMPLERS), default=DEFAULT_SAMPLER)
    for name, f in _sampler_flags().items():
        owners = [k for k, s in SAMPLERS.items() if name in {g.name for g in dataclasses.fields(s)}]
        text = f"{', '.join(owners)}: {f.metadata['help']} (default {f.default})"
        flag = "--" + name.replace("_", "-")
        if isinstance(f.default, bool):
            sa.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            sa.add_argument(flag, type=type(f.default), default=None, help=text)
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--device", default="cpu")
    sa.add_argument("--precision", choices=PRECISIONS, default=None,
                    help="the network's arithmetic (default: the precision it was trained in, "
                         "float32 on a machine without native bfloat16)")
    sa.add_argument("--threads", type=int, default=None)
    sa.add_argument("--no-progress", action="store_true", help="no progress bar")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Train a noise-conditional score network on MNIST "
                                                       "and sample digits from it.")
    sub = p.add_subparsers(dest="cmd", required=True)
    _train_parser(sub)
    _sample_parser(sub)
    return p


def recipe_of(args: argparse.Namespace) -> Recipe:
    """The :class:`Recipe` that ``train``'s parsed options spell."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe)}
    return Recipe(**dict(values, channels=tuple(values["channels"])))


def _save_png(images: torch.Tensor, path: Path, nrow: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import image_grid

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


def _train(args: argparse.Namespace, argv: list[str]) -> None:
    device = _join_processes(args.device)
    ck = train_ncsn(args.out, recipe_of(args), device=device, data_dir=args.data_dir,
                    checkpoint_every=args.checkpoint_every, resume=args.resume, progress=not args.no_progress,
                    command=" ".join([PROG, *argv]))
    if process_rank()[0] == 0:
        print(f"wrote {args.out} ({ck.meta['steps']} steps, {ck.meta['seconds']:.0f} s, "
              f"final loss {ck.meta['final_loss']:.3f}, {ck.meta['processes']} process(es))")


def _check_out(out: Path, suffix: str | None = None) -> None:
    """The output file's folder exists and ``out`` ends in ``suffix``: checked before any work."""
    if suffix is not None and out.suffix != suffix:
        raise ValueError(f"out must end in {suffix} (the file written is named exactly so), got {out}")
    if not out.parent.is_dir():
        raise ValueError(f"out: the folder {out.parent} does not exist; create it first")
    if out.is_dir():
        raise ValueError(f"out: {out} is a folder; give a file name")
    if not os.access(out.parent, os.W_OK):
        raise ValueError(f"out: the folder {out.parent} is not writable")


def _check_args(args: argparse.Namespace) -> dict:
    """Every flag, before any work (the output folder first); for ``sample``, the sampler's changes."""
    _check_out(args.out, ".npy" if args.cmd == "sample" else None)
    if args.threads is not None:
        require_count(args.threads, "threads")
    require_seed(args.seed)
    get_device(args.device)
    if args.cmd == "train":
        recipe_of(args)
        require_count(args.checkpoint_every, "checkpoint_every")
        return {}
    require_count(args.n, "n")
    changes = {name: getattr(args, name) for name in _sampler_flags() if getattr(args, name) is not None}
    sampler_settings(args.method, **changes)
    return changes


def _sample(args: argparse.Namespace, changes: dict) -> None:
    ck = load_checkpoint(args.checkpoint, device=args.device, precision=args.precision)
    start = time.perf_counter()
    images = sample(ck, args.n, args.method, generator=make_generator(args.seed, get_device(args.device)),
                    progress=not args.no_progress, **changes)
    np.save(args.out, images.numpy())
    png = args.out.with_suffix(".png")
    _save_png(images, png, nrow=min(10, args.n))
    print(f"wrote {args.out} and {png}: {args.n} samples in {time.perf_counter() - start:.1f} s")


def _close_progress_bars() -> None:
    """End any progress bar's line, so that an error starts a line of its own."""
    from tqdm.auto import tqdm

    for bar in list(getattr(tqdm, "_instances", [])):
        bar.close()


def _flag_names(p: argparse.ArgumentParser, cmd: str, message: str) -> str:
    """The message on one line, with a leading argument name written as its flag (n_steps → --n-steps)."""
    message = " ".join(message.split())
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[cmd]
    for action in sub._actions:
        for flag in action.option_strings:
            if message.startswith(action.dest + " ") or message.startswith(action.dest + ":"):
                return flag + message[len(action.dest):]
    return message


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = parser()
    args = p.parse_args(argv)
    try:
        changes = _check_args(args)
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        if args.cmd == "train":
            _train(args, argv)
        else:
            _sample(args, changes)
    except (ValueError, OSError, MNISTError) as err:
        _close_progress_bars()
        print(f"error: {_flag_names(p, args.cmd, str(err))}", file=sys.stderr)
        return 2
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
