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
# # Lesson 6 — A noise-conditional score network on MNIST
#
# Everything so far lived in one or two dimensions, where the true score was known. This
# lesson puts the pieces together on 28×28 images of handwritten digits ($d = 784$): DSM from
# lesson 04, annealed Langevin from lesson 05, and one network that knows *every* noise level —
# the **noise-conditional score network** (NCSN) of Song & Ermon (2019), with several
# improvements from their second paper (Song & Ermon 2020, "Improved techniques for training
# score-based generative models", NCSNv2). Where the two differ, the text says which is which.
#
# **After this lesson you can**
# 1. explain why one σ is not enough, and choose a geometric σ schedule from the data (the
#    largest level about the distance between digits, the smallest invisible);
# 2. describe the noise-conditional network $s_\theta(x, \sigma)$, why its output is divided
#    by σ, and how EDM's preconditioning and continuous σ generalise that;
# 3. show with numbers why each level's DSM term is weighted by σ², and write the NCSN loss;
# 4. sample digits by annealed Langevin from a trained network, follow a sample through the σ
#    levels, and measure sample quality with a Fréchet distance and its sampling spread;
# 5. use the same network to denoise (Tweedie) and to fill in missing pixels (in-painting);
# 6. (capstone) write the loss, a training step and the sampler yourself, train a small network
#    for a few minutes, and sample it.
#
# **Conventions.** Langevin step $x \leftarrow x + \varepsilon\,s(x) + \sqrt{2\varepsilon}\,z$;
# σ schedules from largest to smallest, $\sigma_1 > \dots > \sigma_L$; losses with the ½,
# summed over pixels and averaged over the batch; pixel values in [0, 1].
#
# **Data.** The digits are the MNIST test split that ships with the course (`data/mnist`,
# 10,000 images, checksum-verified when read), loaded once in the setup cell by
# `mnist_train_heldout()`: 2,000 digits drawn at random (seed 0) are held out for every quality
# measurement, and the other 8,000 train the networks. The test split's first 5,000 digits come
# from NIST's Special Database 3 and its last 5,000 from Special Database 1, written by different
# groups of people, so a random draw, not a block, gives training and held-out digits the same mix
# of writers; the held-out digits come in the draw's order, so any part of them is a random subset
# of the 2,000. Sampling needs only the shipped checkpoint.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.course.checks import (
    check_annealed_sampler,
    check_ncsn_loss_at,
    check_ncsn_training_step,
    student_or_reference,
)
from lessons_lib.explorers import TrajectoryExplorer
from lessons_lib.mnist import (
    SAMPLERS,
    NCSNUNet,
    class_histogram,
    frechet_distance,
    load_checkpoint,
    load_classifier,
    mnist_train_heldout,
    nearest_neighbours,
    sample,
)
from lessons_lib.mnist.quality import classifier_outputs
from lessons_lib.noise import geometric_sigmas
from lessons_lib.plotting import image_grid
from lessons_lib.samplers import annealed_inpainting, langevin
from lessons_lib.stats import mean_and_sd, mean_and_se
from lessons_lib.utils import make_generator

seed_everything(0)
D = 28 * 28  # dimension of an image
split = mnist_train_heldout()  # the MNIST test split ships with the course (data/mnist)
print(split.source)

# %% [markdown]
# ## 1. From DSM at one σ to many σ
#
# **Why one σ fails.** Lesson 04 showed the trade-off of a single noise level. DSM at σ learns
# the score of $p_\sigma = p * \mathcal N(0, \sigma^2 I)$. With a *small* σ, $p_\sigma\approx p$,
# but the noisy training points stay close to the data, so the learned score is accurate only
# there: digits occupy a thin set in $[0,1]^{784}$, and a Langevin chain started from noise
# begins exactly where the network has never been trained. With a *large* σ the noisy points
# lie on a shell of radius about σ√d around the data, far wider than the data, but the score is
# that of a heavily smoothed density, whose samples are digits buried in noise. Lesson 05 added a third, even with exact scores: plain Langevin crosses
# between separated modes only rarely, so a run short in Langevin time gets their *weights*
# wrong (after 1,000 steps of ε = 0.01 the 1 : 9 mixture was near 4 : 6; annealing over
# σ₁ > … > σ_L with as many evaluations gave 1 : 9, and plain Langevin with a larger step came
# close to it, a difference lesson 05 could not resolve). So we learn the score at many levels and
# anneal.
#
# **The geometric σ schedule.** Song & Ermon (2019) choose
#
# $$\sigma_i = \sigma_1\Big(\frac{\sigma_L}{\sigma_1}\Big)^{\frac{i-1}{L-1}},\qquad i = 1,\dots,L,$$
#
# a constant ratio between neighbours, i.e. equal steps in $\log\sigma$. The 2019 paper used
# σ₁ = 1, σ_L = 0.01 and L = 10 for every data set. The 2020 paper (NCSNv2) sets σ₁ to the
# *largest* distance between training points and derives the ratio from the dimension; σ_L
# stays small. This course takes σ₁ = 10, near the *median* distance, below NCSNv2's rule:
#
# * **σ₁ comparable to the distance between data points.** Add noise σz to two digits $a$ and $b$ at
#   distance Δ. The best guess of which digit a noisy image came from picks the nearer one, and
#   it errs when the noise's component along $b - a$ (a 1-D normal with standard deviation σ,
#   whatever $d$) exceeds Δ/2: with probability $\Phi(-\Delta/2\sigma)$. Only the ratio Δ/σ
#   matters. When σ is comparable to the distance between digits, the noisy versions of two
#   typical digits are often confused; for two digits alone, $p_\sigma$ has a single mode once
#   $\sigma \ge \Delta/2$. A chain at such a level is not yet held near one digit, which is what
#   the annealing of lesson 05 needs at its first levels.
# * **σ_L invisible.** At σ = 0.01 the noise per pixel is 0.01 ≈ 2.6 grey levels out of 255:
#   $p_{\sigma_L}$ is the data, for the eye.
#
# The course uses $L = 15$ levels from σ₁ = 10 to σ_L = 0.01. Measure the distances of 500
# training digits, and check Φ(−Δ/2σ) by brute force in 784 dimensions on the pair of digits
# whose distance is closest to the median.
#
# **How many levels?** The noise $\sigma z$ has length $\sigma\sqrt d$ with spread only about
# $\sigma/\sqrt2$, so in $d = 784$ the noisy images of level σ lie in a thin shell around the
# data. NCSNv2 picks the ratio γ = σᵢ/σᵢ₊₁ so that neighbouring shells overlap: γ solves
# $\Phi(\sqrt{2d}(\gamma-1) + 3\gamma) - \Phi(\sqrt{2d}(\gamma-1) - 3\gamma) \approx 0.5$. The cell below
# computes it, and how far apart our shells are.

# %%
sigmas = geometric_sigmas(10.0, 0.01, 15)
digits = split.train[:500].flatten(1)
dist = torch.cdist(digits, digits)
pair_dist = dist[torch.triu_indices(500, 500, offset=1).unbind()]
median_dist, max_dist = pair_dist.median().item(), pair_dist.max().item()
i, j = divmod(int((dist - median_dist).abs().add(torch.eye(500) * 1e9).argmin()), 500)
a, b = digits[i], digits[j]
delta = (a - b).norm().item()
confusion = {}
for s in (10.0, 3.0, 1.0):
    noisy = a + s * torch.randn(20_000, D, generator=make_generator(1))
    wrong = ((noisy - b).norm(dim=1) < (noisy - a).norm(dim=1)).double().mean().item()
    confusion[s] = (wrong, 0.5 * math.erfc(delta / (2 * s) / math.sqrt(2)))

# NCSNv2's ratio: Φ(√(2d)(γ−1) + 3γ) − Φ(√(2d)(γ−1) − 3γ) = 0.5, solved by bisection
def shell_overlap(gamma, d=D):
    phi = lambda t: 0.5 * math.erfc(-t / math.sqrt(2))  # noqa: E731
    return phi(math.sqrt(2 * d) * (gamma - 1) + 3 * gamma) - phi(math.sqrt(2 * d) * (gamma - 1) - 3 * gamma)


lo, hi = 1.0001, 2.0
for _ in range(60):
    lo, hi = ((lo + hi) / 2, hi) if shell_overlap((lo + hi) / 2) > 0.5 else (lo, (lo + hi) / 2)
gamma_v2 = lo
gamma = (sigmas[0] / sigmas[1]).item()

# %%
# NBVAL_CHECK_OUTPUT
print("σ schedule (largest first):", [round(s, 3) for s in sigmas.tolist()])
print(f"ratio between neighbouring levels: {gamma:.3f}; shell radius σ√d, shell spread ≈ σ/√2: "
      f"neighbouring shells are {math.sqrt(D) * (gamma - 1) / (1 / math.sqrt(2)):.0f} spreads apart")
print(f"NCSNv2's rule in d = {D}: γ = {gamma_v2:.3f}, i.e. {math.log(1000) / math.log(gamma_v2) + 1:.0f} levels from 10 to 0.01 "
      f"(overlap measure at our γ: {shell_overlap(gamma):.1e})")
