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
# # 04 · Denoising score matching
#
# Implicit and sliced score matching fit a score model without knowing the true score, but
# they differentiate the model with respect to its input (a Jacobian trace, or projections of
# it). **Denoising score matching** (Vincent 2011) avoids derivatives of the model entirely:
# add Gaussian noise to the data and ask the model to point from the noisy sample back to the
# clean one. The price is that we learn the score of the *noisy* density.
#
# **After this lesson you can**
# 1. say what the perturbed density $p_\sigma = p * \mathcal N(0, \sigma^2 I)$ is, and compute
#    the score of the noise kernel, $-(\tilde x - x)/\sigma^2$;
# 2. derive Vincent's identity $J_\mathrm{DSM}(\theta) = J_\mathrm{ESM}(\theta; p_\sigma) + C$,
#    with the constant $C$ written out, and check it with numbers;
# 3. state Tweedie's formula $\mathbb E[x\mid\tilde x] = \tilde x + \sigma^2\nabla\log p_\sigma(\tilde x)$
#    and explain why a denoising autoencoder is a score model;
# 4. fit a small network by DSM, recover a density from the learned score, and see with a
#    slider how σ trades accuracy near the data against coverage of the whole space;
# 5. explain why DSM becomes noisy as σ → 0.
#
# **Conventions.** Losses carry the papers' ½, sum over dimensions and average over the
# batch. $\tilde x = x + \sigma z$ with $z \sim \mathcal N(0, I)$.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.checks import check_dsm_loss
from lessons_lib.data import mixture_1d, mixture_2d
from lessons_lib.densities import Gaussian, density_from_score_1d, total_variation_1d
from lessons_lib.losses import esm_loss, ncsn_loss
from lessons_lib.nets import LinearScore, ScoreMLP
from lessons_lib.noise import geometric_sigmas, perturb
from lessons_lib.training import train
from lessons_lib.utils import make_generator
from lessons_lib.widgets import SigmaExplorer

seed_everything(0)
torch.set_num_threads(1)  # these networks are tiny: one thread is faster than several

# %% [markdown]
# ## 1. Perturbing data with Gaussian noise
#
# Draw $x \sim p$ and add noise: $\tilde x = x + \sigma z$. Given $x$, the noisy point has the
# Gaussian density $q_\sigma(\tilde x\mid x) = \mathcal N(\tilde x; x, \sigma^2 I)$, so its
# marginal density is a convolution,
#
# $$p_\sigma(\tilde x) = \int p(x)\,\mathcal N(\tilde x; x, \sigma^2 I)\,dx = (p * \mathcal N(0,\sigma^2 I))(\tilde x).$$
#
# **The Parzen-window view.** Replace $p$ by the empirical distribution of $n$ training points
# $x_1,\dots,x_n$: the integral becomes a sum, and $p_\sigma$ becomes the kernel density
# estimate with a Gaussian window of width σ,
# $\hat p_\sigma(\tilde x) = \frac1n\sum_i \mathcal N(\tilde x; x_i, \sigma^2 I)$. This is
# Vincent's starting point: DSM is score matching against a Parzen estimate of the data.
#
# The noise kernel has a score we know exactly; it points from the noisy sample back to the
# clean one:
#
# $$\nabla_{\tilde x}\log q_\sigma(\tilde x\mid x) = -\frac{\tilde x - x}{\sigma^2} = -\frac{z}{\sigma}.$$
#
# For a Gaussian mixture the convolution only adds $\sigma^2 I$ to every covariance, which the
# library's `perturbed(sigma)` does. Let us check all three statements with numbers on the
# running 1-D example, $p = 0.1\,\mathcal N(-3, 1) + 0.9\,\mathcal N(3, 1)$.

# %%
p = mixture_1d()
sigma = 0.8
xs = torch.linspace(-9, 9, 1801, dtype=torch.float64)

# p_σ by numerical convolution on the grid, against the closed form
kernel = torch.exp(Gaussian(0.0, sigma**2).log_prob((xs[:, None] - xs[None, :])[..., None]))
p_grid = torch.exp(p.log_prob(xs[:, None]))
p_sigma_numeric = torch.trapezoid(p_grid[None, :] * kernel, xs, dim=1)
p_sigma_exact = torch.exp(p.perturbed(sigma).log_prob(xs[:, None]))

