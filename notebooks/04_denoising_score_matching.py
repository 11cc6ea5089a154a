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
# # Lesson 4 — Denoising score matching
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
from lessons_lib.course.checks import check_dsm_loss
from lessons_lib.densities import Gaussian, density_from_score_1d, total_variation_1d
from lessons_lib.explorers import SigmaExplorer
from lessons_lib.losses import esm_loss, ncsn_loss
from lessons_lib.nets import LinearScore, ScoreMLP
from lessons_lib.noise import geometric_sigmas, perturb
from lessons_lib.stats import mean_and_se
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.training import train
from lessons_lib.utils import make_generator

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
log_q = Gaussian(0.0, sigma**2).log_prob(x_in - x_clean).sum()
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
# Now a small network $s_\theta$ (`ScoreMLP`) trained by DSM on fresh samples of
# $0.1\,\mathcal N(-3,1) + 0.9\,\mathcal N(3,1)$, with the course's one training loop, once at
# σ = 0.3 and once at σ = 1. By Vincent's identity the target is $\nabla\log p_\sigma$, so that
# is what we compare with. At σ = 0.3, $p_\sigma$ and $p$ are hard to tell apart (their
# total-variation distance is printed below); at σ = 1 they are not, and there we can *see*
# which of the two DSM learns.
#
# **The training curve and its floor.** By Vincent's identity the smallest possible DSM loss
# is $C$, the loss of the true score of $p_\sigma$; we estimate it by Monte Carlo and draw it
# under the training curve.

# %%
xs = torch.linspace(-8, 8, 801)
dsm_models, fits = {}, {}
for s in (0.3, 1.0):
    seed_everything(0)
    dsm_models[s] = ScoreMLP(1, hidden=64)
    fits[s] = train(dsm_models[s], lambda model, batch, g, s=s: losses.dsm_loss(model, batch, s, generator=g), p.sample,
                    n_steps=3000, batch_size=256, lr=3e-3, progress=False)
sigma = 0.3
dsm_model, fit, noisy = dsm_models[sigma], fits[sigma], p.perturbed(sigma)
with torch.no_grad():
    learned = dsm_model(xs[:, None])[:, 0]
true_noisy_score = noisy.score(xs[:, None])[:, 0]

# the floor C: the population DSM loss of the true score of p_σ (2 million samples)
with torch.no_grad():
    floor_samples = losses.dsm_loss(noisy.score, p.sample(2_000_000, generator=make_generator(20)), sigma,
                                    generator=make_generator(21), reduction="none")
floor, floor_se = mean_and_se(floor_samples)

# %%
# NBVAL_CHECK_OUTPUT
print(f"σ = 0.3: floor C = {floor:.3f} ± {floor_se:.3f} (Monte-Carlo s.e.); per-sample standard deviation "
      f"{floor_samples.std():.1f}, so one batch of 256 has a standard error of {floor_samples.std() / 16:.2f}")
