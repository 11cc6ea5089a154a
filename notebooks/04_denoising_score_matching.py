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
# it). **Denoising score matching** (Vincent 2011) needs no derivative of the model with
# respect to its input: add Gaussian noise to the data and ask the model to point from the
# noisy sample back to the clean one. The price is that we learn the score of the *noisy*
# density.
#
# **After this lesson you can**
# 1. say what the perturbed density $p_\sigma = p * \mathcal N(0, \sigma^2 I)$ is, why its score
#    exists even when that of $p$ does not, and compute the score of the noise kernel,
#    $-(\tilde x - x)/\sigma^2$;
# 2. derive Vincent's identity $J_\mathrm{DSM}(\theta) = J_\mathrm{ESM}(\theta; p_\sigma) + C$,
#    say what the constant $C$ is, and check the identity with numbers;
# 3. express the posterior mean $\mathbb E[x\mid\tilde x]$ through the score of $p_\sigma$
#    (Tweedie's formula), state its assumptions, and say why a denoising autoencoder is a score
#    model;
# 4. fit a small network by DSM and recover a density from the learned score;
# 5. train one network for all noise levels with the σ²-weighted loss, and read its error
#    table: absolute against relative error, the blur at large σ, the last training iterate
#    against an average of the weights (EMA);
# 6. say how DSM's gradient variance grows as σ → 0, and what the σ² weight does to it.
#
# **Conventions.** Losses carry the papers' ½, sum over dimensions and average over the
# batch. $\tilde x = x + \sigma z$ with $z \sim \mathcal N(0, I)$.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.course.checks import check_dsm_loss, check_dsm_training_step, check_tweedie_denoiser
from lessons_lib.densities import Gaussian, density_from_score_1d, total_variation_1d
from lessons_lib.explorers import SigmaExplorer
from lessons_lib.losses import esm_loss, ncsn_loss
from lessons_lib.nets import LinearScore, ScoreMLP
from lessons_lib.noise import geometric_sigmas, perturb, tweedie_denoise
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
# the starting point of Vincent (2011): DSM is score matching against a Parzen estimate of the data.
#
# The noise kernel has a score we know exactly; it points from the noisy sample back to the
# clean one:
#
# $$\nabla_{\tilde x}\log q_\sigma(\tilde x\mid x) = -\frac{\tilde x - x}{\sigma^2} = -\frac{z}{\sigma}.$$
#
# For a Gaussian mixture the convolution only adds $\sigma^2 I$ to every covariance, which the
# library's `perturbed(sigma)` does. Let us check all three statements with numbers on the
# running 1-D example, $p = 0.1\,\mathcal N(-3, 1) + 0.9\,\mathcal N(3, 1)$. Two densities are
# compared by their total-variation distance, $\mathrm{TV}(p, q) = \tfrac12\int|p - q|$ (0 =
# identical, 1 = disjoint).

# %%
p = mixture_1d()
sigma_blur = 0.8
xs_wide = torch.linspace(-9, 9, 901, dtype=torch.float64)

# p_σ by numerical convolution on the grid, against the closed form
kernel = torch.exp(Gaussian(0.0, sigma_blur**2).log_prob((xs_wide[:, None] - xs_wide[None, :])[..., None]))
p_wide = torch.exp(p.log_prob(xs_wide[:, None]))
p_sigma_numeric = torch.trapezoid(p_wide[None, :] * kernel, xs_wide, dim=1)
p_sigma_exact = torch.exp(p.perturbed(sigma_blur).log_prob(xs_wide[:, None]))

# the Parzen estimate from n samples approaches p_σ as n grows
def parzen(samples, sigma, at):
    return torch.exp(Gaussian(0.0, sigma**2).log_prob((at[:, None] - samples[None, :, 0])[..., None])).mean(1)

parzen_tv = {n: total_variation_1d(parzen(p.sample(n, generator=make_generator(n), dtype=torch.float64), sigma_blur, xs_wide), p_sigma_exact, xs_wide)
             for n in (100, 1_000, 10_000)}

# the score of the noise kernel, by autograd, against -(x̃ - x)/σ²
x_clean = p.sample(5, generator=make_generator(1), dtype=torch.float64)
x_noisy, _ = perturb(x_clean, sigma_blur, make_generator(2))
x_in = x_noisy.clone().requires_grad_(True)
log_q = Gaussian(0.0, sigma_blur**2).log_prob(x_in - x_clean).sum()
(kernel_score_autograd,) = torch.autograd.grad(log_q, x_in)

# %%
# NBVAL_CHECK_OUTPUT
print(f"max |convolution - perturbed(σ)| on the grid: {(p_sigma_numeric - p_sigma_exact).abs().max():.1e}")
print("TV(Parzen estimate, p_σ) for n = 100, 1000, 10000:", [round(v, 2) for v in parzen_tv.values()])
print("kernel score: autograd == -(x̃ - x)/σ²:",
      torch.allclose(kernel_score_autograd, -(x_noisy - x_clean) / sigma_blur**2))

# %%
fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
ax.plot(xs_wide, p_wide, color="0.4", ls="--", label="data density $p$")
for s in (0.3, sigma_blur, 3.0):
    ax.plot(xs_wide, torch.exp(p.perturbed(s).log_prob(xs_wide[:, None])), label=rf"$p_\sigma$, σ = {s}")
ax.plot(xs_wide, parzen(p.sample(1_000, generator=make_generator(1_000), dtype=torch.float64), sigma_blur, xs_wide), color="k", lw=0.8,
        label=f"Parzen estimate, 1,000 samples, σ = {sigma_blur}")
ax.set(xlabel="$x$", ylabel="density", title="Perturbing the data blurs the density")
ax.legend()
plt.show()

# %% [markdown]
# **Why perturb at all: data on a thin set.** If the data lie on a lower-dimensional set (a
# curve in the plane, the images of a digit among all 784-pixel arrays), $p$ has no density in
# the ambient space, and $\nabla\log p$ is undefined in the ambient space: there is no score to match
# (Song & Ermon 2019, §3.1, "the manifold hypothesis"). Any σ > 0 repairs this:
# $p_\sigma = p * \mathcal N(0, \sigma^2 I)$ is positive and smooth everywhere, and its score is
# defined everywhere. Near the set it points back to it, with a size of about
# (distance to the set)/σ² where that distance is large compared with σ² times half the set's
# curvature. Look at points spread uniformly on the unit circle, where the exact
# $\nabla\log p_\sigma$ of their empirical distribution is the score of their Parzen estimate
# (above): a softmax-weighted pull towards the points.

# %%
angles = torch.arange(4000, dtype=torch.float64) * (2 * math.pi / 4000)
circle = torch.stack([angles.cos(), angles.sin()], 1)


def circle_score(y, s):
    """∇log p̂_σ(y) for the points on the circle: a softmax-weighted pull towards them."""
    w = torch.softmax(-((y[:, None, :] - circle[None]) ** 2).sum(-1) / (2 * s**2), dim=1)
    return (w[..., None] * (circle[None] - y[:, None, :])).sum(1) / s**2


probe = torch.tensor([[1.2, 0.0], [0.0, 0.9], [-0.6, -0.6]], dtype=torch.float64)

# %%
# NBVAL_CHECK_OUTPUT
for s in (0.1, 0.3):
    for y, score in zip(probe, circle_score(probe, s)):
        outward = y / y.norm()
        radial, tangential = (score @ outward).item(), (score - (score @ outward) * outward).norm().item()
        print(f"σ = {s}: at ({y[0]:+.1f}, {y[1]:+.1f}): score along the outward radius {radial:+7.2f}, "
              f"across it {tangential:5.2f};  (1 - |y|)/σ² = {(1 - y.norm().item()) / s**2:+7.2f}")

