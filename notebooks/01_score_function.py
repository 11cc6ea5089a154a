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
# # Lesson 1 — The score function
#
# Score-based generative models never learn a density $p(x)$ directly. They learn its
# **score**, the gradient of the log-density with respect to the data,
#
# $$ s(x) = \nabla_x \log p(x) . $$
#
# (In the score-matching literature this is sometimes called the **Stein score**, to tell it
# apart from the score of classical statistics, $\nabla_\theta \log p_\theta(x)$, the gradient
# with respect to the *parameters*. In this course "score" always means the gradient with
# respect to the data $x$.)
#
# **Objectives.** By the end of this lesson you can
#
# 1. explain why the score of an energy-based model $p(x) = e^{-E(x)}/Z$ does not need the
#    normaliser $Z$, and compute it as $-\nabla_x E$ with automatic differentiation;
# 2. derive the score of a Gaussian and of a Gaussian mixture, and check both against autograd;
# 3. read a score vector field: where it points, where it vanishes, how large it is;
# 4. implement `gaussian_score(x, mean, cov)` yourself.
#
# Conventions of the course: points are batch-first, a batch of $B$ points in $d$ dimensions
# has shape `(B, d)` (1-D data has shape `(B, 1)`).

# %%
import matplotlib.pyplot as plt
import torch
from torch.func import jacrev, vmap

from lessons_lib import seed_everything
from lessons_lib.autodiff import score_from_energy, score_from_log_prob
from lessons_lib.course.checks import check_gaussian_score
from lessons_lib.densities import Gaussian
from lessons_lib.explorers import MixtureScoreExplorer
from lessons_lib.nets import EnergyMLP, ScoreMLP
from lessons_lib.plotting import grid_2d, plot_density_2d, plot_score_field
from lessons_lib.toy_data import mixture_1d, mixture_2d

generator = seed_everything(0)

# %% [markdown]
# ## 1. Energy-based models and the normaliser that drops out
#
# Any positive function can be turned into a density: pick an **energy** $E(x)$ (low energy =
# likely) and set
#
# $$ p(x) = \frac{e^{-E(x)}}{Z}, \qquad Z = \int e^{-E(x)}\,dx . $$
#
# The energy is easy to write down — a neural network will do — but $Z$ is an integral over
# the whole space, which in high dimension nobody can compute. This is the central difficulty
# of maximum likelihood for such models: $\log p(x) = -E(x) - \log Z$ needs $\log Z$.
#
# The score does not. $Z$ is one number, the same for every $x$, so its gradient with respect
# to $x$ is zero:
#
# $$ s(x) = \nabla_x \log p(x) = \nabla_x\big(-E(x) - \log Z\big) = -\nabla_x E(x) . $$
#
# Equivalently: multiplying $p$ by any constant, or adding a constant to $E$, leaves the score
# unchanged. A model of the *energy* is therefore a model of the density up to its normaliser,
# and its score $-\nabla E$ is all a sampler such as Langevin dynamics (lesson 5) needs.
#
# The converse needs care. A score model $s_\theta$ that is built as $-\nabla E_\theta$ is a
# gradient field (a *conservative* field) by construction. From lesson 2 on we will mostly use
# a free-form network $s_\theta:\mathbb R^d\to\mathbb R^d$ that outputs a vector directly, and
# such a field need not be the gradient of anything: then there is no energy to read off and
# no density $p_\theta$ it is the score of, only a vector field that we hope is close to
# $\nabla\log p$ where it matters. (A gradient field has a symmetric Jacobian, since
# $\partial_j\partial_i E = \partial_i\partial_j E$; we check this at the end of this section.)
#
# **Check.** Take the double-well energy $E(x) = (x^2 - 4)^2/8$ in one dimension. By hand,
# $E'(x) = x(x^2-4)/2$, so the score is $s(x) = -x(x^2-4)/2$. We let autograd compute
# $-\nabla E$ (`score_from_energy`) and compare; we also shift the energy by a constant.

# %%
def energy(x):
    """Double well E(x) = (x² − 4)²/8 on points of shape (B, 1); one number per point."""
    return ((x[:, 0] ** 2 - 4) ** 2) / 8


def analytic_score(x):
    return -x * (x**2 - 4) / 2