print(f"mean training loss over the last 500 steps: {np.mean(fit.losses[-500:]):.2f}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
steps = np.arange(1, len(fit.losses) + 1)
ax.plot(steps, fit.losses, color="C0", alpha=0.3, lw=0.6, label="loss of each batch (256 samples)")
ax.plot(steps[99:], np.convolve(fit.losses, np.ones(100) / 100, mode="valid"), color="C0", label="mean of the last 100 batches")
ax.axhline(floor, color="k", ls="--", label=f"floor C = {floor:.2f} (true score of $p_\\sigma$)")
ax.set(xlabel="training step", ylabel="DSM loss", ylim=(floor - 2, floor + 6), title="DSM at σ = 0.3: the loss levels off at C, not 0")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The batch losses scatter around the floor by about the standard error printed above, and their
# running mean settles at $C$ (within that scatter): the network is close to the best it can be,
# yet the loss is far from zero.
#
# **Why a loss can go *below* the floor.** A common way to write this example trains on 1,024
# fixed samples, draws the noise *once* and reuses it in every epoch (a 1→8→1 ReLU MLP, Adam at
# 0.01, 500 full-batch epochs), and reports a final loss below $C$.
# That is not a contradiction: with a single noise draw the "loss" is one fixed average of
# 1,024 random terms, not the expectation that Vincent's identity bounds. Measure it: the loss
# of the true score on the fixed draw, the trained network's loss on that draw, and its
# population loss (fresh data and noise); then the same network trained with fresh noise at
# every epoch.

# %%
data_1024 = p.sample(1024, generator=make_generator(22))
z_once = torch.randn(data_1024.shape, generator=make_generator(23))
with torch.no_grad():
    true_on_draw = losses.dsm_loss(noisy.score, data_1024, sigma, z=z_once).item()
one_draw = {}
for fresh_noise in (False, True):
    torch.manual_seed(0)
    relu_mlp = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(relu_mlp.parameters(), lr=0.01)
    g = make_generator(24)
    for epoch in range(500):
        loss = losses.dsm_loss(relu_mlp, data_1024, sigma, z=torch.randn(data_1024.shape, generator=g) if fresh_noise else z_once)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        on_draw = losses.dsm_loss(relu_mlp, data_1024, sigma, z=z_once).item()
        population = losses.dsm_loss(relu_mlp, p.sample(2_000_000, generator=make_generator(20)), sigma,
                                     generator=make_generator(21), reduction="none")
    one_draw[fresh_noise] = (on_draw, *mean_and_se(population))


# On these 1,024 points (fresh noise, the points fixed) the exact DSM optimum is the score of
# their Parzen density (1/n)Σᵢ N(x̃; xᵢ, σ²): a softmax-weighted pull towards the points.
def parzen_score(y, points=data_1024[:, 0], s=sigma):
    w = torch.softmax(-((y - points) ** 2) / (2 * s**2), dim=1)  # y (B, 1) against points (n,)
    return (w * (points - y)).sum(1, keepdim=True) / s**2


z_many = torch.randn((32, *data_1024.shape), generator=make_generator(25))
on_points = {name: torch.stack([losses.dsm_loss(fn, data_1024, sigma, z=zk) for zk in z_many]).mean().item()
             for name, fn in (("Parzen", parzen_score), ("p_σ", noisy.score))}

# %%
# NBVAL_CHECK_OUTPUT
print(f"1,024 fixed samples, σ = 0.3; population floor C = {floor:.3f} ± {floor_se:.3f}")
print(f"loss of the TRUE score of p_σ on the one fixed noise draw: {true_on_draw:.3f}")
print(f"{'1→8→1 ReLU MLP, 500 epochs':30s} {'loss on the fixed draw':>22s} {'population loss':>17s}")
for fresh_noise, (on_draw, pop, pop_se) in one_draw.items():
    name = "fresh noise every epoch" if fresh_noise else "one noise draw, reused"
    print(f"{name:30s} {on_draw:22.3f} {pop:11.3f} ± {pop_se:.3f}")
print(f"DSM on the 1,024 points, averaged over 32 fresh noise draws: score of their Parzen density "
      f"{on_points['Parzen']:.3f}, true score of p_σ {on_points['p_σ']:.3f}")

# %% [markdown]
# Most of the gap is the luck of the draw: one draw of 1,024 terms has a standard error of
# 7.2/√1024 ≈ 0.23 (the per-sample standard deviation printed above), so a final loss a
# standard error or so below $C$ is no surprise — and even the *true* score scores below $C$ on our
# draw. On top of that, the network is fitted to that one draw: here it ends level with the
# true score on the draw (a 25-parameter network cannot memorise much), yet its population
# loss, the number that matters, is clearly above $C$. With fresh noise at every epoch it never
# sees the same noise twice and ends closer to the floor.
#
# **The finite-data optimum.** With the 1,024 points fixed and fresh noise, what *is* the
# optimum? DSM on a finite set is score matching against its Parzen density
# $\hat p_\sigma = \frac1n\sum_i\mathcal N(\tilde x; x_i, \sigma^2)$ (section 1), so the best
# possible score is $\nabla\log\hat p_\sigma$, not $\nabla\log p_\sigma$: the last line above
# shows the Parzen score beating the true score on those points. A network flexible enough and
# trained long enough on a small set would learn the Parzen score — and Langevin with it would
# sample $\hat p_\sigma$, a mixture of small Gaussians centred on the training points. Lesson 06 checks that its samples are not
# copies of training digits.
#
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
left = xs < 0
recovered = {}
for s, model in dsm_models.items():
    dens = density_from_score_1d(model, xs)
    p_s = torch.exp(p.perturbed(s).log_prob(xs[:, None])).double()
    recovered[s] = (dens, p_s, torch.trapezoid(dens[left], xs[left].double()).item())
from_learned, _, left_mass = recovered[sigma]

# %%
# NBVAL_CHECK_OUTPUT
print(f"TV(density from the exact score of p_0.3, p_0.3) = {total_variation_1d(from_true_score, p_sigma_grid, xs):.4f}")
print(f"{'σ':>4s} {'TV(p, p_σ)':>11s} {'TV(learned, p_σ)':>17s} {'TV(learned, p)':>15s} {'mass left of 0':>15s}")
for s, (dens, p_s, mass) in recovered.items():
    print(f"{s:4.1f} {total_variation_1d(p_s, p_grid, xs):11.2f} {total_variation_1d(dens, p_s, xs):17.2f} "
          f"{total_variation_1d(dens, p_grid, xs):15.2f} {mass:15.3f}")
print("mass of p_σ left of 0 at σ = 0.3 and 1:", [round(torch.trapezoid(recovered[s][1][left], xs[left].double()).item(), 3) for s in recovered])

# %%
fig, (ax_s, ax_d, ax_1) = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
ax_s.plot(xs, true_noisy_score, label=r"true score of $p_\sigma$, σ = 0.3")
ax_s.plot(xs, p.score(xs[:, None])[:, 0], color="0.6", ls=":", label=r"score of $p$ (not the target)")
ax_s.plot(xs, learned, color="C3", ls="--", label=r"learned $s_\theta$ (DSM)")
ax_s.set(xlabel="$x$", ylabel="score", ylim=(-7, 7), title="Learned score vs the score of $p_\\sigma$")
ax_s.legend(fontsize=8)
ax_d.plot(xs, p_grid, color="0.5", ls=":", label="true density $p$")
ax_d.plot(xs, p_sigma_grid, label=r"true $p_\sigma$")
ax_d.plot(xs, from_learned, color="C3", ls="--", label="recovered from the learned score")
ax_d.set(xlabel="$x$", ylabel="density", title="σ = 0.3: density recovered from the score")
ax_d.legend(fontsize=8)
dens_1, p_1, _ = recovered[1.0]
ax_1.plot(xs, p_grid, color="0.5", ls=":", label="true density $p$")
ax_1.plot(xs, p_1, label=r"true $p_\sigma$, σ = 1")
ax_1.plot(xs, dens_1, color="C3", ls="--", label="recovered from DSM at σ = 1")
ax_1.set(xlabel="$x$", title="σ = 1: DSM learns $p_\\sigma$, not $p$")
ax_1.legend(fontsize=8)
plt.show()

# %% [markdown]
# At σ = 0.3 the blur is too small to see ($\mathrm{TV}(p, p_\sigma) = 0.02$): the recovered
# density is about as close to $p$ as to $p_\sigma$. At σ = 1 it is not
# ($\mathrm{TV}(p, p_\sigma) = 0.17$), and the density recovered from the network trained at
# σ = 1 follows $p_\sigma$ (TV 0.03) and not $p$ (TV 0.16), the broader and lower modes of the
# right-hand panel: DSM learns the score of the noisy density, as Vincent's identity says.
#
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
# first), each level weighted by $\sigma^2$ so that no level dominates the sum (§6):
# $\tfrac12\,\mathbb E_\sigma\mathbb E\|\sigma s_\theta(x+\sigma z, \sigma) + z\|^2$ (lesson 06
# builds on it). The network sees $\log\sigma$ and divides its output by σ,
# $s_\theta = f_\theta(x, \log\sigma)/\sigma$, a parametrisation of Song & Ermon's second paper
# (2020, "Improved techniques", NCSNv2). Training once makes every slider move a single forward
# pass.
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
      f"from σ = {sigmas[0]:.2f} to {sigmas[-1]:.2f}")