# %% [markdown]
# Off the circle the score points back to it along the radius (nothing across it: the points
# are symmetric about the radius through each probe, so that column is a demonstration, not a
# test). For uniform points on the unit circle, at radius $r$,
# $p_\sigma \propto \int_0^{2\pi} e^{-(r^2 + 1 - 2r\cos\theta)/2\sigma^2}\,d\theta \propto e^{-(r^2+1)/2\sigma^2} I_0(r/\sigma^2)$,
# so the exact radial score, its derivative in $r$, is
# $\big(-r + I_1(r/\sigma^2)/I_0(r/\sigma^2)\big)/\sigma^2 \approx (1 - r)/\sigma^2 - 1/(2r)$ at small σ:
# (distance)/σ² plus a curvature term $-1/(2r)$ that does not depend on σ. At $r = 0.9$ the
# shortfall is the same at both σ (+9.44 against +10.00, +0.54 against +1.11); it is small next
# to (distance)/σ² at σ = 0.1, and of the same order at σ = 0.3, where (distance)/σ² has shrunk.
# As σ → 0 the score blows up everywhere off the circle: the score of the unperturbed data does
# not exist. Lesson 06 meets the same fact on MNIST.
#
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
# This is Vincent's (2011) identity: minimising DSM minimises ESM against $p_\sigma$ — **not**
# against $p$. Check: on the 2-D
# mixture, for four quite different models, DSM − ESM must be the same number $C$. We use the
# same noisy samples for both losses (same seed), subtract each sample's own
# $\|z\|^2/(2\sigma^2) - \tfrac12\|\nabla\log p_\sigma(\tilde x)\|^2$ (whose mean is $C$), and report
# Monte-Carlo standard errors.

# %%
p2 = mixture_2d()
sigma_2d = 0.5
noisy2 = p2.perturbed(sigma_2d)
n = 200_000
x = p2.sample(n, generator=make_generator(3), dtype=torch.float64)
x_tilde, z = perturb(x, sigma_2d, make_generator(4))  # the noise that dsm_loss draws with the same seed

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


# C per noisy sample: ‖z‖²/(2σ²) - ½‖∇log p_σ(x̃)‖² (its mean is d/(2σ²) - ½E‖∇log p_σ‖²)
c_samples = (z**2).sum(1) / (2 * sigma_2d**2) - 0.5 * (noisy2.score(x_tilde) ** 2).sum(1)
rows = []
with torch.no_grad():
    for name, model in models.items():
        dsm = losses.dsm_loss(model, x, sigma_2d, generator=make_generator(4), reduction="none")
        esm = esm_loss(model, x_tilde, noisy2.score, reduction="none")
        rows.append((name, *mean_and_se(dsm), *mean_and_se(esm), *mean_and_se(dsm - esm - c_samples)))

# %%
# NBVAL_CHECK_OUTPUT
print("C = d/(2σ²) - ½E‖∇log p_σ‖² = {:.3f} ± {:.3f}   (d = 2, σ = {})".format(*mean_and_se(c_samples), sigma_2d))
print(f"{'model':26s} {'DSM':>13s} {'ESM(p_σ)':>13s} {'DSM - ESM - C':>16s}")
for name, dsm_m, dsm_se, esm_m, esm_se, diff_m, diff_se in rows:
    print(f"{name:26s} {dsm_m:6.2f} ± {dsm_se:.2f} {esm_m:6.2f} ± {esm_se:.2f} {diff_m:+8.3f} ± {diff_se:.3f}")

# %% [markdown]
# The losses themselves differ a lot between models, yet DSM − ESM − C is within about one
# standard error of zero for all four.
# What is left of each sample is $s_\theta^\top(z/\sigma + \nabla\log p_\sigma(\tilde x))$, whose
# mean is zero (next paragraph) but whose size differs from model to model. For the true score
# ESM is exactly zero, so its DSM *is* $C$: the smallest value DSM can reach is not zero, which
# is why a DSM training curve never goes to zero.
#
# **What $C$ is.** The target $-z/\sigma$ is random even when $\tilde x$ is fixed: many clean
# points could have produced the same $\tilde x$. The cross-term equality above holds for
# *every* function $s_\theta$ of $\tilde x$, so the target's conditional mean is
# $\mathbb E[-z/\sigma\mid\tilde x] = \nabla\log p_\sigma(\tilde x)$. $C$ is the part of the
# target that no function of $\tilde x$ can predict: half the expected trace of its conditional
# covariance. Exercise 2 asks you to show this and to work $C$ out for Gaussian data.
#
# ### Exercise 1 (2 points): the DSM loss
#
# Write the DSM loss for given noise `z` (same shape as `x`): perturb, evaluate the score at
# the noisy points, compare with $-z/\sigma$, sum over dimensions, average over the batch.

# %%
def dsm_loss(score_fn, x, sigma, z):
    """The DSM loss for the given noise z, as a scalar tensor: the papers' ½, summed over
    dimensions, averaged over the batch."""
    # Hint: where is the model evaluated, and what does the kernel's score equal there?
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
# ### Exercise 2 (written, 4 points): Vincent's constant for Gaussian data
#
# (a) Show that $C = \tfrac12\,\mathbb E_{\tilde x}\,\mathbb E\big[\|z/\sigma - \mathbb E[z/\sigma\mid\tilde x]\|^2\,\big|\,\tilde x\big] \ge 0$,
# using $\mathbb E[-z/\sigma\mid\tilde x] = \nabla\log p_\sigma(\tilde x)$.
# (b) For data $x\sim\mathcal N(\mu, vI)$ in $d$ dimensions, derive $C$ in closed form as a
# function of $d$, $v$ and σ. (c) Compare your formula with the Monte-Carlo value printed
# below, and say what $C$ does as σ → 0 and as $v$ → 0.

# %%
# NBVAL_CHECK_OUTPUT
gauss_data = Gaussian([0.0, 0.0], 1.0)  # x ~ N(0, I), d = 2, v = 1
with torch.no_grad():
    c_gauss = losses.dsm_loss(gauss_data.perturbed(0.5).score, gauss_data.sample(400_000, generator=make_generator(41)),
                              0.5, generator=make_generator(42), reduction="none")
print("Monte-Carlo C for x ~ N(0, I), d = 2, σ = 0.5: {:.3f} ± {:.3f}".format(*mean_and_se(c_gauss)))

# %% [markdown]
# <!-- BEGIN WRITTEN ANSWER gaussian_dsm_constant -->
# **Model answer.** (a) Write $t = z/\sigma$ and $m(\tilde x) = \mathbb E[t\mid\tilde x] = -\nabla\log p_\sigma(\tilde x)$.
# Then $C = \tfrac12\mathbb E\|t\|^2 - \tfrac12\mathbb E\|m(\tilde x)\|^2$, and since
# $\mathbb E[t^\top m(\tilde x)] = \mathbb E\big[\mathbb E[t\mid\tilde x]^\top m(\tilde x)\big] = \mathbb E\|m\|^2$,
# $\tfrac12\mathbb E\|t - m(\tilde x)\|^2 = \tfrac12\mathbb E\|t\|^2 - \mathbb E\|m\|^2 + \tfrac12\mathbb E\|m\|^2 = C$:
# half the expected squared deviation of the target from its conditional mean (the trace of its conditional covariance), which is $\ge 0$. No model can predict that part, which is
# why the DSM loss cannot go below $C$ in expectation.
# (b) $p_\sigma = \mathcal N(\mu, (v + \sigma^2)I)$, so $\nabla\log p_\sigma(\tilde x) = -(\tilde x - \mu)/(v + \sigma^2)$ and
# $\mathbb E\|\nabla\log p_\sigma\|^2 = d(v + \sigma^2)/(v + \sigma^2)^2 = d/(v + \sigma^2)$. Hence
# $$C = \frac d2\Big(\frac1{\sigma^2} - \frac1{v + \sigma^2}\Big) = \frac{d\,v}{2\sigma^2(v + \sigma^2)} .$$
# (Equivalently: the posterior of $x$ given $\tilde x$ is Gaussian with covariance $\frac{v\sigma^2}{v+\sigma^2}I$,
# and $C = \tfrac12\operatorname{tr}\operatorname{Cov}[x\mid\tilde x]/\sigma^4$.)
# (c) With $d = 2$, $v = 1$, σ = 0.5: $C = 2/(2\cdot0.25\cdot1.25) = 3.2$, the printed Monte-Carlo value within two
# standard errors. As σ → 0, $C \approx d/(2\sigma^2) \to \infty$: the floor, and the noise in the loss, explode. As
# $v \to 0$ (all data at one point), $C \to 0$: $\tilde x$ then determines $z$ exactly.
#
# <!-- RUBRIC -->
# - 1 point: (a) writes C as half the expected conditional variance (trace of the covariance) of z/σ given x̃ (or ½E‖z/σ + ∇log p_σ‖²), using the cross term E[tᵀm] = E‖m‖², and concludes C ≥ 0.
# - 1 point: (b) finds p_σ = N(μ, (v + σ²)I) and E‖∇log p_σ‖² = d/(v + σ²).
# - 1 point: (b) the closed form C = d·v/(2σ²(v + σ²)) (or an equivalent form, e.g. from Cov[x | x̃]).
# - 1 point: (c) the formula's 3.2 matched to the printed Monte-Carlo value (within two standard errors), and both limits right with a reason (C ≈ d/(2σ²) → ∞ as σ → 0; C → 0 as v → 0 because x̃ then determines z).
# <!-- END WRITTEN ANSWER -->