# the Parzen estimate from n samples approaches p_σ as n grows
def parzen(samples, sigma, at):
    return torch.exp(Gaussian(0.0, sigma**2).log_prob((at[:, None] - samples[None, :, 0])[..., None])).mean(1)

parzen_tv = {n: total_variation_1d(parzen(p.sample(n, generator=make_generator(n), dtype=torch.float64), sigma, xs), p_sigma_exact, xs)
             for n in (100, 1_000, 10_000)}

# the score of the noise kernel, by autograd, against -(x̃ - x)/σ²
x_clean = p.sample(5, generator=make_generator(1), dtype=torch.float64)
x_noisy, _ = perturb(x_clean, sigma, make_generator(2))
x_in = x_noisy.clone().requires_grad_(True)
log_q = Gaussian(0.0, sigma**2).log_prob((x_in - x_clean)).sum()
(kernel_score_autograd,) = torch.autograd.grad(log_q, x_in)

# %%
# NBVAL_CHECK_OUTPUT
print(f"max |convolution - perturbed(σ)| on the grid: {(p_sigma_numeric - p_sigma_exact).abs().max():.1e}")
print("TV(Parzen estimate, p_σ) for n = 100, 1000, 10000:", [round(v, 2) for v in parzen_tv.values()])
print("kernel score: autograd == -(x̃ - x)/σ²:",
      torch.allclose(kernel_score_autograd, -(x_noisy - x_clean) / sigma**2))

# %%
fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
ax.plot(xs, p_grid, color="0.4", ls="--", label="data density $p$")
for s in (0.3, 1.0, 3.0):
    ax.plot(xs, torch.exp(p.perturbed(s).log_prob(xs[:, None])), label=rf"$p_\sigma$, σ = {s}")
ax.plot(xs, parzen(p.sample(100, generator=make_generator(100), dtype=torch.float64), sigma, xs), color="k", lw=0.8,
        label=f"Parzen estimate, 100 samples, σ = {sigma}")
ax.set(xlabel="$x$", ylabel="density", title="Perturbing the data blurs the density")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. Vincent's identity: DSM is ESM on the noisy density, plus a constant
#
# Denoising score matching fits $s_\theta$ to the kernel's score, averaged over clean and
# noisy samples:
#
# $$J_\mathrm{DSM}(\theta) = \tfrac12\,\mathbb E_{x,\tilde x}\big\|s_\theta(\tilde x) - \nabla_{\tilde x}\log q_\sigma(\tilde x\mid x)\big\|^2
#   = \tfrac12\,\mathbb E_{x, z}\Big\|s_\theta(x + \sigma z) + \frac{z}{\sigma}\Big\|^2 .$$
#
# Explicit score matching on the noisy density would be
# $J_\mathrm{ESM}(\theta; p_\sigma) = \tfrac12\mathbb E_{p_\sigma}\|s_\theta(\tilde x) - \nabla\log p_\sigma(\tilde x)\|^2$.
# Expand both squares. The terms $\tfrac12\mathbb E\|s_\theta(\tilde x)\|^2$ are the same,
# because $\tilde x$ has density $p_\sigma$ in both. The cross terms are equal too:
#
# $$\mathbb E_{x,\tilde x}\big[s_\theta(\tilde x)^\top\nabla_{\tilde x}\log q_\sigma(\tilde x\mid x)\big]
#  = \int s_\theta(\tilde x)^\top \int p(x)\,\nabla_{\tilde x} q_\sigma(\tilde x\mid x)\,dx\,d\tilde x
#  = \int s_\theta(\tilde x)^\top \nabla p_\sigma(\tilde x)\,d\tilde x
#  = \mathbb E_{p_\sigma}\big[s_\theta^\top\nabla\log p_\sigma\big],$$
#
# using $q\,\nabla\log q = \nabla q$, then swapping the gradient and the integral over $x$,
# then $\nabla p_\sigma = p_\sigma\nabla\log p_\sigma$. What is left does not depend on θ:
#
# $$J_\mathrm{DSM}(\theta) = J_\mathrm{ESM}(\theta; p_\sigma) + C,\qquad
#   C = \tfrac12\mathbb E\Big\|\frac{z}{\sigma}\Big\|^2 - \tfrac12\mathbb E_{p_\sigma}\|\nabla\log p_\sigma\|^2
#     = \frac{d}{2\sigma^2} - \tfrac12\mathbb E_{p_\sigma}\|\nabla\log p_\sigma(\tilde x)\|^2 .$$
#
# So minimising DSM minimises ESM against $p_\sigma$ — **not** against $p$. Check: on the 2-D
# mixture, for four quite different models, DSM − ESM must be the same number $C$. We use the
# same noisy samples for both losses (same seed), and report Monte-Carlo standard errors.

