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
# Lessons 02–04 learned a score $s(x)\approx\nabla\log p(x)$: lesson 02 from the true score and,
# by implicit score matching, from samples; lesson 03 from samples; lesson 04 the score of the
# noisy density $p_\sigma$ from samples. This lesson turns a
# score back into **samples**: Langevin dynamics needs nothing but the score. We derive it, run
# it, measure where it fails, and see how far annealing over noise levels repairs the mode
# weights. Song & Ermon (2019, §3.2.2) showed that Langevin dynamics, even with the exact score,
# mixes slowly between modes separated by a region of low density, and so gets their relative
# weights wrong; we measure both. A learned score fails in a third way. Song & Ermon's §3.2.1 is
# a score that is inaccurate where data are scarce; we measure a relative of it, a DSM score
# made inaccurate at small σ by its noisy target. Their §3.1, data on a thin set, is lesson 04
# §1 and lesson 06.
#
# **After this lesson you can**
# 1. derive the unadjusted Langevin algorithm (ULA) from the Langevin diffusion, show with the
#    Fokker–Planck equation that $p$ is the *diffusion's* stationary density, and compute ULA's
#    bias for a Gaussian;
# 2. sample a 2-D mixture from its analytic score, say how the step size trades bias for
#    speed, and remove the bias with a Metropolis correction (MALA) when $\log p$ is known;
# 3. measure how Langevin dynamics fails with the exact score (slow mixing between separated
#    modes, and the wrong mode weights it leaves) and with a learned score that is inaccurate;
# 4. measure how far annealed Langevin dynamics over a σ schedule repairs the mode weights, and
#    finish with Tweedie's denoising step.
#
# **Conventions used throughout the course:** the step size ε of a Langevin step is the time
# step of the Langevin diffusion of §1 (Song & Ermon's Algorithm 1 calls 2ε its step α). σ
# schedules are listed from largest to smallest.

# %%
import copy
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.course.checks import check_annealed_langevin_loop, check_langevin_step, check_mala_log_acceptance
from lessons_lib.densities import Gaussian, density_from_score_1d, noisy_score
from lessons_lib.explorers import LangevinExplorer
from lessons_lib.nets import ScoreMLP
from lessons_lib.noise import geometric_sigmas
from lessons_lib.plotting import plot_density_2d, plot_samples
from lessons_lib.samplers import (
    DivergenceError,
    annealed_langevin,
    annealed_langevin_law_1d,
    langevin,
    mala,
    ula_relaxation_time_1d,
    ula_stationary_1d,
)
from lessons_lib.stats import mean_and_se
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.training import train
from lessons_lib.utils import make_generator

seed_everything(0)
torch.set_num_threads(1)  # small batches and tiny networks: one thread is faster than several


def binomial_se(fraction, n):
    """The standard error of a fraction measured on n independent chains."""
    return math.sqrt(fraction * (1 - fraction) / n)


# %% [markdown]
# ## 1. From a diffusion to an algorithm
#
# The **Langevin diffusion** is the stochastic differential equation
#
# $$dX_t = \nabla\log p(X_t)\,dt + \sqrt 2\,dW_t ,$$
#
# a drift up the log-density plus Brownian motion $W_t$. Why does it sample $p$? Follow the
# density $\rho_t$ of $X_t$ in one dimension. Mass is conserved, so $\partial_t\rho = -\partial_x J$
# for a flux $J$. The drift $b = \partial_x\log p$ carries mass at speed $b$ (flux $\rho b$);
# the noise $\sqrt2\,dW$ spreads it like heat, from high density to low, with flux
# $-\partial_x\rho$ (Fick's law with diffusion coefficient 1: heat with coefficient $D$ spreads
# with variance $2Dt$, and $\sqrt2\,W_t$ has variance $2t$). So
# $J = \rho\,\partial_x\log p - \partial_x\rho = -\rho\,\partial_x\log(\rho/p)$, and in $d$
# dimensions the **Fokker–Planck equation** reads
#
# $$\partial_t\rho_t = -\nabla\cdot\big(\rho_t\,\nabla\log p\big) + \Delta\rho_t
#   = \nabla\cdot\Big(\rho_t\,\nabla\log\frac{\rho_t}{p}\Big).$$
#
# At $\rho_t = p$ the flux vanishes: $p$ is stationary for the diffusion, and under mild
# conditions the diffusion converges to it from any start. Only $\nabla\log p$ appears — the
# normaliser of $p$ is never needed.
#
# **Euler–Maruyama** turns the diffusion into an algorithm: over a step of length ε it freezes
# the drift at its value at the start of the step, and replaces the Brownian increment over the
# step, $W_{t+\varepsilon} - W_t$, by a draw from its distribution.
#
# ### Exercise 1 (2 points): one Langevin step
#
# Apply Euler–Maruyama to the Langevin diffusion, with the score $s$ in place of
# $\nabla\log p$: given the current batch `x`, the score at it, the step size ε and a batch `z` of
# standard normal draws, return the batch one step of length ε later. Work out on paper what
# multiplies `z` before you write the line.

# %%
def langevin_step(x, score, step_size, z):
    """The batch one Euler–Maruyama step of length step_size later, the diffusion's drift replaced by score."""
    # Hint: what is the variance of W(t + ε) − W(t), and what multiplies dW in the diffusion?
    ### BEGIN SOLUTION
    return x + step_size * score + math.sqrt(2 * step_size) * z
    ### END SOLUTION


# %%
check_langevin_step(langevin_step)

# %% [markdown]
# The step is the **unadjusted Langevin algorithm** (ULA),
#
# $$x_{k+1} = x_k + \varepsilon\,s(x_k) + \sqrt{2\varepsilon}\,z_k ,\qquad z_k\sim\mathcal N(0, I),$$
#
# the course's convention (Song & Ermon's Algorithm 1 writes $x + \tfrac\alpha2 s + \sqrt\alpha z$,
# the same step with α = 2ε). The rest of the notebook uses the library's `samplers.langevin`,
# which is this step in a loop (plus a check that the chain stays finite).
#
# "Unadjusted" because there is no Metropolis accept/reject step: for finite ε the chain's
# stationary density, when it has one, is not $p$. (If the tails are lighter than Gaussian, i.e.
# the score grows faster than linearly, as for $p\propto e^{-x^4}$, ULA started far enough out
# diverges at any step size: Roberts & Tweedie 1996.) A Gaussian
# $\mathcal N(0, v)$ makes the bias exact: with $s(x) = -x/v$ the step is
# $x_{k+1} = (1-\varepsilon/v)\,x_k + \sqrt{2\varepsilon}\,z_k$, whose stationary variance
# solves $V = (1-\varepsilon/v)^2V + 2\varepsilon$:
#
# $$V_\varepsilon = \frac{2v}{2 - \varepsilon/v} = v\Big(1 + \frac{\varepsilon}{2v} + O(\varepsilon^2)\Big),
# \qquad\text{a stationary law only for }|1-\varepsilon/v| < 1,\text{ i.e. } \varepsilon < 2v$$
#
# (beyond $2v$ the variance of $x_k$ grows geometrically, at $2v$ linearly).
#
# The bias is first order in ε/v. Check with $v = 1$: the variance of 10,000 chains after
# 500 steps against $V_\varepsilon$. Every row uses the same noise (one seed), so the rows are
# not independent of each other.

# %%
gauss = Gaussian([0.0], 1.0)
x0 = torch.zeros(10_000, 1, dtype=torch.float64)
ula_variance = {}
for eps in (0.01, 0.1, 0.5, 1.0, 1.5):
    x = langevin(gauss.score, x0, eps, 500, generator=make_generator(1))
    ula_variance[eps] = (x.var().item(), 2 / (2 - eps), math.sqrt(2 / (len(x) - 1)) * x.var().item())
try:
    langevin(gauss.score, x0, 2.5, 500, generator=make_generator(1))
except DivergenceError as err:
    divergence = str(err)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'ε':>5s} {'measured Var':>13s} {'2v/(2 - ε/v)':>13s}")
for eps, (measured, predicted, se) in ula_variance.items():
    print(f"{eps:5.2f} {measured:7.3f} ± {se:.3f} {predicted:13.3f}")
print("ε = 2.5 > 2v:", divergence.split(":")[0])

# %% [markdown]
# At ε = 0.01 the predicted excess over $v$ is well inside the standard error; at ε = 0.1 it is
# several of them, so that row already tells $V_\varepsilon$ from $v$, and the rows from ε = 0.5 on
# test the formula.
#
# ## 2. Sampling a 2-D mixture from its score
#
# The three-component mixture of the course, with its analytic score. 2,000 chains start from a
# broad Gaussian and run 500 steps of ε = 0.05. To judge the result we give each sample to its
# most responsible component and compare the fractions with those of exact samples
# (`p.sample`) on the same statistic. A control separates the two possible causes of a
# mismatch: the same 500 steps started from exact samples. If the chains had not yet forgotten
# the broad start, the control would be right and the first run wrong; if ULA's bias were to
# blame, both would be wrong, provided the chains move between components within the 500
# steps: we count how many do.

# %%
p2 = mixture_2d()
start = 3.0 * torch.randn(2000, 2, generator=make_generator(2))
samples, path = langevin(p2.score, start, 0.05, 500, generator=make_generator(3), record_every=5)
exact = p2.sample(200_000, generator=make_generator(4))
exact_start_2d = p2.sample(2000, generator=make_generator(12))
from_exact = langevin(p2.score, exact_start_2d, 0.05, 500, generator=make_generator(3))

# %%
# NBVAL_CHECK_OUTPUT
print("weights                                 ", [round(w, 2) for w in p2.weights.tolist()])
print("fractions, exact samples                ", [round(f, 3) for f in p2.component_fractions(exact).tolist()])
print("fractions, the broad start itself       ", [round(f, 3) for f in p2.component_fractions(start).tolist()])
for name, x in (("Langevin, broad start, 500 steps", samples), ("Langevin, exact start, 500 steps", from_exact)):
    fractions = p2.component_fractions(x).tolist()
    print(f"fractions, {name}", [round(f, 3) for f in fractions],
          " ± s.e.", [round(binomial_se(f, len(x)), 3) for f in fractions])