# %%
# NBVAL_IGNORE_OUTPUT
explorer = SigmaExplorer(p, ncsn_model, sigma=0.3, sigma_range=(0.02, 5.0))
explorer

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
    dens = torch.exp(s_noisy.log_prob(xs[:, None]))
    for row, top in ((0, 0.45), (1, 8)):
        axes[row, col].fill_between(xs, -top if row else 0, top, where=dens < 1e-3 * dens.max(), color="0.88",
                                    label=r"$p_\sigma < 10^{-3}\max p_\sigma$")
    axes[0, col].plot(xs, p_grid, color="0.5", ls=":", label="$p$")
    axes[0, col].plot(xs, dens, label=r"$p_\sigma$")
    axes[0, col].set(title=f"σ = {s}", ylabel="density" if col == 0 else None, ylim=(0, 0.45))
    axes[1, col].plot(xs, s_noisy.score(xs[:, None])[:, 0], label=r"$\nabla\log p_\sigma$")
    axes[1, col].plot(xs, s_learned, color="C3", ls="--", label=r"$s_\theta(x,\sigma)$")
    axes[1, col].set(xlabel="$x$", ylabel="score" if col == 0 else None, ylim=(-8, 8))
axes[0, 0].legend()
axes[1, 0].legend()
fig.suptitle("What the σ slider shows: small σ is sharp but unreliable off the data; large σ covers space but blurs")
plt.show()