# %% [markdown]
# ## 3. Tweedie's formula and denoising autoencoders
#
# The best denoiser in the mean-square sense returns the posterior mean $\mathbb E[x\mid\tilde x]$.
# For Gaussian noise of known σ it can be computed from the score of $p_\sigma$ alone, without
# knowing $p$. This is Tweedie's formula. Exercise 3 asks you to find it; its derivation follows
# the exercise.
#
# ### Exercise 3 (2 points): Tweedie's denoiser
#
# Express $\mathbb E[x\mid\tilde x]$ through $\tilde x$, σ and $\nabla\log p_\sigma(\tilde x)$,
# then implement it: given a score function of the noisy density and a batch of noisy points
# (one per row), return the posterior means of the clean points. Two facts are enough, with
# $p_\sigma$ written as the integral of section 1: the gradient of the Gaussian kernel
# $\mathcal N(\tilde x; x, \sigma^2 I)$ with respect to $\tilde x$ is the kernel times
# $(x - \tilde x)/\sigma^2$, and $p(x)\,\mathcal N(\tilde x; x,\sigma^2 I)/p_\sigma(\tilde x)$ is
# the posterior density of $x$ given $\tilde x$.

# %%
def tweedie_denoiser(score_fn, x_noisy, sigma):
    """E[x | x̃] from the score of p_σ, one row per noisy point."""
    # Hint: differentiate p_σ under the integral, divide by p_σ, and look for an average over the posterior.
    ### BEGIN SOLUTION
    return x_noisy + sigma**2 * score_fn(x_noisy)
    ### END SOLUTION


# %%
check_tweedie_denoiser(tweedie_denoiser)

# %% [markdown]
# **Tweedie's formula.** Differentiating the convolution under the integral,
#
# $$\nabla p_\sigma(\tilde x) = \int p(x)\,\mathcal N(\tilde x; x, \sigma^2 I)\,\frac{x - \tilde x}{\sigma^2}\,dx
#   = p_\sigma(\tilde x)\,\frac{\mathbb E[x\mid\tilde x] - \tilde x}{\sigma^2};$$
#
# divide by $p_\sigma$ and rearrange:
#
# $$\mathbb E[x\mid\tilde x] = \tilde x + \sigma^2\,\nabla\log p_\sigma(\tilde x).$$
#
# Robbins (1956), who set out the empirical-Bayes framework, credits it to Tweedie; Miyasawa
# (1961) derived it as an empirical-Bayes estimator of a normal mean; Efron (2011) popularised
# it (to correct selection bias); Raphan & Simoncelli (2011) read it as a denoiser. It assumes only additive
# Gaussian noise of known σ, independent of $x$; $p$ can be anything. The best denoiser in the
# mean-square sense is one step along the noisy score. Differentiating once more gives the
# posterior covariance, $\operatorname{Cov}[x\mid\tilde x] = \sigma^2\big(I + \sigma^2\nabla^2\log p_\sigma(\tilde x)\big)$:
# where $\log p_\sigma$ is strongly concave (inside a mode) the posterior is narrower than the
# noise; where it is flat its variance is σ², the noise's; where it is convex (between
# well-separated modes) it is wider.
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
# score model in disguise. This link between denoising autoencoders and score matching is
# Vincent's (2011); Alain & Bengio (2014) showed that the reconstruction of an optimal
# denoising autoencoder estimates the score of the data as the noise goes to zero,
# $D^*(x) - x \approx \sigma^2\nabla\log p(x)$.
#
# Two checks of the section, with the library's `tweedie_denoise`: the mixture's posterior
# mean computed from the posterior directly (`posterior_mean`) against Tweedie's formula; and
# the same conditional mean estimated by brute force (average the clean $x$ of samples whose
# noisy $\tilde x$ falls in a narrow bin). Then a demonstration of the factor $\sigma^4$, an
# algebraic identity that cannot fail, at two values of σ (at σ = 1 every power of σ is 1, so
# one value could not tell σ⁴ from σ²).

# %%
grid = torch.linspace(-7, 7, 281, dtype=torch.float64)[:, None]
tweedie_error = {s: (p.posterior_mean(grid, s) - tweedie_denoise(p.perturbed(s).score, grid, s)).abs().max().item()
                 for s in (0.1, 0.3, 1.0, 3.0)}

# brute force: bin the noisy samples, average the clean ones in each bin
sigma_bin = 1.0
x_mc = p.sample(400_000, generator=make_generator(5), dtype=torch.float64)
x_mc_noisy, z_mc = perturb(x_mc, sigma_bin, make_generator(6))
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
w = torch.exp(p.perturbed(sigma_bin).log_prob(fine[:, None])).reshape(48, 40)
exact_bin_mean = (w * p.posterior_mean(fine[:, None], sigma_bin)[:, 0].reshape(48, 40)).sum(1) / w.sum(1)
z_scores = ((bin_mean - exact_bin_mean) / bin_se)[counts > 100]

# the denoising-autoencoder loss is σ⁴ times the DSM loss (same noise), at σ = 0.3 and σ = 1
seed_everything(0)
mlp = ScoreMLP(1).double()
dae_ratio = {}
with torch.no_grad():
    for s in (0.3, 1.0):
        x_s, _ = perturb(x_mc[:50_000], s, make_generator(6))
        dae = 0.5 * ((x_s + s**2 * mlp(x_s) - x_mc[:50_000]) ** 2).sum(1).mean()
        dae_ratio[s] = (dae / losses.dsm_loss(mlp, x_mc[:50_000], s, generator=make_generator(6))).item()

# the posterior at σ = 3, x̃ = -3: its component weights, and its variance computed from the mixture
# and by the second-order formula σ²(1 + σ² ∂²log p_σ)
sigma_far, x_far = 3.0, torch.tensor([[-3.0]], dtype=torch.float64)
post_weights = p.perturbed(sigma_far).responsibilities(x_far)[0]
gain = p.covs[:, 0, 0] / (p.covs[:, 0, 0] + sigma_far**2)  # v / (v + σ²) for each component
comp_means, comp_var = p.means[:, 0] + gain * (x_far[0, 0] - p.means[:, 0]), gain * sigma_far**2
post_var = (post_weights * (comp_var + comp_means**2)).sum() - (post_weights * comp_means).sum() ** 2
x_req = x_far.clone().requires_grad_(True)
(score_slope,) = torch.autograd.grad(p.perturbed(sigma_far).score(x_req).sum(), x_req)
# 95 % quantile of the largest of 48 independent |N(0, 1)|
z_max_95 = torch.special.ndtri(torch.tensor((1 + 0.95 ** (1 / 48)) / 2, dtype=torch.float64)).item()

# %%
# NBVAL_CHECK_OUTPUT
for s, err in tweedie_error.items():
    print(f"σ = {s}: max |posterior_mean - (x̃ + σ²∇log p_σ)| < 1e-12: {err < 1e-12}")
print(f"brute-force bin means vs exact, σ = 1: largest |z-score| over {len(z_scores)} bins = {z_scores.abs().max():.1f} "
      f"(for independent bins, chance alone stays below {z_max_95:.2f} in 95 % of repeats)")
for s, r in dae_ratio.items():
    print(f"σ = {s}: DAE loss / DSM loss = {r:.6f};  σ⁴ = {s**4:.6f}, σ² = {s**2:.6f}")
print(f"σ = 3, x̃ = -3: posterior weights of the components at -3 and +3 = {post_weights[0]:.2f} : {post_weights[1]:.2f}; "
      f"posterior variance {post_var:.2f} (from the mixture), "
      f"{(sigma_far**2 * (1 + sigma_far**2 * score_slope)).item():.2f} (σ²(1 + σ²∂²log p_σ)), "
      f"{comp_var[0]:.2f} within one component")

