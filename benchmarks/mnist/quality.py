"""How good are the MNIST samples at a given number of network evaluations, and are they copies?

    python -m benchmarks.mnist.quality [--checkpoint PATH] [--n 1000] [--device cpu|cuda|auto] [--settings]

* :func:`quality_table`: every sampler of the course on the checkpoint at (about) the same
  number of network evaluations per digit — EDM's Heun sampler, the probability-flow ODE on the
  geometric grid, the reverse SDE, predictor–corrector and annealed Langevin — plus Heun at
  fewer steps and lesson 06's annealed setting. Each row: ``n`` samples scored by
  :func:`lessons_lib.mnist.quality.sample_quality` (Fréchet distance in the course classifier's
  feature space, class fractions) against the first ``n`` held-out real digits, a random set:
  they come in the order of :func:`lessons_lib.mnist.heldout_indices`. Two rows frame
  the scale: the other ``n`` held-out real digits, a random set disjoint from the reference (the
  best one can hope for at this ``n``; :func:`real_fd_spread` gives its spread over random
  splits), and uniform noise.
  Samples are clamped to [0, 1] like the real digits.
* :func:`neighbour_table`: distances from samples to their nearest training image, against the
  same for held-out real digits (which the network never saw): a network that copies its
  training digits puts its samples much closer than that.
* :func:`seconds_per_100`: wall-clock seconds for 100 digits with the course's sampler.
* :func:`settings_table` (``--settings``, not part of the report): the course's Heun sampler with
  one of its settings changed per row.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from benchmarks.sde import ANNEALED_RATIO, Counted
from lessons_lib.mnist import (
    DEFAULT_SAMPLER,
    SAMPLERS,
    frechet_distance,
    load_checkpoint,
    load_classifier,
    mnist_train_heldout,
    nearest_neighbours,
    sample,
    sample_quality,
    sampler_settings,
)
from lessons_lib.mnist.quality import classifier_outputs
from lessons_lib.mnist.sampling import sample_batch
from lessons_lib.sde import VESDE, ode_sample, pc_sample, reverse_sde_sample
from lessons_lib.utils import get_device, make_generator

BUDGET = 49  # network evaluations per digit for the equal-cost rows (the last one a denoising step)


def sde_rows(sde: VESDE, budget: int = BUDGET):
    """(label, run(score, x_init, generator)) for lesson 07's samplers, from the prior, ``budget``
    evaluations each including the final denoising step."""
    steps = budget - 1
    annealed_step = ANNEALED_RATIO * sde.sigma_min**2
    return [
        (f"reverse SDE, {steps} steps + denoise",
         lambda s, x, g: reverse_sde_sample(s, sde, x, steps, generator=g, denoise=True)),
        (f"PC, {steps // 2} × (reverse-diffusion predictor + 1 corrector, snr 0.16) + denoise",
         lambda s, x, g: pc_sample(s, sde, x, steps // 2, 1, 0.16, generator=g, denoise=True)),
        (f"annealed Langevin, {steps} levels × 1 step, ε = {ANNEALED_RATIO:g}σ² + denoise",
         lambda s, x, g: pc_sample(s, sde, x, steps, 1, predictor=False, step_size=annealed_step, generator=g,
                                   denoise=True)),
        (f"probability-flow ODE, Heun, {steps // 2} equal steps in log σ + denoise",
         lambda s, x, g: ode_sample(s, sde, x, steps // 2, denoise=True)),
    ]


def mnist_rows(n_levels: int, budget: int = BUDGET):
    """(label, sampler) for :func:`lessons_lib.mnist.sample`: the registry's samplers, Heun at other
    step counts, annealed Langevin on a checkpoint with ``n_levels`` levels."""
    heun, annealed = SAMPLERS["heun"], SAMPLERS["annealed"]
    n_steps = (budget + 1) // 2
    rows = [(f"EDM Heun, deterministic (S_churn = 0), {heun.n_steps} steps", sampler_settings(heun, churn=0.0))]
    rows += [(f"EDM Heun, S_churn = {heun.churn:g}, {k} steps" + (" (the course's)" if k == heun.n_steps else ""),
              sampler_settings(heun, n_steps=k)) for k in sorted({10, heun.n_steps, n_steps})]
    rows.append((f"annealed Langevin, {n_levels} levels × {annealed.n_steps_each} steps, "
                 f"ε = {annealed.step_size:g} + denoise (lesson 06)", annealed))
    return rows


def _row(label: str, evals, seconds, q) -> str:
    f = q.class_fractions
    return (f"| {label} | {evals} | {seconds} | {q.fd:.1f} | {q.tv_to_uniform:.3f} | "
            f"{min(f):.3f} ({f.index(min(f))}) | {max(f):.3f} ({f.index(max(f))}) |")


def real_fd_spread(heldout: torch.Tensor, classifier, n: int, n_splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation of the FD between two disjoint random sets of ``n`` held-out
    digits over ``n_splits`` seeded random splits: the floor of an ``n``-image FD and a guide to
    its sampling spread."""
    feats, _ = classifier_outputs(heldout, classifier, logits=False)
    g = torch.Generator().manual_seed(0)
    fds = []
    for _ in range(n_splits):
        p = torch.randperm(feats.shape[0], generator=g)
        fds.append(frechet_distance(feats[p[:n]], feats[p[n:2 * n]]))
    fds = torch.tensor(fds, dtype=torch.float64)
    return float(fds.mean()), float(fds.std())