print(f"distance between two of 500 training digits: median {median_dist:.2f}, largest {max_dist:.2f};  σ₁ = {sigmas[0]:.0f}")
print(f"a pair at distance Δ = {delta:.2f}: how often the nearer digit is the wrong one (20,000 noisy copies)")
for s, (measured, predicted) in confusion.items():
    print(f"  σ = {s:4.1f}: measured {measured:.3f}, Φ(−Δ/2σ) = {predicted:.3f}")

# %% [markdown]
# At σ₁ = 10 two typical digits are confused a third of the time; by σ = 1 practically never. So
# at the first levels a chain *can* still move between digit classes — what annealing relied on
# in lesson 05; section 5b measures when the chains' digits become readable. (The
# noise vector itself is much longer than Δ: ‖σz‖ ≈ σ√d = 10 · 28 at σ = 10. What matters for
# telling two digits apart is only its component along their difference.)
#
# Our levels are 1.64× apart, so in 784 dimensions the noise shells of neighbouring levels are
# far apart (the distance between their radii is many times their spread) and do not overlap;
# NCSNv2's rule would ask for a ratio of about 1.08 and some 90 levels. Section 5b looks at the
# chains at the end of each level; how accurate the score is where each level starts, the
# concern behind NCSNv2's rule, this lesson does not measure.
#
# **The manifold hypothesis, and why noise is needed at all** (Song & Ermon 2019, §3). Real
# images are thought to lie on or near a low-dimensional set of their space. A linear count
# hints at it for the digits: below, 95% of the variance of the 8,000 training digits lies in 148
# of the 784 principal directions (a curved set can be thinner still; this count does not
# measure it). Data on a lower-dimensional set have no density in $\mathbb R^{784}$, so their
# score $\nabla\log p$ is undefined; data merely near one give score matching, whose objectives
# are expectations under $p$, nothing to learn from where a chain started from noise begins.
# Adding noise gives $p_\sigma$ a positive density everywhere, whose score points back to the
# data. The picture shows it for points on a circle in 2-D (a 1-D "manifold"): the score of $p_\sigma$ (here of the Parzen
# density of 200 points) is defined everywhere and has size about distance/σ² wherever the
# distance is large against σ²/(2R), R the circle's radius (the curvature term of lesson 04 §1).

# %%
angles = torch.linspace(0, 2 * math.pi, 201)[:-1]
circle = torch.stack([angles.cos(), angles.sin()], 1)


def circle_score(y, s):
    """Score of the Parzen density (1/n)Σ N(y; cᵢ, s²I) of the circle's points."""
    w = torch.softmax(-torch.cdist(y, circle) ** 2 / (2 * s**2), dim=1)
    return (w @ circle - y) / s**2


off = torch.tensor([[1.2, 0.0]])  # 0.2 from the circle
train_flat = split.train.flatten(1)
variance = torch.linalg.svdvals(train_flat - train_flat.mean(0)) ** 2
explained = variance.cumsum(0) / variance.sum()
print("directions holding 90%, 95%, 99% of the variance of the training digits:",
      [int((explained < q).sum()) + 1 for q in (0.9, 0.95, 0.99)], f"of {D}")
print("size of the score 0.2 away from the circle:",
      ", ".join(f"σ = {s}: {circle_score(off, s).norm():.1f} (0.2/σ² = {0.2 / s**2:.1f})" for s in (0.05, 0.3)))

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4.3), layout="constrained")
g1, g2 = torch.meshgrid(torch.linspace(-2, 2, 15), torch.linspace(-2, 2, 15), indexing="xy")
grid_pts = torch.stack([g1.flatten(), g2.flatten()], 1)
for ax, s in zip(axes, (0.05, 0.3)):
    field = circle_score(grid_pts, s)
    size = field.norm(dim=1, keepdim=True).clamp_min(1e-6)
    arrows = ax.quiver(grid_pts[:, 0], grid_pts[:, 1], *(field / size).T, size[:, 0].log10(), cmap="viridis",
                       clim=(-1, 3), scale=22, width=0.007)
    ax.plot(circle[:, 0], circle[:, 1], "k.", ms=2)
    ax.set(aspect="equal", title=f"score of $p_\\sigma$, σ = {s}", xticks=[], yticks=[])
fig.colorbar(arrows, ax=axes, label="log₁₀ of the score's size (arrows show its direction)")
fig.suptitle("Points on a circle have no density in 2-D; $p_\\sigma$ has one, and its score is defined everywhere")
plt.show()

# %% [markdown]
# ## 2. The noise-conditional network $s_\theta(x, \sigma)$
#
# One network for all levels, told σ as an input. `NCSNUNet` is a small U-Net: three
# resolutions (28, 14 and 7 pixels), residual blocks on the way down and up, skip connections
# between them. σ enters twice. As an **embedding**: $\log\sigma$ is turned into Fourier features
# and a small MLP, and every block scales and shifts its features by a linear function of that
# vector (FiLM), a conditioning in the spirit of the 2019 network, which was told the level's
# index through conditional normalisation. And the last step **divides the output by σ**, as
# NCSNv2 does (Song & Ermon 2020) with an otherwise unconditional network; this U-Net combines
# the two:
#
# $$s_\theta(x, \sigma) = \frac{f_\theta(x, \log\sigma)}{\sigma}.$$
#
# Why: for $\tilde x = x + \sigma z$ the DSM target is $-z/\sigma$, whose size ranges over three
# orders of magnitude across our levels. With the division, the network body $f_\theta$ always
# predicts $-z$, a target of size one at every level. The division is in the code, so
# $s_\theta \propto 1/\sigma$ by construction; the check on a fresh (untrained) network shows that
# the body's output $\sigma s_\theta = f_\theta$ is of order one at every σ.

# %%
seed_everything(0)
fresh = NCSNUNet().eval()
x_any = torch.rand(32, 1, 28, 28, generator=make_generator(2))  # any images will do for this check
with torch.no_grad():
    rms = {s: (fresh(x_any + s * torch.randn(x_any.shape, generator=make_generator(3)), s).pow(2).mean().sqrt().item())
           for s in (10.0, 1.0, 0.1, 0.01)}

# %%
# NBVAL_CHECK_OUTPUT
print(f"NCSNUNet: {sum(p.numel() for p in fresh.parameters()):,} parameters, config {fresh.config}")
print(f"{'σ':>6s} {'RMS of s_θ per pixel':>22s} {'RMS of σ·s_θ':>14s}")
for s, r in rms.items():
    print(f"{s:6.2f} {r:22.3g} {s * r:14.3f}")

# %% [markdown]
# ## 3. Why each level is weighted by σ²
#
# The DSM term of level σ (lesson 04) is
# $\ell(\theta;\sigma) = \tfrac12\,\mathbb E\,\big\|s_\theta(x+\sigma z, \sigma) + z/\sigma\big\|^2$.
# Its target alone has
#
# $$\mathbb E\Big\|\frac z\sigma\Big\|^2 = \frac{1}{\sigma^2}\sum_{k=1}^d\mathbb E z_k^2 = \frac d{\sigma^2},$$
#
# so a model that knows nothing ($s_\theta = 0$) scores $\ell = d/(2\sigma^2)$: 3.9 at σ = 10
# but 3.9 million at σ = 0.01. Summing the levels unweighted, the smallest σ would drown out
# every other level (and its gradient is the noisiest, lesson 04 §6). Song & Ermon weight level σ
# by λ(σ) = σ², which makes every term the same kind of quantity:
#
# $$\sigma^2\,\ell(\theta;\sigma) = \tfrac12\,\mathbb E\,\big\|\sigma\,s_\theta(x+\sigma z,\sigma) + z\big\|^2
#   = \tfrac12\,\mathbb E\,\big\|f_\theta(\tilde x, \log\sigma) + z\big\|^2 ,$$
#
# equal to $\tfrac12\mathbb E\|z\|^2 = d/2 = 392$ for the zero model at *every* level. The NCSN
# loss averages these terms over levels drawn uniformly:
#
# $$J_\mathrm{NCSN}(\theta) = \frac1L\sum_{i=1}^L \sigma_i^2\,\ell(\theta;\sigma_i)
#   = \tfrac12\,\mathbb E_{i}\,\mathbb E_{x,z}\big\|\sigma_i\,s_\theta(x + \sigma_i z, \sigma_i) + z\big\|^2 .$$
#
# Check with numbers: the zero model and the fresh U-Net, 256 noise draws per level, unweighted
# (`losses.dsm_loss`) and weighted (`losses.ncsn_loss_at`, the same noise).

# %%
def zero_score(x, sigma=None):
    return torch.zeros_like(x)


x_batch = torch.rand(256, 1, 28, 28, generator=make_generator(4))  # the zero model ignores x; any images do
weighting = []
with torch.no_grad():
    for s in sigmas[[0, 3, 7, 11, 14]].tolist():
        z = torch.randn(x_batch.shape, generator=make_generator(5))
        plain = losses.dsm_loss(zero_score, x_batch, s, z=z).item()
        weighted = losses.ncsn_loss_at(zero_score, x_batch, s, z=z).item()
        weighted_fresh = losses.ncsn_loss_at(fresh, x_batch, s, z=z).item()
        weighting.append((s, plain, D / (2 * s**2), weighted, weighted_fresh))

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'σ':>6s} {'DSM, zero model':>16s} {'d/(2σ²)':>12s} {'σ²·DSM, zero model':>19s} {'σ²·DSM, fresh U-Net':>20s}")
for s, plain, predicted, weighted, weighted_fresh in weighting:
    print(f"{s:6.3f} {plain:16.4g} {predicted:12.4g} {weighted:19.1f} {weighted_fresh:20.1f}")