# %% [markdown]
# ## 6. Why small σ is hard: the gradient noise of DSM
#
# The target $-z/\sigma$ has size $\sqrt d/\sigma$. Near the optimum the residual
# $s_\theta(\tilde x) + z/\sigma$ is dominated by that noise, so the per-sample loss is about
# $\|z\|^2/(2\sigma^2)$ and its gradient
# $\big(s_\theta(\tilde x) + z/\sigma\big)^\top\partial_\theta s_\theta(\tilde x)$ has a variance
# growing like $1/\sigma^2$, while its mean, the gradient of $J_\mathrm{ESM}(\theta; p_\sigma)$,
# does not grow that way: at small σ the mini-batch gradient is mostly noise.
#
# What matters for training is therefore the **noise-to-signal ratio** of the mini-batch
# gradient: the standard deviation of the gradient over batches (square root of the total
# variance, summed over parameters) divided by the length of its mean. A constant factor in
# front of the loss — such as the weight σ² — multiplies the mean and the noise alike, so it
# cannot change this ratio (and Adam, which divides each step by a running RMS of the
# gradient, ignores constant factors altogether). We measure, over 100 independent batches of
# 128 at each σ (the mean gradient from two independent batches of 65,536, whose dot product
# estimates its squared length without the noise's bias):
#
# * the plain network of section 4 (trained at σ = 0.3), DSM at each σ;
# * the σ-conditioned network of section 5, $s_\theta = f_\theta(\tilde x, \log\sigma)/\sigma$,
#   with and without the weight σ².

# %%
def gradient_stats(model, score_fn, s, weight, n_batches=100, batch_size=128, big=65_536):
    """Total variance over batches of the gradient of weight · DSM(σ = s), and its noise-to-signal
    ratio √(total variance) / ‖mean gradient‖ (None when the mean is not resolved)."""
    g = make_generator(7)

    def grad(batch):
        model.zero_grad()
        (weight * losses.dsm_loss(score_fn, batch, s, generator=g)).backward()
        return torch.cat([q.grad.flatten() for q in model.parameters()])

    variance = torch.stack([grad(p.sample(batch_size, generator=g)) for _ in range(n_batches)]).var(0).sum().item()
    signal2 = (grad(p.sample(big, generator=g)) @ grad(p.sample(big, generator=g))).item()
    return variance, math.sqrt(variance / signal2) if signal2 > 0 else None


variance_sigmas = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
plain_stats = [gradient_stats(dsm_model, dsm_model, s, 1.0) for s in variance_sigmas]
cond_stats = [gradient_stats(ncsn_model, lambda y, s=s: ncsn_model(y, s), s, 1.0) for s in variance_sigmas]
weighted_stats = [gradient_stats(ncsn_model, lambda y, s=s: ncsn_model(y, s), s, s**2) for s in variance_sigmas]
plain = [v for v, _ in plain_stats]
small = slice(0, 4)  # σ ≤ 0.1
slope = np.polyfit(np.log(variance_sigmas[small]), np.log(plain[small]), 1)[0]


def ratio(r):
    return "not resolved" if r is None else f"{r:.2f}"


