# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 5 — Langevin dynamics
#
# Lessons 02–04 learned a score $s(x)\approx\nabla\log p(x)$ without ever knowing $p$. This
# lesson turns a score back into **samples**: Langevin dynamics needs nothing but the score.
# We derive it, run it, break it in the three classic ways, and repair the worst failure with
# annealing over noise levels.
#
# **After this lesson you can**
# 1. derive the unadjusted Langevin algorithm from the Langevin diffusion, and show with the
#    Fokker–Planck equation that $p$ is its stationary density;
# 2. sample a 2-D mixture from its analytic score, and say how the step size trades bias for
#    speed (and when the chain blows up);
# 3. measure three failure modes: slow mixing between separated modes, wrong mode weights, and
#    inaccurate learned scores where there are no data;
# 4. fix the mode weights with annealed Langevin dynamics over a σ schedule.
#
# **Convention used throughout the course:**
# $x \leftarrow x + \varepsilon\,s(x) + \sqrt{2\varepsilon}\,z$, $z\sim\mathcal N(0, I)$, with
# step size ε. (Song & Ermon's Algorithm 1 writes $x + \tfrac\alpha2 s + \sqrt\alpha z$, the
# same thing with α = 2ε.) σ schedules are listed from largest to smallest.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.course.checks import check_annealed_langevin_loop, check_langevin_step
from lessons_lib.densities import Gaussian, density_from_score_1d, noisy_score
from lessons_lib.explorers import LangevinExplorer
from lessons_lib.nets import ScoreMLP
from lessons_lib.noise import geometric_sigmas
from lessons_lib.plotting import plot_density_2d, plot_samples
from lessons_lib.samplers import DivergenceError, annealed_langevin, langevin
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.training import train
from lessons_lib.utils import make_generator

seed_everything(0)
torch.set_num_threads(1)  # small batches and tiny networks: one thread is faster than several

# %% [markdown]
# ## 1. From a diffusion to an algorithm
#
# The **Langevin diffusion** is the stochastic differential equation
#
# $$dX_t = \nabla\log p(X_t)\,dt + \sqrt 2\,dW_t ,$$
#
# a drift up the log-density plus Brownian motion $W_t$. Why does it sample $p$? The density
# $\rho_t$ of $X_t$ obeys the Fokker–Planck equation (drift moves mass, noise diffuses it):
#
# $$\partial_t\rho_t = -\nabla\cdot\big(\rho_t\,\nabla\log p\big) + \Delta\rho_t
#   = \nabla\cdot\Big(\rho_t\,\nabla\log\frac{\rho_t}{p}\Big).$$
#
# At $\rho_t = p$ the right side is $\nabla\cdot(p\,\nabla\log 1) = 0$: $p$ is stationary
# (and under mild conditions the chain converges to it from any start). Note that only
# $\nabla\log p$ appears — the normaliser of $p$ is never needed.
#
# **Euler–Maruyama** freezes the drift over a step of length ε; the Brownian increment over
# that step is $\sqrt{\varepsilon}\,z$ with $z\sim\mathcal N(0,I)$, hence the
# **unadjusted Langevin algorithm (ULA)**
#
# $$x_{k+1} = x_k + \varepsilon\,s(x_k) + \sqrt{2\varepsilon}\,z_k .$$
#
# "Unadjusted" because there is no Metropolis accept/reject step: for finite ε the chain's
# stationary density is slightly wrong. A Gaussian $\mathcal N(0, v)$ makes this exact: with
# $s(x) = -x/v$ the step is $x_{k+1} = (1-\varepsilon/v)\,x_k + \sqrt{2\varepsilon}\,z_k$, whose
# stationary variance solves $V = (1-\varepsilon/v)^2V + 2\varepsilon$:
#
# $$V_\varepsilon = \frac{2v}{2 - \varepsilon/v}\quad(\to v\text{ as }\varepsilon\to0),
# \qquad\text{and the chain diverges when }|1-\varepsilon/v| > 1,\text{ i.e. } \varepsilon > 2v .$$
#
# Check with $v = 1$: the variance of 20,000 chains after 2,000 steps against $V_\varepsilon$.