# %%
p2 = mixture_2d()
sigma = 0.5
noisy2 = p2.perturbed(sigma)
n = 1_000_000
x = p2.sample(n, generator=make_generator(3), dtype=torch.float64)
x_tilde, z = perturb(x, sigma, make_generator(4))  # the noise that dsm_loss draws with the same seed

seed_everything(0)
linear_a, linear_b = LinearScore(2).double(), LinearScore(2).double()
with torch.no_grad():
    linear_b.A.copy_(torch.tensor([[-2.0, 0.5], [0.3, -0.7]]))
    linear_b.b.copy_(torch.tensor([1.0, -0.5]))
models = {
    "LinearScore, A = -I": linear_a,
    "LinearScore, other A, b": linear_b,
    "ScoreMLP, random weights": ScoreMLP(2).double(),
    "true score of p_σ": noisy2.score,
}


def mean_and_se(values):
    return values.mean().item(), values.std().item() / math.sqrt(len(values))


# C per noisy sample: d/(2σ²) - ½‖∇log p_σ(x̃)‖²
c_samples = 2 / (2 * sigma**2) - 0.5 * (noisy2.score(x_tilde) ** 2).sum(1)
rows = []
with torch.no_grad():
    for name, model in models.items():
        dsm = losses.dsm_loss(model, x, sigma, generator=make_generator(4), reduction="none")
        esm = esm_loss(model, x_tilde, noisy2.score, reduction="none")
        rows.append((name, *mean_and_se(dsm), *mean_and_se(esm), *mean_and_se(dsm - esm - c_samples)))

# %%
# NBVAL_CHECK_OUTPUT
print("C = d/(2σ²) - ½E‖∇log p_σ‖² = {:.3f} ± {:.3f}   (d = 2, σ = {})".format(*mean_and_se(c_samples), sigma))
print(f"{'model':26s} {'DSM':>13s} {'ESM(p_σ)':>13s} {'DSM - ESM - C':>16s}")
for name, dsm_m, dsm_se, esm_m, esm_se, diff_m, diff_se in rows:
    print(f"{name:26s} {dsm_m:6.2f} ± {dsm_se:.2f} {esm_m:6.2f} ± {esm_se:.2f} {diff_m:+8.3f} ± {diff_se:.3f}")

# %% [markdown]
# The losses themselves differ a lot between models, yet DSM − ESM − C is zero for all four
# within the Monte-Carlo error. (All rows use the same samples, so their errors are
# correlated: most of the noise comes from the term $\|z\|^2/(2\sigma^2)$, common to every model.) For the true score ESM is exactly zero,
# so its DSM *is* $C$: the smallest value DSM can reach is not zero, which is why a DSM
# training curve never goes to zero.
#
# ### Exercise: the DSM loss
#
# Write the DSM loss for given noise `z` (same shape as `x`): perturb, evaluate the score at
# the noisy points, compare with $-z/\sigma$, sum over dimensions, average over the batch.

# %%
def dsm_loss(score_fn, x, sigma, z):
    """½ · mean over the batch of ‖score_fn(x + σz) + z/σ‖², summed over dimensions."""
    # Hint: at the noisy point x + σz the target is −z/σ; sum over every dimension but the batch one, then average.
    ### BEGIN SOLUTION
    residual = score_fn(x + sigma * z) + z / sigma
    return 0.5 * residual.pow(2).flatten(1).sum(1).mean()
    ### END SOLUTION