# %%
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
ax.plot(grid[:, 0], grid[:, 0], color="0.7", ls=":", label=r"no denoising, $\tilde x$")
for s in (0.3, 1.0, 3.0):
    ax.plot(grid[:, 0], tweedie_denoise(p.perturbed(s).score, grid, s)[:, 0],
            label=rf"$\tilde x + \sigma^2\nabla\log p_\sigma$, σ = {s}")
ax.errorbar(centers, bin_mean, yerr=2 * bin_se, fmt="o", ms=3, color="k", label="bin averages of clean $x$, σ = 1 (±2 s.e.)")
ax.set(xlabel=r"noisy observation $\tilde x$", ylabel=r"$\mathbb{E}[x \mid \tilde x]$",
       title="Tweedie: the best denoiser pulls towards the modes")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# With little noise the denoiser barely moves $\tilde x$. With σ = 3 it pulls most observations
# (all but those far out on the left) towards the big mode at $+3$. Even a noisy point at $-3$
# then comes from the heavy right component with posterior probability 0.60, against 0.40 for
# the light left one (printed above).
#
# %% [markdown]
# ## 4. Fitting the 1-D mixture by DSM, then recovering its density
#
# Now a small network $s_\theta$ (`ScoreMLP`) trained by DSM on fresh samples of
# $0.1\,\mathcal N(-3,1) + 0.9\,\mathcal N(3,1)$, one optimiser step per batch.
#
# ### Exercise 4 (3 points): one DSM training step
#
# Write one training step for a given batch `x` and noise `z`, with the optimiser you are
# given, in your own code (the DSM loss with Exercise 1's convention included). Two
# requirements: afterwards the parameters must be those of *one* optimiser step along the
# gradient of this batch's DSM loss, although the parameters' `.grad` may still hold the
# gradient of an earlier batch when the function is called; and it returns that loss, the one
# the step was computed from, as a tensor. The check uses plain SGD, so it can tell what the
# parameters should be.

# %%
def dsm_training_step(model, optimizer, x, sigma, z):
    """One optimiser step on the DSM loss of Exercise 1 (same convention); returns that loss (before the step)."""
    # Hint: backward() adds to whatever .grad already holds, and the step uses whatever .grad holds when it runs.
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    residual = model(x + sigma * z) + z / sigma
    loss = 0.5 * residual.pow(2).flatten(1).sum(1).mean()
    loss.backward()
    optimizer.step()
    return loss.detach()
    ### END SOLUTION


# %%
check_dsm_training_step(dsm_training_step)

# %% [markdown]
# The course's `train` loop takes this step with Adam on a fresh batch every time. We train
# once at σ = 0.3 and once at σ = 1. By Vincent's identity the target is
# $\nabla\log p_\sigma$, so that is what we compare with. At σ = 0.3, $p_\sigma$ and $p$ are
# hard to tell apart (their total-variation distance is printed below); at σ = 1 they are
# not, and there we can *see* which of the two DSM learns.
#
# **The training curve and its floor.** By Vincent's identity the smallest possible DSM loss
# is $C$, the loss of the true score of $p_\sigma$; we estimate it by Monte Carlo and draw it
# under the training curve. Only the true score can say how far above the floor the network
# still is: $J_\mathrm{ESM}(\theta; p_\sigma)$, printed too.

# %%
xs = torch.linspace(-8, 8, 801)
dsm_models, fits = {}, {}
for s in (0.3, 1.0):
    seed_everything(0)
    dsm_models[s] = ScoreMLP(1, hidden=64)
    fits[s] = train(dsm_models[s], lambda model, batch, g, s=s: losses.dsm_loss(model, batch, s, generator=g), p.sample,
                    n_steps=3000, batch_size=256, lr=3e-3, progress=False)
sigma_fit = 0.3
dsm_model, fit, noisy = dsm_models[sigma_fit], fits[sigma_fit], p.perturbed(sigma_fit)
with torch.no_grad():
    learned = dsm_model(xs[:, None])[:, 0]
true_noisy_score = noisy.score(xs[:, None])[:, 0]

# the floor C: the population DSM loss of the true score of p_σ (a million samples)
population = p.sample(1_000_000, generator=make_generator(20))
with torch.no_grad():
    floor_samples = losses.dsm_loss(noisy.score, population, sigma_fit, generator=make_generator(21), reduction="none")
    esm_gap = mean_and_se(esm_loss(dsm_model, noisy.sample(200_000, generator=make_generator(26)), noisy.score,
                                   reduction="none"))
floor, floor_se = mean_and_se(floor_samples)

# %%
# NBVAL_CHECK_OUTPUT
print(f"σ = 0.3: floor C = {floor:.3f} ± {floor_se:.3f} (Monte-Carlo s.e.); per-sample standard deviation "
      f"{floor_samples.std():.1f}, so one batch of 256 has a standard error of {floor_samples.std() / 16:.2f}")
print(f"mean training loss over the last 500 steps: {np.mean(fit.losses[-500:]):.2f} "
      f"(standard error of a mean of 500 batches: {floor_samples.std() / 16 / math.sqrt(500):.2f})")
print("what the loss cannot see: ESM(θ; p_σ) = {:.4f} ± {:.1e}".format(*esm_gap))

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
steps = np.arange(1, len(fit.losses) + 1)
ax.plot(steps, fit.losses, color="C0", alpha=0.3, lw=0.6, label="loss of each batch (256 samples)")
ax.plot(steps[99:], np.convolve(fit.losses, np.ones(100) / 100, mode="valid"), color="C0", label="mean of the last 100 batches")
ax.axhline(floor, color="k", ls="--", label=f"floor C = {floor:.2f} (true score of $p_\\sigma$)")
ax.set(xlabel="training step", ylabel="DSM loss", ylim=(0, floor + 6), title="DSM at σ = 0.3: the batch loss scatters around C, not 0")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The batch losses scatter around the floor by about the standard error printed above, from
# the first steps on, and their mean over the last 500 steps is within two standard errors of
# $C$: the loss cannot see the remaining error, which only a comparison with the true score
# reveals (the ESM line above).
#
# **A loss below the floor.** Train differently: 1,024 fixed samples, the noise drawn *once*
# and reused in every epoch, a 1→8→1 ReLU MLP, Adam at 0.01, 500 full-batch epochs. Its final
# loss on that draw lands below $C$ (printed below). That is not a contradiction: with a single noise draw the
# "loss" is one fixed average of 1,024 random terms, not the expectation that Vincent's
# identity bounds. We measure the loss of the true score on that draw, the trained network's
# loss on it and its population loss (fresh data and noise), and the same network trained with
# fresh noise at every epoch.

# %%
data_1024 = p.sample(1024, generator=make_generator(22))
z_once = torch.randn(data_1024.shape, generator=make_generator(23))
with torch.no_grad():
    true_on_draw = losses.dsm_loss(noisy.score, data_1024, sigma_fit, z=z_once).item()
one_draw = {}
for fresh_noise in (False, True):
    torch.manual_seed(0)
    relu_mlp = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(relu_mlp.parameters(), lr=0.01)
    g = make_generator(24)
    for epoch in range(500):
        loss = losses.dsm_loss(relu_mlp, data_1024, sigma_fit, z=torch.randn(data_1024.shape, generator=g) if fresh_noise else z_once)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        on_draw = losses.dsm_loss(relu_mlp, data_1024, sigma_fit, z=z_once).item()
        pop = losses.dsm_loss(relu_mlp, population, sigma_fit, generator=make_generator(21), reduction="none")
    one_draw[fresh_noise] = (on_draw, *mean_and_se(pop - floor_samples))


# On these 1,024 points (fresh noise, the points fixed) the exact DSM optimum is the score of
# their Parzen density (1/n)Σᵢ N(x̃; xᵢ, σ²): a softmax-weighted pull towards the points.
def parzen_score(y, points=data_1024[:, 0], s=sigma_fit):
    w = torch.softmax(-((y - points) ** 2) / (2 * s**2), dim=1)  # y (B, 1) against points (n,)
    return (w * (points - y)).sum(1, keepdim=True) / s**2