# %%
gauss = Gaussian([0.0], 1.0)
x0 = torch.zeros(20_000, 1, dtype=torch.float64)
ula_variance = {}
for eps in (0.01, 0.1, 0.5, 1.0, 1.5):
    x = langevin(gauss.score, x0, eps, 2000, generator=make_generator(1))
    ula_variance[eps] = (x.var().item(), 2 / (2 - eps), math.sqrt(2 / (len(x) - 1)) * x.var().item())
try:
    langevin(gauss.score, x0, 2.5, 2000, generator=make_generator(1))
except DivergenceError as err:
    divergence = str(err)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'ε':>5s} {'measured Var':>13s} {'2v/(2 - ε/v)':>13s}")
for eps, (measured, predicted, se) in ula_variance.items():
    print(f"{eps:5.2f} {measured:7.3f} ± {se:.3f} {predicted:13.3f}")
print("ε = 2.5 > 2v:", divergence.split(":")[0])

# %% [markdown]
# ## 2. Sampling a 2-D mixture from its score
#
# The three-component mixture of the course, with its analytic score. 2,000 chains start from a
# broad Gaussian and run 500 steps of ε = 0.05. To judge the result we give each sample to its
# most responsible component and compare the fractions with those of exact samples
# (`p.sample`) on the same statistic.

# %%
p2 = mixture_2d()
start = 3.0 * torch.randn(2000, 2, generator=make_generator(2))
samples, path = langevin(p2.score, start, 0.05, 500, generator=make_generator(3), record_every=5)


exact = p2.sample(200_000, generator=make_generator(4))

# %%
# NBVAL_CHECK_OUTPUT
print("weights                        ", [round(w, 2) for w in p2.weights.tolist()])
print("fractions, exact samples       ", [round(f, 2) for f in p2.component_fractions(exact).tolist()])
print("fractions, Langevin (500 steps)", [round(f, 2) for f in p2.component_fractions(samples).tolist()])

# %%
fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
for ax in (ax_a, ax_b):
    plot_density_2d(ax, p2.log_prob, xlim=(-6, 6), ylim=(-6, 6), cmap="Greys", alpha=0.6)
    X, Y = torch.meshgrid(torch.linspace(-6, 6, 200), torch.linspace(-6, 6, 200), indexing="xy")
    ax.contour(X, Y, p2.log_prob(torch.stack([X, Y], -1).reshape(-1, 2)).exp().reshape(200, 200),
               levels=6, colors="k", linewidths=0.7)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", xlim=(-6, 6), ylim=(-6, 6))
for i in range(6):
    line, = ax_a.plot(path[:, i, 0], path[:, i, 1], lw=0.6, marker=".", ms=2, alpha=0.6)
    ax_a.plot(*path[0, i], "o", color=line.get_color(), ms=8, mfc="white", mew=2, label="start" if i == 0 else None)
    ax_a.plot(*path[-1, i], "*", color=line.get_color(), ms=14, mec="k", label="end (step 500)" if i == 0 else None)
ax_a.legend(loc="upper right")
ax_a.set_title("Six Langevin trajectories (every 5th step); contours of $p$")
plot_samples(ax_b, samples, s=3, color="C3", label="Langevin samples")
ax_b.set_title("2,000 chains after 500 steps, ε = 0.05")
ax_b.legend(loc="upper right")
plt.show()

# %% [markdown]
# The chains land on all three components and look right, but the fractions are off: the
# heaviest component is under-represented, because after 500 steps the chains still reflect
# where the broad start put them. Keep that in mind for section 4b.
#
# ### Exercise: one Langevin step
#
# Given the current batch `x`, the score at it, the step size and the Gaussian noise `z`,
# return the next batch.