# %%
check_dsm_loss(dsm_loss)

# %% [markdown]
# From here on the notebook uses the library's `losses.dsm_loss`, which draws `z` itself
# from a `generator`.
#
# ## 3. Tweedie's formula and denoising autoencoders
#
# Differentiate the convolution under the integral. Since
# $\nabla_{\tilde x}\mathcal N(\tilde x; x, \sigma^2 I) = \mathcal N(\tilde x; x,\sigma^2 I)\,(x - \tilde x)/\sigma^2$,
#
# $$\nabla p_\sigma(\tilde x) = \int p(x)\,\mathcal N(\tilde x; x, \sigma^2 I)\,\frac{x - \tilde x}{\sigma^2}\,dx
#   = p_\sigma(\tilde x)\,\frac{\mathbb E[x\mid\tilde x] - \tilde x}{\sigma^2},$$
#
# because $p(x)\mathcal N(\tilde x; x,\sigma^2 I)/p_\sigma(\tilde x)$ is the posterior of $x$
# given $\tilde x$. Divide by $p_\sigma$ and rearrange: **Tweedie's formula**
#
# $$\mathbb E[x\mid\tilde x] = \tilde x + \sigma^2\,\nabla\log p_\sigma(\tilde x).$$
#
# The best denoiser in the mean-square sense is one step along the noisy score.
#
# **The denoising-autoencoder link.** Train a denoiser $D_\theta$ with
# $\tfrac12\mathbb E\|D_\theta(\tilde x) - x\|^2$; its optimum is $\mathbb E[x\mid\tilde x]$.
# Write it as $D_\theta(\tilde x) = \tilde x + \sigma^2 s_\theta(\tilde x)$. Since
# $\tilde x - x = \sigma z$,
#
# $$\tfrac12\|D_\theta(\tilde x) - x\|^2 = \tfrac12\|\sigma z + \sigma^2 s_\theta(\tilde x)\|^2
#   = \sigma^4\cdot\tfrac12\Big\|s_\theta(\tilde x) + \frac z\sigma\Big\|^2 :$$
#
# the denoising loss is $\sigma^4$ times the DSM loss, so a denoising autoencoder *is* a
# score model in disguise. Three checks: the mixture's posterior mean computed from the
# posterior directly (`posterior_mean`) against the right side of Tweedie's formula; the same
# conditional mean estimated by brute force (average the clean $x$ of samples whose noisy
# $\tilde x$ falls in a narrow bin); and the factor $\sigma^4$.

# %%
grid = torch.linspace(-7, 7, 281, dtype=torch.float64)[:, None]
tweedie_error = {s: (p.posterior_mean(grid, s) - (grid + s**2 * p.perturbed(s).score(grid))).abs().max().item()
                 for s in (0.1, 0.3, 1.0, 3.0)}

# brute force: bin the noisy samples, average the clean ones in each bin
sigma = 1.0
x_mc = p.sample(400_000, generator=make_generator(5), dtype=torch.float64)
x_mc_noisy, z_mc = perturb(x_mc, sigma, make_generator(6))
edges = torch.linspace(-5, 7, 49, dtype=torch.float64)
which = torch.bucketize(x_mc_noisy[:, 0], edges) - 1
keep = (which >= 0) & (which < len(edges) - 1)
counts = torch.bincount(which[keep], minlength=len(edges) - 1).double()
sums = torch.bincount(which[keep], weights=x_mc[keep, 0], minlength=len(edges) - 1)
sq_sums = torch.bincount(which[keep], weights=x_mc[keep, 0] ** 2, minlength=len(edges) - 1)
bin_mean = sums / counts
bin_se = ((sq_sums / counts - bin_mean**2) / counts).sqrt()
centers = 0.5 * (edges[1:] + edges[:-1])
# compare with the exact conditional mean averaged over each bin (fine sub-grid, weighted by p_σ)
fine = torch.linspace(-5, 7, 48 * 40 + 1, dtype=torch.float64)[:-1] + 12 / (48 * 40) / 2
w = torch.exp(p.perturbed(sigma).log_prob(fine[:, None])).reshape(48, 40)
exact_bin_mean = (w * p.posterior_mean(fine[:, None], sigma)[:, 0].reshape(48, 40)).sum(1) / w.sum(1)
z_scores = ((bin_mean - exact_bin_mean) / bin_se)[counts > 100]

