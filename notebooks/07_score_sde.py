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
# # Lesson 7 — Score SDEs: reverse-time sampling, the probability-flow ODE, exact likelihoods
#
# Lessons 05 and 06 sampled by annealed Langevin over a *list* of noise levels
# σ₁ > … > σ_L. Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021) let the list become a
# continuum: noise is added by a stochastic differential equation (SDE), and sampling runs that
# SDE backwards in time. The same score network then gives three samplers and an exact
# likelihood. This is also how "diffusion models" are built. We check every identity with exact
# scores of Gaussian mixtures, then run the samplers with lesson 06's MNIST network.
#
# **After this lesson you can**
# 1. write the variance-exploding SDE $dx = g(t)\,dW$ with $g^2 = d\sigma^2/dt$, and show that
#    its marginal at time t is the perturbed density $p_{\sigma(t)}$ of lesson 04;
# 2. derive from the Fokker–Planck equation two processes with the same marginals $p_t$, the
#    reverse-time SDE $dx = -g^2\nabla\log p_t\,dt + g\,d\bar W$ and the probability-flow ODE
#    $dx/dt = -\tfrac12 g^2\nabla\log p_t$, and implement one step of each (Anderson 1982 shows
#    that the SDE is the time reversal of the whole process, paths included);
# 3. sample by the reverse SDE, by predictor–corrector (and see that lesson 05's annealed Langevin
#    is the corrector alone), and by the ODE, and compare them at equal numbers of score
#    evaluations;
# 4. encode data into noise and back with the ODE, and compute log-likelihoods with the
#    instantaneous change of variables, up to the solver's error: with the exact divergence in
#    2-D, and in 784-D as an unbiased estimate by Hutchinson's trick (lesson 03);
# 5. write the continuous-time training objective and relate it to lesson 06's losses, and turn
#    a VE score network into a DDPM-style ε-predictor by a change of variables;
# 6. bound the likelihood a VE model can reach, and read an MNIST estimate against that bound.
#
# **Conventions.** Time runs from t = 0 (data) to t = 1 (noise), as in Song et al. 2021; the
# list of levels of lessons 05–06 runs the other way (largest first). `score_fn(x, sigma)` is the
# σ-conditioned score of lesson 06, ≈ ∇ₓ log p_σ(x). Langevin step
# $x \leftarrow x + \varepsilon s + \sqrt{2\varepsilon}z$. Here the scores of the mixtures are
# exact (`noisy_score(p)`); MNIST uses the shipped network.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from lessons_lib import seed_everything
from lessons_lib.course.checks import (
    check_divergence_integrand,
    check_pc_loop,
    check_probability_flow_step,
    check_reverse_sde_step,
)
from lessons_lib.densities import GaussianMixture, noisy_score, sample_errors
from lessons_lib.edm import heun_sample
from lessons_lib.explorers import SDETimeExplorer
from lessons_lib.mnist import SAMPLERS, load_checkpoint, mnist_train_heldout
from lessons_lib.noise import karras_sigmas
from lessons_lib.plotting import image_grid, plot_density_2d, plot_samples
from lessons_lib.samplers import annealed_langevin
from lessons_lib.sde import (
    PREDICTORS,
    VESDE,
    bits_per_dim,
    ode_encode,
    ode_log_likelihood,
    ode_sample,
    pc_sample,
    reverse_sde_sample,
)
from lessons_lib.stats import mean_and_se
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.utils import make_generator

seed_everything(0)
THREADS = torch.get_num_threads()
torch.set_num_threads(1)  # the mixtures: small tensors, one thread is faster (MNIST gets them all back)
split = mnist_train_heldout()  # the MNIST test split ships with the course (data/mnist)

# %% [markdown]
# ## 1. From many σ to a continuum
#
# Lesson 06 perturbed data at levels σ₁ > … > σ_L. Order them the other way, from small to large,
# and build the noisy versions *one from the other*: starting from a point $x_0$,
#
# $$x_i = x_{i-1} + \sqrt{\sigma_i^2 - \sigma_{i-1}^2}\;z_i,\qquad z_i\sim\mathcal N(0, I),$$
#
# adds independent Gaussian noise whose variances sum to $\sigma_i^2 - \sigma_0^2$, so if $x_0$ is
# distributed as $p_{\sigma_0}$ ($\sigma_0 = 0$: the data itself), $x_i$ is distributed as
# $p_{\sigma_i}$. Now let the levels fill an interval: $\sigma_i = \sigma(t_i)$ with $t_i = i/N$,
# $i = 0, \dots, N$, and $N\to\infty$; the chain then starts from $p_{\sigma(0)} = p_{\sigma_{\min}}$.
# The increment's variance is
# $\sigma^2(t+\Delta t) - \sigma^2(t) \approx \frac{d\sigma^2}{dt}\Delta t$, the variance of a
# Brownian increment $\sqrt{d\sigma^2/dt}\;dW$. The chain becomes the **variance-exploding (VE) SDE**
#
# $$dx = g(t)\,dW_t,\qquad g(t) = \sqrt{\frac{d\sigma^2(t)}{dt}},\qquad
#   \sigma(t) = \sigma_{\min}\Big(\frac{\sigma_{\max}}{\sigma_{\min}}\Big)^t,\quad t\in[0, 1],$$
#
# with the geometric schedule of lesson 06 made continuous, so
# $g(t) = \sigma(t)\sqrt{2\log(\sigma_{\max}/\sigma_{\min})}$. No drift, only noise, with a
# variance that "explodes" to σ_max² at t = 1.
#
# **Its marginals.** From time s to t the SDE adds Gaussian noise of variance
# $\int_s^t g^2 = \sigma^2(t) - \sigma^2(s)$: the transition kernel is
# $\mathcal N\big(x_s, (\sigma^2(t) - \sigma^2(s))I\big)$. Start at $x(0)\sim p_{\sigma_{\min}}$
# (the data with a tiny noise σ_min = 0.01, invisible) and the marginal at time t is
#
# $$p_t = p * \mathcal N(0, \sigma^2(t) I) = p_{\sigma(t)},$$
#
# exactly lesson 04's perturbed density. A score model of $p_{\sigma}$ for every σ (lesson 06's
# network) is therefore a score model of every $p_t$: $\nabla\log p_t(x) = s(x, \sigma(t))$. At
# t = 1, $p_1 = p_{\sigma_{\max}}$ is close to $\mathcal N(0, \sigma_{\max}^2 I)$ when σ_max is large
# compared with the spread of the data *and* with its distance from the origin: that is the
# **prior** we will sample from. For the mixtures we take σ_max = 50 (section 4 shows why not 10).
#
# Check: simulate the SDE by hand (Euler–Maruyama, 400 steps of $x \leftarrow x + g(t)\sqrt{\Delta t}\,z$)
# from samples of $p_{\sigma_{\min}}$ of the 2-D mixture, and compare the moments of $x(t)$ with
# the exact moments of `p2.perturbed(σ(t))`.

# %%
sde = VESDE(sigma_max=50.0, sigma_min=0.01)
p1, p2 = mixture_1d(), mixture_2d()
g_fwd = make_generator(1)
x = p2.perturbed(sde.sigma_min).sample(20_000, generator=g_fwd, dtype=torch.float64)
n_fwd = 400
forward_check = {}
for k in range(n_fwd):
    t = k / n_fwd
    x = x + sde.g(t) * math.sqrt(1 / n_fwd) * torch.randn(x.shape, generator=g_fwd, dtype=torch.float64)
    if (k + 1) in (100, 200, 300):
        t_next = (k + 1) / n_fwd
        p_t = p2.perturbed(sde.sigma(t_next))
        left_point = sum(sde.g(j / n_fwd) ** 2 / n_fwd for j in range(k + 1))  # Σ g(t_j)²Δt, the variance EM adds
        exact = torch.diagonal(p_t.covariance())
        em_prediction = exact - (sde.sigma(t_next) ** 2 - sde.sigma_min**2) + left_point  # Var p_σmin + Σ g²Δt
        forward_check[t_next] = (sde.sigma(t_next), x.var(0).tolist(), exact.tolist(), em_prediction.tolist(),
                                 left_point / (sde.sigma(t_next) ** 2 - sde.sigma_min**2))

# %%
# NBVAL_CHECK_OUTPUT
print(sde, f"· g(0) = {sde.g(0.0):.4f}, g(1) = {sde.g(1.0):.1f}")
print(f"{'t':>5s} {'σ(t)':>7s}   variance of x(t) per coordinate   exact for p_σ(t)    Euler–Maruyama's    "
      "Σg²Δt / (σ²(t) − σ_min²)")
for t, (s, measured, exact, em, ratio) in forward_check.items():
    print(f"{t:5.2f} {s:7.3f}   {measured[0]:8.3f} {measured[1]:8.3f}            {exact[0]:8.3f} {exact[1]:8.3f}"
          f"   {em[0]:8.3f} {em[1]:8.3f}    {ratio:.3f}")