print(f"d/2 = {D / 2:.0f}; unweighted terms span a factor {weighting[-1][1] / weighting[0][1]:.3g}, "
      f"weighted ones {max(w[3] for w in weighting) / min(w[3] for w in weighting):.3f}")

# %% [markdown]
# Unweighted, the terms differ by a factor $(\sigma_1/\sigma_L)^2 = 10^6$; weighted, they are all
# ≈ 392 for the zero model (one and the same number, because every level used the same 256
# noise draws; its Monte-Carlo standard error is $\tfrac12\sqrt{2d}/\sqrt{256}\approx1.2$),
# and the untrained network starts from about the same value at every level. Training lowers every level from
# there; as in lesson 04 the minimum is not zero.
#
# ### Exercise 1 (3 points): the NCSN loss
#
# Each sample of the batch comes with its own level: `sigma` has shape (B,). Given the noise `z`
# (shape of `x`), perturb, evaluate the score *with each sample's σ*, and return
# ½ · mean over the batch of $\|\sigma\,s(\tilde x, \sigma) + z\|^2$, summed over pixels. It must
# work for points (B, d) and for images (B, 1, 28, 28).

# %%
def ncsn_loss_at(score_fn, x, sigma, z):
    """½ · mean over the batch of ‖σ·score_fn(x + σz, σ) + z‖², summed over dimensions; sigma of shape (B,)."""
    # Hint: sigma has shape (B,); view it as (B, 1, ..., 1) so that it broadcasts against x, but
    # give score_fn the (B,) tensor itself.
    ### BEGIN SOLUTION
    s = sigma.view(-1, *[1] * (x.dim() - 1))
    residual = s * score_fn(x + s * z, sigma) + z
    return 0.5 * residual.pow(2).flatten(1).sum(1).mean()
    ### END SOLUTION


# %%
check_ncsn_loss_at(ncsn_loss_at)

# %% [markdown]
# From here on the notebook uses the library's `losses.ncsn_loss`, which also draws each
# sample's level uniformly from the schedule and the noise `z` from a `generator`. You will use
# your `ncsn_loss_at` again in the capstone (section 9), where you train a small network yourself.
#
# ## 4. The shipped network
#
# Training a network that draws good digits takes about an hour on two CPU cores, so the rest
# of the lesson loads one (`load_checkpoint()`). It is the U-Net of section 2 with wider channels
# (48, 96, 96 instead of 32, 64, 64), trained by the course's loop `train` with Adam on the 8,000
# training digits and sampled from an exponential moving average (EMA) of its weights (an NCSNv2
# technique), but with σ drawn from a continuum and EDM's weighting (section 4b). Its record
# `ck.meta` holds the commands that made it (one run, then a resumed one); `checkpoints/README.md`
# says how long they took. Its $J_\mathrm{NCSN}$ on the 15 levels of section 1, on held-out digits
# it never saw:

# %%
ck = load_checkpoint()
meta = ck.meta
print("commands:", *meta["commands"], sep="\n  ")
print(f"network:  {ck.model.config}")
print(f"training: {meta['steps']:,} steps of batch {meta['batch_size']}; σ: {meta['training']}")
with torch.no_grad():  # one level and one noise draw per digit: a Monte-Carlo estimate
    per_digit = losses.ncsn_loss(ck.model, split.heldout[:500], sigmas, generator=make_generator(20), reduction="none")
shipped_loss, shipped_se = mean_and_se(per_digit)
print(f"J_NCSN of the shipped network on 500 held-out digits: {shipped_loss:.1f} ± {shipped_se:.1f} "
      f"(Monte-Carlo s.e.); the zero model: d/2 = {D / 2:.0f}")

# %% [markdown]
# ### 4b. The shipped network: every σ, and EDM's preconditioning and weighting
#
# The shipped network is trained the way Karras, Aittala, Aila & Laine (2022, "Elucidating the
# design space of diffusion-based generative models", **EDM**) recommend. Three changes:
#
# 1. **Every σ.** Each training image gets its own level from a continuum,
#    $\ln\sigma\sim\mathcal N(-1.2, 1.2^2)$, instead of one of 15 fixed levels, so one network can
#    be asked at any σ: the 15 levels of section 5, the Karras levels of section 5c, the continuous
#    time of lesson 07. The draws concentrate around σ ≈ 0.3 (printed below): levels above 10,
#    where the samplers of 5c and lesson 07 start, are rarely trained. There the noisy image
#    says little about the digit and the best denoiser is close to the data's mean image, which
#    item 2's $F_\theta$ gives with an output that hardly depends on its input; lesson 07
#    measures the network's noise prediction at several σ.
# 2. **Preconditioning.** The body $F_\theta$ sees its input scaled to unit RMS and
#    corrects a denoiser,
#
#    $$D_\theta(x,\sigma) = c_\mathrm{skip}\,x + c_\mathrm{out}\,F_\theta(c_\mathrm{in}\,x,\ \log\sigma),\qquad
#      c_\mathrm{skip} = \frac{\sigma_d^2}{\sigma^2+\sigma_d^2},\quad
#      c_\mathrm{out} = \frac{\sigma\,\sigma_d}{\sqrt{\sigma^2+\sigma_d^2}},\quad
#      c_\mathrm{in} = \frac{1}{\sqrt{\sigma^2+\sigma_d^2}},$$
#
#    with $\sigma_d$ the RMS of the training pixels. EDM defines $\sigma_\mathrm{data}$ as the data's
#    standard deviation; for pixels in [0, 1], whose mean is not zero, it is the RMS (the square
#    root of the second moment) that makes the input's and the target's mean squares exactly 1
#    below. The score follows by Tweedie's formula
#    (section 7), $s_\theta = (D_\theta - x)/\sigma^2$. At small σ, $c_\mathrm{skip}\approx1$ and
#    $c_\mathrm{out}\approx\sigma$: $F_\theta$ predicts the noise, like $f_\theta$ above. At large σ,
#    $c_\mathrm{skip}\approx0$ and $c_\mathrm{out}\approx\sigma_d$: $F_\theta$ predicts the clean digit
#    (scaled) rather than a noise that makes up almost all of its input.
# 3. **Weighting.** The denoiser's error $\tfrac12\|D_\theta - x\|^2$ at level σ is weighted by
#    $\lambda(\sigma) = (\sigma^2+\sigma_d^2)/(\sigma\sigma_d)^2 = 1/c_\mathrm{out}^2$, which turns the
#    loss into $F_\theta$'s plain squared error against its unit-RMS target: the same effective
#    weight at every σ. Since $D_\theta - x = \sigma(\sigma s_\theta + z)$ for
#    $\tilde x = x + \sigma z$, this is section 3's σ² weighting times $1 + \sigma^2/\sigma_d^2$:
#
#    $$J_\mathrm{EDM}(\theta) = \mathbb E_{\sigma}\,\tfrac12\Big(1 + \frac{\sigma^2}{\sigma_d^2}\Big)\,
#      \mathbb E\big\|\sigma\,s_\theta(x+\sigma z,\sigma) + z\big\|^2 ,$$
#
#    the same as $J_\mathrm{NCSN}$'s terms at small σ, with more weight where σ > σ_d.
#
# In the library: `NCSNUNet(preconditioning="edm", sigma_data=...)` and `losses.edm_loss`. Once
# σ_d is the data's RMS, $F_\theta$'s input $c_\mathrm{in}\tilde x$ and its target
# $(x - c_\mathrm{skip}\tilde x)/c_\mathrm{out}$ have mean square 1 at every σ by algebra alone (expand
# the squares; $x$ and $z$ are independent). So computing them on 500 held-out digits tests only
# that these digits' RMS matches the σ_d of the training digits. Beside them, the RMS of what
# section 2's body $f_\theta$ is given, $\tilde x$ itself.

# %%
p_mean, p_std = meta["training"]["p_mean"], meta["training"]["p_std"]
normal_cdf = lambda u: 0.5 * math.erfc(-u / math.sqrt(2))  # noqa: E731
print(f"training levels ln σ ~ N({p_mean:g}, {p_std:g}²): median σ = {math.exp(p_mean):.2f}, 95% between "
      f"{math.exp(p_mean - 1.96 * p_std):.2f} and {math.exp(p_mean + 1.96 * p_std):.1f}; "
      f"P(σ > 10) = {1 - normal_cdf((math.log(10) - p_mean) / p_std):.2%}")
