"""How good are the MNIST samples, and how few network evaluations does it take?

    python -m benchmarks.mnist_quality [--checkpoint PATH] [--n 1000] [--device cpu|cuda|auto]

Draws ``n`` samples from the checkpoint with several annealed-Langevin settings, from Song &
Ermon's 100 steps per level down to 5, and scores each with
:func:`lessons_lib.quality.sample_quality` against the first ``n`` held-out real digits (the
classifier of ``benchmarks/mnist_classifier.py``): Fréchet distance in the classifier's feature
space, the total variation of the class fractions from uniform, and the rarest and commonest
class. Two rows frame the scale: the other held-out real digits (the best one can hope for)
and uniform noise. Samples are clamped to [0, 1] like the real digits.
"""

from __future__ import annotations

import argparse
import time

import torch

from lessons_lib import mnist
from lessons_lib.data import mnist_train_heldout
from lessons_lib.quality import load_classifier, sample_quality
from lessons_lib.utils import get_device, make_generator

#: (label, levels are the checkpoint's, steps per level, ε at the last level, final denoising)
SETTINGS = [
    ("Song & Ermon: 100 steps/level, ε = 2e-5", 100, 2e-5, False),
    ("40 steps/level, ε = 2e-5, + denoise", 40, 2e-5, True),
    ("20 steps/level, ε = 3e-5, + denoise (the course's)", 20, 3e-5, True),
    ("20 steps/level, ε = 1e-4, + denoise", 20, 1e-4, True),
    ("10 steps/level, ε = 3e-5, + denoise", 10, 3e-5, True),
    ("5 steps/level, ε = 3e-5, + denoise", 5, 3e-5, True),
]


def _row(label: str, evals: str, seconds: str, q) -> str:
    f = q.class_fractions
    return (f"| {label} | {evals} | {seconds} | {q.fd:.1f} | {q.tv_to_uniform:.3f} | "
            f"{min(f):.3f} ({f.index(min(f))}) | {max(f):.3f} ({f.index(max(f))}) |")


def quality_table(checkpoint=None, n: int = 1000, device=None, settings=SETTINGS) -> str:
    """A Markdown table: one row per sampler setting, plus real digits and noise."""
    dev = get_device(device)
    ck = mnist.load_checkpoint(checkpoint, device=dev)
    classifier = load_classifier(device=dev)
    heldout = mnist_train_heldout().heldout
    if heldout.shape[0] < 2 * n:
        raise ValueError(f"n = {n} needs {2 * n} held-out digits, there are {heldout.shape[0]}")
    reference, other_real = heldout[:n].to(dev), heldout[n:2 * n].to(dev)
    levels = len(ck.sigmas)
    lines = [f"{n} samples per row against {n} held-out real digits; checkpoint: {levels} levels "
             f"σ = {float(ck.sigmas[0]):.3g} … {float(ck.sigmas[-1]):.3g}, {ck.meta.get('steps')} training steps; "
             f"sampled on {dev.type}.", "",
             "| samples | network evaluations | seconds | FD ↓ | TV to uniform ↓ | rarest class | commonest class |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines.append(_row("other held-out real digits", "–", "–", sample_quality(other_real, reference, classifier)))
    noise = torch.rand(other_real.shape, generator=make_generator(1, dev), device=dev)
    lines.append(_row("uniform noise", "–", "–", sample_quality(noise, reference, classifier)))
    for label, steps, eps, denoise in settings:
        start = time.perf_counter()
        images = mnist.sample(ck, n, n_steps_each=steps, step_lr=eps, denoise=denoise,
                              generator=make_generator(0, dev))  # returned on the CPU: the GPU is done
        seconds = time.perf_counter() - start
        q = sample_quality(images.clamp(0, 1).to(dev), reference, classifier)
        lines.append(_row(label, str(levels * steps + int(denoise)), f"{seconds:.0f}", q))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    print(quality_table(args.checkpoint, args.n, args.device))


if __name__ == "__main__":
    main()