xs = torch.linspace(-4, 4, 801, dtype=torch.float64)[:, None]
with torch.no_grad():  # we only want values here, not a graph to train through
    score_autograd = score_from_energy(energy)(xs)
    score_shifted = score_from_energy(lambda x: energy(x) + 10.0)(xs)  # Z multiplied by e^{-10}

# %% [markdown]
# The normaliser is only needed to *draw* $p$; here, in one dimension, we can afford to compute
# it by quadrature.

# %%
# NBVAL_CHECK_OUTPUT
print("max |autograd − analytic| score :", round((score_autograd - analytic_score(xs)).abs().max().item(), 10))
print("max |score(E + 10) − score(E)|  :", round((score_shifted - score_autograd).abs().max().item(), 10))
Z = torch.trapezoid(torch.exp(-energy(xs)), xs[:, 0])
print("Z = ∫ exp(−E) dx ≈", round(Z.item(), 4), "(never needed for the score)")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
axes[0].plot(xs[:, 0], energy(xs), color="C2")
axes[0].set(title="energy E(x) = (x² − 4)²/8", xlabel="x", ylabel="E(x)")
axes[1].plot(xs[:, 0], torch.exp(-energy(xs)) / Z, color="C0")
axes[1].set(title="density p(x) = exp(−E(x)) / Z", xlabel="x", ylabel="p(x)")
axes[2].plot(xs[:, 0], analytic_score(xs)[:, 0], color="k", lw=3, alpha=0.35, label="analytic −E′(x)")
axes[2].plot(xs[:, 0], score_autograd[:, 0], "--", color="C3", label="autograd (score_from_energy)")
axes[2].axhline(0, color="grey", lw=0.8)
axes[2].set(title="score s(x) = −E′(x)", xlabel="x", ylabel="s(x)", ylim=(-8, 8))
axes[2].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The score is zero at the two minima of the energy (the modes, $x=\pm2$) and at the local
# maximum of the energy between them ($x = 0$). Elsewhere it points *downhill in energy*, i.e.
# towards higher density, and it grows without bound far from the data (here like $-x^3/2$).
#
# **Check: which fields are gradients?** In two dimensions, compare the Jacobian $J = \nabla_x s$
# of two random networks at 500 points: an energy network `EnergyMLP` whose score is
# $-\nabla E_\theta$, and a free-form `ScoreMLP` that outputs the vector itself. A gradient field
# has $J = J^\top$ (zero *curl* $J_{21} - J_{12}$).

# %%
torch.manual_seed(0)
energy_net, free_net = EnergyMLP(2).double(), ScoreMLP(2).double()
x_check = torch.randn(500, 2, generator=generator, dtype=torch.float64)


def curl(field, x):
    """J₂₁ − J₁₂ of a 2-D vector field at every point (zero for a gradient field)."""
    jac = vmap(jacrev(lambda xi: field(xi[None])[0]))(x)
    return jac[:, 1, 0] - jac[:, 0, 1]


with torch.no_grad():
    curls = {"EnergyMLP (s = −∇E)": curl(energy_net.score, x_check), "ScoreMLP (free-form)": curl(free_net, x_check)}

# %%
# NBVAL_CHECK_OUTPUT
for name, c in curls.items():
    print(f"{name:<21} max |curl| over 500 points = {c.abs().max().item():.6f}")

# %% [markdown]
# The energy network's curl is zero up to rounding; the free-form network's is not, so no
# function $E$ has it as its gradient. Score matching will make such a network *close* to a
# gradient field where data are, but it never has to be one.