sd = ck.model.sigma_data
heldout_500 = split.heldout[:500]
edm_scales = []
for k, s in enumerate((10.0, 1.0, 0.3, 0.1, 0.01)):
    noisy = heldout_500 + s * torch.randn(heldout_500.shape, generator=make_generator(21 + k))
    c_skip, c_out, c_in = sd**2 / (s**2 + sd**2), s * sd / math.sqrt(s**2 + sd**2), 1 / math.sqrt(s**2 + sd**2)
    rms_in = (c_in * noisy).pow(2).mean().sqrt().item()
    rms_target = ((heldout_500 - c_skip * noisy) / c_out).pow(2).mean().sqrt().item()
    rms_plain = noisy.pow(2).mean().sqrt().item()  # what section 2's body f_θ is given
    edm_scales.append((s, c_skip, c_out, rms_in, rms_target, rms_plain, 1 + s**2 / sd**2))

# %%
# NBVAL_CHECK_OUTPUT
print(f"σ_d = {sd:.3f} (the checkpoint's); RMS of the held-out pixels {heldout_500.pow(2).mean().sqrt():.3f}")
print(f"{'σ':>6s} {'c_skip':>7s} {'c_out':>6s} {'RMS of F input':>15s} {'RMS of F target':>16s} "
      f"{'RMS of f input (§2)':>20s} {'1 + σ²/σ_d²':>12s}")
for s, c_skip, c_out, rms_in, rms_target, rms_plain, extra in edm_scales:
    print(f"{s:6.2f} {c_skip:7.4f} {c_out:6.3f} {rms_in:15.2f} {rms_target:16.2f} {rms_plain:20.2f} {extra:12.4g}")

# %% [markdown]
# Both are 1.00 at every σ from 10 down to 0.01, as the algebra requires; what this tests is
# that the held-out digits' RMS (0.336) matches the training digits' σ_d (0.338). Section 2's body has a target of unit
# size too (−z, at every σ); what EDM changes is the input, whose RMS there runs from 0.34 at
# σ = 0.01 to 10 at σ = 10 (the "§2" column), and the target at large σ, the clean digit instead
# of the noise. The last column is how much more EDM weighs each sample at a level than section 3
# does: 1.001 at σ = 0.01, about 880 at σ = 10 (a level's weight in training is also multiplied by
# how often σ is drawn there).
# %% [markdown]
# ## 5. Sampling with the shipped checkpoint
#
# Annealed Langevin (lesson 05) from uniform noise over the 15 levels of section 1: at level
# $i$, 20 steps of $x\leftarrow x+\varepsilon_i s_\theta(x,\sigma_i)+\sqrt{2\varepsilon_i}z$ with
# $\varepsilon_i = \varepsilon\,\sigma_i^2/\sigma_L^2$, ε = 3e-5, then one Tweedie step
# $x + \sigma_L^2 s_\theta(x,\sigma_L)$ that removes the last noise (section 7). That final
# denoising step is Jolicoeur-Martineau et al.'s (2020; cf. Saremi & Hyvärinen's 2019 walk-jump), adopted by NCSNv2; the 2019 sampler has
# none. 301 network evaluations (the library's `SAMPLERS["annealed"]` settings;
# `benchmarks/mnist/SCHEDULE.md` chose them), where Song & Ermon (2019) took 100 steps on each of
# their 10 levels, 1,000 in all. We keep the state at the end of every level, for section 5b.

# %%
# NBVAL_IGNORE_OUTPUT
annealed = SAMPLERS["annealed"]
print(annealed, f"· {annealed.n_evaluations(ck)} network evaluations")
samples, trajectory = sample(ck, 64, annealed, generator=make_generator(8), record_every=annealed.n_steps_each)
print(f"64 samples; trajectory of shape {tuple(trajectory.shape)} (start, {len(ck.sigmas)} levels, denoised)")

# %%
fig, ax = plt.subplots(figsize=(6, 6), layout="constrained")
image_grid(ax, samples, nrow=8)
ax.set_title(f"64 samples: {len(ck.sigmas)} levels × {annealed.n_steps_each} steps, ε = {annealed.step_size:g}, + denoising")
plt.show()

# %% [markdown]
# **Which digits?** A classifier trained on real MNIST (`load_classifier()`) labels each
# sample. A good sampler draws each digit about as often as the data do — close to, not exactly,
# one in ten (the held-out bars below). With 64 samples a count of 6 has a sampling error of
# about ±2.4 ($\sqrt{64\cdot0.1\cdot0.9}$, printed below), so the two histograms can only differ grossly.
# Nor can their total variation tell much at this n: the cell below also draws 64 labels from the
# held-out frequencies themselves, a perfect sampler, 2,000 times, and prints the spread of its
# total variation.

# %%
classifier = load_classifier()
hist = class_histogram(samples.clamp(0, 1), classifier)
real = torch.bincount(split.heldout_labels, minlength=10).double() / len(split.heldout_labels)
print("samples per digit 0–9:", hist.counts.tolist(),
      f"· total variation from the held-out digits' frequencies {0.5 * (hist.fractions - real).abs().sum():.2f}")