# the denoising-autoencoder loss is σ⁴ times the DSM loss (same noise)
seed_everything(0)
mlp = ScoreMLP(1).double()
with torch.no_grad():
    dae = 0.5 * ((x_mc_noisy + sigma**2 * mlp(x_mc_noisy) - x_mc) ** 2).sum(1).mean()
    dsm_same_noise = losses.dsm_loss(mlp, x_mc, sigma, generator=make_generator(6))

# %%
# NBVAL_CHECK_OUTPUT
for s, err in tweedie_error.items():
    print(f"σ = {s}: max |posterior_mean - (x̃ + σ²∇log p_σ)| < 1e-12: {err < 1e-12}")
print(f"brute-force bin means vs exact, σ = 1: largest |z-score| over {len(z_scores)} bins = {z_scores.abs().max():.1f}")
print(f"DAE loss / (σ⁴ · DSM loss) = {(dae / (sigma**4 * dsm_same_noise)).item():.6f}")

# %%
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
ax.plot(grid[:, 0], grid[:, 0], color="0.7", ls=":", label=r"no denoising, $\tilde x$")
for s in (0.3, 1.0, 3.0):
    ax.plot(grid[:, 0], (grid + s**2 * p.perturbed(s).score(grid))[:, 0], label=rf"$\tilde x + \sigma^2\nabla\log p_\sigma$, σ = {s}")
ax.errorbar(centers, bin_mean, yerr=2 * bin_se, fmt="o", ms=3, color="k", label="bin averages of clean $x$, σ = 1 (±2 s.e.)")
ax.set(xlabel=r"noisy observation $\tilde x$", ylabel=r"$\mathbb{E}[x \mid \tilde x]$",
       title="Tweedie: the best denoiser pulls towards the modes")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# With little noise the denoiser barely moves $\tilde x$; with σ = 3 it pulls almost every
# observation towards the big mode at $+3$, because a noisy point near $-3$ is then more likely
# to have come from the heavy right component than from the light left one.
#
# ## 4. Fitting the 1-D mixture by DSM, then recovering its density
#
# Now a small network $s_\theta$ (`ScoreMLP`) trained by DSM at σ = 0.3 on fresh samples of
# $0.1\,\mathcal N(-3,1) + 0.9\,\mathcal N(3,1)$, with the course's one training loop.
# By Vincent's identity its target is $\nabla\log p_{0.3}$, so that is what we compare it
# with.

# %%
sigma = 0.3
seed_everything(0)
dsm_model = ScoreMLP(1, hidden=64)
fit = train(dsm_model, lambda model, batch, g: losses.dsm_loss(model, batch, sigma, generator=g), p.sample,
            n_steps=3000, batch_size=256, lr=3e-3, progress=False)
noisy = p.perturbed(sigma)
xs = torch.linspace(-8, 8, 801)
with torch.no_grad():
    learned = dsm_model(xs[:, None])[:, 0]
true_noisy_score = noisy.score(xs[:, None])[:, 0]
print(f"trained {len(fit.losses)} steps in {fit.seconds:.0f} s")

# %% [markdown]
# **From a score back to a density.** In one dimension the score is the derivative of
# $\log p$, so integrating it recovers $\log p$ up to a constant, and the constant is fixed
# by normalising:
#
# $$\hat p(x) = \frac{\exp\int_{x_0}^{x}s_\theta(u)\,du}{\int\exp\int_{x_0}^{x'}s_\theta(u)\,du\;dx'} .$$
#
# `density_from_score_1d` does this with the trapezoid rule. First a sanity check on the exact
# score (the result must be $p_\sigma$ itself), then the learned score; the total-variation
# distance $\tfrac12\int|\hat p - p_\sigma|$ measures the difference (0 = identical, 1 =
# disjoint).