z_many = torch.randn((32, *data_1024.shape), generator=make_generator(25))
per_draw = {name: torch.stack([losses.dsm_loss(fn, data_1024, sigma_fit, z=zk) for zk in z_many])
            for name, fn in (("Parzen", parzen_score), ("p_σ", noisy.score))}
on_points = {name: v.mean().item() for name, v in per_draw.items()}
parzen_minus_true = mean_and_se(per_draw["Parzen"] - per_draw["p_σ"])

# %%
# NBVAL_CHECK_OUTPUT
print(f"1,024 fixed samples, σ = 0.3; population floor C = {floor:.3f} ± {floor_se:.3f}")
print(f"loss of the TRUE score of p_σ on the one fixed noise draw: {true_on_draw:.3f} "
      f"(standard error of one draw of 1,024 terms: {floor_samples.std() / 32:.2f})")
print(f"{'1→8→1 ReLU MLP, 500 epochs':30s} {'loss on the fixed draw':>22s} {'population loss - C (paired)':>30s}")
for fresh_noise, (on_draw, gap, gap_se) in one_draw.items():
    name = "fresh noise every epoch" if fresh_noise else "one noise draw, reused"
    print(f"{name:30s} {on_draw:22.3f} {gap:22.3f} ± {gap_se:.3f}")
print(f"DSM on the 1,024 points, averaged over 32 fresh noise draws: score of their Parzen density "
      f"{on_points['Parzen']:.3f}, true score of p_σ {on_points['p_σ']:.3f}; "
      "paired difference {:+.3f} ± {:.3f}".format(*parzen_minus_true))

# %% [markdown]
# The gap is the luck of the draw: one draw of 1,024 terms has a standard error of
# 7.2/√1024 ≈ 0.23 (printed above); the *true* score itself scores 5.054 on our draw, as low as
# the network trained on it (5.053), and the network trained with fresh noise also scores below
# $C$ there (5.071). The population losses, the numbers that matter, are both above $C$ (the
# last column: the population loss minus the true score's on the same million samples and
# noise, so that the common noise cancels). Its ± is Monte-Carlo error only: this is one
# training seed, so the table does not say which protocol is better.
#
# **The finite-data optimum.** With the 1,024 points fixed and fresh noise, what *is* the
# optimum? DSM on a finite set is score matching against its Parzen density
# $\hat p_\sigma = \frac1n\sum_i\mathcal N(\tilde x; x_i, \sigma^2)$ (section 1), so the best
# possible score is $\nabla\log\hat p_\sigma$, not $\nabla\log p_\sigma$: the last line above
# shows the Parzen score's loss below the true score's on those points (the paired difference
# over the 32 noise draws, with its standard error). A network flexible enough and
# trained long enough on a small set would learn the Parzen score — and Langevin with it would
# sample $\hat p_\sigma$, a mixture of small Gaussians centred on the training points. Lesson 06
# checks that its samples are not copies of training digits.
#
# **From a score back to a density.** In one dimension the score is the derivative of
# $\log p$, so integrating it recovers $\log p$ up to a constant, and the constant is fixed
# by normalising:
#
# $$\hat p(x) = \frac{\exp\int_{x_0}^{x}s_\theta(u)\,du}{\int\exp\int_{x_0}^{x'}s_\theta(u)\,du\;dx'} .$$
#
# `density_from_score_1d` does this with the trapezoid rule. First a demonstration on the exact
# score (the result is $p_\sigma$ itself, up to the trapezoid rule's error), then the learned score; the total-variation
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
from_learned, _, left_mass = recovered[sigma_fit]
# how many of the 3000 × 256 noisy training samples fell below x = -5 (expected), and the error there
below = 0.1 * torch.special.ndtr(torch.tensor((-5 + 3) / math.hypot(1, sigma_fit))) + \
    0.9 * torch.special.ndtr(torch.tensor((-5 - 3) / math.hypot(1, sigma_fit)))
light_mode = (xs > -4) & (xs < -2.5)
flank_error = {v: (learned - true_noisy_score)[(xs - v).abs().argmin()].item() for v in (-4, -5, -6, -7)}

# %%
# NBVAL_CHECK_OUTPUT
print(f"TV(density from the exact score of p_0.3, p_0.3) = {total_variation_1d(from_true_score, p_sigma_grid, xs):.4f}")
print(f"{'σ':>4s} {'TV(p, p_σ)':>11s} {'TV(learned, p_σ)':>17s} {'TV(learned, p)':>15s} {'mass left of 0':>15s}")
for s, (dens, p_s, mass) in recovered.items():
    print(f"{s:4.1f} {total_variation_1d(p_s, p_grid, xs):11.2f} {total_variation_1d(dens, p_s, xs):17.2f} "
          f"{total_variation_1d(dens, p_grid, xs):15.2f} {mass:15.3f}")
print("mass of p_σ left of 0 at σ = 0.3 and 1:", [round(torch.trapezoid(recovered[s][1][left], xs[left].double()).item(), 3) for s in recovered])
print(f"σ = 0.3: mean (learned - true) score on -4 < x < -2.5: {(learned - true_noisy_score)[light_mode].mean():+.2f}; "
      "at x = " + ", ".join(f"{v}: {e:+.2f}" for v, e in flank_error.items()))
print(f"noisy training samples expected below x = -5: {below.item() * 3000 * 256:,.0f} of {3000 * 256:,}")

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
# At σ = 0.3 the blur is small ($\mathrm{TV}(p, p_\sigma) = 0.02$; it shows mainly as a
# slightly lower heavy peak): the recovered density is about as close to $p$ as to $p_\sigma$. At σ = 1 it is not
# ($\mathrm{TV}(p, p_\sigma) = 0.17$), and the density recovered from the network trained at
# σ = 1 follows $p_\sigma$ (TV 0.03) and not $p$ (TV 0.16), the broader and lower modes of the
# right-hand panel: DSM learns the score of the noisy density, as Vincent's identity says.
#
# The learned score is not right everywhere. Inside the light mode it is below
# $\nabla\log p_\sigma$, by 0.19 on average (the mean printed above) and by 0.21 at $x = -4$.
# From about $x = -5$ outwards, the light mode's outer flank, it drifts further away: the
# error is 0.30 at $x = -5$, 0.67 at −6 and 1.22 at −7. Relatively few noisy training samples
# land there, about 2,100 of 768,000 below $x = -5$ (printed above); we have not tested whether
# that is the cause. A constant offset $c$ added to the score of a Gaussian mode of variance
# $v$ moves the mode by $c\,v$ without changing its width; a width error needs a wrong slope,
# and the light mode's mass relative to the heavy one depends on the score error integrated
# between them and on any width error (Think 4).
#
# %% [markdown]
# ## 5. One network for every σ, and what the σ² weight does to it
#
# One network can learn the scores of *all* noise levels at once if it is told σ: a
# σ-conditioned `ScoreMLP` returns $s_\theta(x,\sigma)$, trained with the noise-conditional
# loss of Song & Ermon (2019) over a geometric schedule $\sigma_1 > \dots > \sigma_L$ (largest
# first), level σ's DSM loss weighted by $\lambda(\sigma) = \sigma^2$:
#
# $$\tfrac12\,\mathbb E_\sigma\,\sigma^2\,\mathbb E\Big\|s_\theta(x+\sigma z, \sigma) + \frac z\sigma\Big\|^2
#   = \tfrac12\,\mathbb E_\sigma\mathbb E\big\|\sigma\,s_\theta(x+\sigma z, \sigma) + z\big\|^2 .$$
#
# The network sees $\log\sigma$ and divides its output by σ, $s_\theta = f_\theta(x, \log\sigma)/\sigma$.
# At the optimum $f_\theta = \sigma\nabla\log p_\sigma = -\mathbb E[z\mid\tilde x]$ (section 2):
# up to its sign, $f_\theta$ predicts the noise, like the ε-prediction network of Ho et al. (2020).
# Dividing by σ is Technique 3 of Song & Ermon (2020, NCSNv2), whose network does not see σ at
# all; feeding it $\log\sigma$ as well is what Song et al. (2021) do in NCSN++. Lesson 06 builds
# on this loss.
#
# **What the weight asks for.** By Vincent's identity, level σ contributes
# $\sigma^2 J_\mathrm{ESM}(\theta; p_\sigma) = \tfrac12\,\mathbb E_{p_\sigma}\|\sigma s_\theta - \sigma\nabla\log p_\sigma\|^2$
# plus a constant. So the loss charges an *absolute* error of the network's output
# $f_\theta = \sigma s_\theta$ the same at every level. That does not say how large each level's
# error ends up. We measure it below for one training run, at two sets of its weights: the last
# iterate of Adam (constant learning rate), and an exponential moving average (EMA, decay 0.999)
# of the iterates. There is no run without the weight, so the table describes the errors; it
# does not say what causes them.