# %%
def langevin_step(x, score, step_size, z):
    """x + ε·score + √(2ε)·z."""
    # Hint: the noise is scaled by the square root of twice the step size.
    ### BEGIN SOLUTION
    return x + step_size * score + math.sqrt(2 * step_size) * z
    ### END SOLUTION


# %%
check_langevin_step(langevin_step)

# %% [markdown]
# The rest of the notebook uses the library's `samplers.langevin`, which is this step in a loop
# (plus a check that the chain stays finite).
#
# ## 3. The step-size explorer
#
# Move ε and the number of steps. Small ε: accurate but slow (after few steps the chains still
# remember their broad start). Larger ε: fast, slightly too wide. Beyond $2v$ for the narrowest
# direction of a component ($v\approx0.2$ here) the chain blows up — the explorer then shows
# the sampler's `DivergenceError` message instead of a plot full of NaNs.

# %%
# NBVAL_IGNORE_OUTPUT
explorer = LangevinExplorer(p2, start[:500], step_size=0.05, n_steps=200, seed=3)
explorer

# %%
# NBVAL_IGNORE_OUTPUT
explorer.step_slider.value = 2.5
print("ε = 2.5, the explorer's message:", explorer.message.value)
explorer.step_slider.value = 0.05

# %% [markdown]
# ## 4. Failure modes, measured
#
# The running 1-D example $p = 0.1\,\mathcal N(-3,1) + 0.9\,\mathcal N(3,1)$ has two modes
# separated by a region of low density: $p(0)/p(3)\approx e^{-4.5}$.
#
# ### 4a. Slow mixing between modes
#
# To move between modes a chain must climb against the score through the gap — a rare event
# driven by noise alone. Start every chain in the right mode and follow the fraction found
# left of 0; it should reach 0.1.

# %%
p1 = mixture_1d()
n_chains = 4000
_, trace = langevin(p1.score, torch.full((n_chains, 1), 3.0), 0.01, 4000, generator=make_generator(5), record_every=100)
left_over_time = (trace[:, :, 0] < 0).double().mean(1)
steps_axis = np.arange(len(left_over_time)) * 100

# %%
# NBVAL_CHECK_OUTPUT
for k in (10, 20, 40):
    print(f"after {steps_axis[k]} steps of ε = 0.01 (time {steps_axis[k] * 0.01:.0f}): fraction left = {left_over_time[k]:.3f}  (target 0.1)")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
ax.plot(steps_axis, left_over_time, label="chains started at $x = 3$")
ax.axhline(0.1, color="k", ls=":", label="weight of the left mode")
ax.set(xlabel="Langevin steps (ε = 0.01)", ylabel="fraction of chains with $x < 0$",
       title="Slow mixing: crossing the gap takes thousands of steps")
ax.legend()
plt.show()

# %% [markdown]
# ### 4b. Wrong mode weights
#
# Now start from a broad uniform distribution on $[-8, 8]$, so about half the chains begin on
# each side, and run a typical budget of 1,000 steps. Within a mode each chain quickly follows
# the local score; but the score *inside* a mode says nothing about how heavy that mode is
# relative to the other — only the rare crossings of 4a carry that information. So the
# chains keep roughly their starting split.

# %%
broad = 16 * torch.rand(n_chains, 1, generator=make_generator(6)) - 8
plain = langevin(p1.score, broad, 0.01, 1000, generator=make_generator(7))

# %%
# NBVAL_CHECK_OUTPUT
print(f"fraction starting left of 0:             {(broad < 0).double().mean():.2f}")
print(f"fraction left after 1000 steps, ε = 0.01: {(plain < 0).double().mean():.2f}   (true weight 0.10)")