# %%
# NBVAL_CHECK_OUTPUT
print(f"plain DSM: log-log slope of the gradient variance for σ ≤ 0.1 = {slope:.1f} (the argument above predicts -2)")
print(f"{'σ':>5s} {'total gradient variance':>40s} {'noise / signal of the gradient':>44s}")
print(f"{'':5s} {'plain':>10s} {'σ-cond.':>10s} {'σ-cond.×σ²':>12s}     {'plain':>13s} {'σ-cond.':>13s} {'σ-cond.×σ²':>13s}")
for s, (pv, pr), (cv, cr), (wv, wr) in zip(variance_sigmas, plain_stats, cond_stats, weighted_stats):
    print(f"{s:5.2f} {pv:10.3g} {cv:10.3g} {wv:12.3g}     {ratio(pr):>13s} {ratio(cr):>13s} {ratio(wr):>13s}")

# %%
fig, (ax_v, ax_r) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax_v.loglog(variance_sigmas, plain, "o-", label=r"plain DSM, $s_\theta(\tilde x)$")
ax_v.loglog(variance_sigmas, [v for v, _ in cond_stats], "s-", label=r"σ-conditioned, unweighted")
ax_v.loglog(variance_sigmas, [v for v, _ in weighted_stats], "^-", label=r"σ-conditioned, weighted by $\sigma^2$")
ax_v.loglog(variance_sigmas, plain[3] * (np.array(variance_sigmas) / variance_sigmas[3]) ** -2.0, "k:", label=r"slope $-2$")
ax_v.set(xlabel="noise level σ", ylabel="total variance of the mini-batch gradient",
         title="Raw variance: the σ² weight only rescales")
ax_v.legend(fontsize=8)
for stats, marker, label in ((plain_stats, "o-", "plain DSM"), (cond_stats, "s-", "σ-conditioned, unweighted"),
                             (weighted_stats, "^--", r"σ-conditioned, weighted by $\sigma^2$")):
    keep = [(s, r) for s, (_, r) in zip(variance_sigmas, stats) if r is not None]
    ax_r.loglog(*zip(*keep), marker, label=label)
ax_r.set(xlabel="noise level σ", ylabel="noise / signal of the mini-batch gradient",
         title="What training feels: noise relative to the mean")
ax_r.legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the two panels together. Left: the variance of the σ²-weighted gradient is flat in σ —
# but that is the weight rescaling both the gradient and its noise by σ⁴ (variance) and σ²
# (mean). Right: the noise-to-signal ratio, the quantity that decides whether a step goes
# somewhere, is *identical* with and without the weight at every σ (the two σ-conditioned
# curves coincide). For the plain network it grows as σ falls (0.29 at σ = 1, 21 at σ = 0.05)
# until, at σ = 0.01, the mean gradient is too small to resolve from the samples drawn here. For the σ-conditioned
# network it stays of the same order at every level in this run: that comes from the
# parametrisation $f_\theta/\sigma$ (the body predicts $-z$, of size one) and from training on
# all levels, not from the weight.
#
# **So what does the σ² weight do?** It balances the levels *against each other*. Without it,
# level σ contributes a loss of order $d/(2\sigma^2)$ and a gradient to match (the unweighted
# σ-conditioned variance above spans almost nine orders of magnitude from σ = 2 to σ = 0.01), so in a sum
# over levels the smallest σ would decide every step. With it, every level's term is
# $\tfrac12\mathbb E\|\sigma s_\theta + z\|^2$, on the same scale (lesson 06 §3 checks this
# on MNIST). The weight fixes the *mixture* of levels; it does not make any single level's
# gradient less noisy.