# %%
p_sigma_grid = torch.exp(noisy.log_prob(xs[:, None])).double()
p_grid = torch.exp(p.log_prob(xs[:, None])).double()
from_true_score = density_from_score_1d(noisy.score, xs)
from_learned = density_from_score_1d(dsm_model, xs)
left = xs < 0
left_mass = torch.trapezoid(from_learned[left], xs[left].double()).item()

# %%
# NBVAL_CHECK_OUTPUT
print(f"TV(density from the exact score, p_σ) = {total_variation_1d(from_true_score, p_sigma_grid, xs):.4f}")
print(f"TV(density from the learned score, p_σ) = {total_variation_1d(from_learned, p_sigma_grid, xs):.2f}")
print(f"TV(density from the learned score, p)   = {total_variation_1d(from_learned, p_grid, xs):.2f}")
print(f"mass of the recovered density left of 0: {left_mass:.2f} (true weight 0.1)")

# %%
fig, (ax_s, ax_d) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax_s.plot(xs, true_noisy_score, label=r"true score of $p_\sigma$, σ = 0.3")
ax_s.plot(xs, p.score(xs[:, None])[:, 0], color="0.6", ls=":", label=r"score of $p$ (not the target)")
ax_s.plot(xs, learned, color="C3", ls="--", label=r"learned $s_\theta$ (DSM)")
ax_s.set(xlabel="$x$", ylabel="score", ylim=(-7, 7), title="Learned score vs the score of $p_\\sigma$")
ax_s.legend(fontsize=8)
ax_d.plot(xs, p_grid, color="0.5", ls=":", label="true density $p$")
ax_d.plot(xs, p_sigma_grid, label=r"true $p_\sigma$")
ax_d.plot(xs, from_learned, color="C3", ls="--", label="recovered from the learned score")
ax_d.set(xlabel="$x$", ylabel="density", title="Density recovered by integrating the score")
ax_d.legend(fontsize=8)
plt.show()

# %% [markdown]
# Where the data are, the learned score matches $\nabla\log p_\sigma$ closely; in the far
# tails, where no noisy sample ever landed, it is whatever the network extrapolates. That
# hardly matters for the recovered density, which is tiny there — but it matters for Langevin
# sampling started far from the data (lesson 05).
#
# ## 5. The σ explorer: accuracy near the data vs coverage of the space
#
# One network can learn the scores of *all* noise levels at once if it is told σ: a
# σ-conditioned `ScoreMLP` returns $s_\theta(x,\sigma)$, trained with the noise-conditional
# loss of Song & Ermon (2019) over a geometric schedule $\sigma_1 > \dots > \sigma_L$ (largest
# first), each level weighted by $\sigma^2$:
# $\tfrac12\,\mathbb E_\sigma\mathbb E\|\sigma s_\theta(x+\sigma z, \sigma) + z\|^2$ (lesson 06
# builds on it). Training once makes every slider move a single forward pass.
#
# Move σ and watch three things: $p_\sigma$ (top), the true and learned scores (bottom), and
# the grey band where $p_\sigma$ is below $10^{-3}$ of its peak, where almost no training
# sample lands. Small σ: $p_\sigma\approx p$ (little *bias*), but the tails are grey and the
# gap between the modes holds about 1% of the peak density, so the learned score is unreliable
# there. Large σ: the grey vanishes and
# the learned score is right everywhere, but $p_\sigma$ is a blurred version of $p$.

# %%
sigmas = geometric_sigmas(5.0, 0.02, 30)
seed_everything(0)
ncsn_model = ScoreMLP(1, hidden=64, sigma_conditioned=True)
ncsn_fit = train(ncsn_model, lambda model, batch, g: ncsn_loss(model, batch, sigmas, generator=g), p.sample,
                 n_steps=4000, batch_size=256, lr=3e-3, progress=False)
print(f"σ-conditioned network: {len(ncsn_fit.losses)} steps over {len(sigmas)} levels "
      f"from σ = {sigmas[0]:.2f} to {sigmas[-1]:.2f}, {ncsn_fit.seconds:.0f} s")