# %% [markdown]
# ### 4c. Inaccurate scores where there are no data
#
# With a *learned* score things get worse. Train a small network by DSM (lesson 04) at a small
# noise level, σ = 0.05, where the DSM gradient is noisy (lesson 04 §6), with the same budget as
# lesson 04 (3,000 steps of 256 fresh samples). We compare it with the true score of
# $p_\sigma$, its target, region by region: the light mode ($|x + 3| < 1$), the gap
# ($|x| < 1$, where $p_\sigma$ is below 1% of its peak), the heavy mode ($|x - 3| < 1$), and the
# far tails where $p_\sigma < 10^{-3}$ of its peak.

# %%
sigma = 0.05
seed_everything(0)
small_sigma_model = ScoreMLP(1, hidden=64)
fit = train(small_sigma_model, lambda model, batch, g: losses.dsm_loss(model, batch, sigma, generator=g), p1.sample,
            n_steps=3000, batch_size=256, lr=3e-3, progress=False)
xs = torch.linspace(-8, 8, 801)
p1_sigma = p1.perturbed(sigma)
with torch.no_grad():
    learned = small_sigma_model(xs[:, None])[:, 0]
true = p1_sigma.score(xs[:, None])[:, 0]
density = torch.exp(p1_sigma.log_prob(xs[:, None]))
sparse = density < 1e-3 * density.max()
regions = {"light mode |x+3| < 1": (xs + 3).abs() < 1, "gap |x| < 1": xs.abs() < 1,
           "heavy mode |x-3| < 1": (xs - 3).abs() < 1, "tails, p_σ < 1e-3·max": sparse}
n_train_samples = 3000 * 256
gap_mass = torch.trapezoid(density[xs.abs() < 1], xs[xs.abs() < 1]).item()
implied = density_from_score_1d(small_sigma_model, xs)
implied_left = torch.trapezoid(implied[xs < 0], xs[xs < 0].double()).item()
with torch.no_grad():
    learned_long = langevin(small_sigma_model, broad, 0.05, 4000, generator=make_generator(8))
true_long = langevin(p1.score, broad, 0.05, 4000, generator=make_generator(8))

# %%
# NBVAL_CHECK_OUTPUT
for name, where in regions.items():
    print(f"mean |learned - true score|, {name:24s}: {(learned - true)[where].abs().mean():.2f}")
print(f"training samples (noisy) expected in the gap: {gap_mass * n_train_samples:,.0f} of {n_train_samples:,}")
print(f"left-mode mass of the density implied by the learned score: {implied_left:.2f}  (true 0.10)")
print(f"fraction left after 4000 steps of ε = 0.05: true score {(true_long < 0).double().mean():.2f}, "
      f"learned score {(learned_long < 0).double().mean():.2f}")

# %%
fig, (ax_s, ax_h) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax_s.fill_between(xs, -8, 8, where=sparse, color="0.9", label=r"$p_\sigma < 10^{-3}\max p_\sigma$")
ax_s.plot(xs, true, label=r"true score of $p_\sigma$")
ax_s.plot(xs, learned, color="C3", ls="--", label="learned by DSM, σ = 0.05")
ax_s.set(xlabel="$x$", ylabel="score", ylim=(-8, 8), title="The learned score is unreliable off the data")
ax_s.legend(fontsize=8, loc="lower left")
bins = np.linspace(-8, 8, 81)
ax_h.hist(true_long[:, 0], bins=bins, density=True, alpha=0.5, label="Langevin, true score")
ax_h.hist(learned_long[:, 0], bins=bins, density=True, alpha=0.5, label="Langevin, learned score")
ax_h.plot(xs, density, color="k", lw=1, label=r"$p_\sigma$, σ = 0.05")
ax_h.plot(xs, implied, color="C3", lw=1, ls="--", label="density implied by the learned score")
ax_h.set(xlabel="$x$", ylabel="density", title="A long run samples the density the score implies")
ax_h.legend(fontsize=8)
plt.show()

