"""Sampler quality on known targets: error of the mode weights and of the moments of Langevin
and annealed Langevin versus the number of score evaluations per chain."""

from __future__ import annotations

import torch

from lessons_lib.densities import sample_errors
from lessons_lib.noise import geometric_sigmas
from lessons_lib.samplers import annealed_langevin, langevin
from lessons_lib.toy_data import mixture_1d, mixture_2d

N_CHAINS = 4000


def quality_table(budgets=(100, 300, 1000, 3000)) -> str:
    rows = ["| target | sampler | score evaluations per chain | max mode-weight error | mean error "
            "| covariance error (rel.) |",
            "| --- | --- | ---: | ---: | ---: | ---: |"]
    targets = [("1-D 0.1·N(−3,1)+0.9·N(3,1)", mixture_1d(), 8.0), ("2-D mixture_2d", mixture_2d(), 5.0)]
    for target_name, mix, box in targets:
        g = torch.Generator().manual_seed(0)
        x0 = box * (2 * torch.rand(N_CHAINS, mix.dim, generator=g) - 1)
        sigmas = geometric_sigmas(10.0, 0.1, 10)
        noisy = {float(s): mix.perturbed(float(s)) for s in sigmas}
        for budget in budgets:
            x = langevin(mix.score, x0, step_size=0.02, n_steps=budget, generator=g)
            w, m, c = sample_errors(mix, x)
            rows.append(f"| {target_name} | Langevin, ε = 0.02 | {budget} | {w:.3f} | {m:.3f} | {c:.3f} |")
            x = annealed_langevin(lambda x, s, noisy=noisy: noisy[s].score(x), x0, sigmas, n_steps_each=budget // 10,
                                  step_size=0.002, generator=g)
            w, m, c = sample_errors(mix, x)
            rows.append(f"| {target_name} | annealed, 10 levels 10→0.1, ε = 0.002 | {budget} "
                        f"| {w:.3f} | {m:.3f} | {c:.3f} |")
    return "\n".join(rows)