# %%
sigmas = geometric_sigmas(5.0, 0.02, 30)
seed_everything(0)
ncsn_model = ScoreMLP(1, hidden=64, sigma_conditioned=True)
ncsn_fit = train(ncsn_model, lambda model, batch, g: ncsn_loss(model, batch, sigmas, generator=g), p.sample,
                 n_steps=4000, batch_size=256, lr=3e-3, ema_decay=0.999, progress=False)
ncsn_final, ncsn_model = ncsn_fit.model, ncsn_fit.best_model  # the last iterate, and the EMA of the weights
print(f"σ-conditioned network: {len(ncsn_fit.losses)} steps over {len(sigmas)} levels "
      f"from σ = {sigmas[0]:.2f} to {sigmas[-1]:.2f}")

# %%
xs_blur = torch.linspace(-30, 30, 6001, dtype=torch.float64)  # wide enough for p_σ at σ = 3
p_blur = torch.exp(p.log_prob(xs_blur[:, None]))


def tradeoff(s, model):
    """Blur, the extent of the region where p_σ ≥ 10⁻³ of its peak, and the learned score's mean
    absolute error under p_σ, with the mean size of the target score for comparison."""
    s_noisy = p.perturbed(s)
    dens = torch.exp(s_noisy.log_prob(xs_blur[:, None]))
    score = s_noisy.score(xs_blur[:, None])[:, 0]
    with torch.no_grad():
        err = (model(xs_blur[:, None].float(), s)[:, 0].double() - score).abs()
    covered = dens >= 1e-3 * dens.max()
    return dict(blur=total_variation_1d(dens, p_blur, xs_blur), lo=xs_blur[covered].min().item(),
                hi=xs_blur[covered].max().item(), size=torch.trapezoid(dens * score.abs(), xs_blur).item(),
                error=torch.trapezoid(dens * err, xs_blur).item())


table_sigmas = (0.02, 0.05, 0.1, 0.3, 1.0, 3.0)
table = {s: tradeoff(s, ncsn_model) for s in table_sigmas}
table_final = {s: tradeoff(s, ncsn_final) for s in table_sigmas}

# %%
# NBVAL_CHECK_OUTPUT
between = xs_blur.abs() <= 3
print(f"lowest p between the modes / max p = {p_blur[between].min() / p_blur.max():.4f}"
      f"  (at x = {xs_blur[between][p_blur[between].argmin()]:.2f})")
print(f"{'σ':>5s} {'TV(p, p_σ)':>10s} {'p_σ ≥ 1e-3·max p_σ on':>22s}")
for s, r in table.items():
    print(f"{s:5.2f} {r['blur']:10.2f} {'[{:.2f}, {:.2f}]'.format(r['lo'], r['hi']):>22s}")
print()
print("errors under p_σ, EMA weights unless marked; relative error = E|error| / E|∇log p_σ|")
print(f"{'σ':>5s} {'E|∇log p_σ|':>12s} {'E|error|':>9s} {'σ·E|error|':>11s} {'relative error':>15s}"
      f" {'σ·E|error|, last iterate':>25s}")
for s, r in table.items():
    print(f"{s:5.2f} {r['size']:12.3f} {r['error']:9.3f} {s * r['error']:11.3f} {100 * r['error'] / r['size']:13.0f} %"
          f" {s * table_final[s]['error']:25.3f}")

# %% [markdown]
# **Blur.** The first table is about the density alone. Going up from σ = 0.3 the blur grows
# (TV(p, p_σ), the *bias*: the model learns a blurred density). For σ ≤ 0.3 the region where
# $p_\sigma$ is above $10^{-3}$ of its peak hardly moves.
#
# **Absolute and relative error.** σ·E|error| is the absolute error of the network's output
# before the division, $f_\theta = \sigma s_\theta$, against its target
# $\sigma\nabla\log p_\sigma$. This is the error the σ² weight charges equally at every level.
# With the EMA weights it varies far less than its target: between 0.005 and 0.036 at all six
# levels, lowest at small σ. But the target of $f_\theta$ shrinks with σ here. E|∇log p_σ| stays near 0.79 for
# σ ≤ 0.1, so σ times it falls like σ. Relative to its target, $f_\theta$ is therefore much
# worse at small σ. Its relative error, which is also that of $s_\theta$, is 5 % at σ = 3 and
# 68 % at σ = 0.02. The score error E|error| grows from 0.012 at σ = 3 to 0.537 at σ = 0.02.
#
# **The last iterate.** The last column is σ·E|error| for the last iterate of the same run,
# without the average. At σ ≤ 0.1 it is 0.030 or 0.031, against the EMA's 0.005 to 0.011. This
# is one training seed, so the table says neither how large the gap is in general nor whether it
# depends on σ. Everything after the table uses the EMA weights.
#
# **The σ explorer.** Move σ and watch $p_\sigma$ (top), the true and learned scores (middle,
# grey where $p_\sigma < 10^{-3}$ of its peak), and σ times the error, the error of
# $f_\theta$, on a log scale (bottom).
# The message gives the mean error where the data are and σ times it. The explorer and the
# figure below show the EMA weights. Training once makes every slider move a single forward
# pass. In the figure, at σ = 0.05, the learned score is far off in the grey tails and is
# smoother than the true score's steep rise between the modes.

# %%
# NBVAL_IGNORE_OUTPUT
explorer = SigmaExplorer(p, ncsn_model, sigma=0.3, sigma_range=(0.02, 5.0))
explorer

# %%
fig, axes = plt.subplots(3, 3, figsize=(12, 7), sharex=True, layout="constrained", height_ratios=(1, 1, 0.8))
for col, s in enumerate((0.05, 0.3, 2.0)):
    s_noisy = p.perturbed(s)
    with torch.no_grad():
        s_learned = ncsn_model(xs[:, None], s)[:, 0]
    dens = torch.exp(s_noisy.log_prob(xs[:, None]))
    true_s = s_noisy.score(xs[:, None])[:, 0]
    for row, (lo, top) in ((0, (0, 0.45)), (1, (-8, 8))):
        axes[row, col].fill_between(xs, lo, top, where=dens < 1e-3 * dens.max(), color="0.88",
                                    label=r"$p_\sigma < 10^{-3}\max p_\sigma$")
    axes[0, col].plot(xs, p_grid, color="0.5", ls=":", label="$p$")
    axes[0, col].plot(xs, dens, label=r"$p_\sigma$")
    axes[0, col].set(title=rf"$\sigma = {s}$", ylabel="density" if col == 0 else None, ylim=(0, 0.45))
    axes[1, col].plot(xs, true_s, label=r"$\nabla\log p_\sigma$")
    axes[1, col].plot(xs, s_learned, color="C3", ls="--", label=r"$s_\theta(x,\sigma)$")
    axes[1, col].set(ylabel="score" if col == 0 else None, ylim=(-8, 8))
    axes[2, col].semilogy(xs, (s * (s_learned - true_s).abs()).clamp_min(1e-4), color="C3")
    axes[2, col].set(xlabel="$x$", ylabel=r"$\sigma\,|s_\theta - \nabla\log p_\sigma|$" if col == 0 else None,
                     ylim=(1e-3, 30))
axes[0, 0].legend()
axes[1, 0].legend()
fig.suptitle(r"The $\sigma$ slider at three values (EMA weights): the error $\sigma\,|s_\theta - \nabla\log p_\sigma|$ "
             r"(bottom), and at large $\sigma$ a blurred density")
plt.show()