# %% [markdown]
# ## Think
#
# 1. DSM's minimum value is the constant $C$, not zero. Why does that make the training loss a
#    poor progress indicator, and what could you monitor instead when the true score is
#    unknown?
#
# <details><summary>Model answer</summary>
#
# The loss is $C + J_\mathrm{ESM}(\theta; p_\sigma)$, and only the second term measures the model.
# $C$ is unknown in practice, large at small σ (5.11 here at σ = 0.3, with a per-sample standard
# deviation of 7.2), and a batch's loss scatters around it by far more than the ESM term still
# to be gained: a flat, noisy curve cannot tell "converged" from "stuck". Better monitors: the
# loss on a fixed held-out set with fixed noise (the same draw every time, so that its changes
# come from the model only; the noise of one draw cancels in differences); the implicit or
# sliced score matching loss on held-out data, which estimates ESM up to a constant without
# the σ-noise; or what the score is for — the quality of denoised images (Tweedie) or of samples.
#
# </details>
#
# 2. Vincent's identity holds for any σ. Which two things go wrong as σ → 0, and which one as
#    σ grows? Use the explorer's numbers.
#
# <details><summary>Model answer</summary>
#
# As σ → 0: (a) the noisy samples stay near the data, so the low-density regions are never
# trained — the learned score's mean error there is 4.5 at σ = 0.05 against 0.3 at σ = 0.3;
# (b) the DSM gradient becomes noise: for the plain network its noise-to-signal ratio goes
# from 0.29 at σ = 1 to 21 at σ = 0.05, and at σ = 0.01 the mean is not even resolved (§6).
# As σ grows: bias — the model learns the score of a blurred density, TV(p, p_σ) = 0.17 at
# σ = 1 and 0.43 at σ = 3, so samples from it would be blurred too.
#
# </details>
#
# 3. Tweedie's formula gives the posterior *mean*. For σ = 3 and $\tilde x = -3$ it returns a
#    point between the modes, where the data density is tiny. Is that a bad denoiser?
#
# <details><summary>Model answer</summary>
#
# Not by its own criterion: the posterior mean minimises the expected squared error, and when
# $\tilde x = -3$ is about as likely to come from the light mode at −3 as from the heavy one at
# +3, the squared-error-optimal guess hedges between them. It is a bad *sample*: it is not a
# plausible clean point. A denoiser that must return a plausible point (the posterior mode, or
# a draw from the posterior) trades a larger expected error for plausibility. That is exactly
# why lesson 05 samples with many small Langevin steps instead of one Tweedie jump from large σ.
#
# </details>
#
# 4. The density recovered from the learned score put a slightly wrong mass on the left mode.
#    Where along the $x$-axis must the score be wrong for that to happen?
#
# <details><summary>Model answer</summary>
#
# Between the modes. The recovered $\log\hat p$ is the integral of the score, so the ratio of
# the two modes' heights is $\exp\int_{-3}^{3} s_\theta$: an error of δ in the score over a
# stretch of length ℓ in the gap changes that ratio by about $e^{\delta\ell}$. Errors inside a
# mode change that mode's shape, not (to first order) its mass relative to the other; errors in
# the far tails change only the tails. The gap is also where the fewest noisy samples land, so
# it is where the score is least well trained.
#
# </details>
#
# 5. The σ-conditioned network takes $\log\sigma$ as input and divides its output by σ. What
#    would go wrong with the raw output, at σ = 0.02 and at σ = 5?
#
# <details><summary>Model answer</summary>
#
# The target $-z/\sigma$ has size about $1/\sigma$: 50 at σ = 0.02 and 0.2 at σ = 5. A raw output
# would have to span a factor 50/0.2 in scale with one set of weights: huge and fast-varying at
# σ = 0.02, tiny but still precise at σ = 5, so the last layer's scale would have to be a
# steep function of the σ input. With the division the body predicts $-z$, of size one at
# every level. Likewise $\log\sigma$ (from about −4 to 2) is a well-scaled input, whereas σ
# itself would squeeze all the small levels into [0.02, 0.1], where the network could hardly
# tell them apart.
#
# </details>
#
# ## Summary
#
# - Adding noise $\tilde x = x + \sigma z$ turns $p$ into $p_\sigma = p*\mathcal N(0,\sigma^2 I)$
#   (a Parzen estimate on finite data, whose score is DSM's optimum on a finite training set);
#   the kernel's score $-z/\sigma$ is known.
# - **Vincent:** $J_\mathrm{DSM} = J_\mathrm{ESM}(\cdot; p_\sigma) + d/(2\sigma^2) - \tfrac12\mathbb E\|\nabla\log p_\sigma\|^2$:
#   DSM learns the score of the *noisy* density (visibly so at σ = 1), without any derivative
#   of the model; its loss levels off at $C$, not at 0.
# - **Tweedie:** $\mathbb E[x\mid\tilde x] = \tilde x + \sigma^2\nabla\log p_\sigma(\tilde x)$;
#   a denoising autoencoder's loss is $\sigma^4$ times DSM.
# - In 1-D a score determines its density: integrate and normalise.
# - σ trades bias (blur) for coverage; as σ → 0 the DSM gradient variance grows like
#   $1/\sigma^2$ and the plain network's gradient becomes mostly noise. The σ² weight of the
#   noise-conditional loss does not change any level's noise-to-signal ratio; it balances the
#   levels against each other. Hence many noise levels, σ-conditioned networks and annealed
#   sampling (lessons 05 and 06).