# %% [markdown]
# The simulated variances agree with $\operatorname{Var} p + \sigma^2(t)$ to about 1%, the
# Monte-Carlo error of a variance estimated from 20,000 points ($\sqrt{2/20000}$). Euler–Maruyama
# takes g at the left end of each step, so the variance it adds, $\sum_j g(t_j)^2\Delta t$, falls
# short of the exact $\sigma^2(t) - \sigma_{\min}^2$ by the factor in the last column; its
# prediction is the third pair of columns. 20,000 points do not tell the two apart. The exact
# increments $\sqrt{\sigma^2(t_{j+1}) - \sigma^2(t_j)}\,z$ of section 1 have no such bias. The explorer
# shows $p_t$ and the direction of its score on the 2-D mixture, with 300 data points pushed
# through the SDE's kernel: as t grows the three components merge into one broad bump and the
# score field points at its centre. The arrows are normalised; the message line gives the largest
# score on the grid, which falls quickly once σ(t) exceeds the size of the mixture.

# %%
# NBVAL_IGNORE_OUTPUT
explorer = SDETimeExplorer(p2, sde, t=0.3)
explorer

# %%
# NBVAL_IGNORE_OUTPUT
for t in (0.0, 0.3, 0.5, 0.7):
    explorer.slider.value = t
    print(explorer.message.value)

# %% [markdown]
# ## 2. Running the SDE backwards
#
# **The Fokker–Planck equation** of $dx = g\,dW$ is the heat equation,
# $\partial_t p_t = \tfrac12 g^2\Delta p_t$. Since $\Delta p = \nabla\cdot(p\,\nabla\log p)$, it can
# be rewritten in two useful ways:
#
# $$\partial_t p_t = -\nabla\cdot\Big(p_t\,\big[-\tfrac12 g^2\nabla\log p_t\big]\Big)
#   \qquad\text{and}\qquad
#   \partial_t p_t = -\nabla\cdot\Big(p_t\,\big[-g^2\nabla\log p_t\big]\Big) - \tfrac12 g^2\Delta p_t .$$
#
# The first is a continuity equation without any noise: section 4. For the second, run time
# backwards: $q_\tau = p_{1-\tau}$ has $\partial_\tau q_\tau = -\partial_t p_t$, so
#
# $$\partial_\tau q_\tau = -\nabla\cdot\Big(q_\tau\,\big[g^2\nabla\log q_\tau\big]\Big) + \tfrac12 g^2\Delta q_\tau ,$$
#
# the Fokker–Planck equation of an SDE in τ with drift $+g^2\nabla\log q_\tau$ and diffusion g. Written
# in the original time t (dt = −dτ) it is the **reverse-time SDE**
#
# $$dx = -g^2(t)\,\nabla\log p_t(x)\,dt + g(t)\,d\bar W_t ,\qquad t: 1\to 0,$$
#
# where $\bar W$ is a Brownian motion run backwards in time: over a step from t to t − Δt its
# increment is $\mathcal N(0, \Delta t\,I)$, independent of the state at t. Started from $p_1$ at
# t = 1, it has the marginals $p_t$ all the way down to $p_0$. Only the score is needed: the score
# network *is* a generative model.
#
# This argument shows only that the SDE has the right marginals, and it is not the only one that
# does: splitting $\tfrac12 g^2\Delta p$ in other proportions gives the family
# $dx = -\tfrac12(1+\lambda^2)g^2\nabla\log p_t\,dt + \lambda g\,d\bar W$, λ ≥ 0; λ = 0 is the ODE
# of section 4. Anderson (1982) proves more for λ = 1: it is the time reversal of the whole
# forward process, paths included. His result holds for any forward SDE $dx = f\,dt + g\,dW$,
# whose reversal is $dx = [f - g^2\nabla\log p_t]\,dt + g\,d\bar W$.
#
# **Euler–Maruyama**, with a step Δt > 0 from t to t − Δt, and z ~ N(0, I):
#
# $$x \leftarrow x + g^2(t)\,s(x, \sigma(t))\,\Delta t + g(t)\sqrt{\Delta t}\;z .$$
#
# (`reverse_sde_sample` takes N equal steps in t, i.e. equal ratios of σ, N score evaluations.)
# On the 1:9 mixture of lessons 04–05, from the prior $\mathcal N(0, 50^2)$, with 4,000 chains:

# %%
N_CHAINS = 4000
x1_1d = sde.prior_sample((N_CHAINS, 1), make_generator(2), dtype=torch.float64)
x1_2d = sde.prior_sample((N_CHAINS, 2), make_generator(3), dtype=torch.float64)
score1, score2 = noisy_score(p1), noisy_score(p2)
# the yardstick: the same error for exact samples of each mixture, 200 independent draws of N_CHAINS
N_EXACT = 200
exact_floor = {name: np.array([sample_errors(p, p.sample(N_CHAINS, make_generator(500 + k), dtype=torch.float64)).weight
                               for k in range(N_EXACT)]) for name, p in (("1-D", p1), ("2-D", p2))}
reverse_by_steps = {n: (sample_errors(p1, reverse_sde_sample(score1, sde, x1_1d, n, generator=make_generator(4))),
                        sample_errors(p2, reverse_sde_sample(score2, sde, x1_2d, n, generator=make_generator(5))))
                    for n in (10, 30, 100)}

# %%
# NBVAL_CHECK_OUTPUT
print(f"max weight error of {N_CHAINS} exact samples, {N_EXACT} draws: "
      + "; ".join(f"{name} mixture mean {e.mean():.3f}, 95th percentile {np.percentile(e, 95):.3f}"
                  for name, e in exact_floor.items()))
print("reverse SDE, N steps  | 1-D 1:9 mixture                            | 2-D mixture")
for n, (e1, e2) in reverse_by_steps.items():
    print(f"N = {n:3d}               | {e1} | {e2}")

# %% [markdown]
# The first line is the yardstick: even exact samples of 4,000 points miss the weights by that
# much (sampling noise, and points that the largest responsibility assigns to the wrong
# component). With 100 steps the largest weight errors, 0.004 (1-D) and 0.011 (2-D), are within
# the exact samples' 95th percentile, and the 1:9 mixture, of which plain Langevin put 40% in the
# light mode in lesson 05 (§4b), comes out 1:9. With 30 steps the 1-D error, 0.024, is well
# beyond it. Ten steps are too coarse: each step multiplies σ by $5000^{1/10}\approx 2.3$.
#
# Paths of the reverse SDE on the 1:9 mixture over the density $p_t$ (the colour: $\sqrt{p_t(x)}$,
# on one scale for the whole image):

# %%
x_paths, sde_paths = reverse_sde_sample(score1, sde, x1_1d[:12], 200, generator=make_generator(6), record_every=1)
ode_end, ode_paths = ode_sample(score1, sde, x1_1d[:12], 200, record_every=1)
t_axis = sde.time_grid(200).flip(0).numpy()  # the paths run from t = 1 down to t = 0
xs = torch.linspace(-8, 8, 321, dtype=torch.float64)
t_img = np.linspace(0, 1, 201)
density_tx = np.stack([torch.exp(p1.perturbed(sde.sigma(float(t))).log_prob(xs[:, None])).numpy() for t in t_img], 1)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained", sharey=True)
for ax, paths, title in [(axes[0], sde_paths, "reverse-time SDE (200 steps)"),
                         (axes[1], ode_paths, "probability-flow ODE (Heun, 200 steps)")]:
    ax.imshow(density_tx ** 0.5, origin="lower", extent=(0, 1, -8, 8), aspect="auto", cmap="Blues")
    ax.plot(t_axis, paths[:, :, 0].numpy(), color="C3", lw=0.8)
    ax.set(xlabel="time t (sampling runs from right to left)", ylim=(-8, 8), title=title)
axes[0].set_ylabel("x")
fig.suptitle(r"Twelve chains from $\mathcal{N}(0, 50^2)$ to the 1:9 mixture; colour: $\sqrt{p_t(x)}$")
plt.show()