# %% [markdown]
# ## 2. The score of a Gaussian
#
# For $\mathcal N(\mu, \Sigma)$ in $d$ dimensions,
#
# $$ \log p(x) = -\tfrac12 (x-\mu)^\top \Sigma^{-1} (x-\mu) - \tfrac12\log\det(2\pi\Sigma) . $$
#
# The second term is the log-normaliser: a constant, gone under $\nabla_x$. For the quadratic
# form, $\nabla_x\, \tfrac12 u^\top M u = M u$ when $M$ is symmetric, so
#
# $$ s(x) = -\Sigma^{-1}(x - \mu) . $$
#
# The score of a Gaussian is **linear** in $x$. It points back into the distribution — its
# inner product with $\mu - x$ is $(x-\mu)^\top\Sigma^{-1}(x-\mu) > 0$, so it is less than 90° away
# from the direction of the mean — and it pulls harder along directions of small variance. In
# one dimension it is $-(x-\mu)/\sigma^2$. (Whether it aims *exactly* at the mean is measured in
# section 4.)
#
# ## 3. The score of a Gaussian mixture
#
# For $p(x) = \sum_k \pi_k\, \mathcal N(x; \mu_k, \Sigma_k)$ the logarithm of a sum does not
# simplify, but its gradient does. Writing $p_k(x) = \mathcal N(x;\mu_k,\Sigma_k)$ and using
# $\nabla p_k = p_k\,\nabla\log p_k$,
#
# $$ s(x) = \frac{\nabla p(x)}{p(x)} = \sum_k \underbrace{\frac{\pi_k\, p_k(x)}{p(x)}}_{r_k(x)}
#    \big(-\Sigma_k^{-1}(x-\mu_k)\big) . $$
#
# The weights $r_k(x)$ are the **responsibilities**, the posterior probabilities that $x$ came
# from component $k$; they are positive and sum to one. So the mixture's score is an average of
# the components' scores, each counted where its component dominates. Between two components
# the responsibilities switch over and the score turns around.
#
# `lessons_lib.densities` implements both formulas. We check them against autograd applied to
# the log-density (`score_from_log_prob`), in double precision, on random points — and the
# mixture score against the responsibility-weighted average written out component by component.

# %%
gauss = Gaussian(mean=[1.0, -0.5], cov=[[1.0, 0.8], [0.8, 2.0]])
mix2 = mixture_2d()
points = 4 * torch.randn(1000, 2, generator=generator, dtype=torch.float64)

with torch.no_grad():
    err_gauss = (gauss.score(points) - score_from_log_prob(gauss.log_prob)(points)).abs().max()
    err_mix = (mix2.score(points) - score_from_log_prob(mix2.log_prob)(points)).abs().max()
components = [Gaussian(mix2.means[k], mix2.covs[k]) for k in range(mix2.n_components)]
r = mix2.responsibilities(points)
weighted = sum(r[:, k : k + 1] * components[k].score(points) for k in range(mix2.n_components))
err_resp = (mix2.score(points) - weighted).abs().max()

# %%
# NBVAL_CHECK_OUTPUT
print("Gaussian: max |analytic − autograd| =", round(err_gauss.item(), 10))
print("mixture : max |analytic − autograd| =", round(err_mix.item(), 10))
print("mixture : max |score − Σ_k r_k · component score| =", round(err_resp.item(), 10))
print("responsibilities sum to one:", torch.allclose(r.sum(-1), torch.ones(len(points), dtype=torch.float64)))

# %% [markdown]
# ## 4. Score fields
#
# In one dimension the score is a curve. The course's running 1-D example is the mixture
# $0.1\,\mathcal N(-3, 1) + 0.9\,\mathcal N(3, 1)$: note that although the left mode is nine
# times lighter, its score looks just like the right one's near each mode — the score knows
# the *shape* of the density locally, not how much mass each mode holds.

# %%
mix1 = mixture_1d()
x1 = torch.linspace(-7, 7, 600, dtype=torch.float64)[:, None]
fig, (ax_p, ax_s) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
ax_p.plot(x1[:, 0], mix1.log_prob(x1).exp(), color="C0")
ax_p.set(ylabel="p(x)", title="1-D mixture 0.1·N(−3, 1) + 0.9·N(3, 1): density and score")
ax_s.plot(x1[:, 0], mix1.score(x1)[:, 0], color="C3", label="mixture score")
for k, style in ((0, ":"), (1, "--")):
    comp = Gaussian(mix1.means[k], mix1.covs[k])
    ax_s.plot(x1[:, 0], comp.score(x1)[:, 0], style, color="grey", label=f"score of component {k + 1} alone")
ax_s.axhline(0, color="grey", lw=0.8)
ax_s.set(xlabel="x", ylabel="s(x)", ylim=(-6, 6))
ax_s.legend(loc="upper right")
fig.tight_layout()
plt.show()