# %% [markdown]
# ## 6. The gradient noise of DSM at small σ
#
# For the σ-conditioned network, $s_\theta = f_\theta/\sigma$, one sample's DSM gradient at
# level σ is
#
# $$\nabla_\theta\,\tfrac12\Big\|s_\theta + \frac z\sigma\Big\|^2 = \frac1{\sigma^2}\,(f_\theta + z)^\top\partial_\theta f_\theta .$$
#
# $f_\theta + z$ has size about one, since $z$ does. So the gradient's variance should grow like
# $\sigma^{-4}$: one $\sigma^{-2}$ from the target $-z/\sigma$, one from the division by σ.
#
# What matters for training is the noise relative to the mean gradient, the
# **noise-to-signal ratio**. A constant factor in front of the loss, such as the weight σ²,
# multiplies the mean and the noise alike, so it cannot change this ratio at any one level. The
# ratio falls like $1/\sqrt B$ with the batch size $B$.
#
# We measure both at six levels, for the network of section 5 (EMA weights):
# - the total variance of the gradient over 100 batches of 128, summed over parameters, and σ⁴
#   times it;
# - the squared length of the mean gradient. The dot product $u\cdot v$ of the gradients of two
#   independent large batches has mean $\|\mathbb E u\|^2$, free of the noise's bias (it can
#   come out negative when the mean is small). Four pairs give a mean and its standard error,
#   with 3 degrees of freedom.
#
# A ratio is shown only where the squared mean exceeds the two-sided 95 % t quantile times its
# standard error. Its ± comes from that standard error alone.

# %%
T_95_3DOF = 3.182  # two-sided 95 % quantile of Student's t with 3 degrees of freedom (four pairs)


def gradient_noise(s, n_batches=100, batch_size=128, n_pairs=4, big=16_384):
    """Total gradient variance of DSM(σ = s) for the σ-conditioned network over batches of
    ``batch_size``, the squared mean gradient ± its s.e. (from independent pairs), and their ratio."""
    g = make_generator(7)

    def grad(batch):
        ncsn_model.zero_grad()
        losses.dsm_loss(lambda y: ncsn_model(y, s), batch, s, generator=g).backward()
        return torch.cat([q.grad.flatten() for q in ncsn_model.parameters()])

    variance = torch.stack([grad(p.sample(batch_size, generator=g)) for _ in range(n_batches)]).var(0).sum().item()
    pairs = torch.tensor([(grad(p.sample(big, generator=g)) @ grad(p.sample(big, generator=g))).item()
                          for _ in range(n_pairs)])
    signal2, signal2_se = mean_and_se(pairs)
    if signal2 <= T_95_3DOF * signal2_se:
        return variance, signal2, signal2_se, None, None
    ratio = math.sqrt(variance / signal2)
    return variance, signal2, signal2_se, ratio, ratio * signal2_se / (2 * signal2)  # ratio ± s.e. (delta method)


noise_sigmas = (0.02, 0.05, 0.1, 0.3, 1.0, 3.0)
noise_rows = {s: gradient_noise(s) for s in noise_sigmas}
variances = [r[0] for r in noise_rows.values()]
slope = np.polyfit(np.log(noise_sigmas[:4]), np.log(variances[:4]), 1)[0]

# %%
# NBVAL_CHECK_OUTPUT
print(f"log-log slope of the gradient variance for σ ≤ 0.3: {slope:.1f}")
print(f"a ratio is shown where ‖mean gradient‖² > {T_95_3DOF:.2f} × its s.e. "
      "(two-sided 95 % quantile of t, 3 degrees of freedom)")
print(f"{'σ':>5s} {'gradient variance':>18s} {'σ⁴ × that':>10s} {'‖mean gradient‖²':>22s} {'noise / signal':>15s}")
for s, (var, m2, m2_se, ratio, ratio_se) in noise_rows.items():
    shown = "not resolved" if ratio is None else f"{ratio:.1f} ± {ratio_se:.1f}"
    print(f"{s:5.2f} {var:18.3g} {s**4 * var:10.3f} {f'{m2:.3g} ± {m2_se:.2g}':>22s} {shown:>15s}")

# %% [markdown]
# The log-log slope is −3.9, and σ⁴ times the variance stays between 0.024 and 0.060: the
# variance grows about like $\sigma^{-4}$, as the formula above says. The mean gradient is
# resolved at σ = 3, 1 and 0.3. There the noise-to-signal ratio at a batch of 128 grows as σ
# falls: 2.9 ± 0.1, 5.1 ± 0.2 and 10.2 ± 1.4. At σ ≤ 0.1 four pairs do not resolve the mean,
# so this run does not say how the ratio goes on below σ = 0.3. These numbers are for one
# level's loss at fixed weights, not for the training steps, which mix levels.
#
# **So what does the σ² weight do?** It balances the levels *against each other*. Without it,
# the gradient noise of level σ would scale like the square root of the variance column: about
# four orders of magnitude from σ = 3 to σ = 0.02, so the smallest σ would dominate every step.
# With it, each level's gradient is multiplied by σ² and its variance by σ⁴: the σ⁴ column,
# within a factor of three across the six levels (lesson 06 §3 checks this on MNIST). The
# weight does not make any single level's gradient less noisy.
#
# ## Think
#
# 1. DSM's minimum value is the constant $C$, not zero. Why does that make the training loss a
#    poor progress indicator, and what could you monitor instead when the true score is
#    unknown?
#
# <details><summary>Model answer</summary>
#
# The loss is $C + J_\mathrm{ESM}(\theta; p_\sigma)$, and only the second term measures the model.
# $C$ is unknown in practice and large at small σ: 5.10 here at σ = 0.3, with a per-sample
# standard deviation of 7.2. A batch's loss scatters around $C$ by far more than the ESM term
# still to be gained, so a flat, noisy curve cannot tell "converged" from "stuck". How fast $C$
# grows as σ falls depends on the data, since
# $C = \tfrac12\mathbb E\operatorname{tr}\operatorname{Cov}[x\mid\tilde x]/\sigma^4$ (Exercise 2).
# For data with a density in $d$ dimensions the posterior covariance is about $\sigma^2 I$ at
# small σ, so $C\approx d/(2\sigma^2)$; for a finite training set $C$ goes to zero.
#
# Better monitors:
# - the DSM loss on a fixed held-out set with *fixed* noise: the same $z$, drawn once and
#   reused at every evaluation, so that its changes come from the model only. Compare it over
#   time, not with $C$: one fixed draw can even land below $C$ (section 4);
# - what the score is for: the quality of denoised samples (Tweedie, section 3) or of samples.
#
# </details>
#
# 2. Vincent's identity holds for any σ. What goes wrong as σ → 0, and what as σ grows? Use
#    sections 1, 5 and 6, and say which of the usual worries this 1-D example does *not* show.
#
# <details><summary>Model answer</summary>
#
# As σ → 0:
#
# (a) The target $\nabla\log p_\sigma$ tends to the score of $p$, which for data on a thin set
# does not exist (section 1: off the circle it blows up like (distance)/σ²).
#
# (b) The learned score's error grows as σ falls (section 5, EMA weights): from 0.012 at σ = 3
# to 0.537 at σ = 0.02. The absolute error of $f_\theta = \sigma s_\theta$ stays between 0.005
# and 0.036, but its target shrinks like σ here, so the relative error grows from 5 % to 68 %.
#
# (c) The loss and its gradient get noisy: $C\approx d/(2\sigma^2)$ for data with a density,
# and the gradient variance grows about like $\sigma^{-4}$ (slope −3.9). The noise-to-signal
# ratio at a batch of 128 grew from 2.9 ± 0.1 at σ = 3 to 10.2 ± 1.4 at σ = 0.3; below that
# it was not resolved.
#
# What the example does not show: the region the noisy data cover shrinking as σ falls. It
# hardly moves (section 5's first table), because even at its lowest between the modes $p$
# stays at 0.0069 of its peak (at x = −0.41), above the $10^{-3}$ threshold (printed there).
#
# As σ grows: bias. The model learns the score of a blurred density, TV(p, p_σ) = 0.17 at σ = 1
# and 0.46 at σ = 3, so samples from it would be blurred too.
#
# </details>
#
# 3. Tweedie's formula gives the posterior *mean*. For σ = 3 and $\tilde x = -3$ it returns a
#    point between the modes, where the data density is tiny. Is that a bad denoiser?
#
# <details><summary>Model answer</summary>
#
# Not by its own criterion: the posterior mean minimises the expected squared error. At σ = 3,
# $\tilde x = -3$ comes from the light mode at −3 with posterior probability 0.40 and from the
# heavy one at +3 with 0.60 (section 3). The squared-error-optimal guess hedges between them.
# Its posterior variance is 7.91, against 0.90 if $\tilde x$ were known to come from one
# component. It is a bad *sample*: it is not a plausible clean point. A denoiser that must return a plausible point (the posterior mode, or
# a draw from the posterior) trades a larger expected error for plausibility. Lesson 05 samples
# with Langevin dynamics, which aims at draws from $p_\sigma$ rather than at a conditional mean.
#
# </details>
#
# 4. The density recovered from the learned score at σ = 0.3 put a slightly wrong mass on the
#    left mode. Where along the $x$-axis must the score be wrong for that to happen?
#
# <details><summary>Model answer</summary>
#
# Almost anywhere the density is not tiny. The recovered $\log\hat p$ is the integral of the
# score, so an error between the modes changes the ratio of the two modes' heights by about
# $e^{\delta\ell}$ (δ over a stretch of length ℓ). Inside a Gaussian mode of variance $v$, a
# constant error $c$ moves the mode by $c\,v$ and leaves its width alone; an error whose slope
# is wrong changes the width, and a mode's mass is its height times its width. To first order the change of a region's log-mass
# is the $\hat p$-weighted average of $\Delta\log\hat p$ over it, so every region's score error
# enters, and errors in different places can cancel. Only the far tails, where the density is
# tiny, hardly matter.
#
# </details>
#
# 5. The σ-conditioned network takes $\log\sigma$ as input and divides its output by σ,
#    $s_\theta = f_\theta/\sigma$. The usual argument for the division: the target $-z/\sigma$ has
#    size about $1/\sigma$ (50 at σ = 0.02, 0.2 at σ = 5), so a raw output would have to change
#    its scale with σ, while $f_\theta$ is of order one at every σ. Does that hold for the data of
#    this lesson? The cell below prints the RMS of the exact score $\nabla\log p_\sigma$ under
#    $p_\sigma$, for the 1-D mixture and for the circle of section 1. What does the division do
#    whatever the data?