# %% [markdown]
# ### 2b. Another discretisation: the reverse-diffusion predictor
#
# Euler–Maruyama adds noise of variance $g(t)^2\Delta t$ per step. On the geometric σ(t) that is
# $h/(1 - e^{-h})$ times the forward kernel's $\sigma^2(t) - \sigma^2(t - \Delta t)$, with
# $h = 2\Delta t\log(\sigma_{\max}/\sigma_{\min})$: 40% too much at 24 steps (printed below).
# Song et al. (2021, Algorithm 2) use instead, for VE, the **reverse-diffusion predictor**, which
# reverses section 1's discrete chain with its own increments: from σ = σ(t) to σ' = σ(t − Δt),
#
# $$x \leftarrow x + (\sigma^2 - \sigma'^2)\,s(x, \sigma) + \sqrt{\sigma^2 - \sigma'^2}\;z$$
#
# (`reverse_diffusion_step`; `reverse_sde_sample(..., predictor="reverse_diffusion")`). Its noise
# has exactly the kernel's variance. That is not the same as an exact step: for data
# $\mathcal N(m, v)$ and x drawn from $p_\sigma = \mathcal N(m, v + \sigma^2)$, one step gives the variance
# $(v+\sigma'^2)^2/(v+\sigma^2) + \sigma^2 - \sigma'^2$, which exceeds the target $v + \sigma'^2$ by
# $(\sigma^2 - \sigma'^2)^2/(v + \sigma^2)$ (expand it).
#
# Both predictors are $x \leftarrow x + a\,s + \sqrt a\,z$, with $a = g^2(t)\Delta t$ (Euler–Maruyama,
# EM) or $a = \sigma^2 - \sigma'^2$ (reverse diffusion, RD). For Gaussian data the score $-(x - m)/(v + \sigma^2)$ is linear,
# so one step maps a variance V to $(1 - a/(v+\sigma^2))^2\,V + a$. Iterated over the time grid
# from $V = v + \sigma_{\max}^2$, this predicts each sampler's final variance. The next cell
# computes it for N(0, 1) data and checks it with 100,000 chains started from the exact
# $p_{\sigma_{\max}}$. Then the mixtures: both predictors at equal numbers of steps (one
# evaluation each), eight independent draws of 4,000 chains on each mixture, paired by their
# starting points and noise seed.

# %%
start = time.perf_counter()
h24 = 2 * sde.log_ratio / 24


def predicted_variance(n, predictor, v=1.0):
    """The final variance of a predictor on data N(0, v), from V = v + σ_max² at t = 1: V ← (1 − a/(v + σ²))²V + a."""
    times = sde.time_grid(n).tolist()
    var = v + sde.sigma_max**2
    for k in range(n, 0, -1):
        sigma, sigma_next = sde.sigma(times[k]), sde.sigma(times[k - 1])
        a = sde.g(times[k]) ** 2 * (times[k] - times[k - 1]) if predictor == "euler_maruyama" else sigma**2 - sigma_next**2
        var = (1 - a / (v + sigma**2)) ** 2 * var + a
    return var


N_GAUSS = 100_000
x1_gauss = math.sqrt(1 + sde.sigma_max**2) * torch.randn(N_GAUSS, 1, generator=make_generator(16), dtype=torch.float64)
gaussian_runs = {(n, pred): (predicted_variance(n, pred),
                             reverse_sde_sample(lambda x, s: -x / (1 + s**2), sde, x1_gauss, n, make_generator(17),
                                                predictor=pred).var().item())
                 for n in (24, 100) for pred in PREDICTORS}
predictor_runs = {}
for name, p, score in (("1-D", p1, score1), ("2-D", p2, score2)):
    for n in (24, 100):
        errors = {pred: [] for pred in PREDICTORS}
        for seed in range(8):
            x_start = sde.prior_sample((N_CHAINS, p.dim), make_generator(100 + seed), dtype=torch.float64)
            for pred in PREDICTORS:
                x_end = reverse_sde_sample(score, sde, x_start, n, make_generator(200 + seed), predictor=pred)
                errors[pred].append(sample_errors(p, x_end).weight)
        predictor_runs[name, n] = errors
print(f"predictor comparison: {time.perf_counter() - start:.1f} s")

# %%
# NBVAL_CHECK_OUTPUT
overshoot = h24 / (1 - math.exp(-h24))
print(f"Euler–Maruyama's noise variance over the kernel's, 24 steps: h/(1 − e^(−h)) = {overshoot:.3f} "
      f"({overshoot - 1:.0%} too much)")
print(f"data N(0, 1), target variance 1 + σ_min² = {1 + sde.sigma_min**2:.4f}; "
      f"final variance predicted by the recursion / measured on {N_GAUSS:,} chains (s.e. ≈ {math.sqrt(2 / N_GAUSS):.4f}·V):")
for n in (24, 100):
    print(f"  {n:3d} steps: " + ";  ".join(f"{pred} {gaussian_runs[n, pred][0]:.4f} / {gaussian_runs[n, pred][1]:.4f}"
                                           for pred in PREDICTORS))
print("max weight error, mean over 8 draws:  Euler–Maruyama  reverse diffusion   paired difference (RD − EM) ± s.e.")
for (name, n), errors in predictor_runs.items():
    diff, se = mean_and_se([b - a for a, b in zip(errors["euler_maruyama"], errors["reverse_diffusion"])])
    print(f"{name} mixture, {n:3d} steps:              {np.mean(errors['euler_maruyama']):8.3f}"
          f"        {np.mean(errors['reverse_diffusion']):8.3f}        {diff:+.3f} ± {se:.3f}")

# %% [markdown]
# On N(0, 1) data the recursion predicts a final variance of 1.040 (EM) against 1.456 (RD) at
# 24 steps, and 1.0025 against 1.090 at 100; the runs agree with it within their standard
# error. Matching the forward kernel's variance does not make a reverse step exact. RD's mean,
# $x + (\sigma_i^2 - \sigma_{i-1}^2)\,s$, is the exact posterior mean $\mathbb E[x' \mid x]$ of one
# step of the forward chain (Tweedie's formula for that step), so RD's whole error is its noise:
# it adds the step's forward variance $\sigma_i^2 - \sigma_{i-1}^2$, where the posterior's is
# smaller, $(\sigma_i^2 - \sigma_{i-1}^2)(v + \sigma_{i-1}^2)/(v + \sigma_i^2)$ for Gaussian data.
# EM's steps are longer than the kernel's in both pull and noise; its extra pull removes part of
# its extra variance, and on a Gaussian it ends closer.
#
# The mixtures' weight errors rank the predictors the same way. At 24 steps RD is worse on
# both mixtures, by many standard errors of the paired difference. At 100 steps the gap is
# still resolved on the 1-D mixture, where RD's error is twice EM's, and not resolved on the 2-D
# one. PC below uses the reverse-diffusion predictor, as Song et al. do.
#
# ## 3. Predictor–corrector, and where lesson 05 fits in
#
# Either predictor makes an error, so $x$ after a step is only *roughly* distributed as
# $p_{t-\Delta t}$. Song et al. correct it with a few Langevin steps aimed at exactly that density,
# whose score is known: $x \leftarrow x + \varepsilon\,s(x, \sigma(t-\Delta t)) + \sqrt{2\varepsilon}\,z$.
# That is **predictor–corrector (PC)** sampling (their Algorithm 2 for VE, with the
# reverse-diffusion predictor; `pc_sample`'s default). The corrector's step follows a
# signal-to-noise ratio r (their Algorithm 4): $\varepsilon = 2\,(r\,\|z\|/\|s\|)^2$, r = 0.16, with
# the norms averaged over the batch as in the authors' code.
#
# Switch the predictor off, and use lesson 05's step rule $\varepsilon_i = \varepsilon\,\sigma_i^2/\sigma_L^2$:
# what is left is Langevin at $\sigma(t_{N-1}) > \dots > \sigma(t_0)$, a geometric list of levels —
# **annealed Langevin dynamics is the corrector alone**. Check it draw for draw, with the same
# random numbers:

# %%
pc_only = pc_sample(score1, sde, x1_1d, 10, n_corrector=30, predictor=None, step_size=2e-5, generator=make_generator(7))
levels = sde.sigma(sde.time_grid(10).flip(0)[1:])  # σ(t₉) > … > σ(t₀) = σ_min, largest first
lesson05 = annealed_langevin(score1, x1_1d, levels, n_steps_each=30, step_size=2e-5, generator=make_generator(7))
pc_by_steps = {n: (sample_errors(p1, pc_sample(score1, sde, x1_1d, n, 1, 0.16, generator=make_generator(8))),
                   sample_errors(p2, pc_sample(score2, sde, x1_2d, n, 1, 0.16, generator=make_generator(9))))
               for n in (15, 50)}

# %%
# NBVAL_CHECK_OUTPUT
print("annealed Langevin levels:", [round(s, 3) for s in levels.tolist()])
print(f"largest difference between PC without predictor and annealed_langevin: {(pc_only - lesson05).abs().max():.1e}")
print("PC, N steps × (1 predictor + 1 corrector) | 1-D 1:9 mixture                          | 2-D mixture")
for n, (e1, e2) in pc_by_steps.items():
    print(f"N = {n:2d} ({2 * n:3d} evaluations)               | {e1} | {e2}")

# %% [markdown]
# The two samplers are the same to the last bit — as they must be, since both run the same
# Langevin steps on the same levels with the same random numbers: this checks the library, the
# identity itself holds by definition. With a predictor and 100 evaluations, PC's largest weight
# error in this run is 0.024 on the 1-D mixture, well beyond the exact samples' 95th percentile
# (section 2): still biased; on the 2-D mixture, 0.018 is just beyond it. Section 6
# compares the samplers at several budgets.