# %% [markdown]
# In two dimensions we draw the score as arrows over the density. All arrows have the same
# length, so that every direction is visible; the **colour** encodes the magnitude
# $\log(1 + \|s(x)\|)$ (dark = small, yellow = large). Left: the correlated Gaussian from
# above. Its field $-\Sigma^{-1}(x-\mu)$ is linear, and it is the steepest-ascent direction of
# $\log p$, i.e. it points *down the gradient of the Mahalanobis distance*
# $\tfrac12(x-\mu)^\top\Sigma^{-1}(x-\mu)$, at right angles to the elliptical contours. It does
# **not** in general aim at the mean: it is parallel to $\mu - x$ only when $x - \mu$ lies along
# a principal axis (an eigenvector of $\Sigma$). Right: the three-component mixture
# `mixture_2d()`. First, how far from "at the mean" the Gaussian's arrows are on the plotted
# grid:

# %%
# NBVAL_CHECK_OUTPUT
_, _, grid = grid_2d((-5, 5), (-5, 5), 15)
grid = grid.double()
s_grid, towards_mean = gauss.score(grid), gauss.mean - grid
cos = (s_grid * towards_mean).sum(-1) / (s_grid.norm(dim=-1) * towards_mean.norm(dim=-1))
angle = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
print(f"angle between s(x) and μ − x on the 15×15 grid: largest {angle.max():.1f}°, mean {angle.mean():.1f}°")
eigvecs = torch.linalg.eigh(gauss.cov).eigenvectors
on_axes = gauss.mean + torch.cat([2 * eigvecs.T, -3 * eigvecs.T])  # points on the two principal axes
s_axes, t_axes = gauss.score(on_axes), gauss.mean - on_axes
cos_axes = (s_axes * t_axes).sum(-1) / (s_axes.norm(dim=-1) * t_axes.norm(dim=-1))
print(f"largest angle at 4 points on the principal axes: {torch.rad2deg(torch.arccos(cos_axes.clamp(-1, 1))).max():.1f}°")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
for ax, density, title in ((axes[0], gauss, "Gaussian N(μ, Σ)"), (axes[1], mix2, "mixture_2d()")):
    plot_density_2d(ax, density.log_prob, xlim=(-5, 5), ylim=(-5, 5), alpha=0.6)
    quiver = plot_score_field(ax, density.score, xlim=(-5, 5), ylim=(-5, 5), n=15)
    quiver.set_clim(0, 3)  # one colour scale for both panels
    ax.set(title=f"score field of the {title}", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
axes[0].plot(*gauss.mean.tolist(), "X", color="w", mec="k", ms=11, label="mean μ")
axes[0].legend(loc="upper left")
fig.colorbar(quiver, ax=axes, label="log(1 + ‖s(x)‖)", shrink=0.8)
plt.show()

# %% [markdown]
# Things to notice: the arrows converge on the modes; between two modes there are points where
# the score vanishes without being a mode (saddle points of $\log p$); and far from the data
# all arrows point inwards and turn yellow: the magnitude $\|s(x)\|$ grows linearly with the
# distance, as for a single Gaussian. Along a ray from the origin:

# %%
# NBVAL_CHECK_OUTPUT
direction = torch.tensor([[0.6, 0.8]], dtype=torch.float64)
for r in (5, 10, 20, 40):
    print(f"‖s(x)‖ of mixture_2d() at distance {r:2d}: {mix2.score(r * direction).norm().item():6.2f}")

# %% [markdown]
# ## 5. Explore
#
# Move the sliders: the mixture $w\,\mathcal N(\mu_1,\sigma_1^2) + (1-w)\,\mathcal N(\mu_2,
# \sigma_2^2)$ and its score are recomputed by `GaussianMixture`. Try: two equal, well
# separated components (where is the zero of the score between them?); bring the means
# together until the mixture has a single mode; make one component very narrow (how steep is
# the score there?); change only $w$ (how much does the score near each mode move?).

# %%
# NBVAL_IGNORE_OUTPUT
MixtureScoreExplorer()

# %% [markdown]
# ## Exercise — the score of a Gaussian
#
# Implement `gaussian_score(x, mean, cov)` for a batch `x` of shape `(B, d)`, a mean of
# shape `(d,)` and a covariance of shape `(d, d)`; return $-\Sigma^{-1}(x-\mu)$ for each row,
# shape `(B, d)`. Avoid forming $\Sigma^{-1}$ explicitly if you can: solving a linear system
# is cheaper and more accurate.

# %%
def gaussian_score(x, mean, cov):
    """Score −cov⁻¹(x − mean) of N(mean, cov) for every row of x: (B, d) → (B, d)."""
    # Hint: torch.linalg.solve(cov, b) solves cov @ y = b for y; b = (x - mean).T has one column per point.
    ### BEGIN SOLUTION
    return -torch.linalg.solve(cov, (x - mean).T).T
    ### END SOLUTION


# %%
check_gaussian_score(gaussian_score)

# %% [markdown]
# ## Think
#
# 1. An energy-based model is trained so that $-\nabla E_\theta$ matches the data's score.
#    What does it tell you about $p_\theta$, and what can it *not* tell you without $Z_\theta$?
#
# <details><summary>Model answer</summary>
#
# It gives $p_\theta$ up to one constant factor: every *ratio*
# $p_\theta(x)/p_\theta(y) = e^{E_\theta(y) - E_\theta(x)}$, hence where the modes are, how the
# density is shaped, which of two points is more likely, and (lesson 5) samples by Langevin
# dynamics, which only follows $-\nabla E_\theta$. Without $Z_\theta$ it cannot give the *value*
# $p_\theta(x)$ or $\log p_\theta(x)$: no likelihood of held-out data, no comparison of
# likelihoods with another model, no probability of a region. Section 1's printout is the
# example: the score never needed $Z \approx 2.82$, but drawing $p$ did.
#
# </details>
#
# 2. The 1-D mixture has weights 0.1 and 0.9, but near each mode its score is almost that of
#    the component alone. Where in $x$ does the weight $0.1$ show up in the score? What does that
#    suggest for a sampler that only follows the score locally?
#
# <details><summary>Model answer</summary>
#
# Only in the region between the modes, where the responsibilities switch from one component
# to the other. They are equal where $0.1\,\mathcal N(x;-3,1) = 0.9\,\mathcal N(x;3,1)$, i.e.
# $-(x+3)^2/2 + \ln 0.1 = -(x-3)^2/2 + \ln 0.9$, which gives $x = -\ln 9/6 \approx -0.37$ instead of
# $0$ for equal weights: the weight moves the switch-over point (and the zero of the score
# there) towards the light mode. Near each mode the score is that of its own component, so a
# sampler that follows it locally learns nothing about the 1 : 9 ratio unless it crosses the
# low-density gap often — lesson 5 shows that it then gets the mode weights wrong.
#
# </details>
#
# 3. The score of a Gaussian grows linearly with $\|x - \mu\|$. Where do real data sets give you
#    few or no samples, and what would that mean for a *learned* score there?
#
# <details><summary>Model answer</summary>
#
# In the tails, far from all data, and in the low-density gaps between clusters (between
# digits of different classes, say). A score learned from samples is only constrained where
# samples are (lesson 2 makes this precise: the loss weights every error by $p(x)$), so there it
# can be wrong in size and in direction — exactly where a sampler started from noise begins its
# journey. Lessons 4 and 5 show the consequence and the fix (perturbing the data with noise).
#
# </details>
#
# 4. Which points have $s(x) = 0$? Are they all modes?
#
# <details><summary>Model answer</summary>
#
# The critical points of $\log p$ (the same as those of $p$, since $p > 0$): local maxima (modes),
# but also local minima of $p$ (in 1-D the dip between two modes, e.g. near $x \approx -0.4$ for the
# course's mixture) and, in $d \ge 2$, saddle points (between the modes of `mixture_2d()`). The
# Hessian of $\log p$, i.e. the Jacobian of the score, tells them apart: negative definite at a
# mode. So $s = 0$ is not enough to call a point a mode.
#
# </details>
#
# ## Summary
#
# - The score $s(x) = \nabla_x\log p(x)$ ignores the normaliser: for $p = e^{-E}/Z$ it is
#   $-\nabla_x E$, computable by autograd from an unnormalised model.
# - A Gaussian has the linear score $-\Sigma^{-1}(x-\mu)$; a mixture's score is the
#   responsibility-weighted average of its components' scores. Both agree with autograd to
#   machine precision.
# - A score field points towards higher density (for a Gaussian: down the gradient of the
#   Mahalanobis distance, which is not always towards the mean), vanishes at modes, saddles and
#   minima of $p$, and grows far from the data.
# - A model built as $-\nabla E_\theta$ is a gradient field; a free-form score network need not
#   be one (its curl is not zero), and then there is no density or energy to read off. It describes the density's shape locally; the relative mass of distant modes
#   is only visible in the regions between them.
# - Next lesson: how to *fit* a score model to data when the true score is unknown.