def quality_table(checkpoint=None, n: int = 1000, device=None, batch_size: int | None = None) -> str:
    """A Markdown table: one row per sampler, plus real digits and noise."""
    dev = get_device(device)
    ck = load_checkpoint(checkpoint, device=dev)
    batch_size = sample_batch(dev) if batch_size is None else batch_size
    classifier = load_classifier(device=dev)
    heldout = mnist_train_heldout().heldout
    if heldout.shape[0] < 2 * n:
        raise ValueError(f"n = {n} needs {2 * n} held-out digits, there are {heldout.shape[0]}")
    reference, other_real = heldout[:n].to(dev), heldout[n:2 * n].to(dev)
    heun = SAMPLERS["heun"]
    sde = VESDE(sigma_max=heun.sigma_max, sigma_min=float(ck.sigmas[-1]))
    training = ck.meta.get("training", {})
    trained_on = ("continuous σ, ln σ ~ N({p_mean:g}, {p_std:g}²), EDM preconditioning".format(**training)
                  if ck.model.preconditioning == "edm" else f"{len(ck.sigmas)} fixed levels")
    lines = [f"{n} samples per row against {n} held-out real digits; checkpoint trained on {trained_on}, "
             f"{ck.meta.get('steps')} steps. Heun: Karras σ (ρ = {heun.rho:g}) from {heun.sigma_max:g} to "
             f"{heun.sigma_min:g}, then 0; SDE samplers: {sde}, from its prior; "
             f"lesson 06: σ = {float(ck.sigmas[0]):g} … {float(ck.sigmas[-1]):g} from uniform noise. "
             f"Sampled on {dev.type}, the network in {ck.precision}.", "",
             "| samples | network evaluations | seconds | FD ↓ | TV to uniform ↓ | rarest class | commonest class |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    # the held-out digits come in a fixed shuffled order, so its two halves are random halves:
    # the floor a sampler's FD is read against, at the same n
    lines.append(_row("the other random half of the held-out digits", "–", "–",
                      sample_quality(other_real, reference, classifier)))
    noise = torch.rand(other_real.shape, generator=make_generator(1, dev), device=dev)
    lines.append(_row("uniform noise", "–", "–", sample_quality(noise, reference, classifier)))
    mean, sd = real_fd_spread(heldout[:2 * n], classifier, n)
    note = (f"FD between two disjoint random sets of {n} of the {2 * n} held-out digits, over 10 random "
            f"splits: {mean:.1f} ± {sd:.1f} (mean ± SD), the floor of an FD at this n and a guide to "
            "the sampling spread of each FD below.")
    rows = [(label, sampler, ck) for label, sampler in mnist_rows(len(ck.sigmas))]
    if ck.precision != "float32":  # what the network's rounding costs, with the course's sampler
        rows.insert(2, (f"the course's, the network in float32 instead of {ck.precision}", SAMPLERS[DEFAULT_SAMPLER],
                        load_checkpoint(checkpoint, device=dev, precision="float32")))
    for label, sampler, net in rows:
        start = time.perf_counter()
        images = sample(net, n, sampler, generator=make_generator(0, dev), batch_size=batch_size)
        seconds = time.perf_counter() - start
        q = sample_quality(images.clamp(0, 1).to(dev), reference, classifier)
        lines.append(_row(label, sampler.n_evaluations(net), f"{seconds:.0f}", q))
    for label, run in sde_rows(sde):
        g = make_generator(0, dev)
        start = time.perf_counter()
        outs = []
        for b in range(math.ceil(n / batch_size)):
            counted = Counted(ck.score)
            x_init = sde.prior_sample((min(batch_size, n - b * batch_size), 1, 28, 28), g, device=dev)
            outs.append(run(counted, x_init, g).clamp(0, 1))
        seconds = time.perf_counter() - start
        q = sample_quality(torch.cat(outs), reference, classifier)
        lines.append(_row(label, counted.calls, f"{seconds:.0f}", q))
    return "\n".join(lines + ["", note])


#: One change at a time to the course's Heun settings (``SAMPLERS["heun"]``), for :func:`settings_table`.
SETTINGS = [{}, {"n_steps": 25}, {"sigma_max": 80.0}, {"rho": 4.0}, {"rho": 3.0}]


def settings_table(checkpoint=None, n: int = 1000, device=None, settings=SETTINGS) -> str:
    """The course's Heun sampler with one setting changed per row (same seed, same ``n`` held-out
    digits): how much the sampler's knobs move the Fréchet distance."""
    dev = get_device(device)
    ck = load_checkpoint(checkpoint, device=dev)
    classifier = load_classifier(device=dev)
    reference = mnist_train_heldout().heldout[:n].to(dev)
    lines = [f"{n} samples per row; the course's Heun settings {SAMPLERS['heun']} with one change.", "",
             "| change | network evaluations | FD ↓ | TV to uniform ↓ | rarest class |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for change in settings:
        images = sample(ck, n, "heun", generator=make_generator(0, dev), **change)
        q = sample_quality(images.clamp(0, 1).to(dev), reference, classifier)
        f = q.class_fractions
        label = ", ".join(f"{k} = {v:g}" for k, v in change.items()) or "none (the course's)"
        evals = sampler_settings("heun", **change).n_evaluations()
        lines.append(f"| {label} | {evals} | {q.fd:.1f} | {q.tv_to_uniform:.3f} | {min(f):.3f} ({f.index(min(f))}) |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def neighbour_table(checkpoint=None, n: int = 1000, device=None) -> str:
    """Quantiles of the L2 distance to the nearest training image: the course's samples against
    held-out real digits (never trained on) and against training digits themselves (0)."""
    dev = get_device(device)
    ck = load_checkpoint(checkpoint, device=dev)
    split = mnist_train_heldout()
    train = split.train.to(dev)
    samples = sample(ck, n, generator=make_generator(0, dev)).clamp(0, 1).to(dev)
    quantiles = torch.tensor([0.01, 0.05, 0.5, 0.95], dtype=torch.float64)
    held = nearest_neighbours(split.heldout[:n].to(dev), train)[0].cpu()
    ours = nearest_neighbours(samples, train)[0].cpu()
    below = float((ours < held.quantile(0.01)).double().mean())
    lines = [f"L2 distance (pixels in [0, 1], 784 of them) from each image to its nearest neighbour among the "
             f"{train.shape[0]:,} training images; {n} of each.", "",
             "| images | 1 % | 5 % | median | 95 % |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, d in [("held-out real digits", held), (f"samples ({DEFAULT_SAMPLER}, the course's)", ours)]:
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in d.quantile(quantiles).tolist()) + " |")
    lines += ["", f"Samples closer to a training image than 99 % of held-out digits are: {below:.1%} "
              "(1 % if the samples were distributed like held-out digits)."]
    return "\n".join(lines)


def seconds_per_100(checkpoint=None, device=None, repeats: int = 3) -> float:
    """Median seconds to draw 100 digits with the course's sampler (``SAMPLERS[DEFAULT_SAMPLER]``)."""
    dev = get_device(device)
    ck = load_checkpoint(checkpoint, device=dev)
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        sample(ck, 100, generator=make_generator(r, dev))
        times.append(time.perf_counter() - start)
    return float(torch.tensor(times).median())


def report(checkpoint=None, n: int = 1000, device=None) -> str:
    """All three measurements, as the RESULTS.md section prints them."""
    dev = get_device(device)
    seconds = seconds_per_100(checkpoint, dev)
    evals = SAMPLERS[DEFAULT_SAMPLER].n_evaluations()
    parts = [f"100 digits with the course's sampler ({evals} evaluations): {seconds:.1f} s "
             f"(median of 3) on {dev.type} with {torch.get_num_threads()} threads."]
    for part in (neighbour_table, quality_table):
        parts.append(part(checkpoint, n, dev))
        print(parts[-1], flush=True)  # a long run keeps what it has measured
    return "\n\n".join(parts[1:] + parts[:1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--settings", action="store_true", help="only the table of Heun settings (settings_table)")
    args = parser.parse_args(argv)
    table = settings_table if args.settings else report
    print(table(args.checkpoint, args.n, args.device))


if __name__ == "__main__":
    main()