# %% [markdown]
# ## 4. The probability-flow ODE
#
# The first form of the Fokker–Planck equation in section 2 is a continuity equation: the
# marginals $p_t$ are transported by the velocity field
#
# $$\frac{dx}{dt} = f(x, t) = -\tfrac12 g^2(t)\,\nabla\log p_t(x) .$$
#
# Points that move along this **probability-flow ODE** (Song et al. 2021, §4.3) have exactly the
# SDE's marginals, with no noise at all. Compared with the reverse SDE the drift has a ½: the SDE
# pushes twice as hard towards high density and its noise spreads the points out again; the ODE
# pushes at half the strength, without noise. Solving it from t = 1 to 0 maps prior samples to
# data (`ode_sample`, Heun's second-order method, 2 evaluations per step); solving it from 0 to 1
# maps data to noise (`ode_encode`). Section 2's figure (right) showed its smooth paths. Three
# checks: the samples, the round trip, and what the prior costs.

# %%
ode_by_steps = {n: (sample_errors(p1, ode_sample(score1, sde, x1_1d, n)), sample_errors(p2, ode_sample(score2, sde, x1_2d, n)))
                for n in (15, 50)}
x_data = p2.sample(1000, generator=make_generator(10), dtype=torch.float64)
round_trip = {}
for n in (30, 100):
    latent = ode_encode(score2, sde, x_data, n)
    round_trip[n] = ((ode_sample(score2, sde, latent, n) - x_data).norm(dim=1).max().item(), latent.std().item())
sde10 = VESDE(sigma_max=10.0, sigma_min=0.01)
mean_error_prior = {name: abs(ode_sample(score1, s, s.prior_sample((N_CHAINS, 1), make_generator(11), dtype=torch.float64),
                                         50).mean().item() - p1.mean().item())
                    for name, s in [("σ_max = 10", sde10), ("σ_max = 50", sde)]}
exact_start = ode_sample(score1, sde10, p1.perturbed(10.0).sample(N_CHAINS, make_generator(11), dtype=torch.float64), 50)

# %%
# NBVAL_CHECK_OUTPUT
print("ODE, Heun with N steps   | 1-D 1:9 mixture                            | 2-D mixture")
for n, (e1, e2) in ode_by_steps.items():
    print(f"N = {n:2d} ({2 * n:3d} evaluations) | {e1} | {e2}")
for n, (err, spread) in round_trip.items():
    print(f"encode then decode, {n:3d} Heun steps: largest distance from the start {err:.4f}; std of the code {spread:.1f}")
m, v = p1.mean().item(), p1.covariance().item()
print(f"1-D mixture, mean {m:.1f}: mean error of the ODE's samples from N(0, σ_max²): "
      + ", ".join(f"{k}: {e:.3f}" for k, e in mean_error_prior.items()))
print(f"  prediction for a Gaussian, m·√(v/(v + σ_max²)): σ_max = 10: {m * math.sqrt(v / (v + 100)):.3f}, "
      f"σ_max = 50: {m * math.sqrt(v / (v + 2500)):.3f}; from the exact p_σmax instead (σ_max = 10): "
      f"{abs(exact_start.mean().item() - m):.3f}; SD of the mean of {N_CHAINS} exact samples, √(v/N): "
      f"{math.sqrt(v / N_CHAINS):.3f}")

# %% [markdown]
# At 100 evaluations the ODE's largest weight error is within the exact samples' 95th
# percentile on the 1-D mixture (0.006) and about at it on the 2-D one (0.017). Encoding and
# decoding brings each of 1,000 points back to within 0.0053 of its start with 100 Heun steps,
# against 0.17 with 30. The code has a standard deviation close to σ_max (whether it is
# Gaussian noise would need a test of its own). The last lines show what a wrong prior costs the
# ODE. The prior
# $\mathcal N(0, \sigma_{\max}^2)$ is centred at 0, while $p_{\sigma_{\max}}$ is centred at the
# data's mean m = 2.4. The ODE carries that error all the way down, shrunk by
# $\sqrt{(v+\sigma_{\min}^2)/(v+\sigma_{\max}^2)}$ for a Gaussian, whose flow is linear; the
# mixture's errors are of that size (its weights add their own Monte-Carlo error to the mean).
# So σ_max must be large compared with the data's distance from the origin, not only with its
# spread. Started from the exact $p_{\sigma_{\max}}$, the error falls to the sampling noise of a
# mean of 4,000 samples.
#
# ### Exercise 1 (2 points): one reverse-SDE step
#
# Both samplers are loops over one step from t to t − Δt, given the score at $(x, \sigma(t))$ and
# g = g(t). Write the reverse-SDE step (Euler–Maruyama, with the noise `z` you are given), then
# in exercise 2 the probability-flow step. Their checks recognise the usual slips: the ½ put in
# the wrong one, a sign, g where g² belongs, the noise not scaled by √Δt.

# %%
def reverse_sde_step(x, score, g, dt, z):
    """Euler–Maruyama for dx = −g²∇log p dt + g dW̄, from t to t − dt: x + g²·score·dt + g·√dt·z."""
    # Hint: a Brownian increment over a time dt has standard deviation √dt.
    ### BEGIN SOLUTION
    return x + g**2 * score * dt + g * math.sqrt(dt) * z
    ### END SOLUTION


# %%
check_reverse_sde_step(reverse_sde_step)


# %% [markdown]
# ### Exercise 2 (2 points): one probability-flow step

# %%
def probability_flow_step(x, score, g, dt):
    """Euler for dx/dt = −½g²∇log p, from t to t − dt: x + ½·g²·score·dt."""
    ### BEGIN SOLUTION
    return x + 0.5 * g**2 * score * dt
    ### END SOLUTION


# %%
check_probability_flow_step(probability_flow_step)

# %% [markdown]
# The library's samplers use the same steps: `reverse_sde_sample` the first, `ode_sample(...,
# method="euler")` the second (its default, Heun, averages the velocity at both ends of a step).
#
# ### Exercise 3 (4 points): the predictor–corrector loop
#
# Write Song et al.'s PC sampler for VE with one corrector step per level. `sigmas` lists the
# levels from the largest, σ(t_N), down to σ(t_0) = σ_min; `noise[k, 0]` is the predictor's z and
# `noise[k, 1]` the corrector's z of step k (shape (N, 2, *x.shape)). For each k, from σ =
# `sigmas[k]` to σ' = `sigmas[k + 1]`: the reverse-diffusion predictor of section 2b, with the score
# at σ; then one Langevin step at σ', $x \leftarrow x + \varepsilon s + \sqrt{2\varepsilon}z$, with
# $s = s(x, \sigma')$ and $\varepsilon = 2\,(r\,\overline{\|z\|}/\overline{\|s\|})^2$, the norms taken per sample
# and averaged over the batch. Call `score_fn(x, sigma)` with σ as a Python float.

# %%
def pc_loop(score_fn, x_init, sigmas, snr, noise):
    """PC for VE: for each k, reverse-diffusion predictor from sigmas[k] to sigmas[k + 1], then one corrector step."""
    # Hint: the predictor's variance step is the difference of the two levels' variances; the
    # corrector's ε uses the norms of the corrector's z and of the score at the *new* level.
    ### BEGIN SOLUTION
    x = x_init
    for k in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[k]), float(sigmas[k + 1])
        var = sigma**2 - sigma_next**2
        x = x + var * score_fn(x, sigma) + math.sqrt(var) * noise[k, 0]
        s, z = score_fn(x, sigma_next), noise[k, 1]
        eps = 2 * (snr * z.flatten(1).norm(dim=1).mean() / s.flatten(1).norm(dim=1).mean()) ** 2
        x = x + eps * s + torch.sqrt(2 * eps) * z
    return x
    ### END SOLUTION


# %%
check_pc_loop(pc_loop)

# %% [markdown]
# ## 5. Exact likelihood: the instantaneous change of variables
#
# An ODE $dx/dt = f(x, t)$ moves mass without creating or destroying it, so along one solution
# $x(t)$ the density changes only by how much the flow compresses or spreads space, its divergence
# (Chen, Rubanova, Bettencourt & Duvenaud 2018):
#
# $$\frac{d}{dt}\log p_t\big(x(t)\big) = -\nabla\cdot f\big(x(t), t\big),
#   \qquad \nabla\cdot f = -\tfrac12 g^2(t)\,\operatorname{tr}\nabla_x s\big(x, \sigma(t)\big).$$
#
# Encode x along the ODE to t = 1 while integrating the divergence, and
#
# $$\log p_0(x) = \log p_1\big(x(1)\big) + \int_0^1 \nabla\cdot f\big(x(t), t\big)\,dt ,$$
#
# with $p_1$ the prior. This is the exact log-density of the *flow model* — the prior pushed
# through the ODE built from the score — up to the solver's error; that model equals
# $p_{\sigma_{\min}}$ only if the score is exact and $p_1$ is exactly the prior. The
# trace $\operatorname{tr}\nabla_x s$ is lesson 02's Jacobian trace: exact in 2-D (two backward
# passes), or Hutchinson's estimate $\mathbb E[v^\top(\nabla_x s)v]$ of lesson 03, one
# vector-Jacobian product whatever the dimension. The library, like FFJORD (Grathwohl et al.
# 2019), draws v once and keeps it for the whole solve; the estimate of log p is unbiased for the
# discretised ODE either way (Think 5 asks what keeping v changes).
#
# With the exact score of the 2-D mixture, the result must equal the closed form
# $\log p_{\sigma_{\min}}(x)$:

# %%
x_test = p2.sample(6, generator=make_generator(12), dtype=torch.float64)
exact_log_p = p2.perturbed(sde.sigma_min).log_prob(x_test)
ode_log_p = {n: ode_log_likelihood(score2, sde, x_test, n, "exact") for n in (30, 100)}
n_rep = 400
hutch = ode_log_likelihood(score2, sde, x_test.repeat(n_rep, 1), 100, "hutchinson", make_generator(13)).view(n_rep, 6)

# %%
# NBVAL_CHECK_OUTPUT
print("closed form log p_σmin(x)     ", np.round(exact_log_p.numpy(), 3))
for n, lp in ode_log_p.items():
    print(f"ODE, exact trace, {n:3d} steps  ", np.round(lp.numpy(), 3), f" largest error {(lp - exact_log_p).abs().max():.3f}")
print("Hutchinson, one draw, 100 steps", np.round(hutch[0].numpy(), 3))
hutch_se = hutch.std(0) / math.sqrt(n_rep)
print(f"Hutchinson, mean of {n_rep} draws ", np.round(hutch.mean(0).numpy(), 3),
      f" largest standard error {hutch_se.max():.3f}")
print(f"largest |mean of the draws − exact-trace value| in standard errors: "
      f"{((hutch.mean(0) - ode_log_p[100]).abs() / hutch_se).max():.1f}")

# %% [markdown]
# With 100 Heun steps the ODE's log-density matches the closed form to the printed error (the
# solver's and the prior's); 30 steps are visibly worse. A single Hutchinson draw is off by up to
# about a nat in 2-D, and the mean of 400 draws agrees with the exact-trace value to within the
# printed number of its standard errors. Section 8 uses this estimator on MNIST, where the exact
# trace would cost 784 backward passes per evaluation.
#
# ### Exercise 4 (3 points): the likelihood's integrand
#
# Write the Hutchinson estimate of the integrand $\nabla\cdot f = -\tfrac12 g^2\operatorname{tr}\nabla_x s(x, \sigma)$
# for a batch: one number per sample, $-\tfrac12 g^2\,v^\top(\nabla_x s)v$ with the probe `v` you are
# given (shape of x), by one vector-Jacobian product (`torch.autograd.grad`). `score_fn(x, sigma)`
# is differentiable in x.

# %%
def divergence_integrand(score_fn, x, sigma, g, v):
    """Hutchinson's estimate of ∇·f = −½g²·tr ∇ₓs(x, σ) per sample: −½g²·vᵀ(∇ₓs)v, shape (B,)."""
    # Hint: the gradient of the scalar Σ (s · v) with respect to x is vᵀ∇ₓs; one more product with v.
    ### BEGIN SOLUTION
    x = x.detach().requires_grad_(True)
    s = score_fn(x, sigma)
    vjp = torch.autograd.grad((s * v).sum(), x)[0]
    return -0.5 * g**2 * (vjp * v).flatten(1).sum(1)
    ### END SOLUTION


# %%
check_divergence_integrand(divergence_integrand)

# %% [markdown]
# ## 6. The samplers at equal cost
#
# On the 2-D mixture, at about 30, 100 and 300 score evaluations per chain: the reverse SDE (N
# Euler–Maruyama steps), PC (N/2 steps of the reverse-diffusion predictor, one corrector step
# each; once more with the Euler–Maruyama predictor), the ODE (N/2 Heun steps) and annealed Langevin (10 of the SDE's levels, N/10 steps each,
# ε = 0.2σ² at each level: lesson 05's rule εᵢ ∝ σᵢ², with a smaller constant than its ε = σ²),
# and the ODE once more from another 4,000 starting points. Each row is one draw of 4,000 chains;
# the yardstick is section 2's exact samples of the same size (the lines in the figure). The
# scores are exact, so this compares samplers, not networks. (`benchmarks/sde.py` has the same
# table for both mixtures up to 1,000 evaluations.)

# %%
start = time.perf_counter()
budgets = (30, 100, 300)
equal_cost = {
    "reverse SDE": lambda n: reverse_sde_sample(score2, sde, x1_2d, n, generator=make_generator(14)),
    "PC": lambda n: pc_sample(score2, sde, x1_2d, n // 2, 1, 0.16, generator=make_generator(14)),
    "PC, Euler–Maruyama predictor": lambda n: pc_sample(score2, sde, x1_2d, n // 2, 1, 0.16, generator=make_generator(14),
                                                        predictor="euler_maruyama"),
    "ODE (Heun)": lambda n: ode_sample(score2, sde, x1_2d, n // 2),
    "ODE, other starting points": lambda n: ode_sample(score2, sde, sde.prior_sample((N_CHAINS, 2), make_generator(15),
                                                                                   dtype=torch.float64), n // 2),
    "annealed Langevin": lambda n: pc_sample(score2, sde, x1_2d, 10, n // 10, predictor=False,
                                             step_size=0.2 * sde.sigma_min**2, generator=make_generator(14)),
}
cost_table = {name: [sample_errors(p2, run(n)) for n in budgets] for name, run in equal_cost.items()}
last_samples = {name: equal_cost[name](100) for name in ("reverse SDE", "PC", "ODE (Heun)")}
print(f"samplers at equal cost: {time.perf_counter() - start:.1f} s")

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'max weight error':>35s}" + "".join(f"{n:>8d}" for n in budgets) + "   | covariance error" + "".join(f"{n:>8d}" for n in budgets))
for name, errs in cost_table.items():
    print(f"{name:>35s}" + "".join(f"{e.weight:8.3f}" for e in errs) + "   |                 "
          + "".join(f"{e.covariance:8.3f}" for e in errs))

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 4), layout="constrained")
for ax, (name, x) in zip(axes, last_samples.items()):
    plot_density_2d(ax, p2.log_prob, alpha=0.7)
    plot_samples(ax, x[:2000], s=2, color="C3")
    ax.set(title=f"{name}, 100 evaluations", xlim=(-5, 5), ylim=(-5, 5))
for name, errs in cost_table.items():
    axes[3].loglog(budgets, [max(e.weight, 1e-3) for e in errs], "o-", label=name)
axes[3].axhline(exact_floor["2-D"].mean(), color="k", ls=":", label="exact samples: mean")
axes[3].axhline(np.percentile(exact_floor["2-D"], 95), color="k", ls="--", lw=0.8, label="exact samples: 95th percentile")
axes[3].set(xlabel="score evaluations per chain", ylabel="max weight error", title="Weights against cost",
            xticks=budgets, xticklabels=[str(n) for n in budgets])
axes[3].minorticks_off()
axes[3].legend(fontsize=8)
plt.show()