component = lambda x: p2.responsibilities(x.double()).argmax(-1)  # the most responsible component
moved = (component(from_exact) != component(exact_start_2d)).double().mean().item()
print(f"exact start: fraction of chains on another component after the 500 steps {moved:.3f} ± "
      f"{binomial_se(moved, len(from_exact)):.3f}; for chains independent of their start "
      f"{1 - (p2.component_fractions(exact) ** 2).sum().item():.3f}")

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
    ax_a.plot(*path[0, i], "o", color=line.get_color(), ms=8, mfc="white", mew=2, zorder=5,
              label="start" if i == 0 else None)
    ax_a.plot(*path[-1, i], "*", color=line.get_color(), ms=14, mec="k", zorder=5,
              label="end (step 500)" if i == 0 else None)
ax_a.legend(loc="upper right")
ax_a.set_title("Six Langevin trajectories (every 5th step); contours of $p$")
plot_samples(ax_b, samples, s=3, color="C3", label="Langevin samples")
ax_b.set_title("2,000 chains after 500 steps, ε = 0.05")
ax_b.legend(loc="upper right")
plt.show()

# %% [markdown]
# From the broad start the chains land on all three components, but the heaviest one is
# under-represented by several standard errors; from exact samples the same 500 steps keep the
# weights within about one standard error. The control can only show a bias the chains have
# time to reach, and they do move: 0.503 of them end on another component than they started
# on, against 0.620 for chains independent of their start. So within these 500 steps ULA at
# ε = 0.05 does not move the weights by more than about two standard errors (0.02); a smaller
# bias, or ULA's weights after many more steps, this control cannot show. The broad start's
# deficit is larger, and the start itself holds the components in the opposite order to the
# weights (printed): the chains have not yet relaxed from a start far from the weights. Keep
# that in mind for section 4.
#
# ## 3. The step size: bias, blow-up, and a correction
#
# For one Gaussian the chain diverges beyond $2v$. The narrowest direction of a component here
# has $v = 0.2$ (the third one's), so $2v = 0.4$. A mixture is not one Gaussian, so its chains
# need not blow up there. We measure, on the setting of the interactive explorer shown after the
# table (500 chains, its seed, 200 steps), where the chains actually blow up and what the
# weights are before that.

# %%
explorer_start = start[:500]
scan = {}
for eps in (0.05, 0.2, 0.4, 0.6, 0.8, 1.0, 1.1, 1.2, 1.5):
    try:
        x = langevin(p2.score, explorer_start, eps, 200, generator=make_generator(3))
        scan[eps] = ([round(f, 2) for f in p2.component_fractions(x).tolist()], f"{x.abs().max():.2g}")
    except DivergenceError as err:
        scan[eps] = ("diverged", err.args[0].split("after ")[1].split(" with")[0])

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'ε':>5s}  fractions per component (weights 0.5 / 0.3 / 0.2)   largest |x|, or when it diverged")
for eps, (fractions, extent) in scan.items():
    print(f"{eps:5.2f}  {str(fractions):45s} {extent}")

# %% [markdown]
# On the slider (200 steps) the chains stay finite up to ε = 1.0, far beyond $2v$; from
# ε = 1.1 on they leave the scale within a few dozen steps and the sampler stops them. Well
# below that the answer is already wrong: from ε = 0.4 on the weights are visibly off, and at
# ε = 0.8 the largest |x| over the 500 chains is 23. (At ε = 0.05, 200 steps are too few to forget
# the broad start: section 2.) The explorer's message says when ε exceeds $2v$; from ε ≈ 1.1 it
# shows the sampler's `DivergenceError` message instead of a plot full of NaNs.

# %%
# NBVAL_IGNORE_OUTPUT
explorer = LangevinExplorer(p2, explorer_start, step_size=0.05, n_steps=200, seed=3)
explorer

# %%
# NBVAL_IGNORE_OUTPUT
explorer.step_slider.value = 2.5
print("ε = 2.5, the explorer's message:", explorer.message.value)
explorer.step_slider.value = 0.05

# %% [markdown]
# The broad start mixes the two effects. To see ULA's bias alone, start from exact samples,
# where only the bias can move the weights.
#
# **The Metropolis correction (MALA).** Treat the Langevin step as a *proposal*
# $y = x + \varepsilon s(x) + \sqrt{2\varepsilon}z$, whose density is
# $q(y\mid x) = \mathcal N(y; x + \varepsilon s(x), 2\varepsilon I)$, and accept it with the
# Metropolis–Hastings probability
#
# $$\alpha(x\to y) = \min\Big\{1,\ \frac{p(y)\,q(x\mid y)}{p(x)\,q(y\mid x)}\Big\},$$
#
# otherwise stay at $x$. (The method is Rossky, Doll & Friedman's 1978 and Besag's 1994; Roberts &
# Tweedie 1996 named it MALA and analysed it.) Then $p(x)q(y\mid x)\alpha(x\to y)$ is
# symmetric in $x$ and $y$ (detailed balance), so $p$ is exactly stationary for every ε: the
# discretisation error is rejected instead of accumulated. The price: the ratio needs
# $p(y)/p(x)$, i.e. $\log p$ up to a constant. The analytic mixture has it. A score network
# does not: it gives $\nabla\log p$ only, and need not even be the gradient of any function.
#
# ### Exercise 2 (3 points): MALA's acceptance
#
# Return $\log\alpha(x\to y)$, one number per chain, for a batch of current points `x` and
# proposals `y`. The constants of $q$ cancel in the ratio.

# %%
def mala_log_acceptance(log_prob, score_fn, x, y, step_size):
    """log min{1, p(y) q(x|y) / (p(x) q(y|x))} for the Langevin proposal, shape (batch,)."""
    # Hint: which point is the proposal's mean when the chain moves from y back to x?
    ### BEGIN SOLUTION
    def log_q(b, a):  # log q(b | a) up to a constant
        return -(b - a - step_size * score_fn(a)).flatten(1).pow(2).sum(1) / (4 * step_size)

    log_ratio = log_prob(y) - log_prob(x) + log_q(x, y) - log_q(y, x)
    return torch.clamp(log_ratio, max=0.0)
    ### END SOLUTION


# %%
check_mala_log_acceptance(mala_log_acceptance)

# %% [markdown]
# The library's `samplers.mala` wraps this rule around the Langevin step. Both samplers start
# from 1,000 exact samples and run 300 steps at three step sizes. The table therefore shows the
# error that 300 steps accrue from an exact start, not ULA's stationary error, which may be
# larger.

# %%
exact_start = p2.sample(1000, generator=make_generator(13))
ula_vs_mala = {}
for eps in (0.1, 0.3, 0.6):
    x_ula = langevin(p2.score, exact_start, eps, 300, generator=make_generator(14))
    x_mala, acceptance = mala(p2.log_prob, p2.score, exact_start, eps, 300, generator=make_generator(14))
    ula_vs_mala[eps] = (p2.component_fractions(x_ula).tolist(), p2.component_fractions(x_mala).tolist(), acceptance)

# %%
# NBVAL_CHECK_OUTPUT
print(f"exact start, 300 steps; weights 0.5 / 0.3 / 0.2, binomial s.e. ≤ {binomial_se(0.5, 1000):.3f}")
print(f"{'ε':>5s} {'ULA fractions':>22s} {'MALA fractions':>22s} {'MALA acceptance':>16s}")
for eps, (f_ula, f_mala, acceptance) in ula_vs_mala.items():
    print(f"{eps:5.2f} {' / '.join(f'{f:.2f}' for f in f_ula):>22s} {' / '.join(f'{f:.2f}' for f in f_mala):>22s}"
          f" {acceptance:16.2f}")

# %% [markdown]
# In 300 steps ULA's bias moves mass between the components as ε grows: at ε = 0.3 the third
# component (weight 0.2; along $x_2$ its variance is $v = 0.2$, the smallest of any component in
# any direction, so $\varepsilon/v = 1.5$) holds
# 0.13, at ε = 0.6 the three are about even. MALA keeps the weights within about
# two standard errors at every ε, as it must from exact samples (it leaves $p$ invariant, so
# this column checks the code, not how fast MALA mixes), and pays with a falling acceptance rate (a rejected step is a
# wasted score evaluation). A score network gives no acceptance ratio, so score-based samplers
# usually run unadjusted and keep the bias down with a step that is small compared with the
# variance in the narrowest direction (section 5 has levels where it is not). To get a ratio,
# Du et al. (2023) parameterise the network as an energy, whose differences give
# $\log p(y) - \log p(x)$, and sample diffusion models with Metropolis-corrected MCMC (MALA,
# HMC).
#
# %% [markdown]
# ## 4. Failure modes, measured
#
# The running 1-D example $p = 0.1\,\mathcal N(-3,1) + 0.9\,\mathcal N(3,1)$ has two modes
# separated by a region of low density: between them $p$ falls to $0.007$ of its peak (at
# $x\approx-0.4$).
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
for k in (5, 10, 20, 30, 40):
    f = left_over_time[k].item()
    print(f"after {steps_axis[k]:4d} steps of ε = 0.01 (time {steps_axis[k] * 0.01:2.0f}): fraction left = {f:.3f}"
          f" ± {binomial_se(f, n_chains):.3f}  (target 0.1)")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
ax.plot(steps_axis, left_over_time, label="chains started at $x = 3$")
ax.axhline(0.1, color="k", ls=":", label="weight of the left mode")
ax.set(xlabel="Langevin steps (ε = 0.01)", ylabel="fraction of chains with $x < 0$",
       title="Slow mixing: crossing the gap takes thousands of steps")
ax.legend()
plt.show()

# %% [markdown]
# ### Exercise 3 (written, 3 points): the relaxation time
#
# Model each chain as jumping between two basins, right → left at rate $k_1$ and left → right
# at rate $k_2$ (per unit of time $t = \varepsilon\times$ steps), and let $f(t)$ be the fraction
# on the left. (a) Show that chains started on the right have
# $f(t) = w\,(1 - e^{-t/\tau})$ with $w = k_1/(k_1 + k_2)$ and $\tau = 1/(k_1 + k_2)$.
# (b) With $w = 0.1$, read τ off the printed trace. (c) How many steps of ε = 0.01 would it
# take for $f$ to come within 0.01 of 0.1?