# %% [markdown]
# The error is not confined to where data are missing. The gap received about 17,000 of the
# 768,000 noisy training samples, and even in the heavy mode, where most of them fell, the mean
# error is 0.45, more than half of its value in the gap (0.79); in the light mode it is 0.73.
# This is DSM at a small σ under-fitting its noisy target (the noise-to-signal problem of
# lesson 04 §6), not only a lack of data; in the far tails, where no sample ever lands, the
# error is largest (1.8). Run long enough, Langevin with the true score gets the weights right; with
# the learned score it faithfully samples *the density its score implies* — and a score that is
# wrong between the modes implies wrong weights, which no amount of sampling can fix.
#
# ## 5. Annealed Langevin dynamics
#
# Song & Ermon's remedy (2019) uses what lesson 04 showed: a large σ covers the whole space
# and blurs the modes together, so at large σ the score is reliable everywhere *and* the chains
# move between modes freely, with the right proportions. Then σ is lowered step by step,
# each level starting from the previous level's samples:
#
# for $\sigma_1 > \sigma_2 > \dots > \sigma_L$: run $T$ steps of
# $x \leftarrow x + \varepsilon_i\,s(x,\sigma_i) + \sqrt{2\varepsilon_i}\,z$ with
# $\varepsilon_i = \varepsilon\,\sigma_i^2/\sigma_L^2$,
#
# where $s(x,\sigma)\approx\nabla\log p_\sigma(x)$. **Why εᵢ ∝ σᵢ²** (Song & Ermon 2019, §4.3):
# in one step the drift is $\varepsilon_i s$ and the noise $\sqrt{2\varepsilon_i}z$, so their ratio
# is $\sqrt{\varepsilon_i/2}\,\|s\|/\|z\|$. If $\|\nabla\log p_\sigma\|\propto 1/\sigma$, as it is when
# σ is large compared with the data's spread (then $p_\sigma$ is about a Gaussian of width σ),
# or in high dimension when the data lie on a thin set (lesson 06), then
# $\sqrt{\varepsilon_i}\propto\sigma_i$ makes that ratio the same at every level (for this
# 1-D mixture only at the large levels: see below). It does *not*
# keep the step a fixed fraction of $p_{\sigma_i}$'s variance: here $\varepsilon_i = 0.01\,\sigma_i^2/\sigma_L^2 = \sigma_i^2$,
# about the whole variance $\operatorname{Var}p + \sigma_i^2 \approx 4.2 + \sigma_i^2$ at σ = 10 but a small
# fraction of it at σ = 0.1
# (printed below, with the drift-to-noise ratio measured at samples of $p_{\sigma_i}$). Here we use
# the exact $\nabla\log p_\sigma$ (a learned one comes at the end of the section). Same budget
# as 4b: 10 levels × 100 steps = 1,000 score evaluations, from the same broad start.
#
# ### Exercise: the annealed sampler
#
# Write the loop. `noise` has shape (L, T, *x.shape): use `noise[i, t]` at step t of level i.
# `sigmas` is listed largest first; `step_size` is the step at the *last* level. Return x after
# the last step of the last level.

# %%
def annealed_langevin_loop(score_fn, x, sigmas, step_size, noise):
    """T = noise.shape[1] steps x ← x + εᵢ·s(x, σᵢ) + √(2εᵢ)·noise[i, t] at each level, εᵢ = step_size·σᵢ²/σ_L²."""
    ### BEGIN SOLUTION
    for i, sigma in enumerate(sigmas):
        eps = step_size * (sigma / sigmas[-1]) ** 2
        for t in range(noise.shape[1]):
            x = x + eps * score_fn(x, sigma) + math.sqrt(2 * eps) * noise[i, t]
    return x
    ### END SOLUTION


# %%
check_annealed_langevin_loop(annealed_langevin_loop)

# %% [markdown]
# From here on the notebook uses the library's `annealed_langevin`, the same loop with the
# noise drawn from a `generator` (and a check that the chains stay finite).

