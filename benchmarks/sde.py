"""Score-SDE samplers (lesson 07): quality against the number of score evaluations.

* :func:`quality_table`: on the course's 1-D and 2-D mixtures with their *exact* scores, the
  reverse SDE, predictor–corrector, the probability-flow ODE and annealed Langevin at equal
  numbers of score evaluations, from the prior N(0, σ_max² I); errors of the mode weights, the
  mean and the covariance (:func:`lessons_lib.densities.sample_errors`). CPU, seconds.
* :func:`mnist_table`: the time of one ODE log-likelihood (bits/dim, Hutchinson) of a batch of
  held-out digits under the shipped MNIST checkpoint. The same samplers' quality on MNIST, at
  equal network evaluations, is in ``benchmarks/mnist/quality.py``.

    python -m benchmarks.sde [--mnist] [--device auto]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from lessons_lib.densities import noisy_score, sample_errors
from lessons_lib.sde import VESDE, bits_per_dim, ode_log_likelihood, ode_sample, pc_sample, reverse_sde_sample
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.utils import get_device, make_generator

N_CHAINS = 4000
SIGMA_MIN, SIGMA_MAX = 0.01, 50.0
#: annealed Langevin's step at level σ is ε·σ²/σ_min² with ε·/σ_min² = 0.2 (lesson 05's ratio 0.002/0.1²)
ANNEALED_RATIO = 0.2


def samplers(sde: VESDE, n_levels: int = 10):
    """(label, sampler(score_fn, x1, evaluations, generator)) for the four samplers at a budget
    of score evaluations per chain."""

    def annealed(score_fn, x1, evals, g):
        # n_levels equally spaced times below t = 1 (the grid's t₀ … t_{L−1}), evals/L steps each
        return pc_sample(score_fn, sde, x1, n_levels, n_corrector=evals // n_levels, predictor=False,
                         step_size=ANNEALED_RATIO * sde.sigma_min**2, generator=g)

    return [
        ("reverse SDE (Euler–Maruyama)", lambda s, x1, evals, g: reverse_sde_sample(s, sde, x1, evals, generator=g)),
        ("reverse SDE (reverse-diffusion predictor)",
         lambda s, x1, evals, g: reverse_sde_sample(s, sde, x1, evals, generator=g, predictor="reverse_diffusion")),
        ("PC: reverse-diffusion predictor + 1 Langevin step, snr 0.16",
         lambda s, x1, evals, g: pc_sample(s, sde, x1, evals // 2, 1, 0.16, generator=g)),
        ("probability-flow ODE (Heun)", lambda s, x1, evals, g: ode_sample(s, sde, x1, evals // 2)),
        (f"annealed Langevin, {n_levels} levels, ε = {ANNEALED_RATIO:g}σ²", annealed),
    ]


class Counted:
    """A score function that counts its evaluations (one per call, whatever the batch)."""

    def __init__(self, score_fn):
        self.score_fn, self.calls = score_fn, 0

    def __call__(self, x, sigma):
        self.calls += 1
        return self.score_fn(x, sigma)


def quality_table(budgets=(30, 100, 300, 1000)) -> str:
    sde = VESDE(sigma_max=SIGMA_MAX, sigma_min=SIGMA_MIN)
    rows = [f"{N_CHAINS:,} chains from N(0, σ_max² I), σ from {SIGMA_MAX:g} to {SIGMA_MIN:g}; exact scores of p_σ.", "",
            "| target | sampler | score evaluations per chain | max mode-weight error | mean error "
            "| covariance error (rel.) |",
            "| --- | --- | ---: | ---: | ---: | ---: |"]
    for target_name, mix in [("1-D 0.1·N(−3,1)+0.9·N(3,1)", mixture_1d()), ("2-D mixture_2d", mixture_2d())]:
        score = noisy_score(mix)
        x1 = sde.prior_sample((N_CHAINS, mix.dim), make_generator(0), dtype=torch.float64)
        for label, run in samplers(sde):
            for budget in budgets:
                counted = Counted(score)
                err = sample_errors(mix, run(counted, x1, budget, make_generator(1)))
                rows.append(f"| {target_name} | {label} | {counted.calls} | {err.weight:.3f} | {err.mean:.3f} | "
                            f"{err.covariance:.3f} |")
    return "\n".join(rows)


def mnist_table(checkpoint=None, device=None, n_likelihood: int = 16, likelihood_steps: int = 100) -> str:
    """The time and value of one ODE log-likelihood (bits/dim, Hutchinson) of held-out digits
    under the shipped checkpoint. (Its samplers' quality is ``benchmarks/mnist/quality.py``'s table.)"""
    from lessons_lib.mnist import SAMPLERS, load_checkpoint, mnist_train_heldout

    dev = get_device(device)
    ck = load_checkpoint(checkpoint, device=dev)
    sde = VESDE(sigma_max=SAMPLERS["heun"].sigma_max, sigma_min=float(ck.sigmas[-1]))
    g = make_generator(1, dev)
    digits = mnist_train_heldout().heldout[-n_likelihood:].to(dev)
    x = (digits * 255 + torch.rand(digits.shape, generator=g, device=dev)) / 256  # uniform dequantisation
    start = time.perf_counter()
    log_p = ode_log_likelihood(ck.model, sde, x, likelihood_steps, "hutchinson", g)
    seconds = time.perf_counter() - start
    bpd = bits_per_dim(log_p, 28 * 28)
    return (f"ODE log-likelihood under {sde} of {n_likelihood} held-out digits (uniformly dequantised), Heun "
            f"with {likelihood_steps} steps ({2 * likelihood_steps} evaluations with a vector-Jacobian product "
            f"each), one Rademacher projection: {bpd.mean():.2f} ± {bpd.std() / math.sqrt(n_likelihood):.2f} "
            f"bits/dim (mean ± standard error over digits) in {seconds:.1f} s for the batch on {dev.type} "
            f"with {torch.get_num_threads()} threads.")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", action="store_true", help="the MNIST table instead of the mixtures")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    print(mnist_table(device=args.device) if args.mnist else quality_table())


if __name__ == "__main__":
    main()