# %% [markdown]
# <!-- BEGIN WRITTEN ANSWER relaxation_time -->
# **Model answer.** (a) $f' = k_1(1 - f) - k_2 f = k_1 - (k_1 + k_2) f$ with $f(0) = 0$, so
# $f(t) = \frac{k_1}{k_1 + k_2}\big(1 - e^{-(k_1 + k_2)t}\big)$; at equilibrium $f = w$.
# (b) $\tau = -t/\ln(1 - f(t)/w)$. At time 20 the trace gives $f = 0.036$, so
# $\tau = -20/\ln(0.64) \approx 45$; the other printed times give values between about 40 and 50
# (the fractions carry binomial errors): τ is of order 50 time units, about 5,000 steps of
# ε = 0.01.
# (c) $w\,e^{-t/\tau} < 0.01$ needs $t > \tau\ln 10 \approx 2.3\,\tau$, about 100 time units:
# of order 10,000 steps, ten times the budget of section 4b.
#
# <!-- RUBRIC -->
# - 1 point: (a) writes the rate equation for f and solves it with f(0) = 0.
# - 1 point: (b) inverts f(t) for τ and gets a value of order 50 time units from the printed fractions.
# - 1 point: (c) t = τ ln 10, converted to steps (of order 10⁴).
# <!-- END WRITTEN ANSWER -->

# %% [markdown]
# ### 4b. Wrong mode weights
#
# Now start from a broad uniform distribution on $[-8, 8]$, so about half the chains begin on
# each side, and run 1,000 steps. Within a mode each chain quickly follows
# the local score; but the score *inside* a mode says nothing about how heavy that mode is
# relative to the other — only the rare crossings of 4a carry that information, and 1,000
# steps of ε = 0.01 are a fraction of τ. The step is small on purpose: ε/v = 0.01 keeps ULA's
# bias negligible (§1), so what we see is mixing alone; the price is that a relaxation time
# costs τ/ε steps, thousands at this ε. (§5 repeats the run at larger steps.) The basins meet
# where the score vanishes between the modes, slightly left of 0: printed below.

# %%
broad = 16 * torch.rand(n_chains, 1, generator=make_generator(6)) - 8
plain = langevin(p1.score, broad, 0.01, 1000, generator=make_generator(7))
between = torch.linspace(-2, 2, 4001)[:, None]
boundary = between[p1.score(between)[:, 0].abs().argmin()].item()

# %%
# NBVAL_CHECK_OUTPUT
print(f"basin boundary (score = 0 between the modes): x = {boundary:.2f}")
print(f"fraction starting left of the boundary:  {(broad < boundary).double().mean():.3f};"
      f" left of 0: {(broad < 0).double().mean():.3f}")
f_plain = (plain < 0).double().mean().item()
print(f"fraction left of 0 after 1000 steps, ε = 0.01: {f_plain:.3f} ± {binomial_se(f_plain, n_chains):.3f}"
      "   (true weight 0.10)")

# %% [markdown]
# ### 4c. Inaccurate learned scores
#
# A *learned* score adds errors of its own. Song & Ermon's pitfall is a score that is inaccurate
# where data are scarce. This section measures a relative of it: DSM's noisy target at small σ.
# Train a small network by DSM (lesson 04) at σ = 0.05, where the DSM gradient is noisy
# (lesson 04 §6), with 1,500 steps of 256 fresh samples: Adam at the constant learning rate
# `lr=3e-3`; each network is the last iterate of its run (seed 0's run also keeps a moving
# average, an EMA, of its weights, below). As a control, train the same network on the same noisy samples by regression on the
# exact score of $p_\sigma$ (explicit score matching, lesson 02). The two runs differ only in the
# target, so the control shows what the same scarce data do with an exact target. Two more DSM
# runs, with training seeds 1 and 2, show how much of the result is the seed. We compare the
# scores with the true score of $p_\sigma$ region by region: the light mode ($|x + 3| < 1$), the gap ($|x| < 1$, where $p_\sigma$ falls to the
# fraction of its peak printed below), the heavy mode ($|x - 3| < 1$), and the far tails where
# $p_\sigma < 10^{-3}$ of its peak.

# %%
sigma = 0.05
seed_everything(0)
small_sigma_model = ScoreMLP(1, hidden=64)
small_sigma_ema = train(small_sigma_model, lambda model, batch, g: losses.dsm_loss(model, batch, sigma, generator=g),
                        p1.sample, n_steps=1500, batch_size=256, lr=3e-3, ema_decay=0.995, progress=False).ema.module
p1_sigma = p1.perturbed(sigma)


def esm_on_noisy(model, batch, g):
    """The control: the same noisy samples as DSM, regressed on the exact score of p_σ."""
    noisy = batch + sigma * torch.randn(batch.shape, generator=g)
    return losses.esm_loss(model, noisy, p1_sigma.score)


seed_everything(0)
control_model = ScoreMLP(1, hidden=64)
train(control_model, esm_on_noisy, p1.sample, n_steps=1500, batch_size=256, lr=3e-3, progress=False)
xs = torch.linspace(-8, 8, 801)
wide = torch.linspace(-40, 40, 4001)
with torch.no_grad():
    learned = small_sigma_model(xs[:, None])[:, 0]
    control = control_model(xs[:, None])[:, 0]
true = p1_sigma.score(xs[:, None])[:, 0]
density = torch.exp(p1_sigma.log_prob(xs[:, None]))
sparse = density < 1e-3 * density.max()
regions = {"light mode |x+3| < 1": (xs + 3).abs() < 1, "gap |x| < 1": xs.abs() < 1,
           "heavy mode |x-3| < 1": (xs - 3).abs() < 1, "tails, p_σ < 1e-3·max": sparse}
n_train_samples = 1500 * 256
scale_sigma = (p1.covs[:, 0, 0] + sigma**2).sqrt()
gap_mass = (p1.weights * (torch.special.ndtr((1 - p1.means[:, 0]) / scale_sigma)
                          - torch.special.ndtr((-1 - p1.means[:, 0]) / scale_sigma))).sum().item()  # p_σ(|x| < 1)
tail_mass = torch.trapezoid(torch.where(sparse, density, 0.0), xs).item()


def left_mass(grid, prob):
    return torch.trapezoid(prob[grid < 0], grid[grid < 0].double()).item()


def implied_by(model):
    """The score's errors per region, and what exp ∫ s implies: its mass left of 0 normalised on [-8, 8] and on
    [-40, 40], the largest x < -4 where the score is ≤ 0 (pointing away from the data; nan if none), and the
    score at x = -1e3 and -1e4."""
    with torch.no_grad():
        error = model(xs[:, None])[:, 0] - true
        far = wide[wide < -4]
        turns = far[model(far[:, None])[:, 0] <= 0]
        very_far = model(torch.tensor([[-1e3], [-1e4]]))[:, 0]
    return dict(error=error, left=left_mass(xs, density_from_score_1d(model, xs)),
                left_wide=left_mass(wide, density_from_score_1d(model, wide)),
                turn=turns.max().item() if len(turns) else math.nan, very_far=very_far.tolist())


by_run = {"DSM, seed 0": implied_by(small_sigma_model), "DSM 0, EMA": implied_by(small_sigma_ema),
          "control": implied_by(control_model)}
with torch.random.fork_rng(devices=[]):  # two more training seeds, leaving the global generator as it was
    for train_seed in (1, 2):
        seed_everything(train_seed)
        other = ScoreMLP(1, hidden=64)
        train(other, lambda model, batch, g: losses.dsm_loss(model, batch, sigma, generator=g), p1.sample,
              n_steps=1500, batch_size=256, lr=3e-3, seed=train_seed, progress=False)
        by_run[f"DSM, seed {train_seed}"] = implied_by(other)
implied = density_from_score_1d(small_sigma_model, xs)
density_wide = torch.exp(p1_sigma.log_prob(wide[:, None]))
long_start = broad[:1000]
with torch.no_grad():
    learned_long = langevin(small_sigma_model, long_start, 0.05, 4000, generator=make_generator(8))
true_long = langevin(p1.score, long_start, 0.05, 4000, generator=make_generator(8))

# %%
# NBVAL_CHECK_OUTPUT
print(f"lowest p_σ in the gap, relative to its peak: {density[xs.abs() < 1].min() / density.max():.4f}")
print(f"noisy training samples expected in the gap |x| < 1: {gap_mass * n_train_samples:,.0f}, in the far tails: "
      f"{tail_mass * n_train_samples:,.0f}, of {n_train_samples:,}")
print("mean |learned - true score| per region; exp ∫ s normalised on a window: its mass left of 0;")
print(f"and the largest x < -4 where the score is ≤ 0 (nan: none). The true p_σ: left mass {left_mass(xs, density):.3f}"
      f" on [-8, 8], {left_mass(wide, density_wide):.3f} on [-40, 40]")
print(f"{'run':12s} " + " ".join(f"{name:>11s}" for name in ("light mode", "gap", "heavy mode", "tails"))
      + f" {'left, [-8, 8]':>14s} {'[-40, 40]':>10s} {'score ≤ 0 at':>13s} {'s(-1e3)':>8s} {'s(-1e4)':>8s}")
for name in ("DSM, seed 0", "DSM, seed 1", "DSM, seed 2", "DSM 0, EMA", "control"):
    r = by_run[name]
    print(f"{name:12s} " + " ".join(f"{r['error'][where].abs().mean():11.2f}" for where in regions.values())
          + f" {r['left']:14.3f} {r['left_wide']:10.3f} {r['turn']:13.1f}"
          + "".join(f" {value:8.0f}" for value in r["very_far"]))
f_true, f_learned = (true_long < 0).double().mean().item(), (learned_long < 0).double().mean().item()
print(f"fraction left after 4000 steps of ε = 0.05, 1000 chains: true score {f_true:.3f} ± {binomial_se(f_true, 1000):.3f}, "
      f"DSM seed 0 {f_learned:.3f} ± {binomial_se(max(f_learned, 1e-3), 1000):.3f};"
      f" chains outside [-8, 8]: {(true_long.abs() > 8).sum().item()} and {(learned_long.abs() > 8).sum().item()}")
escaped = sorted(learned_long[learned_long.abs() > 8].tolist())
print("where the DSM run's chains outside [-8, 8] are:", ", ".join(f"{x:.1f}" for x in escaped))