print(f"sampling error of a count near 6.4 of 64: ±{math.sqrt(64 * 0.1 * 0.9):.1f}")
# a perfect sampler: 64 labels drawn from the held-out frequencies themselves, 2,000 times
perfect = torch.multinomial(real, 2000 * 64, replacement=True, generator=make_generator(41)).view(2000, 64)
perfect_tv = 0.5 * (torch.nn.functional.one_hot(perfect, 10).sum(1) / 64 - real).abs().sum(1)
print(f"total variation of a perfect sampler's 64 labels (2,000 draws): median {perfect_tv.median():.2f}, "
      f"90% of draws between {perfect_tv.quantile(0.05):.2f} and {perfect_tv.quantile(0.95):.2f}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
digits_axis = np.arange(10)
ax.bar(digits_axis - 0.2, hist.fractions.numpy(), width=0.4, label="64 samples (classifier's label)")
ax.bar(digits_axis + 0.2, real.numpy(), width=0.4, label=f"{len(split.heldout_labels):,} held-out real digits")
ax.axhline(0.1, color="k", ls=":", lw=1, label="one in ten")
ax.set(xticks=digits_axis, xlabel="digit", ylabel="fraction", title="Class histogram of the samples")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The samples' total variation (0.15) is a perfect sampler's median: at n = 64 it does not tell
# the two apart.
#
# **How good is "good"? The Fréchet distance.** Map every image to the classifier's 128-d
# penultimate features $\phi(x)$ (`classifier.features`, the layer before its 10 logits), fit a
# Gaussian to each set of features, means $\mu_a,\mu_b$ and covariances $C_a, C_b$, and take the
# squared Fréchet (2-Wasserstein) distance between the two Gaussians:
#
# $$\mathrm{FD} = \|\mu_a - \mu_b\|^2 + \operatorname{tr}\big(C_a + C_b - 2\,(C_aC_b)^{1/2}\big).$$
#
# It is the FID of Heusel et al. (2017) with an MNIST classifier in place of Inception: 0 when
# the two sets have the same feature mean and covariance, larger as they differ. Estimated from
# $n$ images it is **biased upwards**: the sample means and covariances carry errors of order
# $1/\sqrt n$, and even two sets of real digits score FD > 0, the more so the smaller $n$. So an FD
# means something only next to real digits scored at the same $n$ against the same reference.
# Here the reference is one random half of the held-out digits (1,000); real digits come from
# the other half, in 20 random draws of 64 to give the spread of a 64-image FD over draws.

# %%
reference, others = split.heldout[:1000], split.heldout[1000:]
feats_ref, _ = classifier_outputs(reference, classifier, logits=False)
feats_others, _ = classifier_outputs(others, classifier, logits=False)
feats_samples, _ = classifier_outputs(samples.clamp(0, 1), classifier, logits=False)
assert feats_ref.shape[1] == 128  # the classifier's penultimate features
g_fd = make_generator(40)
fd_real_64 = [frechet_distance(feats_others[torch.randperm(1000, generator=g_fd)[:64]], feats_ref) for _ in range(20)]
fd_halves = frechet_distance(feats_others, feats_ref)
fd_real_mean, fd_real_sd = mean_and_sd(fd_real_64)

# %%
# NBVAL_CHECK_OUTPUT
print("FD against the reference half (1,000 held-out digits):")
print(f"  the other half, 1,000 real digits                {fd_halves:6.1f}")
print(f"  64 real digits of the other half, 20 draws       {fd_real_mean:6.1f} (SD over draws {fd_real_sd:.1f})")

# %%
# NBVAL_IGNORE_OUTPUT
print(f"  the 64 annealed samples above                    {frechet_distance(feats_samples, feats_ref):6.1f}")

# %% [markdown]
# The 64 real digits score far above the 1,000: that is the small-sample bias. The samples' FD is
# one draw; the real rows' SD over draws is a guide to its sampling spread. At n = 64 that spread
# is too large to tell the samples from real digits. `python -m benchmarks.mnist.quality` scores
# every sampler of lessons 06 and 07 on 1,000 samples against 1,000 held-out digits (about a
# quarter of an hour on two cores); its results for the shipped network are recorded in
# `checkpoints/README.md`, and the next cell prints the two rows this lesson uses.

# %%
# NBVAL_CHECK_OUTPUT
import re

from lessons_lib.mnist.checkpoint import SCORE_CHECKPOINT

recorded = (SCORE_CHECKPOINT.parent / "README.md").read_text(encoding="utf-8")  # beside the shipped network
for row in recorded.splitlines():
    if row.startswith("| annealed Langevin") or row.startswith("| EDM Heun, S_churn = 40, 18 steps"):
        print(row)
print("two random halves of the held-out digits: FD", re.search(r"the FD is ([\d.]+ ± [\d.]+)", recorded).group(1),
      "(mean ± SD over 10 splits)")

# %% [markdown]
# At n = 1,000 annealed Langevin scores 24.5 and the course's Heun sampler 26.9, against
# 12.2 ± 3.4 between two random halves of the real digits: both are about twice that floor. The
# two samplers were scored against the same reference digits, one draw of samples each, and no
# error bar for their difference was recorded, so these rows do not rank them.
#
# **Are the samples new digits, and why anneal at all?** Two checks. On a finite training set
# the DSM optimum is the score of the Parzen density of the training set (lesson 04 §1 and §4), whose
# samples are copies of training digits plus a little noise; so compare each sample's distance
# to its nearest training digit with the same distance for held-out real digits. And run plain
# Langevin at the smallest level σ_L with as many evaluations (300 steps of ε = 3e-5, then the
# denoising step) from the same kind of start.

# %%
plain_start = torch.rand(16, 1, 28, 28, generator=make_generator(12))
sigma_L = float(ck.sigmas[-1])
with torch.no_grad():
    plain = langevin(lambda x: ck.score(x, sigma_L), plain_start, annealed.step_size, 300, generator=make_generator(13))
    plain_correction = sigma_L**2 * ck.score(plain, sigma_L)  # Tweedie's correction at the chains' end
    noisy_real = split.heldout[:16] + sigma_L * torch.randn(plain.shape, generator=make_generator(14))
    real_correction = sigma_L**2 * ck.score(noisy_real, sigma_L)
    plain = plain + plain_correction

nn_sample, nn_index = nearest_neighbours(samples.clamp(0, 1), split.train)
nn_heldout, _ = nearest_neighbours(split.heldout[:64], split.train)
nn_plain, _ = nearest_neighbours(plain.clamp(0, 1), split.train)
print(f"distance to the nearest of the {len(split.train):,} training digits (median, min):")
for name, d in (("64 held-out real digits", nn_heldout), ("64 annealed samples", nn_sample),
                ("16 plain Langevin at σ_L", nn_plain)):
    print(f"  {name:26s} {d.median():6.2f} {d.min():6.2f}")
rms = lambda t: t.pow(2).mean().sqrt().item()  # noqa: E731
print(f"plain Langevin, per pixel (RMS): moved {rms(plain - plain_correction - plain_start):.2f} from its start; "
      f"all its injected noise together {math.sqrt(2 * annealed.step_size * 300):.2f}")
print(f"Tweedie's correction σ_L²·s at its end {rms(plain_correction):.4f}, "
      f"at held-out digits noised to σ_L {rms(real_correction):.4f}")

# %%
fig, (ax_nn, ax_hist, ax_plain) = plt.subplots(1, 3, figsize=(14, 4), layout="constrained",
                                               gridspec_kw={"width_ratios": [1.3, 1, 1]})
image_grid(ax_nn, torch.cat([samples[:8], split.train[nn_index[:8]]]), nrow=8)
ax_nn.set_title("samples (top) and their nearest training digits (bottom)")
bins = np.linspace(0, max(nn_heldout.max(), nn_sample.max()).item() + 0.5, 20)
ax_hist.hist(nn_heldout.numpy(), bins=bins, alpha=0.5, label="held-out real digits")
ax_hist.hist(nn_sample.numpy(), bins=bins, alpha=0.5, label="annealed samples")
ax_hist.set(xlabel="distance to the nearest training digit", ylabel="count", title="Copies would sit at 0")
ax_hist.legend(fontsize=8)
image_grid(ax_plain, plain, nrow=4)
ax_plain.set_title("plain Langevin at σ_L, 301 evaluations")
plt.show()

# %% [markdown]
# The samples are not copies: their nearest training digits are a little farther away than those
# of held-out real digits (the medians above), the closest sample is about as far from its
# neighbour as the closest held-out digit, and the pairs in the panel differ in their strokes. Plain
# Langevin at σ_L with the same budget produces textures, not digits, far from every training
# digit. Not for lack of movement: its chains moved 0.33 per pixel from their start, more than
# twice all the noise they were given (0.13), so the drift carried them. At their end Tweedie's
# correction $\sigma_L^2 s_\theta$ is about half of its size at real digits noised to σ_L (0.0048
# against 0.0091, the last line): the chains ended where the network's σ_L score is small, far
# from every training digit, where it was never trained.
#
# ### 5b. Following the chains through the σ levels
#
# Eight of the 64 chains, one column per stored state: the uniform-noise start, the end of each
# level (σ decreasing to the right), and the denoised result. Pixel values are shown clipped
# to [0, 1]; at the first levels they spread over about ±3σ, so those columns look like salt
# and pepper.

# %%
chains = trajectory[:, :8]  # (states, chains, 1, 28, 28)
n_states = chains.shape[0]
column_titles = ["start"] + [f"{s:.2g}" for s in ck.sigmas.tolist()] + ["denoised"]
fig, ax = plt.subplots(figsize=(14, 7.2), layout="constrained")
image_grid(ax, chains.transpose(0, 1).reshape(-1, 1, 28, 28), nrow=n_states)
for k, title in enumerate(column_titles):
    ax.text(2 + 30 * k + 14, -3, title, ha="center", va="bottom", fontsize=8)
ax.set_title("Eight chains through the σ levels (σ at the end of each level above its column)", pad=18)
plt.show()

# %% [markdown]
# To the eye nothing appears before σ ≈ 0.8, and below σ ≈ 0.1 the levels only clean the
# strokes. Section 1's pair of digits does not say when a chain's digit is chosen either: it
# bounds how confusable two given digits are at each σ, not when a chain settles among many.
# Instead, measure when each
# chain's digit becomes readable: at the end of every level, denoise the state with Tweedie's formula
# $x + \sigma_i^2 s_\theta(x, \sigma_i)$ (section 7), give it to the classifier, and count the
# chains whose label is already the label of their final sample.

# %%
decided, scale_chain, scale_data = [], [], []
with torch.no_grad():
    final_label = classifier(samples.clamp(0, 1)).argmax(1)
    for k, s in enumerate(ck.sigmas.tolist(), start=1):
        score_k = ck.score(trajectory[k], s)
        estimate = trajectory[k] + s**2 * score_k
        decided.append((classifier(estimate.clamp(0, 1)).argmax(1) == final_label).double().mean().item())
        # σ·‖s‖/√d: about constant across levels if ‖∇log p_σ‖ ∝ 1/σ (lesson 05 §5)
        scale_chain.append(s * score_k.flatten(1).norm(dim=1).mean().item() / math.sqrt(D))
        # the same at held-out digits noised to this level
        ref = split.heldout[:64] + s * torch.randn(split.heldout[:64].shape, generator=make_generator(30 + k))
        scale_data.append(s * ck.score(ref, s).flatten(1).norm(dim=1).mean().item() / math.sqrt(D))
print(f"{'σ':>6s} {'chains showing their final digit':>33s} {'σ‖s‖/√d: chains':>17s} {'noised real digits':>19s}")
for k, s in enumerate(ck.sigmas.tolist()):
    print(f"{s:6.3f} {decided[k]:33.2f} {scale_chain[k]:17.3f} {scale_data[k]:19.3f}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
ax.semilogx(ck.sigmas, decided, "o-", label="Tweedie estimate has the final label")
ax.axhline(0.1, color="k", ls=":", label="chance (10 digits)")
ax.invert_xaxis()
ax.set(xlabel="noise level σ at the end of the level (decreasing →)", ylabel="fraction of chains", ylim=(0, 1.05),
       title="When is the digit chosen?")
ax.legend(loc="center right")
plt.show()

# %% [markdown]
# The label becomes readable between σ ≈ 1.4 and 0.3: 39% of the chains show their final digit at
# σ = 1.39, 72% at 0.85, 88% at 0.52 and 95% at 0.32, and at the first four levels the fraction
# (9–17%) is near chance. (At the largest levels the Tweedie estimate is a blurred average of many
# digits, which a classifier trained on sharp digits reads poorly; so this curve says when the
# digit becomes *readable*, a proxy for when the chain commits to it. Measuring commitment
# itself would branch each chain at level i into several continuations and ask whether they end
# on the same digit.) As for the 1-D mixture of lesson 05 §5, the label is readable from
# intermediate levels on, and the small levels only refine the image.
#
# **The chains at the end of each level, although the shells do not overlap.** The last two
# columns show the score's size at the chains' states next to its size at held-out digits noised
# to the same level. σ‖s‖/√d stays near 1 at every level. For the true score,
# $\sigma\nabla\log p_\sigma(\tilde x) = -\mathbb E[z\mid\tilde x]$ gives only
# $\mathbb E\,\sigma^2\|\nabla\log p_\sigma\|^2 \le d$; it stays near $d$ where the noise can be read
# off $\tilde x$: at large σ for any data, and at small σ only for data near a thin set, as digits
# are (for data with a density it falls to 0 as σ → 0; Exercise 4). At the end of each level the score's size at the chains matches its
# size at noised real digits within 10%, the chains' being the larger, as ULA's bias would make it
# (lesson 05 §1: at ε/σ² = 0.3 the stationary noise is $\sqrt{2/(2-0.3)}\approx1.08$ times σ).
# That is consistent with a relaxation picture which this lesson does not test: a chain entering
# level i carries noise 1.64 times too large; if in the directions off the data the score is
# about $-n/\sigma_i^2$ for a noise component $n$, one step multiplies the excess component's amplitude by
# $1 - \varepsilon_i/\sigma_i^2 = 1 - 3\times10^{-5}/0.01^2 = 0.7$, and 20 steps by
# $0.7^{20}\approx10^{-3}$ (the excess variance by the squares). This relaxation analysis is NCSNv2's Technique 4, which chooses the
# step and the number of steps per level so that the chain's variance is relaxed to the level's
# within each level; the overlap rule (their Technique 2) is about how well the score is trained
# where each level starts, which is not measured here.
#
# ### 5c. Fewer evaluations: EDM's Heun sampler, with maximum churn
#
# Annealed Langevin spends 301 evaluations. Because the shipped network knows every σ (section
# 4b), other samplers can use it. Lesson 07 shows that the perturbed densities $p_\sigma$ are
# also traversed by an ordinary differential equation, the *probability-flow ODE* (Song et al.
# 2021), which in σ reads $dx/d\sigma = -\sigma\,\nabla_x\log p_\sigma(x)$. EDM solves it from
# $x = \sigma_\max z$ with Heun's second-order method on levels packed towards small σ,
#
# $$\sigma_i = \Big(\sigma_\max^{1/\rho} + \tfrac{i}{N-1}\big(\sigma_\min^{1/\rho} - \sigma_\max^{1/\rho}\big)\Big)^{\rho},
#   \quad \rho = 7,$$
#
# and a last Euler step to σ = 0, which is the Tweedie step: $2N - 1$ evaluations
# (`lessons_lib.noise.karras_sigmas`, `lessons_lib.edm.heun_sample`; `sample(ck, n, "heun")`, the
# course's default sampler). The course's settings make it EDM's *stochastic* sampler: before
# each step from a level σ between 0.05 and 50 it adds fresh noise that raises the level to
# $\hat\sigma = (1+\gamma)\sigma$, $\gamma = \min(S_\mathrm{churn}/N, \sqrt2 - 1)$, and takes the Heun step
# from σ̂. With S_churn = 40 and N = 18 levels, γ is capped at √2 − 1: every such step adds
# noise of standard deviation $\sqrt{\hat\sigma^2 - \sigma^2} = \sigma$, the most EDM allows (EDM used
# S_churn = 40 with 256 steps on ImageNet-64, where γ ≈ 0.16).

# %%
# NBVAL_IGNORE_OUTPUT
heun = SAMPLERS["heun"]
print(heun, f"· {heun.n_evaluations()} network evaluations")
print(f"γ = min(S_churn/N, √2 − 1) = {min(heun.churn / heun.n_steps, math.sqrt(2) - 1):.3f} with N = {heun.n_steps}; "
      f"EDM's S_churn = 40 with N = 256: {min(40 / 256, math.sqrt(2) - 1):.2f}")
heun_samples = sample(ck, 64, "heun", generator=make_generator(14))
heun_hist = class_histogram(heun_samples.clamp(0, 1), classifier)
print("samples per digit 0–9:", heun_hist.counts.tolist())
print(f"FD of these 64 against the reference half: "
      f"{frechet_distance(classifier_outputs(heun_samples.clamp(0, 1), classifier, logits=False)[0], feats_ref):.1f} "
      f"(64 real digits: {fd_real_mean:.1f}, SD over draws {fd_real_sd:.1f})")

# %%
fig, ax = plt.subplots(figsize=(6, 6), layout="constrained")
image_grid(ax, heun_samples, nrow=8)
ax.set_title(f"64 samples: Heun with churn {heun.churn:g}, {heun.n_steps} levels, {heun.n_evaluations()} evaluations")
plt.show()

# %% [markdown]
# With 35 evaluations, about a ninth of annealed Langevin's 301, the digits are recognisable,
# though to the eye more of them are malformed than in section 5's grid; the FD of these 64 is
# about two SDs of the 64-real-digit row above that row (148.1 against 107.6 ± 19.8), where the
# annealed samples scored 108.4. One draw of 64 cannot rank the two samplers, nor do the
# 1,000-sample rows of section 5 (26.9 against 24.5, without an error bar for the difference); `churn=0` is the
# plain ODE solver of lesson 07, and `benchmarks/mnist/quality.py` scores all three, beside the
# other samplers, on 1,000 samples.
#
# ## 6. The σ-level explorer
#
# The same stored trajectory for all 64 samples: drag the slider through the states. It only
# swaps the image data of one picture (nothing is recomputed), so it is instant.

# %%
# NBVAL_IGNORE_OUTPUT
explorer = TrajectoryExplorer(trajectory, ck.sigmas, nrow=8)
explorer

# %%
# NBVAL_IGNORE_OUTPUT
for k in (0, 5, 10, n_states - 1):
    explorer.slider.value = k
    print(f"state {k:2d}: {explorer.label(k)}")

# %% [markdown]
# ## 7. Denoising with Tweedie's formula
#
# Lesson 04: the best denoiser in the mean-square sense is
# $\mathbb E[x\mid\tilde x] = \tilde x + \sigma^2\nabla\log p_\sigma(\tilde x)$, and the network
# gives us $\nabla\log p_\sigma$ at every level of its schedule. Add noise to 500 held-out digits
# (never seen in training) at four levels and denoise in one network evaluation each. For
# the noisy images the mean squared error per pixel is σ² on average; Tweedie's estimate should
# be far below, though σ² is a weak yardstick at large σ: any denoiser that shrinks towards the
# data's mean beats it there.

# %%
tweedie_levels = [float(ck.sigmas[k]) for k in (9, 7, 5, 3)]
clean = split.heldout[:500]
denoising = {}
for k, s in enumerate(tweedie_levels):
    noisy = clean + s * torch.randn(clean.shape, generator=make_generator(10 + k))
    denoised = noisy + s**2 * ck.score(noisy, s)
    denoising[s] = (noisy, denoised, (noisy - clean).pow(2).mean().item(), (denoised - clean).pow(2).mean().item())

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'σ':>6s} {'σ²':>8s} {'MSE noisy':>10s} {'MSE Tweedie':>12s}   (per pixel, 500 held-out digits)")
for s, (_, _, before, after) in denoising.items():
    print(f"{s:6.3f} {s**2:8.4f} {before:10.4f} {after:12.4f}")

# %%
fig, axes = plt.subplots(2, len(tweedie_levels) + 1, figsize=(13, 3.6), layout="constrained")
image_grid(axes[0, 0], clean[:8], nrow=4)
axes[0, 0].set_title("clean (held out)")
axes[1, 0].set_axis_off()
for col, (s, (noisy, denoised, before, after)) in enumerate(denoising.items(), start=1):
    image_grid(axes[0, col], noisy[:8], nrow=4)
    axes[0, col].set_title(f"noisy, σ = {s:.2g}")
    image_grid(axes[1, col], denoised[:8], nrow=4)
    axes[1, col].set_title(f"Tweedie, MSE {after:.3f}")
fig.suptitle(r"Denoising in one step: $\hat x = \tilde x + \sigma^2 s_\theta(\tilde x, \sigma)$")
plt.show()

# %% [markdown]
# At small σ the estimate is close to the clean digit. At σ ≈ 2 the noise partly hides the
# digit's identity (some of the estimates show another digit), and the posterior *mean* averages
# over the digits it could have been: a blurred, plausible-on-average image — the best guess in
# squared error, not a sample.
#
# ## 8. In-painting: filling in the lower half
#
# The network knows what digits look like, so it can complete one. Song & Ermon's in-painting
# (2019, Algorithm 2) runs the annealed chain on the whole image but holds the known pixels at
# the data *perturbed to the current level*, $y_i = x + \sigma_i z$, with $z$ drawn once per level:
# the paper resets the known pixels to $y_i$ after every step; the authors' code, which the
# library follows, also sets them to $y_i$ before the level's first step. So every evaluation of $s_\theta(\cdot, \sigma_i)$ sees known pixels that are a plausible
# marginal of $p_{\sigma_i}$ on those pixels (`annealed_inpainting`; `known_noise="per_step"` draws a fresh $z$
# before every step instead, as NCSNv2's code does). Keep the top 14 rows of eight held-out
# digits, and fill in the rest twice with different noise: the two completions differ where the
# top half leaves the digit open.

# %%
originals = split.heldout[500:508]
mask = torch.ones(1, 1, 28, 28)
mask[..., 14:, :] = 0.0  # 1 = known pixel, 0 = to fill in
twice = originals.repeat(2, 1, 1, 1)
filled = annealed_inpainting(ck.score, twice, mask, ck.sigmas, annealed.n_steps_each, annealed.step_size,
                             generator=make_generator(11), denoise=annealed.denoise)
with torch.no_grad():
    predicted = classifier(filled.clamp(0, 1)).argmax(1)
same_label = (predicted == split.heldout_labels[500:508].repeat(2)).sum().item()
print(f"16 completions; the classifier gives {same_label} of 16 the label of the original digit")

# %%
rows = torch.cat([originals, originals * mask + 0.3 * (1 - mask), filled[:8], filled[8:]])
fig, ax = plt.subplots(figsize=(8, 4.4), layout="constrained")
image_grid(ax, rows, nrow=8)
for r, label in enumerate(["original", "known (top half)", "completion 1", "completion 2"]):
    ax.text(-4, 2 + 30 * r + 14, label, ha="right", va="center", fontsize=9)
ax.set_title("In-painting the lower half of held-out digits")
plt.show()

# %% [markdown]
# ## 9. Capstone: train and sample your own network
#
# You wrote the loss in exercise 1. Two more pieces — one training step and the annealed sampler
# with its final denoising step — and a cell below trains the demo U-Net of section 2 (32, 64, 64
# channels) for a fixed number of steps with your pieces, on the 8,000 training digits, and
# samples it beside the shipped network. Each piece is used only once its check has passed;
# until then the cell uses the library's (it prints which).
#
# ### Exercise 2 (3 points): one training step
#
# Given a batch `x`, each sample's level `sigma` (shape (B,)) and the noise `z`: clear the
# gradients, compute $J_\mathrm{NCSN}$ with your `ncsn_loss_at`, backpropagate, take one step of
# `optimizer`, and return the loss of the batch *before* the step, detached from the graph.

# %%
def ncsn_training_step(model, optimizer, x, sigma, z):
    """One optimizer step on ½ mean ‖σ·model(x + σz, σ) + z‖²; returns that loss (detached), before the step."""
    # Hint: PyTorch adds each backward pass's gradients to those already stored in .grad.
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    loss = ncsn_loss_at(model, x, sigma, z)
    loss.backward()
    optimizer.step()
    return loss.detach()
    ### END SOLUTION


# %%
check_ncsn_training_step(ncsn_training_step)

# %% [markdown]
# ### Exercise 3 (4 points): the annealed sampler
#
# Annealed Langevin as in section 5, on levels `sigmas` (largest first, a tensor of L levels):
# at level i, for t = 0, …, T − 1, $x \leftarrow x + \varepsilon_i s(x, \sigma_i) + \sqrt{2\varepsilon_i}\,z_{i,t}$
# with $\varepsilon_i = \varepsilon\,\sigma_i^2/\sigma_L^2$ and $z_{i,t}$ = `noise[i, t]` (`noise` has shape
# (L, T, *x.shape)); then the final denoising step $x + \sigma_L^2\,s(x, \sigma_L)$. Call
# `score_fn(x, sigma)` with σ as a Python float.

# %%
def annealed_sampler(score_fn, x_init, sigmas, step_size, noise):
    """Annealed Langevin from x_init over sigmas (largest first) with the given noise, then x + σ_L²·s(x, σ_L)."""
    # Hint: the step of level i is step_size scaled by (σᵢ/σ_L)², the same for all T steps of the level.
    ### BEGIN SOLUTION
    sigma_last = float(sigmas[-1])
    x = x_init
    for i, sigma in enumerate(sigmas.tolist()):
        eps = step_size * (sigma / sigma_last) ** 2
        for t in range(noise.shape[1]):
            x = x + eps * score_fn(x, sigma) + math.sqrt(2 * eps) * noise[i, t]
    return x + sigma_last**2 * score_fn(x, sigma_last)
    ### END SOLUTION


# %%
check_annealed_sampler(annealed_sampler)

# %% [markdown]
# **Training.** 400 steps of Adam (learning rate 1e-3) on batches of 64 random training digits,
# each with a level drawn uniformly from the 15 of section 1, seeded. The cell first times five
# steps and says how long the rest will take (a few minutes on two CPU cores), then trains.

# %%
# NBVAL_IGNORE_OUTPUT
train_step = student_or_reference(ncsn_training_step, "ncsn_training_step")
sampler = student_or_reference(annealed_sampler, "annealed_sampler")
CAPSTONE_STEPS, CAPSTONE_BATCH = 400, 64
seed_everything(0)
my_net = NCSNUNet()
optimizer = torch.optim.Adam(my_net.parameters(), lr=1e-3)
g_train = make_generator(50)


def capstone_step():
    x = split.train[torch.randint(len(split.train), (CAPSTONE_BATCH,), generator=g_train)]
    sigma = sigmas[torch.randint(len(sigmas), (CAPSTONE_BATCH,), generator=g_train)]
    z = torch.randn(x.shape, generator=g_train)
    return float(train_step(my_net, optimizer, x, sigma, z))


start = time.perf_counter()
my_losses = [capstone_step() for _ in range(5)]
per_step = (time.perf_counter() - start) / 5
print(f"5 steps at {per_step:.2f} s each: the other {CAPSTONE_STEPS - 5} will take about "
      f"{per_step * (CAPSTONE_STEPS - 5) / 60:.1f} minutes", flush=True)
my_losses += [capstone_step() for _ in range(CAPSTONE_STEPS - 5)]
print(f"{CAPSTONE_STEPS} steps in {time.perf_counter() - start:.0f} s; mean loss over the first 20 steps "
      f"{np.mean(my_losses[:20]):.0f}, over the last 20 {np.mean(my_losses[-20:]):.0f}")

# %% [markdown]
# **Sampling.** Your sampler with a cheap schedule (15 levels × 5 steps, ε = 3e-5, then the
# denoising step: 76 evaluations), from the same uniform start and the same noise for your
# network and for the shipped one.

# %%
my_net.eval()
x_start = torch.rand(16, 1, 28, 28, generator=make_generator(51))
noise = torch.randn(len(sigmas), 5, *x_start.shape, generator=make_generator(52))
with torch.no_grad():
    mine = sampler(my_net, x_start, sigmas, 3e-5, noise)
    theirs = sampler(ck.score, x_start, sigmas, 3e-5, noise)

# %%
fig, (ax_loss, ax_mine, ax_theirs) = plt.subplots(1, 3, figsize=(13, 4), layout="constrained",
                                                  gridspec_kw={"width_ratios": [1.6, 1, 1]})
steps = np.arange(1, len(my_losses) + 1)
ax_loss.semilogy(steps, my_losses, color="C0", alpha=0.35, lw=0.8, label="each step")
ax_loss.semilogy(steps[19:], np.convolve(my_losses, np.ones(20) / 20, mode="valid"), color="C0",
                 label="mean of the last 20 steps")
ax_loss.axhline(D / 2, color="k", ls=":", label="d/2: the zero model")
ax_loss.axhline(shipped_loss, color="C3", ls="--", label="shipped network, on held-out digits (section 4)")
ax_loss.set(xlabel="training step", ylabel=r"$J_\mathrm{NCSN}$ (log scale)", title=f"Your network, {CAPSTONE_STEPS} steps")
ax_loss.legend(fontsize=8)
image_grid(ax_mine, mine, nrow=4)
ax_mine.set_title(f"your network ({CAPSTONE_STEPS} steps)")
image_grid(ax_theirs, theirs, nrow=4)
ax_theirs.set_title(f"shipped network ({meta['steps']:,} steps)")
fig.suptitle("The same sampler, start and noise: 15 levels × 5 steps + denoising")
plt.show()

# %% [markdown]
# With the same sampler, start and noise, a few hundred steps give blobs with a hint of strokes,
# and the loss is still falling at the end; no sampler fixes an inaccurate score (lesson 05 §4c).
# The shipped network differs in more than its training time: wider channels, and EDM's recipe
# (continuous σ, preconditioning and weighting, section 4b) with an EMA of its weights and
# reduced-precision arithmetic (`checkpoints/README.md`). Its digits here look rougher than in
# section 5's grid, in one draw; the sampler here also runs 5 steps per level instead of 20, a
# quarter of the Langevin time at each level, and this lesson does not measure which difference
# makes them rougher. If you
# have the time, raise `CAPSTONE_STEPS` and watch your samples change.
#
# ### Exercise 4 (written, 3 points): how low can the loss go?
#
# With the σ² weighting, the zero model scores d/2 at every level. What is the smallest possible
# value of one level's weighted term $\tfrac12\mathbb E\|\sigma s(\tilde x,\sigma) + z\|^2$, and how
# does it depend on σ? Explain why it tends to 0 as σ grows and, for data with a density whose
# spread is much larger than σ, to d/2 as σ shrinks. (Lesson 04's constant C helps.)

# %% [markdown]
# <!-- BEGIN WRITTEN ANSWER ncsn_loss_minimum -->
# **Model answer.** By Vincent's identity (lesson 04) the level's term is
# $\sigma^2\big(\mathrm{ESM}(p_\sigma) + C(\sigma)\big)$, minimised by the true score of $p_\sigma$, where
# it equals $\sigma^2 C(\sigma) = \tfrac d2 - \tfrac12\sigma^2\,\mathbb E\|\nabla\log p_\sigma(\tilde x)\|^2$.
# Equivalently, with $f = \sigma s$, the term is $\tfrac12\mathbb E\|f(\tilde x) + z\|^2$, the squared error of
# a prediction of $-z$ from $\tilde x$; the best predictor is $-\mathbb E[z\mid\tilde x]$ (Tweedie:
# $\sigma\nabla\log p_\sigma = -\mathbb E[z\mid\tilde x]$), and the minimum is
# $\tfrac12\mathbb E\|z - \mathbb E[z\mid\tilde x]\|^2$, half the posterior variance of the noise.
# As σ grows, $\tilde x \approx \sigma z$ is almost all noise: z is read off $\tilde x/\sigma$, the posterior
# variance goes to 0 and so does the minimum (for a Gaussian with variance v per coordinate,
# $\sigma^2\mathbb E\|\nabla\log p_\sigma\|^2 = d\sigma^2/(v+\sigma^2)\to d$). As σ shrinks below the data's
# spread, $\tilde x$ tells almost nothing about z (the data's own variation hides it), the posterior
# of z stays close to N(0, I) and the minimum tends to d/2, the zero model's value (Gaussian:
# $\tfrac d2\cdot v/(v+\sigma^2)$). Data on a thin set (digits) keep the noise off the set predictable
# even at small σ, so there the minimum stays below d/2.
#
# <!-- RUBRIC -->
# - 1 point: identifies the minimiser as the true score of p_σ and the minimum as d/2 − ½σ²E‖∇log p_σ‖² (or as half the posterior variance of z).
# - 1 point: explains the limit 0 at large σ (the noisy point determines z).
# - 1 point: explains the limit d/2 at small σ (the data's spread hides the noise), e.g. with the Gaussian formula.
# <!-- END WRITTEN ANSWER -->
#
# ## Think
#
# 1. Section 1 chose σ₁ from the distance between digits. What does that argument predict would
#    change with σ₁ = 1, and how would you test it? With σ₁ = 100 and the same number of levels?
#
# <details><summary>Model answer</summary>
#
# With σ₁ = 1 (the 2019 paper's choice), two typical digits are practically never confused at
# the first level (Φ(−Δ/2σ) ≈ 0 at σ = 1 in section 1's table), and in section 5b the chains'
# digits became readable mostly below σ ≈ 1.4. So the choice between digits would be made from
# the start, at levels where noisy versions of two typical digits are no longer confusable. Lesson
# 05 §4b shows how chains that rarely cross between modes can end with the wrong weights; whether
# the digits' proportions come out wrong here is an empirical question this lesson does not
# measure (with σ₁ = 1, Song & Ermon 2019 show varied MNIST samples). The test: a thousand
# samples with each σ₁ from the same starts, classified, and the class proportions compared with
# their binomial errors (the TV to uniform of section 5, against a perfect sampler's). With σ₁ = 100 and the same
# 15 levels, the ratio between levels grows from 1.64 to $(10^4)^{1/14}\approx1.93$: the first
# four levels lie above σ = 10, where the two digits of section 1 are confused more than a third
# of the time ($0.36\le\Phi(-\Delta/2\sigma)\le0.48$; at σ = 10 our chains' digits were not yet
# readable), and only two
# levels (1.0 and 0.52) fall in the range σ ≈ 1.4 to 0.3 where section 5b sees the digits become
# readable, against four in our schedule. What that does to the samples this lesson does not
# measure either.
#
# </details>
#
# 2. The confusion probability Φ(−Δ/2σ) does not depend on the dimension d, yet the noise
#    vector has length σ√d. Why does the length of the noise not matter for telling two digits
#    apart?
#
# <details><summary>Model answer</summary>
#
# Deciding between $a$ and $b$ compares $\|\tilde x - a\|^2$ with $\|\tilde x - b\|^2$; the
# difference is linear in $\tilde x$ and depends only on its component along $b - a$. The noise's
# components orthogonal to $b - a$ add the same amount to both distances and cancel. Along the one
# direction that matters, the noise is a 1-D normal of standard deviation σ, whatever d.
#
# </details>
#
# 3. The sampler's step at level i is ε·σᵢ²/σ_L². Explain why the ratio of the step to σᵢ² —
#    not the step itself — should be the same at every level.
#
# <details><summary>Model answer</summary>
#
# Because for digits the score of $p_\sigma$ has size about $\sqrt d/\sigma$ at every level:
# $\sigma\nabla\log p_\sigma(\tilde x) = -\mathbb E[z\mid\tilde x]$, and where the noise can be read off
# $\tilde x$ (large σ; data near a thin set, as digits are) its size is about $\sqrt d$ (section
# 5b measures σ‖s‖/√d for the network; it is not a law for all data, see Exercise 4). This is also why
# Song & Ermon weight the levels by λ = σ², to balance them in the loss; the weighting does not
# change each level's minimiser. In one Langevin step the drift is $\varepsilon_i s$ and the noise
# $\sqrt{2\varepsilon_i}z$, so the ratio of their sizes is $\propto\sqrt{\varepsilon_i}/\sigma_i$: it is the
# same at every level exactly when $\varepsilon_i/\sigma_i^2$ is (Song & Ermon 2019, §4.3).
# Equivalently, where the score off the data is about $-n/\sigma_i^2$ for a noise component $n$
# (section 5b's relaxation picture), one step multiplies $n$ by $1 - \varepsilon_i/\sigma_i^2$: a fixed
# ratio gives every level the same contraction per step (0.7 here).
#
# </details>
#
# 4. Tweedie's estimate at σ ≈ 2 is blurry, yet annealed Langevin passes through σ ≈ 2 and ends
#    with sharp digits. What does the sampler do that one denoising step does not?
#
# <details><summary>Model answer</summary>
#
# Tweedie returns the posterior *mean* of all clean digits compatible with the noisy image: an
# average, hence blurry. The sampler never jumps to that mean; it takes small steps plus fresh
# noise, which keeps it approximately a *sample* of $p_{\sigma}$ at each level, and as σ shrinks it commits
# step by step to one of the compatible digits (section 5b: the label becomes readable between σ ≈ 1.4
# and 0.3). Only at σ_L, where the posterior is concentrated on one digit, is the final Tweedie
# step taken, and there the mean is sharp.
#
# </details>
#
# 5. In-painting resets the known pixels to $x + \sigma_i z$, not to $x$. What would go wrong
#    at the first levels if they were reset to the clean pixels?
#
# <details><summary>Model answer</summary>
#
# The network $s_\theta(\cdot,\sigma_i)$ was trained only on images whose every pixel carries noise
# of level $\sigma_i$. An image with a clean top half and a bottom half at σ = 10 is unlike
# anything it saw at that level, so the score it returns — for the unknown half too, since it
# depends on the whole image — is unreliable. With $x + \sigma_i z$ the known pixels are a draw of
# the noisy image's marginal on those pixels, and the whole image looks like a training input at
# level $\sigma_i$; the completion is still only approximately a sample of the conditional
# distribution (the chain conditions on one noisy draw of the known pixels per level, or per step with `known_noise="per_step"`,
# not on the clean pixels themselves; Song et al. 2021 discuss this). The noise must also be the current level's: known pixels at the
# previous level's noise would be 1.64 times too noisy for $s_\theta(\cdot,\sigma_i)$.
#
# </details>
#
# ## Summary
#
# - One σ is not enough: small σ is accurate only near the data, large σ learns a smoothed density whose samples are noisy, and plain
#   Langevin, in a run short in Langevin time, gets the weights of separated modes wrong. NCSN (Song & Ermon 2019) learns the scores of
#   $p_{\sigma_1},\dots,p_{\sigma_L}$ with one network and samples by annealing.
# - The schedule is geometric, largest first: σ₁ comparable to the distances between training
#   points (noisy digits become confusable: error Φ(−Δ/2σ); NCSNv2 takes the largest distance),
#   σ_L invisible. 15 levels 1.64× apart gave digits here although neighbouring noise shells do
#   not overlap; the score's size at the chains is consistent with 20 steps per level relaxing
#   the noise to each new level (NCSNv2's Technique 4).
# - $s_\theta(x,\sigma) = f_\theta(x,\log\sigma)/\sigma$ with σ entering through an embedding too (the
#   division by σ is NCSNv2's): the body always predicts −z, of size one.
# - Level σ's DSM term is of order $d/\sigma^2$; weighting it by σ² gives
#   $\tfrac12\mathbb E\|\sigma s_\theta + z\|^2$, of the same scale at every level (d/2 for the
#   zero model): the weight balances the levels. $J_\mathrm{NCSN}$ averages these over randomly
#   drawn levels.
# - EDM (Karras et al. 2022) trains one network on a continuum of σ, with a preconditioning that
#   gives its body an input and a target of unit RMS at every σ (σ_d is the data's RMS), and a
#   weighting that is the σ² one times 1 + σ²/σ_d².
# - The shipped checkpoint gives digits with 301 evaluations of annealed Langevin and the final
#   denoising step of Jolicoeur-Martineau et al. (2020); the annealed ones are not copies of training digits. The Fréchet distance
#   in a classifier's feature space measures quality, only against real digits scored at the
#   same n. The same network denoises (Tweedie, one evaluation) and in-paints (annealed Langevin
#   with the known pixels held at the data perturbed to the current level).
# - A few minutes of training with your own loss, step and sampler give blobs with a hint of
#   strokes, where the same sampler draws digits from the shipped network, trained longer, wider
#   and with EDM's recipe.