# %%
# NBVAL_IGNORE_OUTPUT
explorer = SigmaExplorer(p, ncsn_model, sigma=0.3, sigma_range=(0.02, 5.0))
explorer

# %%
# NBVAL_IGNORE_OUTPUT
for s in (0.05, 0.5, 3.0):
    explorer.slider.value = s
    print(f"σ = {s}: one slider update took {1000 * explorer.last_update_seconds:.0f} ms")
explorer.slider.value = 0.3

# %% [markdown]
# The same trade-off as numbers (and a static picture for readers without a live kernel): the
# blur TV$(p, p_\sigma)$, the learned score's error weighted by $p_\sigma$ (where the data
# are), and its error in the low-density region, all measured on the grid.

# %%
def tradeoff(s):
    s_noisy = p.perturbed(s)
    dens = torch.exp(s_noisy.log_prob(xs[:, None]))
    with torch.no_grad():
        err = (ncsn_model(xs[:, None], s) - s_noisy.score(xs[:, None]))[:, 0] ** 2
    sparse = dens < 1e-3 * dens.max()
    return (total_variation_1d(dens, p_grid.float(), xs), 0.5 * torch.trapezoid(dens * err, xs).item(),
            err[sparse].sqrt().mean().item() if sparse.any() else 0.0)


# %%
# NBVAL_CHECK_OUTPUT
print(f"{'σ':>5s} {'blur TV(p, p_σ)':>16s} {'error near data':>16s} {'mean |error| in sparse region':>30s}")
for s in (0.05, 0.3, 1.0, 3.0):
    print(f"{s:5.2f} {{:16.2f}} {{:16.2f}} {{:30.1f}}".format(*tradeoff(s)))

# %%
fig, axes = plt.subplots(2, 3, figsize=(12, 5.5), sharex=True, layout="constrained")
for col, s in enumerate((0.05, 0.3, 2.0)):
    s_noisy = p.perturbed(s)
    with torch.no_grad():
        s_learned = ncsn_model(xs[:, None], s)[:, 0]
    axes[0, col].plot(xs, p_grid, color="0.5", ls=":", label="$p$")
    axes[0, col].plot(xs, torch.exp(s_noisy.log_prob(xs[:, None])), label=r"$p_\sigma$")
    axes[0, col].set(title=f"σ = {s}", ylabel="density" if col == 0 else None)
    axes[1, col].plot(xs, s_noisy.score(xs[:, None])[:, 0], label=r"$\nabla\log p_\sigma$")
    axes[1, col].plot(xs, s_learned, color="C3", ls="--", label=r"$s_\theta(x,\sigma)$")
    axes[1, col].set(xlabel="$x$", ylabel="score" if col == 0 else None, ylim=(-8, 8))
axes[0, 0].legend()
axes[1, 0].legend()
fig.suptitle("What the σ slider shows: small σ is sharp but unreliable off the data; large σ covers space but blurs")
plt.show()

# %% [markdown]
# ## 6. Why small σ is hard: the variance of DSM
#
# The target $-z/\sigma$ has size $\sqrt d/\sigma$. Near the optimum the residual
# $s_\theta(\tilde x) + z/\sigma$ is dominated by that noise, so the per-sample loss is about
# $\|z\|^2/(2\sigma^2)$ and its gradient
# $\big(s_\theta(\tilde x) + z/\sigma\big)^\top\partial_\theta s_\theta(\tilde x)$ has a variance
# growing like $1/\sigma^2$: at small σ the mini-batch gradient is mostly noise, and the
# useful signal (the score of $p_\sigma$, of order one) drowns in it.
#
# The noise-conditional network of section 5 avoids this by construction: it outputs
# $s_\theta(x,\sigma) = f_\theta(x, \log\sigma)/\sigma$ and weights level σ by $\sigma^2$, so
# its per-level loss is $\tfrac12\|f_\theta(\tilde x, \log\sigma) + z\|^2$, of order one at
# every σ.
#
# We measure both: the total variance (summed over parameters) of the mini-batch gradient, over
# 100 independent batches of 128, at each σ — for the plain network trained above at σ = 0.3,
# and for the σ-conditioned network with its σ² weight.