# %%
bins = np.linspace(-8, 8, 81)
fig, (ax_s, ax_h) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax_s.fill_between(xs, -8, 8, where=sparse, color="0.9", label=r"$p_\sigma < 10^{-3}\max p_\sigma$")
ax_s.plot(xs, true, label=r"true score of $p_\sigma$")
ax_s.plot(xs, learned, color="C3", ls="--", label="learned by DSM, σ = 0.05")
ax_s.plot(xs, control, color="C2", ls=":", label="control: regression on the true score")
ax_s.set(xlabel="$x$", ylabel="score", ylim=(-8, 8), title="The DSM score at σ = 0.05 (training seed 0)")
ax_s.legend(fontsize=8, loc="lower left")
ax_h.hist(true_long[:, 0], bins=bins, density=True, alpha=0.5, label="Langevin, true score")
ax_h.hist(learned_long[:, 0], bins=bins, density=True, alpha=0.5, label="Langevin, DSM score")
ax_h.plot(xs, density, color="k", lw=1, label=r"$p_\sigma$, σ = 0.05")
ax_h.plot(xs, implied, color="C3", lw=1, ls="--", label=r"$e^{\int s}$ of the DSM score, normalised on $[-8, 8]$")
ax_h.set(xlabel="$x$", ylabel="density", title="After 4,000 steps of ε = 0.05 from the broad start")
ax_h.legend(fontsize=8)
plt.show()

# %% [markdown]
# With this training (constant learning rate, last iterate) the DSM network's errors are large
# and depend on the training seed (initialisation and data, the table): in the light mode the
# mean error ranges from 0.26 to 0.70 over the three seeds. In all three, of the three regions
# around the modes, the gap has the largest error, and the far tails are worse still. These are
# the regions with the fewest samples; the gap is also where the true score changes fastest.
# An exponential moving average (EMA, decay 0.995) of seed 0's weights, kept during the same run,
# cuts the heavy-mode error from 0.32 to 0.06 and implies a left mass of 0.083 on [−8, 8]: part
# of the last iterate's error is the noise of its final steps. The gap error does not fall (0.87 to 1.08),
# nor does the light-mode error (0.31).
#
# The control (seed 0, last iterate), trained on the same kind of noisy samples for the same
# steps, is accurate in both modes (errors 0.02 and 0.01), its gap error is 0.10 against DSM's
# 0.87 (1.08 with the EMA), and the density it implies has the right left-mode mass (0.105). So
# with an exact target the samples the gap received go most of the way; in the far tails, with
# about 75 samples, its error is 0.13. For the gap, then, the control rules out scarcity alone
# under this training (1,500 steps at a constant rate, last iterate or EMA): with DSM's noisy
# target the same samples do not suffice. Whether the gap's DSM error comes from its few samples
# or from its steep score, these runs do not separate. At σ = 0.05 the DSM target $-z/\sigma$ has
# variance $1/\sigma^2$ per sample, far above the size of the score itself, and its gradient
# noise swamps the signal (lesson 04 §6). Explicit regression has no such noise, but needs the
# true score. A decaying learning rate or longer training, not tried here, might help DSM.
#
# On the window [−8, 8], the density the DSM score implies ($e^{\int s}$ normalised there) puts
# 0.010 to 0.039 on the left mode for the three last iterates, against 0.10: for seeds 0 and 1
# the light mode is nearly lost. That is a statement about the window only. Far left of the data
# every DSM score, the EMA's included, turns negative again (at $x$ = −21.2, −9.6, −35.4 and
# −12.7) and is still negative at $x = -10^4$, about ten times its value at $-10^3$: the score grows
# linearly out there, as a SiLU network's output does far from its data. So $\int s$ grows like
# $x^2$ towards −∞, $e^{\int s}$ cannot be normalised on the line, and the windowed mass depends
# on the window: on [−40, 40] it is 0.036, 1.000 and 0.039 for the three seeds and 1.000 for the
# EMA. The control's score has no such turn, and its implied mass is 0.105 on both windows.
#
# Langevin with the true score gets the weights right in 4,000 steps (0.100 ± 0.009). With the
# DSM score of seed 0 (last iterate) the same run ends with 0.008 ± 0.003 of the chains left of 0, and 5 of the
# 1,000 chains have left [−8, 8] (four beyond 8 on the right, one at −9.5). The light mode is nearly lost in sampling too, and since
# $e^{\int s}$ cannot be normalised, the Langevin diffusion with this score has no stationary
# distribution for a longer run to approach. The error is in the score; sampling with it longer
# cannot put the weights right.
#
# %% [markdown]
# ## 5. Annealed Langevin dynamics
#
# Song & Ermon's remedy (2019) uses what lesson 04 showed: at a large σ, $p_\sigma$ is one
# broad bump that noisy data cover everywhere, so a learned score can be accurate there, and
# chains cross between the (blurred) modes freely. Then σ is lowered level by level,
# $\sigma_1 > \sigma_2 > \dots > \sigma_L$: at level $i$ the sampler runs $T$ ULA steps
# (Exercise 1) with the score $s(x,\sigma_i)\approx\nabla\log p_{\sigma_i}(x)$ of that level and a
# step $\varepsilon_i$ of its own, starting where the previous level ended.
#
# ### Exercise 4 (5 points): the annealed sampler
#
# (a) Choose the step. In one ULA step the drift is $\varepsilon_i s$ and the noise
# $\sqrt{2\varepsilon_i}\,z$. Suppose $\|\nabla\log p_\sigma\|\propto 1/\sigma$, as it is when σ is
# large compared with the data's spread. How must $\varepsilon_i$ grow with $\sigma_i$ for the ratio
# of drift to noise to be the same at every level? Fix the constant so that `step_size` is the
# step at the *last* level.
#
# (b) Write the sampler. `noise` has shape (L, T, *x.shape): use `noise[i, t]` at step t of
# level i. `sigmas` is listed largest first. Return x after the last step of the last level.
#
# The check grades both (a) and (b): it runs your sampler with the steps you chose. The paragraph
# after the check derives them.

# %%
def annealed_langevin_loop(score_fn, x, sigmas, step_size, noise):
    """Annealed Langevin: noise.shape[1] ULA steps per level, largest σ first; returns the final x."""
    # Hint: which σ fixes the scale of step_size, and where does each level start from?
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
# **Why εᵢ ∝ σᵢ².** The ratio of drift to noise in one step is
# $\sqrt{\varepsilon_i/2}\,\|s\|/\|z\|$. Song & Ermon (2019, §4.3) make it the same at every
# level, resting on their observation that a well-trained network has
# $\|s_\theta(x,\sigma)\|\propto 1/\sigma$; then $\sqrt{\varepsilon_i}\propto\sigma_i$, hence
# εᵢ = step_size · σᵢ²/σ_L². When the *exact* score scales like that is this course's gloss: for
# σ large compared with the data's spread (the σᵢ·RMS s column below measures it here) and, in
# high dimension, for data on a thin set (lesson 06). From here on the notebook uses the library's `annealed_langevin`,
# the same loop with the noise drawn from a `generator` (and a check that the chains stay
# finite).
#
# Two other numbers say more about what a level does. One is how many relaxation times it
# lasts, its Langevin time $T\varepsilon_i$ over ULA's relaxation time $\tau_i$ at that level's step.
# The other is ULA's bias there. It is small when $\varepsilon_i/v_i\ll 1$, where $v_i$ is the
# variance of one bump of $p_{\sigma_i}$ (§1). While $p_{\sigma_i}$ has one mode,
# $v_i = \operatorname{Var}p_{\sigma_i}$. Once it has two, $v_i$ is a mode's variance, $1 + \sigma_i^2$
# here, not $\operatorname{Var}p_{\sigma_i}$, which also holds the distance between the modes.
#
# In one dimension both can be computed rather than sampled. On a fine grid, one ULA step is a
# transition matrix $K$ (from $x$ to $\mathcal N(x + \varepsilon_i s(x), 2\varepsilon_i)$). Its
# stationary vector is ULA's stationary law (`ula_stationary_1d`, tested against §1's formula
# and against long chains). Its eigenvalue of second-largest modulus $\lambda_2$ says how fast
# any start approaches that law, asymptotically by a factor $|\lambda_2|$ per step, hence
# $\tau_i = -\varepsilon_i/\ln|\lambda_2|$ (`ula_relaxation_time_1d`). For a Gaussian of variance
# $v$, $\lambda_2 = 1 - \varepsilon/v$: τ is close to $v$ for a small step, shortest near
# $\varepsilon = v$ (where one step forgets the start), and grows again as ε approaches $2v$.
# Two printed lines check the grid, against §1's formula and against the τ that Exercise 3
# reads off a trace.
#
# The same kernels give the chains' law itself. Push the start's law (uniform on [−8, 8]) through
# level 1's kernel T times, then level 2's, and so on (`annealed_langevin_law_1d`, tested
# against the Gaussian recursion and against chains). That is what infinitely many chains would
# give; we call its split the *expected* split (halving the cells leaves the final one unchanged
# to four digits, printed below). A run of 4,000 chains is one noise draw of it,
# and the expected split is what a comparison between samplers should be about.
#
# Here step_size = 0.01 and σ_L = 0.1, so $\varepsilon_i = \sigma_i^2$. We use the exact
# $\nabla\log p_\sigma$ (a learned one comes in 5b), from the same broad start and with the same
# number of score evaluations as 4b: 10 levels × 100 steps = 1,000. Equal evaluations are not
# equal Langevin time: the levels' times $T\varepsilon_i$ add up to far more than 4b's 1,000 × 0.01
# (printed below).

# %%
sigmas = geometric_sigmas(10.0, 0.1, 10)
p1_noisy_score = noisy_score(p1)  # (x, σ) ↦ ∇ log p1_σ(x), exact
annealed, levels = annealed_langevin(p1_noisy_score, broad, sigmas, n_steps_each=100, step_size=0.01,
                                     generator=make_generator(9), record_every=100)
var_p = p1.sample(200_000, generator=make_generator(11)).var().item()  # Var p_σ = Var p + σ²