# %%
sigmas = geometric_sigmas(10.0, 0.1, 10)


p1_noisy_score = noisy_score(p1)  # (x, σ) ↦ ∇ log p1_σ(x), exact
annealed, levels = annealed_langevin(p1_noisy_score, broad, sigmas, n_steps_each=100, step_size=0.01,
                                     generator=make_generator(9), record_every=100)
# drift-to-noise ratio of one step at each level, at samples of p_σᵢ
var_p = p1.sample(200_000, generator=make_generator(11)).var().item()  # Var p_σ = Var p + σ²
drift_to_noise = []
for s in sigmas.tolist():
    eps = 0.01 * (s / sigmas[-1].item()) ** 2
    at = p1.perturbed(s).sample(20_000, generator=make_generator(10))
    rms_score = p1_noisy_score(at, s).pow(2).mean().sqrt().item()
    drift_to_noise.append((s, eps, eps / (var_p + s**2), s * rms_score, math.sqrt(eps / 2) * rms_score))

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'σᵢ':>6s} {'εᵢ':>8s} {'εᵢ / Var p_σᵢ':>14s} {'σᵢ·RMS s':>9s} {'drift / noise':>14s}")
for row in drift_to_noise:
    print("{:6.2f} {:8.4f} {:14.3f} {:9.2f} {:14.3f}".format(*row))

# %% [markdown]
# The step/variance column falls from 0.96 at σ = 10 to 0.002 at σ = 0.1: $\varepsilon_i\propto\sigma_i^2$
# does not hold the step at a fixed fraction of the variance. The drift-to-noise column is
# constant as long as $\sigma\cdot\mathrm{RMS}\,s \approx 1$, i.e. $\|\nabla\log p_\sigma\|\propto1/\sigma$:
# here roughly for σ ≳ 3 (0.98 to 0.88), where $p_\sigma$ is a broad bump. Below that, in one dimension with modes
# of width 1, the score of $p_\sigma$ tends to the score of $p$ and stops growing, so
# $\sigma\cdot\mathrm{RMS}\,s\approx\sigma$ and the ratio falls ten-fold; the small levels move the
# chains little, which is harmless because by then the split between the modes is settled. In
# high dimension, with data on a thin set, the $1/\sigma$ law holds down to small σ (lesson 06
# measures it on MNIST), and there the argument is what makes one ε work at every level.

# %%
# NBVAL_CHECK_OUTPUT
print("σ schedule (largest first):", [round(s, 2) for s in sigmas.tolist()])
print(f"fraction left, plain Langevin, 1000 steps:    {(plain < 0).double().mean():.2f}")
print(f"fraction left, annealed Langevin, 1000 steps: {(annealed < 0).double().mean():.2f}   (true weight 0.10, "
      f"standard error {math.sqrt(0.09 / n_chains):.3f})")

# %%
fig, (ax_h, ax_l) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax_h.hist(plain[:, 0], bins=bins, density=True, alpha=0.5, label="plain Langevin")
ax_h.hist(annealed[:, 0], bins=bins, density=True, alpha=0.5, label="annealed Langevin")
ax_h.plot(xs, torch.exp(p1.log_prob(xs[:, None])), color="k", lw=1, label="$p$")
ax_h.set(xlabel="$x$", ylabel="density", title="Same budget (1,000 steps), same broad start")
ax_h.legend()
left_by_level = (levels[1:, :, 0] < 0).double().mean(1)
ax_l.semilogx(sigmas, left_by_level, "o-", label="annealed chains after each level")
ax_l.axhline(0.1, color="k", ls=":", label="weight of the left mode")
ax_l.invert_xaxis()
ax_l.set(xlabel="noise level σ (decreasing →)", ylabel="fraction with $x < 0$",
         title="The split is settled while the modes are still blurred")
ax_l.legend()
plt.show()