# %%
def gradient_variance(model, score_fn, s, weight, n_batches=100, batch_size=128):
    """Variance over independent batches of the gradient of weight · DSM(σ = s), summed over parameters."""
    g = make_generator(7)
    grads = []
    for _ in range(n_batches):
        batch = p.sample(batch_size, generator=g)
        model.zero_grad()
        (weight * losses.dsm_loss(score_fn, batch, s, generator=g)).backward()
        grads.append(torch.cat([q.grad.flatten() for q in model.parameters()]))
    return torch.stack(grads).var(0).sum().item()


variance_sigmas = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
plain = [gradient_variance(dsm_model, dsm_model, s, 1.0) for s in variance_sigmas]
conditioned = [gradient_variance(ncsn_model, lambda y, s=s: ncsn_model(y, s), s, s**2) for s in variance_sigmas]
small = slice(0, 4)  # σ ≤ 0.1
slope = np.polyfit(np.log(variance_sigmas[small]), np.log(plain[small]), 1)[0]

# %%
# NBVAL_CHECK_OUTPUT
print(f"plain DSM: log-log slope of the gradient variance for σ ≤ 0.1 = {slope:.1f} (the argument above predicts -2)")
print(f"variance at σ = 0.01 divided by variance at σ = 1: plain DSM {plain[0] / plain[6]:.0f}, "
      f"σ-conditioned and σ²-weighted {conditioned[0] / conditioned[6]:.1f}")

# %%
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.loglog(variance_sigmas, plain, "o-", label=r"plain DSM, $s_\theta(\tilde x)$")
ax.loglog(variance_sigmas, conditioned, "s-", label=r"$\sigma^2$-weighted, $s_\theta = f_\theta(\tilde x, \log\sigma)/\sigma$")
ax.loglog(variance_sigmas, plain[3] * (np.array(variance_sigmas) / variance_sigmas[3]) ** -2.0, "k:", label=r"slope $-2$")
ax.set(xlabel="noise level σ", ylabel="total variance of the mini-batch gradient",
       title="Plain DSM gradients become noise as σ → 0")
ax.legend()
plt.show()

# %% [markdown]
# ## Think
#
# 1. DSM's minimum value is the constant $C$, not zero. Why does that make the training loss a
#    poor progress indicator, and what could you monitor instead when the true score is
#    unknown?
# 2. Vincent's identity holds for any σ. Which two things go wrong as σ → 0, and which one as
#    σ grows? Use the explorer's numbers.
# 3. Tweedie's formula gives the posterior *mean*. For σ = 3 and $\tilde x = -3$ it returns a
#    point between the modes, where the data density is tiny. Is that a bad denoiser?
# 4. The density recovered from the learned score put a slightly wrong mass on the left mode.
#    Where along the $x$-axis must the score be wrong for that to happen?
# 5. The σ-conditioned network takes $\log\sigma$ as input and divides its output by σ. What
#    would go wrong with the raw output, at σ = 0.02 and at σ = 5?
#
# ## Summary
#
# - Adding noise $\tilde x = x + \sigma z$ turns $p$ into $p_\sigma = p*\mathcal N(0,\sigma^2 I)$
#   (a Parzen estimate on finite data); the kernel's score $-z/\sigma$ is known.
# - **Vincent:** $J_\mathrm{DSM} = J_\mathrm{ESM}(\cdot; p_\sigma) + d/(2\sigma^2) - \tfrac12\mathbb E\|\nabla\log p_\sigma\|^2$:
#   DSM learns the score of the *noisy* density, without any derivative of the model.
# - **Tweedie:** $\mathbb E[x\mid\tilde x] = \tilde x + \sigma^2\nabla\log p_\sigma(\tilde x)$;
#   a denoising autoencoder's loss is $\sigma^4$ times DSM.
# - In 1-D a score determines its density: integrate and normalise.
# - σ trades bias (blur) for coverage; as σ → 0 the DSM gradient variance grows like
#   $1/\sigma^2$ unless the network divides by σ and the loss weights by σ² — the reasons
#   for many noise levels, σ-conditioned networks and annealed sampling (lessons 05 and 06).