def mass_left_of_0(s):
    """p_σ's own mass left of 0 (the mixture perturbed to σ)."""
    scale = (p1.covs[:, 0, 0] + s**2).sqrt()
    return (p1.weights * torch.special.ndtr((0 - p1.means[:, 0]) / scale)).sum().item()


def n_modes(s):
    """How many local maxima p_σ has (on a fine grid)."""
    grid = torch.linspace(-60, 60, 24_001, dtype=torch.float64)[:, None]
    d = p1.perturbed(s).log_prob(grid)
    return int(((d[1:-1] > d[:-2]) & (d[1:-1] > d[2:])).sum())


def variance_of(x, prob):
    return (prob * (x - (prob * x).sum()) ** 2).sum().item()


def left_of_0(x, prob):
    """A law on grid cells: its mass left of 0 (0 is a cell edge)."""
    return prob[x < 0].sum().item()


def uniform_on_broad(x):
    """The law of `broad`, uniform on [-8, 8]."""
    return ((x >= -8) & (x <= 8)).double()


grid_check = variance_of(*ula_stationary_1d(gauss.score, 0.5, 0.0, 12.0))  # §1: 2v/(2 - ε/v) = 1.333 at v = 1
centre = p1.mean().item()
# The chains' exact law after each level: the start's law pushed through each level's grid kernel 100 times.
# Level i's cells must hold what arrives from level i - 1, spread like p at the σ before.
windows = [4 + 10 * math.sqrt(1 + s**2) for s in [sigmas[0].item(), *sigmas[:-1].tolist()]]
expected = annealed_langevin_law_1d(p1_noisy_score, uniform_on_broad, sigmas, n_steps_each=100, step_size=0.01,
                                    centre=centre, half_widths=windows, cell_width=0.1)
fine_x, fine_prob = annealed_langevin_law_1d(p1_noisy_score, uniform_on_broad, sigmas, n_steps_each=100,
                                             step_size=0.01, centre=centre, half_widths=windows, cell_width=0.05)[-1]
per_level = []
for i, s in enumerate(sigmas.tolist()):
    eps = 0.01 * (s / sigmas[-1].item()) ** 2
    at = p1.perturbed(s).sample(20_000, generator=make_generator(10))
    rms_score = p1_noisy_score(at, s).pow(2).mean().sqrt().item()
    modes = n_modes(s)
    v = var_p + s**2 if modes == 1 else p1.covs[0, 0, 0].item() + s**2  # a bump's variance
    half_width = 4 + 10 * math.sqrt(1 + s**2)
    grid, prob = ula_stationary_1d(p1.perturbed(s).score, eps, centre, half_width)
    tau = ula_relaxation_time_1d(p1.perturbed(s).score, eps, centre, half_width)
    per_level.append(dict(sigma=s, modes=modes, eps=eps, ratio=eps / v, time=100 * eps, tau=tau,
                          spread=levels[i + 1].var().item() / (var_p + s**2),
                          spread_expected=variance_of(*expected[i + 1]) / (var_p + s**2),
                          left_expected=left_of_0(*expected[i + 1]),
                          spread_ula=variance_of(grid, prob) / (var_p + s**2), sigma_rms=s * rms_score,
                          left=(levels[i + 1] < 0).double().mean().item(), left_ula=left_of_0(grid, prob),
                          left_p=mass_left_of_0(s)))

# Plain Langevin from the same start with the same 1,000 evaluations, at larger steps than 4b's ε = 0.01.
plain_by_eps = {0.01: plain}
for eps in (0.1, 0.3, 1.0):
    plain_by_eps[eps] = langevin(p1.score, broad, eps, 1000, generator=make_generator(7))


def plain_law(eps):
    """The exact law after plain Langevin's 1,000 steps of ε from the broad start (annealing with one level)."""
    return annealed_langevin_law_1d(lambda y, _: p1.score(y), uniform_on_broad, [1.0], 1000, eps, centre, [14.0],
                                    cell_width=0.1)[-1]


scan_steps = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)  # a finer scan of the step, exact laws only
plain_laws = {eps: plain_law(eps) for eps in sorted({*plain_by_eps, *scan_steps})}
scan = {eps: left_of_0(*plain_laws[eps]) for eps in scan_steps}
plain_left_ula, plain_left_expected, plain_right_var_expected, plain_tau = {}, {}, {}, {}
for eps in plain_by_eps:
    plain_left_ula[eps] = left_of_0(*ula_stationary_1d(p1.score, eps, centre, 14.0))
    plain_tau[eps] = ula_relaxation_time_1d(p1.score, eps, centre, 14.0)
    grid, prob = plain_laws[eps]
    plain_left_expected[eps] = left_of_0(grid, prob)
    plain_right_var_expected[eps] = variance_of(grid[grid > 0], prob[grid > 0] / prob[grid > 0].sum())
line = torch.linspace(-6, 6, 12_001)[:, None]
log_p_line = p1.log_prob(line)
gap_bottom = log_p_line[line[:, 0].abs() < 2].min().item()
depths = [log_p_line[line[:, 0] < -1].max().item() - gap_bottom, log_p_line[line[:, 0] > 1].max().item() - gap_bottom]

# %%
# NBVAL_CHECK_OUTPUT
print(f"grid check, ULA's stationary variance for N(0, 1) at ε = 0.5: {grid_check:.3f} (§1's formula {2 / 1.5:.3f})")
print(f"grid check, ULA's relaxation time for p at ε = 0.01: {plain_tau[0.01]:.1f} (Exercise 3 reads it off a trace)")
print("vᵢ: Var p_σᵢ at one-mode levels, a mode's variance 1 + σᵢ² at two-mode levels;"
      " T·εᵢ: the Langevin time a level lasts (T = 100 steps)")
print("τᵢ: ULA's relaxation time at step εᵢ, from the grid kernel; T·εᵢ/τᵢ: the relaxation times a level lasts")
print(f"{'σᵢ':>6s} {'modes':>5s} {'εᵢ':>8s} {'T·εᵢ':>8s} {'τᵢ':>6s} {'T·εᵢ/τᵢ':>8s} {'εᵢ/vᵢ':>6s} {'σᵢ·RMS s':>9s}")
for r in per_level:
    print(f"{r['sigma']:6.2f} {r['modes']:5d} {r['eps']:8.3f} {r['time']:8.1f} {r['tau']:6.1f} {r['time'] / r['tau']:8.2f}"
          f" {r['ratio']:6.2f} {r['sigma_rms']:9.2f}")
print("\nchains: one noise draw of 4,000 chains; expected: their exact law (the start's law pushed through the")
print("grid kernels), what infinitely many chains would give; ULA stationary: the law a level would reach if it ran forever")
print(f"{'':6s} {'Var / Var p_σᵢ':^30s} | {'fraction left of 0':^46s}")
print(f"{'σᵢ':>6s} {'chains':>7s} {'expected':>9s} {'ULA stat.':>12s} | {'chains':>7s} {'expected':>9s} {'ULA stat.':>12s}"
      f" {'p_σᵢ':>6s} {'(chains - exp.)/s.e.':>21s}")
for r in per_level:
    z = (r["left"] - r["left_expected"]) / binomial_se(r["left_expected"], n_chains)
    print(f"{r['sigma']:6.2f} {r['spread']:7.2f} {r['spread_expected']:9.2f} {r['spread_ula']:12.2f} | {r['left']:7.3f}"
          f" {r['left_expected']:9.4f} {r['left_ula']:12.4f} {r['left_p']:6.3f} {z:+21.1f}")
f_annealed = (annealed < 0).double().mean().item()
f_expected = per_level[-1]["left_expected"]
print(f"\nannealed Langevin, 1,000 evaluations: fraction left {f_annealed:.3f} ± {binomial_se(f_annealed, n_chains):.3f}"
      f" (p's own mass left of 0: {mass_left_of_0(0.0):.3f}); Langevin time Σ T·εᵢ = {100 * (sigmas**2).sum().item():,.0f}")
print(f"expected: {f_expected:.4f} on cells of width 0.1, {left_of_0(fine_x, fine_prob):.4f} on cells of width 0.05")
print("plain Langevin, same start, 1,000 evaluations:")
print(f"{'ε':>6s} {'Langevin time':>14s} {'time / τ':>9s} {'fraction left':>16s} {'expected':>9s} {'ULA stat.':>10s}"
      f" {'right-mode Var ± s.e.':>22s} {'expected':>9s}")
for eps, x in plain_by_eps.items():
    f, right = (x < 0).double().mean().item(), x[x > 0]
    se_var = math.sqrt(2 / len(right)) * right.var().item()  # a Gaussian's variance, as in §1
    print(f"{eps:6.2f} {1000 * eps:14.0f} {1000 * eps / plain_tau[eps]:9.1f} {f:8.3f} ± {binomial_se(f, n_chains):.3f}"
          f" {plain_left_expected[eps]:9.4f} {plain_left_ula[eps]:10.4f} {right.var().item():14.3f} ± {se_var:.3f}"
          f" {plain_right_var_expected[eps]:9.3f}")
best_eps = min(plain_left_expected, key=lambda e: abs(plain_left_expected[e] - 0.1))  # chosen on the exact laws
edge, edge_se = mean_and_se((plain_by_eps[best_eps] < 0).double() - (annealed < 0).double())
print(f"of these four steps, the one whose expected split is closest to 0.10: ε = {best_eps};"
      " its fraction left minus annealing's:"
      f" expected {plain_left_expected[best_eps] - f_expected:.4f}; this draw, paired by start, {edge:.3f} ± {edge_se:.3f}")
best_scan = min(scan, key=lambda e: abs(scan[e] - 0.1))
print("finer scan of the step, expected fraction left after 1,000 steps:",
      ", ".join(f"ε = {eps:g}: {f:.4f}" for eps, f in scan.items()))
print(f"closest to 0.10: ε = {best_scan:g}, {scan[best_scan]:.4f}; minus annealing's expected split:"
      f" {scan[best_scan] - f_expected:.4f}")
print(f"the gap's depth in log p, below the light mode's peak: {depths[0]:.1f} nats; below the heavy one's: {depths[1]:.1f}")

# %%
fig, (ax_h, ax_l) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax_h.hist(plain[:, 0], bins=bins, density=True, alpha=0.5, label="plain Langevin, ε = 0.01")
ax_h.hist(annealed[:, 0], bins=bins, density=True, alpha=0.5, label="annealed Langevin")
ax_h.hist(plain_by_eps[best_eps][:, 0], bins=bins, density=True, histtype="step", color="C2",
          label=f"plain Langevin, ε = {best_eps}")