# %%
# NBVAL_CHECK_OUTPUT
xs_rms = torch.linspace(-40, 40, 8001, dtype=torch.float64)
noise_2d = torch.randn(100_000, 2, generator=make_generator(50), dtype=torch.float64)
print("RMS of ∇log p_σ under p_σ: the mixture by quadrature, the circle by Monte Carlo (100,000 noisy points)")
print(f"{'σ':>5s} {'mixture':>8s} {'σ·that':>7s} {'circle':>7s} {'σ·that':>7s}")
for s in (0.02, 0.3, 1.0, 5.0):
    s_noisy = p.perturbed(s)
    dens, score = torch.exp(s_noisy.log_prob(xs_rms[:, None])), s_noisy.score(xs_rms[:, None])[:, 0]
    rms_mixture = math.sqrt(torch.trapezoid(dens * score**2, xs_rms).item())
    # the circle's p_σ is symmetric under rotations: noisy points around (1, 0) will do, and the exact
    # score of section 1 is radial, (-r + I₁(r/σ²)/I₀(r/σ²))/σ²
    r = (torch.tensor([1.0, 0.0], dtype=torch.float64) + s * noise_2d).norm(dim=1)
    radial = (-r + torch.special.i1e(r / s**2) / torch.special.i0e(r / s**2)) / s**2
    rms_circle = radial.pow(2).mean().sqrt().item()
    print(f"{s:5.2f} {rms_mixture:8.3f} {s * rms_mixture:7.3f} {rms_circle:7.2f} {s * rms_circle:7.2f}")

# %% [markdown]
# <details><summary>Model answer</summary>
#
# Not for the mixture. What the output must fit is not the target $-z/\sigma$ but its
# conditional mean, $\nabla\log p_\sigma$ (section 2). For the smooth 1-D mixture its RMS is
# 0.989, 0.944, 0.661 and 0.185 at σ = 0.02, 0.3, 1 and 5: of order one at small σ, where it
# tends to the score of $p$, and falling once σ exceeds the data's spread. A raw output would
# span about a factor 5; $f_\theta = \sigma s_\theta$ has RMS 0.020 at σ = 0.02 and 0.927 at
# σ = 5, a wider range, and is small at small σ rather than of size one.
#
# The argument holds where the score itself grows like $1/\sigma$. Off a thin set, a noisy
# point lies about σ away from the set, across it, and the score there is about
# (distance)/σ² (section 1). For the circle the RMS is 49.95 at σ = 0.02 and σ times it stays
# between 0.97 and 1.40 at the four σ. For images in $d \gg 1$ dimensions near a set of much
# lower dimension, σ times the score is about the square root of the number of directions
# across the set, at every small σ, and a raw output would need a scale that follows
# $1/\sigma$. It also holds for σ much larger than the data's spread, where $p_\sigma$ is close
# to a Gaussian of variance about σ² and σ times its score has RMS close to $\sqrt d$ (0.927
# here at σ = 5, $d = 1$).
#
# Whatever the data, the division puts the σ²-weighted loss on $f_\theta$: level σ's term is
# $\tfrac12\mathbb E\|f_\theta + z\|^2$, a target of size one at every level, and its gradient
# with respect to the output, $f_\theta + z$, has noise of size one; with the raw output the
# same term's gradient with respect to $s_\theta$ is $\sigma(\sigma s_\theta + z)$, of size σ.
# The price: an error of $s_\theta$ is an error of $f_\theta$ divided by σ. For this smooth
# mixture the target of $f_\theta$ is small at small σ (RMS 0.020 at σ = 0.02), so a small
# absolute error of $f_\theta$ is a large relative error there (section 5). Likewise
# $\log\sigma$ (from about −4 to 2) is a well-scaled input, whereas σ itself would squeeze all the small levels into
# [0.02, 0.1], where the network could hardly tell them apart.
#
# </details>
#
# ## Summary
#
# - Adding noise $\tilde x = x + \sigma z$ turns $p$ into $p_\sigma = p*\mathcal N(0,\sigma^2 I)$,
#   whose score exists everywhere even for data on a thin set (a Parzen estimate on finite
#   data, whose score is DSM's optimum on a finite training set); the kernel's score
#   $-z/\sigma$ is known.
# - **Vincent (2011):** $J_\mathrm{DSM} = J_\mathrm{ESM}(\cdot; p_\sigma) + C$, $C$ half the expected
#   trace of the target's conditional covariance: DSM learns the score of the *noisy* density
#   (visibly so at σ = 1), with no derivative of the model with respect to its input; its loss
#   scatters around $C$, not 0.
# - **Tweedie** (Robbins 1956; Miyasawa 1961; Efron 2011): $\mathbb E[x\mid\tilde x] = \tilde x + \sigma^2\nabla\log p_\sigma(\tilde x)$
#   for Gaussian noise of known σ; a denoising autoencoder's loss is $\sigma^4$ times DSM
#   (Vincent 2011; Alain & Bengio 2014 on what a denoising autoencoder learns as σ → 0).
# - In 1-D a score determines its density: integrate and normalise.
# - σ trades bias (blur) against the learned score's error. In one run of the σ²-weighted
#   noise-conditional loss, the absolute error of the network's output $\sigma s_\theta$ stayed
#   between 0.005 and 0.036 at every σ. Its target shrinks like σ for this smooth $p$, so the relative error
#   (the same for $\sigma s_\theta$ and $s_\theta$) grew as σ fell, to 68 % at σ = 0.02. In that
#   run the last iterate of constant-learning-rate Adam was worse than its EMA at σ ≤ 0.1 (one
#   seed: whether the gap depends on σ is not measured).
# - For the network $s_\theta = f_\theta/\sigma$, DSM's gradient variance grew about like
#   $\sigma^{-4}$ as σ fell: $\sigma^{-2}$ from the target, $\sigma^{-2}$ from the division. At a
#   batch of 128 the noise was several times the mean gradient where that was resolved, and
#   more so at smaller σ. The σ² weight does not change any level's noise-to-signal ratio: it
#   balances the levels against each other.
# - Song & Ermon (2019, §3) motivate many noise levels and annealed sampling by the manifold
#   hypothesis, poorly covered low-density regions and slow mixing between modes (lessons 05
#   and 06).