# %% [markdown]
# At the largest level the split is the fraction of $p_{10}$'s mass left of 0 (about 0.4:
# $p_{10}$ is a broad bump centred at the mixture's mean); as σ shrinks, mass flows across the still-blurred
# gap, and by the time the modes separate (σ ≈ 1) the chains are already in the right
# proportions. The small levels only sharpen each mode.
#
# ### 5b. Annealing with a learned score
#
# In practice the scores come from a network. Train one σ-conditioned `ScoreMLP` (lesson 04 §5)
# with the noise-conditional loss on the same ten levels, 4,000 steps of 256 fresh samples,
# then run the same annealed sampler with it, from the same start and with the same noise.

# %%
seed_everything(0)
level_model = ScoreMLP(1, hidden=64, sigma_conditioned=True)
train(level_model, lambda model, batch, g: losses.ncsn_loss(model, batch, sigmas, generator=g), p1.sample,
      n_steps=4000, batch_size=256, lr=3e-3, progress=False)
with torch.no_grad():
    annealed_learned = annealed_langevin(level_model, broad, sigmas, n_steps_each=100, step_size=0.01, generator=make_generator(9))
    err_by_level = [(level_model(xs[:, None], s) - p1_noisy_score(xs[:, None], s)).abs()[(xs.abs() < 1)].mean().item()
                    for s in sigmas.tolist()]

# %%
# NBVAL_CHECK_OUTPUT
print(f"fraction left after annealing: exact scores {(annealed < 0).double().mean():.3f}, "
      f"learned σ-conditioned network {(annealed_learned < 0).double().mean():.3f}   (true weight 0.10)")
print("mean |learned - true score| in the gap |x| < 1, level by level:",
      " ".join(f"{e:.2f}" for e in err_by_level))