ax_h.plot(xs, torch.exp(p1.log_prob(xs[:, None])), color="k", lw=1, label="$p$")
ax_h.set(xlabel="$x$", ylabel="density", title="1,000 evaluations each, same broad start")
ax_h.legend(fontsize=8)
ax_l.semilogx(sigmas, [r["left"] for r in per_level], "o", label="annealed chains after each level (one draw)")
ax_l.semilogx(sigmas, [r["left_expected"] for r in per_level], "-", color="C0",
              label="their expected split (exact law)")
ax_l.semilogx(sigmas, [r["left_ula"] for r in per_level], "s--", color="C1", mfc="none",
              label="ULA's stationary split at εᵢ (exact score)")
ax_l.semilogx(sigmas, [r["left_p"] for r in per_level], "k^:", label=r"$p_{\sigma_i}$'s own mass left of 0")
ax_l.axhline(0.1, color="k", ls=":", lw=0.8, label="weight of the left mode")
ax_l.invert_xaxis()
ax_l.set(xlabel="noise level σ (decreasing →)", ylabel="fraction with $x < 0$",
         title="The split after each level")
ax_l.legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the tables top down. The chains stay within 1.6 binomial standard errors of the expected
# split at every level (the ten numbers are not independent: the same chains pass through all
# levels). At σ = 10 the step is almost the whole variance (εᵢ/vᵢ = 0.96). ULA's stationary
# law then has about twice the variance of $p_{10}$ (1.92, as §1's formula says for one
# Gaussian), and the chains have that spread (1.88). A wider law also puts more mass on the far
# side of 0 from the mean, so ULA's split is above $p_{10}$'s: 0.435 against 0.406.
#
# How far each level equilibrates is the T·εᵢ/τᵢ column. With step_size/σ_L² = 1, as here,
# εᵢ = σᵢ², so a top level's step is comparable to its variance and one step spans more than
# three relaxation times (at σ = 10, τᵢ = 31.7 against εᵢ = 100). Down to σ = 1.29 each level
# lasts 16 relaxation times or more, and the expected split equals ULA's stationary split for
# that level to four digits: each level ends at its own biased stationary law. The σ = 0.77
# level (3.5 relaxation times) ends within 0.001 of it. The σ = 0.46 level lasts 0.76
# relaxation times, and the expected split moves from 0.1274 to 0.1138, part of the way to ULA's
# 0.1079. The last three levels last 0.2 relaxation times or less; the expected split moves
# from 0.1138 to 0.1093 while ULA's stationary split at the last level is 0.1012. So this
# schedule ends at 0.109, not at 0.10. The levels long enough to equilibrate have biased
# stationary laws, and the levels whose stationary laws are nearly right are too short to reach
# them. (In the variance columns, the two-mode levels' Var / Var $p_\sigma$ mostly follows the
# split, since the distance between the modes dominates Var $p_\sigma$.)
#
# At the two-mode levels the bias falls with the per-mode ratio εᵢ/vᵢ: 0.63, 0.37 and 0.18 at
# σ = 1.29, 0.77 and 0.46, where ULA's split is 0.178, 0.127 and 0.108 against $p_\sigma$'s
# 0.127, 0.107 and 0.103. From σ = 0.28 on, εᵢ/vᵢ is below 0.1 and ULA's split is within 0.002
# of $p_\sigma$'s. At the one-mode levels the ratio is no guide to the split: it falls from 0.96
# to 0.52 while ULA's split moves further from $p_\sigma$'s (0.435 against 0.406 at σ = 10, 0.262
# against 0.183 at σ = 2.15).
#
# Since εᵢ = σᵢ² here, the drift-to-noise ratio $\sqrt{\varepsilon_i/2}\,\mathrm{RMS}\,s$ is
# $\sigma_i\,\mathrm{RMS}\,s/\sqrt2$. It is the same at every level only where the σᵢ·RMS s
# column is constant, i.e. where $\|\nabla\log p_\sigma\|\propto1/\sigma$: here roughly (0.98 to 0.88) for σ ≥ 3.59. Below
# that, in one dimension with modes of width 1, the score of $p_\sigma$ tends to the score of $p$
# and stops growing. In high dimension, with data on a thin set, the $1/\sigma$ law holds down to
# small σ (lesson 06 measures it on MNIST).
#
# **What annealing bought here, at equal evaluations.** Against 4b's plain Langevin (expected
# 0.4071), a lot. But 4b's ε = 0.01 was chosen for a negligible bias, not for speed: its 1,000
# steps last 0.2 relaxation times. Larger steps cover more Langevin time with the same 1,000
# evaluations, and the expected and stationary columns tell the two errors apart. At ε = 0.1
# (2.1 relaxation times) the chains have not finished mixing: expected 0.1472 against ULA's
# stationary 0.1030. At ε = 0.3 (6.8 relaxation times) the expected split is 0.1132 and the
# stationary one 0.1128: what is left is ULA's bias. The right half ($x > 0$) is widened to a
# variance of 1.178 ± 0.028 (exact law 1.154), near §1's $2/(2 - 0.3) = 1.18$ for one Gaussian
# of $v = 1$. At ε = 1 the bias is larger (0.2043). Of these four steps, ε = 0.3 has the
# expected split closest to 0.10; the choice is made on the exact laws, not on the draws.
#
# The target is $p$'s own mass left of 0, 0.101. Annealing's expected split, 0.1093, is above
# it by 0.008, and ε = 0.3's by 0.012: annealing's expected advantage over that step is
# $0.1132 - 0.1093 = 0.0039$. A finer scan of nine steps (exact laws only) finds ε = 0.25 at
# 0.1112, so even over the fixed step closest to the answer the advantage is about 0.002. That
# step was picked knowing the answer, which a sampler never does (Think 4), while annealing's
# schedule was not tuned; over the scan the fixed step's split ranges from 0.1112 to 0.2043.
# For ε = 0.3 this noise draw shows more,
# a paired difference of 0.014 ± 0.007, because its annealed chains happen to end low (0.102
# against 0.109 expected, 1.5 standard errors). To see a difference of 0.004 at two standard
# errors, the paired standard error would have to fall from 0.007 to 0.002, about twelve times
# as many chains.
#
# The gap here is shallow: log p at its bottom is 2.8 nats below the light mode's peak and 5.0
# below the heavy one's (printed). The
# time to cross a barrier of depth ΔU grows like $e^{\Delta U}$ (Kramers 1940), so with a
# deeper gap a fixed step needs exponentially more steps to mix; how annealing's cost grows
# with the depth, this lesson does not measure. Equal evaluations are not equal
# Langevin time either: annealing's levels add up to 15,609 time units, most of them at the top
# levels. With the exact score, this toy tests only one of the two problems that Song & Ermon's
# annealing addresses (2019, §3.2), slow mixing between modes separated by low density; the
# other, a learned score that is inaccurate there, comes in 5b.
#
# ### 5b. Annealing with a learned score
#
# In practice the scores come from a network. Train a σ-conditioned `ScoreMLP` (lesson 04 §5)
# with the noise-conditional loss on the same ten levels, 4,000 steps of 256 fresh samples
# (Adam at the constant `lr=3e-3`, last iterate, as in 4c), then run the same annealed sampler
# with it, from the same start and with the same noise. Three training seeds, each also
# stopped at 2,000 steps (a copy of the same run), show how much of the result is the training.

# %%
def train_level_model(train_seed, n_steps=4000, snapshot_at=2000):
    """A σ-conditioned ScoreMLP trained with the noise-conditional loss; returns it and a copy taken at snapshot_at."""
    seed_everything(train_seed)
    model, snapshot = ScoreMLP(1, hidden=64, sigma_conditioned=True), {}
    train(model, lambda model, batch, g: losses.ncsn_loss(model, batch, sigmas, generator=g), p1.sample,
          n_steps=n_steps, batch_size=256, lr=3e-3, seed=train_seed, progress=False,
          callback=lambda step, loss: snapshot.update(model=copy.deepcopy(model).eval()) if step == snapshot_at else None)
    return model, snapshot["model"]


def annealed_split(model):
    """The fraction left of 0 after annealing with `model`, from the same start and with the same noise as §5."""
    with torch.no_grad():
        x = annealed_langevin(model, broad, sigmas, n_steps_each=100, step_size=0.01, generator=make_generator(9))
    return (x < 0).double()


level_model, level_model_2000 = train_level_model(0)
with torch.no_grad():
    annealed_learned, levels_learned = annealed_langevin(level_model, broad, sigmas, n_steps_each=100, step_size=0.01,
                                                         generator=make_generator(9), record_every=100)
learned_splits = {0: (annealed_split(level_model_2000), (annealed_learned < 0).double())}
with torch.random.fork_rng(devices=[]):  # two more training seeds, leaving the global generator as it was
    for train_seed in (1, 2):
        learned_splits[train_seed] = tuple(annealed_split(m) for m in reversed(train_level_model(train_seed)))
with torch.no_grad():
    gap = xs[xs.abs() < 1][:, None]
    err_by_level = []
    for s, at in zip(sigmas.tolist(), levels_learned[1:]):  # at: the learned run's chains at the end of level s
        on_chains = ((level_model(at, s) - p1_noisy_score(at, s)).pow(2).mean().sqrt()
                     / p1_noisy_score(at, s).pow(2).mean().sqrt()).item()
        in_gap = ((level_model(gap, s) - p1_noisy_score(gap, s)).abs().mean()
                  / p1_noisy_score(gap, s).abs().mean()).item()
        err_by_level.append((on_chains, in_gap))

# %%
# NBVAL_CHECK_OUTPUT
print(f"fraction left after annealing, same start and noise: exact scores {f_annealed:.3f} (expected {f_expected:.4f});")
print("learned σ-conditioned networks, last iterate after 2,000 and 4,000 training steps, and each minus the exact run:")
print(f"{'training seed':>13s} {'2,000 steps':>12s} {'4,000 steps':>12s} {'exact - 2,000':>16s} {'exact - 4,000':>16s}")
exact_left = (annealed < 0).double()
for train_seed, splits in learned_splits.items():
    print(f"{train_seed:13d} " + " ".join(f"{split.mean().item():12.3f}" for split in splits) + " "
          + " ".join("{:9.3f} ± {:.3f}".format(*mean_and_se(exact_left - split)) for split in splits))