# %% [markdown]
# One draw each, so only gaps larger than a draw's noise are resolved. Two are: at 30
# evaluations the reverse SDE (30 steps, 0.017) is well ahead of PC (15 steps, 0.063), and
# still ahead of PC with the Euler–Maruyama predictor (0.047), so the gap is not only the
# predictor's; and
# annealed Langevin on 10 levels is beyond the exact samples' range at every budget, about three
# times further off than the others at 100. At 100 and 300 evaluations the reverse SDE, PC and
# the ODE lie between 0.007 and 0.022, from inside the exact samples' range to a little beyond
# its 95th percentile; the two ODE rows, one sampler from two sets of starting points, differ by
# up to 0.005, so one draw does not rank these three there. The ODE's errors stop changing after 100
# evaluations: once the solver is accurate, a deterministic map's error is fixed by its starting
# points and by the prior's mismatch (section 4). Annealed Langevin is handicapped here: it starts from N(0, 50²) while its first level
# is σ(t₉) = 21.3 (section 3), and at 30 evaluations it has only three steps per level to relax.
# The scores are exact; with a learned score the comparison can change.
#
# ## 7. The training objective in continuous time, and DDPM as a change of variables
#
# **The objective.** Song et al. (2021, eq. 7) train one network for all t with
#
# $$J(\theta) = \mathbb E_{t}\Big[\lambda(t)\,\mathbb E_{x(0)}\mathbb E_{x(t)\mid x(0)}
#   \big\|s_\theta(x(t), t) - \nabla_{x(t)}\log p_{0t}(x(t)\mid x(0))\big\|^2\Big],$$
#
# t uniform on [0, 1] and λ(t) > 0 a weight. For the VE SDE the kernel is
# $\mathcal N\big(x(0), \sigma^2(t) I\big)$ (up to σ_min, which we neglect here), so with $x(t) = x(0) + \sigma z$ its
# score is $-z/\sigma$, and with $\lambda = \sigma^2$ (their choice for VE, "∝ 1/E‖∇log p_{0t}‖²"), times ½:
#
# $$\tfrac12 J = \tfrac12\,\mathbb E_t\,\mathbb E\big\|\sigma(t)\,s_\theta(x + \sigma(t)z, \sigma(t)) + z\big\|^2 .$$
#
# That is lesson 06's $J_\mathrm{NCSN}$ with the uniform draw over 15 geometric levels replaced by a
# uniform t, i.e. $\log\sigma$ uniform on $[\log\sigma_{\min}, \log\sigma_{\max}]$: the continuum of the
# same schedule. Changing variables from t to σ, any such objective is
# $\int \lambda(\sigma)\,\pi(\sigma)\,\mathbb E\|\dots\|^2 d\sigma$ for a density π of the levels, and
# lesson 06's $J_\mathrm{EDM}$ is the member with $\ln\sigma\sim\mathcal N(-1.2, 1.2^2)$ for π and
# $\sigma^2(1 + \sigma^2/\sigma_d^2)$ for the weight (together with the preconditioning of the network).
# Given unlimited capacity, each is minimised by the score of $p_\sigma$ at every level it draws
# ($J_\mathrm{NCSN}$ on 15 levels pins only those); with a finite network they differ in how
# they spend its capacity across σ.
#
# **DDPM.** Ho, Jain & Abbeel's DDPM (2020) perturbs data as $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$
# and trains a network $\varepsilon_\theta(x_t, t)$ to predict ε with $\|\varepsilon_\theta - \varepsilon\|^2$. Song et al.
# 2021 show it is the discretisation of the **variance-preserving (VP) SDE**
# $dx = -\tfrac12\beta(t)\,x\,dt + \sqrt{\beta(t)}\,dW$, whose kernel shrinks the data while adding
# noise. Divide by $\sqrt{\bar\alpha_t}$:
#
# $$\frac{x_t}{\sqrt{\bar\alpha_t}} = x_0 + \sigma\,\varepsilon,\qquad \sigma = \sqrt{\frac{1-\bar\alpha_t}{\bar\alpha_t}} ,$$
#
# a VE perturbation at level σ. So a VE score network gives a DDPM-style ε-predictor — ask it at
# the rescaled image and at *this* σ (not at $\sqrt{1-\bar\alpha_t}$):
# $\hat\varepsilon(x_t, t) = -\sigma\,s_\theta\big(x_t/\sqrt{\bar\alpha_t}, \sigma\big)$, since by Tweedie (lesson 04)
# $\mathbb E[\varepsilon\mid\tilde x] = -\sigma\nabla\log p_\sigma(\tilde x)$ whatever weighting trained $s_\theta$; and
# the VP score is $\nabla\log p^\mathrm{VP}_t(x_t) = \bar\alpha_t^{-1/2}\,s_\theta(x_t/\sqrt{\bar\alpha_t}, \sigma)$.
# DDPM's loss is then $\|\hat\varepsilon - \varepsilon\|^2 = \|\sigma s_\theta + \varepsilon\|^2$, the σ²-weighted one.
# Check both on the 2-D mixture, whose VP marginal is known in closed form (every component
# scaled by $\sqrt{\bar\alpha}$, covariances $\bar\alpha C + (1 - \bar\alpha)I$), with DDPM's linear
# schedule in Song et al.'s continuous form, β(t) from 0.1 to 20 ($\bar\alpha(t) = e^{-\int_0^t\beta}$); then the ε-predictor built from lesson 06's network
# on held-out digits.

# %%
def alpha_bar(t, beta_min=0.1, beta_max=20.0):
    """ᾱ(t) = exp(−∫₀ᵗ β) for DDPM's linear β(t) = β_min + t(β_max − β_min), in Song et al.'s continuous form."""
    return math.exp(-(beta_min * t + 0.5 * t**2 * (beta_max - beta_min)))


eye2 = torch.eye(2, dtype=torch.float64)
x_vp = 3 * torch.randn(500, 2, generator=make_generator(19), dtype=torch.float64)
vp_check = {}
for t in (0.1, 0.3, 0.6):
    a = alpha_bar(t)
    sigma_ve = math.sqrt((1 - a) / a)
    vp_marginal = GaussianMixture(p2.weights, math.sqrt(a) * p2.means, a * p2.covs + (1 - a) * eye2)
    via_ve = score2(x_vp / math.sqrt(a), sigma_ve) / math.sqrt(a)
    vp_check[t] = (a, sigma_ve, math.sqrt(1 - a), (via_ve - vp_marginal.score(x_vp)).abs().max().item())

# %%
torch.set_num_threads(THREADS)  # the MNIST network: all threads
ck = load_checkpoint()
mnist_sde = VESDE(sigma_max=SAMPLERS["heun"].sigma_max, sigma_min=float(ck.sigmas[-1]))
digits = split.heldout[:64]
mean_digit = split.train.mean(0)
eps_check = {}
for k, t in enumerate((0.05, 0.2, 0.5)):
    a = alpha_bar(t)
    sigma_ve = math.sqrt((1 - a) / a)
    eps = torch.randn(digits.shape, generator=make_generator(20 + k))
    x_t = math.sqrt(a) * digits + math.sqrt(1 - a) * eps  # DDPM's forward process
    predictors = {
        "network": -sigma_ve * ck.score(x_t / math.sqrt(a), sigma_ve),  # the VE network as an ε-predictor
        "mean digit": (x_t / math.sqrt(a) - mean_digit) / sigma_ve,  # a control that knows only the mean image
        "wrong level": -math.sqrt(1 - a) * ck.score(x_t, math.sqrt(1 - a)),  # the network at √(1 − ᾱ), x_t unscaled
    }
    eps_check[t] = (a, sigma_ve, {name: ((e - eps).pow(2).mean() / eps.pow(2).mean()).item() for name, e in predictors.items()})

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'t':>4s} {'ᾱ(t)':>8s} {'VE σ = √((1−ᾱ)/ᾱ)':>19s} {'√(1−ᾱ)':>7s}   max |VP score via the VE score − closed form|")
for t, (a, s_ve, s_vp, err) in vp_check.items():
    print(f"{t:4.1f} {a:8.4f} {s_ve:19.3f} {s_vp:7.3f}   {err:.1e}")
training = ck.meta["training"]
print(f"checkpoint trained with ln σ ~ N({training['p_mean']:g}, {training['p_std']:g}²), "
      f"σ_d = {training['sigma_data']:.3f}; as an SDE: {mnist_sde}")
below, above = (0.5 * math.erfc(sign * (math.log(s) - training["p_mean"]) / (training["p_std"] * math.sqrt(2)))
                for sign, s in ((-1, mnist_sde.sigma_min), (1, mnist_sde.sigma_max)))
print(f"fraction of its training levels below σ_min: {below:.4f}, above σ_max: {above:.1e}")
print("‖ε̂ − ε‖² / ‖ε‖² on 64 held-out digits: the network at x_t/√ᾱ and σ; (x_t/√ᾱ − mean digit)/σ; "
      "the network at x_t and √(1 − ᾱ)")
for t, (a, s_ve, rel) in eps_check.items():
    print(f"DDPM's t = {t:4.2f} (VE σ = {s_ve:5.2f}):   " + "   ".join(f"{name} {r:.4f}" for name, r in rel.items()))

# %% [markdown]
# The VP score obtained from the VE score matches the closed form to rounding: the two SDEs are
# one family of perturbed densities seen in two coordinates. At small t the VE σ and DDPM's
# $\sqrt{1-\bar\alpha}$ are close; by t = 0.6 they differ many times over.
#
# The last lines score the ε-predictor built from lesson 06's network against two controls: the
# mean digit, $(\tilde x - \bar x)/\sigma$ with $\tilde x = x_t/\sqrt{\bar\alpha}$ and $\bar x$ the mean
# training image, and the network asked at the wrong level, $\sqrt{1-\bar\alpha}$, with the
# unscaled $x_t$. At t = 0.05 the network leaves 5.3% of the noise's squared norm unexplained,
# against 217% for the mean digit; the wrong level does as well there, since the two levels
# nearly coincide. At t = 0.5 the network's 0.49% is barely below the mean digit's 0.56%, so at
# that level the number tests little; the wrong level gives 1.6%, worse than the mean digit.
# Part of the error no network can remove:
# at best $\hat\varepsilon - \varepsilon = (x_0 - \mathbb E[x_0\mid\tilde x])/\sigma$, the uncertainty about the clean
# image divided by σ.
#
# ## 8. MNIST with the course's network
#
# **Which network.** Lesson 06's shipped checkpoint was trained on a continuum of levels,
# $\ln\sigma\sim\mathcal N(-1.2, 1.2^2)$, with EDM's preconditioning (lesson 06 §4b), so it can be asked
# at every σ(t), though it saw the ends of the range rarely: 0.23% of its training levels fall
# below σ_min and almost none above σ_max (printed above). Every sampler starts from the same
# draws of $\mathcal N(0, 40^2 I)$, the prior of the VE SDE with σ_max = 40 (the value of the
# course's `SAMPLERS["heun"]` settings), and the first three end with lesson 06's denoising step
# $x + \sigma_{\min}^2 s_\theta(x, \sigma_{\min})$ from σ_min = 0.01. The fourth is EDM's solver
# of the same probability-flow ODE (Karras et al. 2022): Heun's method with σ itself as the time
# variable, $dx/d\sigma = -\sigma\,s_\theta(x, \sigma)$, on levels packed towards small σ
# (`karras_sigmas`, ρ = 7), ending with an Euler step from σ = 0.002 to 0, a Tweedie step from a
# smaller level. No churn here: this is the deterministic solver. The parameters:

# %%
N_DIGITS = 16  # samples per sampler
EVALS = 50  # network evaluations per sampler (+1 for the denoising step)
N_LIKELIHOOD = 3  # held-out digits whose likelihood is computed
LIKELIHOOD_STEPS = (50, 100)  # Heun steps (each evaluates the network twice, both with a vector-Jacobian product)
N_PROBES = 4  # independent Hutchinson probes on the first digit, at the smaller step count

# %%
mnist_samplers = {
    f"reverse SDE, {EVALS} steps": lambda x1, g: reverse_sde_sample(ck.score, mnist_sde, x1, EVALS, generator=g, denoise=True),
    f"PC, {EVALS // 2} × (1 + 1)": lambda x1, g: pc_sample(ck.score, mnist_sde, x1, EVALS // 2, 1, 0.16, generator=g, denoise=True),
    f"ODE, Heun {EVALS // 2} steps": lambda x1, g: ode_sample(ck.score, mnist_sde, x1, EVALS // 2, denoise=True),
    f"EDM: Heun in σ, {EVALS // 2 + 1} levels": lambda x1, g: heun_sample(
        ck.score, x1, karras_sigmas(mnist_sde.sigma_max, SAMPLERS["heun"].sigma_min, EVALS // 2 + 1)),
}
x1_mnist = mnist_sde.prior_sample((N_DIGITS, 1, 28, 28), make_generator(30))
start = time.perf_counter()
mnist_samples = {name: run(x1_mnist, make_generator(31)).clamp(0, 1) for name, run in mnist_samplers.items()}
print(f"{len(mnist_samplers)} × {N_DIGITS} digits in {time.perf_counter() - start:.0f} s")

# %%
fig, axes = plt.subplots(2, 2, figsize=(8, 8.6), layout="constrained")
for ax, (name, images) in zip(axes.flat, mnist_samples.items()):
    image_grid(ax, images, nrow=4)
    ax.set_title(name if name.startswith("EDM") else f"{name} + denoising")
fig.suptitle(f"The same {N_DIGITS} starting points, {EVALS + 1} network evaluations each")
plt.show()

# %% [markdown]
# The two ODE solvers, geometric steps in t and EDM's steps in σ, draw almost the same digit
# from each starting point (compare the bottom grids square by square): two discretisations of
# one deterministic map. To the eye PC's digits look the worst, with broken strokes and specks,
# an impression from 16 digits, not a measurement. Which sampler draws better digits is a
# question for many samples and repeated draws: with 16 samples a Fréchet distance (lesson 06 §5)
# would be dominated by its small-sample bias. `benchmarks/mnist/quality.py` scores these samplers
# on 1,000 samples against real digits at the same n (`benchmarks/RESULTS.md`).
#
# **Likelihood in bits per dimension.** The pixels are 256 grey levels scaled to [0, 1]. Adding
# uniform noise of one grey level (dequantisation) turns them into continuous data, and a density
# p on $[0,1]^{784}$ gives $-\log_2 p/784 + 8$ bits per dimension (the 8 converts to the 0…255
# scale). Lower is better. But a VE model is a model of $p_{\sigma_{\min}}$, the data convolved
# with $\mathcal N(0, \sigma_{\min}^2 I)$, and no such density can exceed the peak of its Gaussian,
# $(2\pi\sigma_{\min}^2)^{-d/2}$ (exercise 5): every exact model of $p_{\sigma_{\min}}$ has at least
# $8 + \tfrac12\log_2(2\pi\sigma_{\min}^2)$ bits per dimension, printed below for σ_min = 0.01. The
# figures of about 1 bit/dim published for MNIST (FFJORD 0.99, Glow 1.05, RealNVP 1.06, as
# tabulated by Grathwohl et al. 2019) are likelihoods of the dequantised digits themselves, under
# flows trained for likelihood; they are below this floor, so they are not a target for this
# model. Here with Hutchinson's estimator (one projection), on a few held-out digits, at two
# step counts of the ODE solver:

# %%
start = time.perf_counter()
g = make_generator(40)
clean = split.heldout[-N_LIKELIHOOD:]
dequantised = (clean * 255 + torch.rand(clean.shape, generator=g)) / 256
bpd = {}
for n in LIKELIHOOD_STEPS:
    # at the smaller step count, N_PROBES − 1 more copies of the first digit: each sample gets its own probe v
    # (the same generator at both step counts: the three digits keep their probes)
    batch = dequantised if n != LIKELIHOOD_STEPS[0] else torch.cat([dequantised, dequantised[:1].repeat(N_PROBES - 1, 1, 1, 1)])
    log_p = bits_per_dim(ode_log_likelihood(ck.model, mnist_sde, batch, n, "hutchinson", make_generator(41)), 28 * 28)
    bpd[n] = log_p[:N_LIKELIHOOD]
    if n == LIKELIHOOD_STEPS[0]:
        probes = torch.cat([log_p[:1], log_p[N_LIKELIHOOD:]])
floor = 8 + 0.5 * math.log2(2 * math.pi * mnist_sde.sigma_min**2)
# the same floor from the library's conversion: log p_σmin ≤ −(d/2)·log(2πσ_min²)
floor_check = bits_per_dim(torch.tensor([-(28 * 28 / 2) * math.log(2 * math.pi * mnist_sde.sigma_min**2)]), 28 * 28)
print(f"likelihoods in {time.perf_counter() - start:.0f} s")

# %%
# NBVAL_CHECK_OUTPUT
print(f"floor for any exact model of p_σmin, σ_min = {mnist_sde.sigma_min:g}: 8 + ½·log₂(2πσ_min²) = {floor:.3f} "
      f"bits/dim (via bits_per_dim: {floor_check.item():.3f})")
for n, b in bpd.items():
    print(f"Heun, {n:3d} steps: bits/dim of {N_LIKELIHOOD} held-out digits {np.round(b.numpy(), 2)}, mean {b.mean():.2f}")
print(f"the first digit with {N_PROBES} independent probes ({LIKELIHOOD_STEPS[0]} steps): {np.round(probes.numpy(), 3)}, "
      f"SD {probes.std():.3f}")
change = (bpd[LIKELIHOOD_STEPS[1]] - bpd[LIKELIHOOD_STEPS[0]]).abs().max()
gap = floor - bpd[LIKELIHOOD_STEPS[1]]
print(f"largest change from {LIKELIHOOD_STEPS[0]} to {LIKELIHOOD_STEPS[1]} steps: {change:.3f} bits/dim; "
      f"below the floor by {gap.min():.2f} to {gap.max():.2f}")

# %% [markdown]
# The floor is 2.682 bits/dim: no exact model of $p_{\sigma_{\min}}$ can give less. Every estimate
# lies below it. Hutchinson's noise does not explain that: four independent probes on the first
# digit spread by SD 0.003. Nor does the solver: doubling the steps from 50 to 100 changes no
# estimate by more than 0.012, while the gap to the floor is 0.28 to 0.71. So this is a model
# error: the network's ODE maps the prior to a proper density, but not to one of the form
# $q * \mathcal N(0, \sigma_{\min}^2 I)$. The bound says where it must fail. Every σ-smoothed density
# has $\nabla_x^2\log p_\sigma = -I/\sigma^2 + \operatorname{Cov}[y\mid x]/\sigma^4$, so
# $\operatorname{tr}\nabla_x^2\log p_\sigma \ge -d/\sigma^2$; put into the integral of section 5, with the
# prior at most its peak, this gives exactly the floor. An estimate below the floor therefore
# needs $\sigma^2\operatorname{tr}\nabla_x s_\theta/d < -1$ somewhere along the path: the network's
# flow contracts space faster than any smoothed density's would. These numbers measure that
# error, not how well the network compresses the digits; a VE likelihood comparable with the
# published flows would need a σ_min whose floor lies below them.
#
# ### Exercise 5 (written, 3 points): the σ_min floor
#
# Show that any density of the form $q * \mathcal N(0, \sigma^2 I)$ on $\mathbb R^d$ is at most
# $(2\pi\sigma^2)^{-d/2}$ everywhere, and derive from it the smallest number of bits per dimension an
# exact model of $p_{\sigma_{\min}}$ can give 8-bit images scaled to [0, 1]. Evaluate it for σ_min = 0.01
# and say what an estimate below it tells you about the model.

# %% [markdown]
# <!-- BEGIN WRITTEN ANSWER sigma_min_floor -->
# **Model answer.** $p_\sigma(x) = \int q(y)\,\mathcal N(x; y, \sigma^2 I)\,dy \le \sup_u\mathcal N(u; 0, \sigma^2I)\int q(y)\,dy
# = (2\pi\sigma^2)^{-d/2}$, since the Gaussian density is largest at its centre and q integrates to one.
# Hence $-\log_2 p_\sigma(x)/d \ge \tfrac12\log_2(2\pi\sigma^2)$. The bits per dimension of images on
# 256 levels scaled to [0, 1] are $-\log_2 p/d + \log_2 256$ (the density on the 0…255 scale is
# $256^{-d}$ times the one on [0, 1]), so every exact model of $p_{\sigma_{\min}}$ has at least
# $8 + \tfrac12\log_2(2\pi\sigma_{\min}^2)$ bits/dim; for σ_min = 0.01,
# $8 + \tfrac12\log_2(2\pi\cdot10^{-4}) \approx 2.68$. An estimate below the floor — beyond
# the estimator's own noise and the solver's error — cannot come from the score of a
# Gaussian-smoothed density: every such density has $\operatorname{tr}\nabla_x^2\log p_\sigma \ge -d/\sigma^2$
# (its Hessian is $-I/\sigma^2$ plus a covariance over $\sigma^4$), and that bound, integrated along the
# ODE's path with the prior at its peak, is the floor; so the learned score necessarily has
# $\operatorname{tr}\nabla_x s < -d/\sigma^2$ somewhere along the path, and the number measures the
# model's error, not a likelihood of the data.
#
# <!-- RUBRIC -->
# - 1 point: bounds the convolution by the Gaussian's peak (2πσ²)^(−d/2), using that q integrates to one.
# - 1 point: converts to bits per dimension with the +8 of the 0…255 scale and gets ≈ 2.68 for σ_min = 0.01.
# - 1 point: explains that an estimate below the floor means the learned score is not that of a smoothed density (a model error).
# <!-- END WRITTEN ANSWER -->
#
# ## Think
#
# 1. The VE SDE has no drift. Where does the drift of the *reverse* SDE come from, and why does
#    it need the score of $p_t$, not of the data?
#
# <details><summary>Model answer</summary>
#
# Running diffusion backwards must undo the spreading; in the Fokker–Planck equation this
# appears when $\tfrac12g^2\Delta p$ is rewritten as a flux $\nabla\cdot(p\,g^2\nabla\log p)$ minus a
# diffusion term (section 2). The flux involves $\nabla\log p_t$ at the current time because at
# time t the points are distributed as $p_t$: their density at that moment decides where
# the mass must go. The data's score would only be right at t = 0.
#
# </details>
#
# 2. Why does the probability-flow ODE have ½g² where the reverse SDE has g²? What happens if
#    you forget the ½ in the ODE (try it with `probability_flow_step`)?
#
# <details><summary>Model answer</summary>
#
# The two Fokker–Planck forms in section 2 split $\tfrac12g^2\Delta p$ differently: all of it as a
# flux with velocity −½g²∇log p (ODE), or twice that flux plus a diffusion term that spreads
# the points again (SDE). Without the ½ the ODE moves the points twice as far towards high
# density and nothing spreads them back: the samples collapse onto the modes (too small a
# covariance), as the SDE would without its noise.
#
# </details>
#
# 3. Annealed Langevin is PC without the predictor. What does the predictor add, and what does
#    the corrector add to the reverse SDE?
#
# <details><summary>Model answer</summary>
#
# The predictor moves the samples from $p_t$ to (approximately) $p_{t-\Delta t}$ in one step; the
# corrector alone must do that by Langevin mixing at each level, which takes many steps when
# neighbouring levels differ a lot (section 6: annealed Langevin on 10 levels needs more
# evaluations). The corrector is meant to reduce the predictor's discretisation error, pulling
# the samples towards the right marginal at each level, at one extra evaluation per step. This
# lesson does not isolate that effect, and in its measurements the extra evaluation does not pay:
# at equal cost PC is worse than the reverse SDE at 30 evaluations (0.063 against 0.017 in
# section 6; 0.047 with the Euler–Maruyama predictor) and level with it at 100 and 300.
#
# </details>
#
# 4. The ODE is deterministic, so two samples differ only through their starting points. Why does
#    an error in the prior hurt the ODE more than the reverse SDE?
#
# <details><summary>Model answer</summary>
#
# The reverse SDE's drift contracts differences between chains and its noise refreshes them: for
# a Gaussian, a wrong mean at t = 1 shrinks by the factor $(v+\sigma_{\min}^2)/(v+\sigma_{\max}^2)$
# on the way down. The ODE only transports: the same error shrinks by the square root of that
# factor (section 4), so with σ_max = 10 the 1:9 mixture's samples stay off by about 0.5.
#
# </details>
#
# 5. Hutchinson's estimator makes the likelihood cheap in 784 dimensions. Why is the estimate of
#    log p unbiased even though v is drawn once and kept for the whole ODE solve? Would a fresh v
#    at every evaluation be better or worse with the fixed-step Heun solver used here, and why
#    does FFJORD keep one v?
#
# <details><summary>Model answer</summary>
#
# The path $x(t)$ of the ODE does not depend on v (the divergence is only integrated alongside),
# and at every t, $\mathbb E_v[v^\top A(t)v] = \operatorname{tr}A(t)$; a fixed-step solver's sum of these
# unbiased terms is unbiased, whether the v are shared or not. Their variances differ: with one v
# the errors $v^\top A(t)v - \operatorname{tr}A(t)$ of neighbouring times are strongly correlated (A(t)
# changes slowly) and add up coherently, while with a fresh v per evaluation they are independent
# and partly cancel, so fresh v give the *less* noisy estimate with a fixed-step solver. FFJORD
# keeps one v because it uses adaptive solvers (and the adjoint method), which need a
# deterministic ODE to control their error; a v that changes at every evaluation would make the
# integrand random and the step-size control meaningless.
#
# </details>
#
# 6. DDPM's network predicts ε; lesson 06's network gives a score s, hence $\hat\varepsilon = -\sigma s$.
#    Are these the same network?
#
# <details><summary>Model answer</summary>
#
# Up to the input scaling, the noise-level map and the sign, yes (section 7): a VE network asked at
# $x_t/\sqrt{\bar\alpha_t}$ and at the level $\sigma = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$ gives
# $\hat\varepsilon = -\sigma s_\theta$, and DDPM's loss on it is the σ²-weighted DSM loss. Two things
# differ in practice: the VP network sees inputs of bounded variance $x_t$, while a raw VE network
# would see $x_t/\sqrt{\bar\alpha_t}$, whose variance grows like $1/\bar\alpha_t$ (EDM's input scaling
# $c_\mathrm{in}$, used by lesson 06's network, removes that difference); and the two are trained
# with different distributions of levels and weights (section 7's objective), so they are not the
# same trained network.
#
# </details>
#
# ## Summary
#
# - The VE SDE $dx = g\,dW$, $g^2 = d\sigma^2/dt$, is lesson 06's noise levels as a continuum: its
#   marginal at time t is $p_{\sigma(t)}$, so a σ-conditioned score network scores every $p_t$.
# - The Fokker–Planck equation gives both the reverse-time SDE $dx = -g^2\nabla\log p_t\,dt + g\,d\bar W$
#   and the probability-flow ODE $dx/dt = -\tfrac12g^2\nabla\log p_t$, with the same marginals
#   (Anderson 1982: the SDE reverses the paths too); both sample from the prior
#   $\mathcal N(0, \sigma_{\max}^2I)$.
# - Predictor–corrector adds Langevin steps after each reverse-SDE step; without the predictor it
#   *is* annealed Langevin (checked draw for draw).
# - With exact scores and about 100 evaluations, the reverse SDE and the ODE get the mixtures'
#   weights within or close to the error of exact samples; PC still misses the 1-D mixture's
#   weights there. The ODE encodes and decodes, and it carries any error of the prior down to
#   the data.
# - Two discretisations of the reverse SDE: Euler–Maruyama and the reverse-diffusion predictor
#   (Song et al.'s Algorithm 2, `pc_sample`'s default). A Gaussian recursion predicts that EM ends
#   closer to the target variance, and paired draws on the mixtures rank them the same way.
# - The instantaneous change of variables gives the flow model's $\log p_0$ up to the solver's
#   error, with the divergence exact in 2-D or estimated without bias by Hutchinson in 784-D. A
#   VE model of $p_{\sigma_{\min}}$ cannot go below $8 + \tfrac12\log_2(2\pi\sigma_{\min}^2)$
#   bits/dim; the MNIST network's estimates do, with a converged solver: a model error.
# - The continuous-time objective with λ = σ² is $J_\mathrm{NCSN}$ over a continuum of levels;
#   $J_\mathrm{EDM}$ is another choice of level density and weight. DDPM discretises the VP SDE, and a VE
#   score network becomes its ε-predictor at $x_t/\sqrt{\bar\alpha_t}$ and σ = √((1 − ᾱ)/ᾱ).