# %% [markdown]
# With the learned network annealing gives 0.076 in the left mode: far better than plain
# Langevin's 0.40 with the exact score, but short of 0.10 (the exact-score run, with the same
# start and noise, gives 0.102). The network's error in the gap is negligible at the large
# levels and grows to about 0.5 from σ ≈ 0.46 down; the split is still moving at σ ≈ 1–0.5
# (the figure above), so those intermediate levels are where its accuracy in the gap decides
# the weights.
#
# ## Think
#
# 1. The Fokker–Planck argument never used the normaliser of $p$. Where exactly would it have
#    appeared if we had written the drift with $p$ instead of $\log p$?
#
# <details><summary>Model answer</summary>
#
# The drift is $\nabla\log p = \nabla p/p$: written with $p$ it is the ratio of $\nabla p$ to $p$,
# and the normaliser $Z$ appears in both and cancels. A drift written as $\nabla p$ without the
# division would carry a factor $1/Z$, so the speed of the dynamics, and its stationary density,
# would depend on $Z$. In the stationarity check, $\nabla\cdot(\rho\,\nabla\log(\rho/p)) = 0$ at
# $\rho = p$ uses only that $\log(\rho/p)$ is constant, which $Z$ cannot change.
#
# </details>
#
# 2. Why does the stationary variance of ULA exceed $v$, and why does a Metropolis correction
#    (MALA) remove that bias?
#
# <details><summary>Model answer</summary>
#
# Each step shrinks $x - \mu$ by the factor $1 - \varepsilon/v$ and adds noise of variance
# $2\varepsilon$. In continuous time the pull and the noise balance at variance $v$; the
# discrete step pulls by $1-\varepsilon/v$ in *standard deviation*, so the variance only shrinks
# by $(1-\varepsilon/v)^2 = 1 - 2\varepsilon/v + \varepsilon^2/v^2$ — less than the $1 - 2\varepsilon/v$
# the noise is calibrated for — and the balance sits at $2v/(2-\varepsilon/v) > v$ (measured:
# 1.341 at ε = 0.5 against the formula's 1.333). MALA treats the Langevin step as a proposal and
# accepts it with the Metropolis–Hastings probability, which makes $p$ exactly stationary for
# the chain whatever ε: the discretisation error is rejected, at the cost of rejections.
#
# </details>
#
# 3. In 4b the chains keep their starting split. Construct a start for which plain Langevin
#    gives the *right* weights after 1,000 steps. Why is that no help in practice?
#
# <details><summary>Model answer</summary>
#
# Start 10% of the chains left of the basin boundary and 90% right of it (for example, exact
# samples of $p$, or any start that puts mass 0.1 in the left basin): each chain then relaxes
# inside its basin and the split stays right. But choosing that start requires knowing the
# weights of the modes — the very thing the sampler should find. With a start independent of
# the answer (uniform, or noise), plain Langevin keeps the start's split (0.40 here).
#
# </details>
#
# 4. Annealing used the exact $\nabla\log p_\sigma$. With a learned $s_\theta(x,\sigma)$,
#    which levels must be accurate where, for the weights to come out right?
#
# <details><summary>Model answer</summary>
#
# The levels at which the split is still being decided, in the region the chains must cross:
# in and around the gap between the modes, at every level down to σ ≈ 0.5 (the fraction left
# of 0 is 0.44 after σ = 10, 0.12 after σ = 0.77 and still 0.11 after σ = 0.46). At the largest
# levels $p_\sigma$ is one broad bump and the network is well trained everywhere, so that part
# is easy; at the smallest levels the chains stay inside their modes, so errors in the gap
# matter little there and only each mode's shape needs to be right. §5b measures it: the
# learned network's gap error is 0.16 at σ = 0.77 and ≈ 0.4–0.5 below, while the last crossings
# still happen, and the split comes out at 0.076 instead of 0.10.
#
# </details>
#
# 5. Why is the step at level $i$ proportional to $\sigma_i^2$ rather than to $\sigma_i$?
#
# <details><summary>Model answer</summary>
#
# In one step the drift is $\varepsilon_i s$ and the noise $\sqrt{2\varepsilon_i} z$; their ratio is
# $\propto\sqrt{\varepsilon_i}\,\|s\|$. When $\|\nabla\log p_{\sigma}\|\propto1/\sigma$ (large σ, or data on
# a thin set in high dimension), $\varepsilon_i\propto\sigma_i^2$ makes the ratio the same at every
# level (Song & Ermon 2019, §4.3); $\varepsilon_i\propto\sigma_i$ would make it shrink like
# $\sqrt{\sigma_i}$ at large levels, so those levels would move the chains too little relative
# to their noise. Equivalently, the distance a chain diffuses in $T$ steps, $\sqrt{2T\varepsilon_i}$,
# then grows like $\sigma_i$, the width of $p_{\sigma_i}$.
#
# </details>
#
# ## Summary
#
# - ULA $x\leftarrow x + \varepsilon s(x) + \sqrt{2\varepsilon}z$ is the Euler–Maruyama
#   discretisation of the Langevin diffusion, whose stationary density is $p$ (Fokker–Planck);
#   it needs only the score.
# - Finite ε biases the samples (Gaussian: variance $2v/(2-\varepsilon/v)$) and ε > 2v
#   diverges; the library raises `DivergenceError`.
# - Failure modes: crossing low-density gaps is slow; the relative weight of separated modes
#   is therefore set by the starting point; learned scores are wrong where there were few or no
#   data and, at small σ, under-fitted even where there were many; Langevin samples the density
#   those wrong scores imply.
# - Annealed Langevin over σ₁ > … > σ_L with $\varepsilon_i\propto\sigma_i^2$ (which keeps the
#   drift-to-noise ratio of a step constant where $\|\nabla\log p_\sigma\|\propto1/\sigma$) mixes
#   at large σ and refines at small σ: the 1:9 weights come out right at the same cost with the
#   exact score (0.10), and much closer than plain Langevin with a learned one (0.076).