print("\nseed 0's network at 4,000 steps, level by level:")
print("                fraction left of 0      |  relative error of the network:")
print("                                        |  RMS on the chains, mean |·| in the gap")
print(f"{'σᵢ':>6s} {'exact':>8s} {'learned':>8s} {'exact - learned':>16s} | {'on the chains':>13s} {'in the gap':>10s}")
for s, exact_row, lev, exact_lev, (on_chains, in_gap) in zip(sigmas.tolist(), per_level, levels_learned[1:],
                                                             levels[1:], err_by_level):
    d, d_se = mean_and_se((exact_lev < 0).double() - (lev < 0).double())  # paired: same start, same noise
    print(f"{s:6.2f} {exact_row['left']:8.3f} {(lev < 0).double().mean().item():8.3f} {d:9.3f} ± {d_se:.3f} |"
          f" {on_chains:13.2f} {in_gap:10.2f}")

# %% [markdown]
# The learned networks' final split depends on the training far more than on the chains' noise.
# Over the three seeds it is 0.076, 0.083 and 0.141 after 4,000 steps, and 0.115, 0.104 and
# 0.010 after 2,000 steps of the same runs. The paired differences from the exact run range
# from −0.039 to +0.092, each with a standard error of 0.005 or less. Seed 2's network loses
# nearly the whole left mode at 2,000 steps and overshoots it at 4,000. So, under this training
# (constant learning rate, last iterate), one network cannot say whether a learned score makes
# annealing's weights too low or too high. That takes many seeds and stopping points, and their
# spread is far larger than the chains' noise.
#
# What follows is one network's story: seed 0 at 4,000 steps, which ends low. Its split is
# below the exact run's after every level, by 0.029 ± 0.003 already after σ = 10. That does not
# say which levels cause its final shortfall, since a later level can undo an earlier one's
# error. To find out, swap the scores: the network at the top k levels, the exact score below,
# with the same start and noise. The exact part starts from the learned run's chains after
# level k, with the noise generator advanced past the draws the learned run made up to there.

# %%
def learned_then_exact(k):
    """The learned network at the top k levels, then the exact score: the same start and noise as both runs."""
    g = make_generator(9)
    for _ in range(100 * k):  # the noise the learned run drew at its top k levels, one draw per step
        torch.randn(broad.shape, generator=g)
    return annealed_langevin(p1_noisy_score, levels_learned[k], sigmas[k:], n_steps_each=100, step_size=0.01,
                             generator=g)


swapped = {0: annealed, **{k: learned_then_exact(k) for k in (5, 6, 7)}, len(sigmas): annealed_learned}

# %%
# NBVAL_CHECK_OUTPUT
print("the network at the top k levels, the exact score below; same start and noise (paired by chain)")
print(f"{'k':>3s} {'network down to σ':>18s} {'fraction left':>14s} {'exact run - this':>17s} {'row above - this':>17s}"
      f" {'largest |x - x_exact|':>22s}")
above = None
for k, x in swapped.items():
    left = (x < 0).double()
    d, d_se = mean_and_se((annealed < 0).double() - left)
    step = "" if above is None else "{:9.3f} ± {:.3f}".format(*mean_and_se(above - left))
    lowest = {0: "none: exact run", len(sigmas): "0.10: 5b's run"}.get(k, f"{sigmas[k - 1].item():.2f}")
    apart = (x - annealed).abs().max().item()  # the chain farthest from its partner in the exact run
    print(f"{k:3d} {lowest:>18s} {left.mean().item():14.3f} {d:9.3f} ± {d_se:.3f} {step:>17s} {apart:22.3f}")
    above = left

# %% [markdown]
# The first and last rows are the two runs themselves, the ends of the scale. With the network
# at the top five levels (down to σ = 1.29) and the exact score below, the
# final split is the exact run's, 0.102. Chain by chain the two runs even end at the same place:
# no chain is more than 0.005 from its partner in the exact run. That per-chain agreement comes
# from the shared noise together with the exact levels' contraction, not from annealing: within
# a mode each step multiplies the distance between two chains driven by the same noise by
# about $1 - \varepsilon_i/v_i$, so pairs in the same mode came to within 0.005 of each other. A
# pair that ends in different modes stays apart by the distance between the modes (both have
# variance 1): the 6.000 in the rows below. What the row measures is where the error is
# undone: the network's error down to σ = 1.29 leaves no trace once the levels below are exact.
#
# With the network down to σ = 0.77 the final split is 0.094, 0.007 ± 0.002 below the exact
# run. Down to σ = 0.46 it is 0.075, and the network at the last three levels as well changes it
# by less than one standard error. So for this network the shortfall comes from σ ≈ 0.77 and,
# mostly, 0.46. These are the last levels that last more than half a relaxation time (3.5 and
# 0.76, the table of §5), and where this network's relative error in the gap rises from 0.05
# (σ = 1.29) to 0.15 and 0.27. Another seed's network has other errors, and its swap could
# come out differently; this ablation is about seed 0's network only. Whether its error in the
# gap or inside the modes costs the weight, an ablation that swaps whole levels cannot tell
# (Think 5).
#
# ### 5c. The final denoising step
#
# The last level leaves samples of $p_{\sigma_L}$, not of $p$: each carries noise of size
# $\sigma_L$. Jolicoeur-Martineau et al. (2020) end the sampler with one Tweedie step (lesson 04
# §3), $x \leftarrow x + \sigma_L^2\,s(x, \sigma_L)$, the posterior mean $\mathbb E[x\mid\tilde x]$;
# NCSNv2 adopts it, and `annealed_langevin(..., denoise=True)` does it. What it does to the
# spread is exact for one Gaussian component of variance $v$: the posterior mean is
# $\mu + \frac{v}{v + \sigma^2}(\tilde x - \mu)$, so it multiplies the variance of what arrives by
# $v^2/(v + \sigma^2)^2$. Samples of $p_\sigma$ (variance $v + \sigma^2$) come out with variance
# $v^2/(v + \sigma^2) \approx v - \sigma^2$. What arrives from ULA is a little wider still, by §1's
# factor $2/(2 - \varepsilon/(v + \sigma^2))$. To make the effect visible we also stop a run early,
# at the seventh level (σ ≈ 0.46), with the same per-level steps, and compare the right mode's
# variance ($v = 1$) before and after with these two predictions.

# %%
stop = 7
short_sigmas = sigmas[:stop]
short_step = 0.01 * (short_sigmas[-1].item() / sigmas[-1].item()) ** 2  # the same εᵢ at each level as above
_, short_traj = annealed_langevin(p1_noisy_score, broad, short_sigmas, n_steps_each=100, step_size=short_step,
                                  generator=make_generator(9), record_every=100, denoise=True)
sigma_last = sigmas[-1].item()
full_denoised = annealed + sigma_last**2 * p1_noisy_score(annealed, sigma_last)  # what denoise=True adds
denoising = {}
for s, before, after in ((short_sigmas[-1].item(), short_traj[-2], short_traj[-1]), (sigma_last, annealed, full_denoised)):
    right = before[:, 0] > 0
    eps_last = 0.01 * (s / sigma_last) ** 2
    arriving = (1 + s**2) * 2 / (2 - eps_last / (1 + s**2))  # v + σ², inflated by ULA's bias at that level (§1)
    denoising[s] = (before[right].var().item(), after[right].var().item(), arriving, arriving / (1 + s**2) ** 2,
                    right.sum().item())

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'σ_L':>5s} {'right-mode Var before':>22s} {'after the Tweedie step':>23s}   predicted before, after")
for s, (before, after, pred_before, pred_after, n_right) in denoising.items():
    se_before, se_after = (math.sqrt(2 / n_right) * var for var in (before, after))  # s.e. of a Gaussian's variance
    print(f"{s:5.2f} {before:15.3f} ± {se_before:.3f} {after:16.3f} ± {se_after:.3f}   {pred_before:.3f}, {pred_after:.3f}")
print("error in the variance, Var - v (v = 1), before → after the step:")
for s, (before, after, *_) in denoising.items():
    print(f"  σ_L = {s:.2f}: these chains {before - 1:+.3f} → {after - 1:+.3f};"
          f" exact samples of p_σ would give {s**2:+.3f} → {-s**2 / (1 + s**2):+.3f}")

