"""Which training levers pay: the shipped recipe with one change at a time, each scored by its samples.

    python -m benchmarks.mnist.levers [--device cuda] [--n-steps 10000] [--parallel 8] [--only NAME ...]

Every variant runs the documented command, ``python -m lessons_lib.mnist train``, whose defaults
are the shipped checkpoint's recipe (``lessons_lib.mnist.RECIPE``), with ``--n-steps`` and the
options in :data:`VARIANTS` (other
training seeds, to see the spread; a wider U-Net, at the same steps or at the same CPU time;
twice the width at the coarsest resolution only, 7 × 7 pixels; ln σ centred higher; a larger
or decaying learning rate; twice the batch at half the steps, the same images and CPU time;
four times the steps; float32 arithmetic), in its own process,
``--parallel`` at a time. Each result is scored like the course's row of
``benchmarks/mnist/quality.py``: ``--n`` digits from the course's sampler (EDM's Heun, seed 0)
against as many held-out real digits, by Fréchet distance in the course classifier's features
and the class balance. A variant trains as long as the shipped recipe, so on a CPU this is a job
for a night and on a GPU one for minutes; the table records the device it ran on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from lessons_lib.mnist import (
    DEFAULT_SAMPLER,
    RECIPE,
    SAMPLERS,
    load_checkpoint,
    load_classifier,
    mnist_train_heldout,
    sample,
    sample_quality,
)
from lessons_lib.utils import get_device, make_generator

#: The wider U-Net's steps in the recipe's CPU time, as a fraction of the recipe's: the ratio of
#: the two networks' measured times per image and step (``benchmarks/RESULTS.md``).
WIDE_STEP_RATIO = 0.72

#: name → options added to the recipe's command; a later option overrides an earlier one.
#: ``{steps_half}`` and ``{steps4}`` are half and four times the base number of steps,
#: ``{steps_wide}`` the steps the wider U-Net makes in the recipe's CPU time (:data:`WIDE_STEP_RATIO`).
VARIANTS = {
    "shipped recipe (seed 0)": [],
    "seed 1": ["--seed", "1"],
    "seed 2": ["--seed", "2"],
    "wider U-Net (64, 128, 128)": ["--channels", "64", "128", "128"],
    "wider U-Net, the same CPU time": ["--channels", "64", "128", "128", "--n-steps", "{steps_wide}"],
    "twice the width at 7 × 7 (48, 96, 192)": ["--channels", "48", "96", "192"],
    "ln σ ~ N(−0.4, 1.2²)": ["--p-mean", "-0.4"],
    "lr 2e-3": ["--lr", "2e-3"],
    "cosine lr decay": ["--lr-decay", "cosine"],
    "batch 128, half the steps": ["--batch-size", "128", "--n-steps", "{steps_half}"],
    "4 × the steps": ["--n-steps", "{steps4}"],
    "float32 arithmetic": ["--precision", "float32"],
}


def score(checkpoint, n: int = 1000, device=None) -> str:
    """One table row's numbers for a checkpoint: FD, TV to uniform, rarest class, trained seconds."""
    dev = get_device(device)
    ck = load_checkpoint(checkpoint, device=dev)
    heldout = mnist_train_heldout().heldout[:n].to(dev)
    images = sample(ck, n, generator=make_generator(0, dev), progress=False)
    q = sample_quality(images.clamp(0, 1).to(dev), heldout, load_classifier(device=dev))
    f = q.class_fractions
    return (f"{ck.meta['steps']} | {ck.meta['seconds']:.0f} | {q.fd:.1f} | {q.tv_to_uniform:.3f} | "
            f"{min(f):.3f} ({f.index(min(f))})")


def _failed(name: str, process: subprocess.CompletedProcess) -> str:
    """A table row for a variant whose process failed: its last line of error output."""
    last = (process.stderr.strip().splitlines() or [f"exit code {process.returncode}"])[-1]
    return f"| {name} | failed: {last} | | | | |"


def _run_variant(name: str, options: list[str], n_steps: int, device: str, n: int, folder: Path, threads: int) -> str:
    out = folder / ("variant_" + "".join(c if c.isalnum() else "_" for c in name) + ".pt")
    options = [o.format(steps_half=n_steps // 2, steps4=4 * n_steps, steps_wide=round(WIDE_STEP_RATIO * n_steps))
               for o in options]
    command = [sys.executable, "-m", "lessons_lib.mnist", "train", "--out", str(out), "--n-steps", str(n_steps),
               "--device", device, "--no-progress", "--checkpoint-every", str(10 * n_steps),
               "--threads", str(threads), *options]
    trained = subprocess.run(command, capture_output=True, text=True)
    if trained.returncode != 0:
        return _failed(name, trained)
    scored = subprocess.run([sys.executable, "-m", "benchmarks.mnist.levers", "--score", str(out), "--n", str(n),
                             "--device", device], capture_output=True, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    if scored.returncode != 0:
        return _failed(name, scored)
    row = f"| {name} | {scored.stdout.strip()} |"
    print(row, flush=True)
    return row


def lever_table(n_steps: int = RECIPE.n_steps, device: str = "cpu", n: int = 1000, parallel: int = 1, only=None,
                folder=None) -> str:
    """Train every variant (``only``: a subset of :data:`VARIANTS`' names) and return a Markdown table."""
    names = [k for k in VARIANTS if not only or k in only]
    unknown = set(only or ()) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    folder = Path(folder or tempfile.mkdtemp(prefix="mnist_levers_"))
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # the machine's cores shared out: processes that each start a thread per core oversubscribe it and thrash
    threads = max(1, (os.cpu_count() or 1) // parallel)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        rows = list(pool.map(lambda k: _run_variant(k, VARIANTS[k], n_steps, device, n, folder, threads), names))
    gpu = torch.cuda.get_device_name() if device.startswith("cuda") and torch.cuda.is_available() else None
    return "\n".join([
        f"Each variant: `python -m lessons_lib.mnist train --n-steps {n_steps}` (the recipe {RECIPE}) plus its "
        f"options, on {gpu or device}, {parallel} at a time ({time.perf_counter() - start:.0f} s in all; the seconds "
        f"below are each run's own, slowed by the others). Scored by {n} samples of {DEFAULT_SAMPLER} "
        f"({SAMPLERS[DEFAULT_SAMPLER].n_evaluations()} evaluations) against {n} held-out digits.", "",
        "| variant | steps | training seconds | FD ↓ | TV to uniform ↓ | rarest class |",
        "| --- | ---: | ---: | ---: | ---: | ---: |", *rows])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-steps", type=int, default=RECIPE.n_steps)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--only", nargs="+", default=None, help="variant names (default: all)")
    parser.add_argument("--folder", default=None, help="where the checkpoints go (default: a temporary folder)")
    parser.add_argument("--score", default=None, help="only score this checkpoint (used by each variant's process)")
    args = parser.parse_args(argv)
    if args.score:
        print(score(args.score, args.n, args.device))
    else:
        print(lever_table(args.n_steps, args.device, args.n, args.parallel, args.only, args.folder))


if __name__ == "__main__":
    main()