# %% [markdown]
# Both predictions hold within about one standard error. The step removes the leftover noise and
# returns a posterior mean, which is *less* spread than a sample of $p$ ($v = 1$). Stopped at
# σ_L = 0.46, the error in the variance therefore changes sign, from +0.315 to −0.107; exact
# samples of $p_\sigma$ would go from +0.215 to −0.177. These chains arrive wider than $p_\sigma$,
# as ULA's bias at that level predicts, so the step leaves them closer to $v$. At σ_L = 0.1
# the step moves the variance from 0.992 to 0.973, as predicted (1.015 to 0.995): it lowers the
# variance by about $2\sigma_L^2 = 0.02$ (exact samples of $p_\sigma$ would go from +0.010 to
# −0.010). That change is systematic, the same for every draw, though here it is no larger
# than the standard error of one variance measured on these chains (0.023). The
# step pays off where the leftover noise is what one sees, as on images, where it improves
# sample quality scores (Jolicoeur-Martineau et al. 2020; lesson 06 shows it on MNIST).
#
# ## Think
#
# 1. The Fokker–Planck argument never used the normaliser of $p$. What would the diffusion
#    sample if its drift were $\nabla p$ instead of $\nabla\log p$?
#
# <details><summary>Model answer</summary>
#
# With drift $b = \nabla p$ the flux is $J = \rho\nabla p - \nabla\rho = -\rho\,\nabla(\log\rho - p)$,
# which vanishes at $\rho\propto e^{p}$. But $e^{p}\to1$ far from the data, so it cannot be
# normalised on $\mathbb R^d$: the chain has no stationary distribution at all (far out its
# drift is nearly zero and it moves like a Brownian motion, which has no stationary probability
# distribution either). Even on a bounded domain it
# would sample $e^{\tilde p/Z}$, which depends on the normaliser $Z$ of $p = \tilde p/Z$. With $\nabla\log p = \nabla\tilde p/\tilde p$,
# $Z$ cancels in the ratio.
#
# </details>
#
# 2. Why does ULA's stationary variance exceed $v$? Answer from the recursion, without the
#    formula.
#
# <details><summary>Model answer</summary>
#
# Each step shrinks $x - \mu$ by the factor $1 - \varepsilon/v$ and adds noise of variance
# $2\varepsilon$. In continuous time the pull and the noise balance at variance $v$; the
# discrete step pulls by $1-\varepsilon/v$ in *standard deviation*, so the variance is multiplied
# by $(1-\varepsilon/v)^2 = 1 - 2\varepsilon/v + \varepsilon^2/v^2$, a factor larger than the
# $1 - 2\varepsilon/v$ the noise is calibrated for: the variance shrinks less per step than the
# noise adds back at $v$, and the balance sits above $v$ (measured: 1.330 ± 0.019 at
# ε = 0.5 against the formula's 1.333).
#
# </details>
#
# 3. MALA needs $\log p(y) - \log p(x)$. With a learned score, why not get it by integrating
#    $s_\theta$ along the segment from $x$ to $y$?
#
# <details><summary>Model answer</summary>
#
# The line integral $\int_0^1 s_\theta(x + t(y - x))^\top(y - x)\,dt$ is a difference of log-densities
# only if $s_\theta$ is a gradient field. A network's output generally is not (its Jacobian is not
# symmetric), so the integral depends on the path and defines no density. Even where it is
# (in one dimension every continuous function is a derivative: `density_from_score_1d` does
# exactly this integral), the acceptance step would target $e^{\int s_\theta}$, not $p$, and
# only if $e^{\int s_\theta}$ can be normalised, which §4c's DSM scores show it need not be.
# The price is a quadrature, several score evaluations, per step.
#
# </details>
#
# 4. After 1,000 steps in 4b the split (0.404 left of 0) is still much nearer the start's (0.484
#    left of 0) than the weight 0.10. Construct a start for which plain Langevin
#    gives the *right* weights after 1,000 steps. Why is that no help in practice?
#
# <details><summary>Model answer</summary>
#
# Put a tenth of the chains in the left basin and the rest in the right one, each well inside
# its basin rather than near the boundary; exact samples of $p$ do this. Within a basin a chain
# relaxes in about one time unit ($v = 1$), and the crossings between the basins balance when
# the split is already $w$: in Exercise 3's rate equation $f' = k_1(1 - f) - k_2 f$ vanishes at
# $f = w$. But choosing that start requires knowing the weights of the modes, the very thing the
# sampler should find. From a start independent of the answer (uniform, or noise) the split
# moves towards $w$ only as crossings allow, a fraction $1 - e^{-t/\tau}$ of the way (Exercise 3):
# little while the steps cover a fraction of τ, as the 1,000 steps of ε = 0.01 (10 time units)
# do.
#
# </details>
#
# 5. In 5b's ablation seed 0's network's errors at the top five levels leave no trace once the levels
#    below are exact, while its errors at σ ≈ 0.77 and 0.46 do. Why can later levels undo an
#    earlier level's error, and when would a top-level error survive? At σ ≈ 0.46, how would you
#    find out whether it is the network's error in the gap or inside the modes that costs the
#    weight?
#
# <details><summary>Model answer</summary>
#
# A level hands on nothing but where its chains are. In the k = 5 swap the network's top five
# levels, each lasting 16 relaxation times or more (§5's table), end near the stationary law
# of the score they use, the network's: hence the learned run's deficit of 0.015 ± 0.002 after
# σ = 1.29. What removes it is the first exact level, σ = 0.77, which lasts 3.5 relaxation
# times: the difference between two laws run through the same kernel shrinks roughly like
# $e^{-t/\tau}$, so about $e^{-3.5}\approx0.03$ of the deficit survives, and the σ = 0.46 level (0.76 relaxation times)
# multiplies what is left by about $e^{-0.76}\approx0.47$. That every chain also ends where its
# partner in the exact run does is another matter: shared noise and the contraction within a
# mode (5b). The last three levels together last about 0.3 relaxation times (0.20 + 0.07 +
# 0.02), so they undo only about a quarter of what they are handed: the learned run's deficit
# after σ = 0.46 is 0.036 ± 0.003, and the k = 7 swap ends 0.027 ± 0.003 below the exact run.
# So what the levels around 0.77 and 0.46 decide mostly stays. A top-level error would survive
# if the levels below were too short to move chains between the modes. To tell the gap from
# the modes, swap by region at σ = 0.77 and 0.46: the network only in $|x| < 1$ and the exact score elsewhere, then the
# reverse, every other level exact, with the same start and noise. Compare each final split with
# the exact run's by the paired difference.
#
# </details>
#
# 6. Why is the step at level $i$ proportional to $\sigma_i^2$ rather than to $\sigma_i$, and what
#    limits step_size/σ_L²?
#
# <details><summary>Model answer</summary>
#
# In one step the drift is $\varepsilon_i s$ and the noise $\sqrt{2\varepsilon_i} z$; their ratio is
# $\propto\sqrt{\varepsilon_i}\,\|s\|$. When $\|\nabla\log p_{\sigma}\|\propto1/\sigma$ (large σ, or data on
# a thin set in high dimension), $\varepsilon_i\propto\sigma_i^2$ makes the ratio the same at every
# level (Song & Ermon 2019, §4.3). With $\varepsilon_i\propto\sigma_i$ (normalised at the last level)
# the ratio would be $\propto\sigma_i^{-1/2}$, smaller than at the last level by the factor
# $\sqrt{\sigma_L/\sigma_i}$, and each step's noise would be small against the width of
# $p_{\sigma_i}$: $\sqrt{2\varepsilon_i}/\sigma_i\propto\sigma_i^{-1/2}$, so at the top levels the
# chains would move little per step. The limit: once
# $p_{\sigma_i}$ is nearly a Gaussian of variance ≈ σᵢ², $\varepsilon_i/\operatorname{Var}p_{\sigma_i}$ tends to
# step_size/σ_L², which must stay below 2 for stability (§1) and well below 1 for a small bias;
# here it is 1, hence the over-dispersion at the top levels. A smaller step_size lowers the bias
# but needs more steps per level for the same $T\varepsilon_i$. Song & Ermon (2019) take ε = 2×10⁻⁵
# and σ_L = 0.01 in their Algorithm 1, whose step moves by α/2 along the score: in the course's
# convention step_size/σ_L² = 0.1. Their released code uses 2×10⁻⁵ as the course's step_size,
# which gives 0.2. Both are five to ten times smaller than this lesson's 1.
#
# </details>
#
# ## Summary
#
# - ULA $x\leftarrow x + \varepsilon s(x) + \sqrt{2\varepsilon}z$ is the Euler–Maruyama
#   discretisation of the Langevin diffusion, whose stationary density is $p$ (Fokker–Planck);
#   it needs only the score, and its own stationary law is biased (Gaussian: variance
#   $2v/(2-\varepsilon/v)$, a stationary law only for ε < 2v).
# - In a mixture the bias moves mass between components well before the chain blows up; MALA
#   removes it exactly, but needs $\log p$, which a score network does not give.
# - Failure modes: crossing low-density gaps is slow (a relaxation time τ of order 50 time
#   units here, τ/ε steps: thousands at ε = 0.01); while the steps cover much less than τ
#   (steps × ε ≪ τ), the relative weight of separated modes is set by the starting point. At
#   σ = 0.05, trained 1,500 steps at a constant learning rate, a DSM network's errors are large
#   and depend on the training seed (three seeds); of the regions around the modes they are
#   largest in the gap (the far tails are worse still). On the window [−8, 8] the mode weights
#   its last iterate implies are wrong for every seed; an EMA of seed 0's weights comes closer
#   on that window (0.083), not on [−40, 40] (1.000), and its gap error does not fall. Far from the data each DSM score turns back, so $e^{\int s}$ cannot be
#   normalised on the line. The same network regressed on the exact score of $p_\sigma$ from the
#   same kind of samples is accurate, in the gap too: there it is DSM's noisy target, not the
#   amount of data alone, that fails.
# - Annealed Langevin runs over σ₁ > … > σ_L with $\varepsilon_i\propto\sigma_i^2$. Song & Ermon's
#   case for it (2019, §3–4): data on a thin set have no score off it, and noise gives them full
#   support (§3.1); a score learned from data is accurate only where the noisy data are, and a
#   large σ puts them everywhere; Langevin dynamics mixes poorly between modes separated by low
#   density, and so gets their weights wrong, and a large σ joins the modes (§3.2). In this 1-D
#   toy, from the broad start at 1,000 score evaluations, the exact law of the annealed chains
#   (computed on a grid) puts 0.109 left of 0, where $p$ has 0.101. Plain Langevin's puts 0.407
#   there at ε = 0.01, 0.113 at ε = 0.3, and 0.111 at ε = 0.25, the step of a finer scan
#   closest to the answer (picked knowing it): annealing's expected advantage over that step is
#   about 0.002. One draw of 4,000 chains cannot resolve even the 0.004 over ε = 0.3 (paired
#   difference 0.014 ± 0.007). The gap here is shallow
#   (2.8 nats below the light mode's peak); by Kramers' law a fixed step's crossing time grows
#   exponentially with the depth.
# - With step_size/σ_L² = 1, the levels down to σ = 0.77 last several of ULA's relaxation times
#   and end at ULA's stationary law for their level. That law is wider than $p_\sigma$ and puts
#   too much mass left of 0 (0.435 against 0.406 at σ = 10). The last levels, whose stationary
#   laws are nearly right, are too short to reach them.
# - With learned σ-conditioned networks the final split ranged from 0.010 to 0.141 over three
#   training seeds and two stopping points, far more than the chains' noise (0.005): under this
#   training, a single network says little about the learned-score case. For seed 0's network,
#   swapping in the exact score level by level puts its shortfall at σ ≈ 0.77 and 0.46. A final
#   Tweedie step replaces each sample by its posterior mean: it removes the last level's noise
#   and narrows each mode by about $2\sigma_L^2$ in variance (§5c).
