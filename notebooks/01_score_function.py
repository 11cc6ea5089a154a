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
# Score-based generative models usually parametrise not a density $p(x)$ but its
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
# 4. recover a 1-D density, mode weights included, from its score alone, and sample a density
#    (a double well) from its score with Langevin dynamics;
# 5. implement the scores of a Gaussian and of a Gaussian mixture yourself, and derive the largest
#    angle between a Gaussian's score and the direction to its mean.
#
# Conventions of the course: points are batch-first, a batch of $B$ points in $d$ dimensions
# has shape `(B, d)` (1-D data has shape `(B, 1)`).

# %%
import matplotlib.pyplot as plt
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal
from torch.func import jacrev, vmap

from lessons_lib import seed_everything
from lessons_lib.autodiff import score_from_energy, score_from_log_prob
from lessons_lib.course.checks import check_gaussian_score, check_mixture_score
from lessons_lib.densities import Gaussian, density_from_score_1d
from lessons_lib.explorers import MixtureScoreExplorer
from lessons_lib.nets import EnergyMLP, ScoreMLP
from lessons_lib.plotting import grid_2d, plot_density_2d, plot_score_field
from lessons_lib.stats import mean_and_se
from lessons_lib.toy_data import mixture_1d, mixture_2d

generator = seed_everything(0)

# %% [markdown]
# ## 1. Energy-based models and the normaliser that drops out
#
# Pick an **energy** $E(x)$ (low energy = likely) with $e^{-E}$ integrable,
# $Z = \int e^{-E(x)}\,dx < \infty$. Then
#
# $$ p(x) = \frac{e^{-E(x)}}{Z} $$
#
# is a density. The condition is not automatic: $E \equiv 0$ on $\mathbb R$, or
# $E(x) = \tfrac12\log(1+x^2)$, gives $Z = \infty$ and no density at all. A neural energy defines
# a density only if it grows fast enough far from the data. When $Z$ is finite it is still an
# integral over the whole space: in high dimension it cannot be computed exactly and is
# expensive even to estimate. This is the central difficulty of maximum likelihood for such
# models: $\log p(x) = -E(x) - \log Z$ needs $\log Z$, and its gradient with respect to the
# parameters needs $\nabla_\theta \log Z_\theta = -\mathbb E_{p_\theta}[\nabla_\theta E_\theta(x)]$, an
# expectation under the model itself, i.e. samples from it at every training step.
#
# The score does not. $Z$ is one number, the same for every $x$, so its gradient with respect
# to $x$ is zero:
#
# $$ s(x) = \nabla_x \log p(x) = \nabla_x\big(-E(x) - \log Z\big) = -\nabla_x E(x) . $$
#
# Equivalently: multiplying $p$ by any constant, or adding a constant to $E$, leaves the score
# unchanged. An energy with finite $Z$ is therefore a model of the density up to its normaliser,
# and its score $-\nabla E$ is all the information Langevin dynamics uses (whether the
# discretised chain then samples $p$ is section 5's question; lesson 5 studies it).
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
# $-\nabla E$ (`score_from_energy`) and compare.

# %%
def energy(x):
    """Double well E(x) = (x² − 4)²/8 on points of shape (B, 1); one number per point."""
    return ((x[:, 0] ** 2 - 4) ** 2) / 8


def analytic_score(x):
    return -x * (x**2 - 4) / 2


xs = torch.linspace(-4, 4, 801, dtype=torch.float64)[:, None]
with torch.no_grad():  # we only want values here, not a graph to train through
    score_autograd = score_from_energy(energy)(xs)

# %% [markdown]
# The normaliser is needed to *draw* $p$ (and for any value of $p$, such as a likelihood); here, in one dimension, we can afford to compute
# it by quadrature. For contrast, the integral of $e^{-E}$ for $E(x) = \tfrac12\log(1+x^2)$ over
# $[-R, R]$ keeps growing with $R$ (like $2\log R$): that energy has no normaliser.

# %%
# NBVAL_CHECK_OUTPUT
print("max |autograd − analytic| score :", round((score_autograd - analytic_score(xs)).abs().max().item(), 10))
Z = torch.trapezoid(torch.exp(-energy(xs)), xs[:, 0])
print("double well: Z = ∫ exp(−E) dx ≈", round(Z.item(), 4), "(never needed for the score)")
for R in (10, 100, 1000, 10000):
    u = torch.linspace(-R, R, 200_001, dtype=torch.float64)
    print(f"E = ½ log(1 + x²): ∫ exp(−E) over [−{R}, {R}] = {torch.trapezoid((1 + u**2) ** -0.5, u):.2f}")

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
# has $J = J^\top$ (zero *curl* $J_{21} - J_{12}$); the curl relative to the size of the Jacobian,
# $|J_{21} - J_{12}|/\|J\|$ (Frobenius norm), says how far from symmetric it is: it is 0 for a
# symmetric $J$ and at most $\sqrt2$, reached when $J$ is skew-symmetric (a 90° rotation such as the field $(-x_2, x_1)$). In the code, `jacrev(f)` returns the Jacobian of a
# function of one point, and `vmap` applies that to every point of the batch (`xi[None]` makes the
# single point a batch of one for the network).

# %%
torch.manual_seed(0)
energy_net, free_net = EnergyMLP(2).double(), ScoreMLP(2).double()
x_check = torch.randn(500, 2, generator=generator, dtype=torch.float64)


def curl(field, x):
    """J₂₁ − J₁₂ of a 2-D vector field at every point (zero for a gradient field), and ‖J‖ (Frobenius)."""
    jac = vmap(jacrev(lambda xi: field(xi[None])[0]))(x)
    return jac[:, 1, 0] - jac[:, 0, 1], jac.flatten(1).norm(dim=-1)


with torch.no_grad():
    curls = {"EnergyMLP (s = −∇E)": curl(energy_net.score, x_check), "ScoreMLP (free-form)": curl(free_net, x_check)}

# %%
# NBVAL_CHECK_OUTPUT
for name, (c, jac_norm) in curls.items():
    print(f"{name:<21} over 500 points: max |curl| = {c.abs().max().item():.2e}, "
          f"max |curl| / ‖J‖ = {(c.abs() / jac_norm).max().item():.2e}")

# %% [markdown]
# The energy network's curl is zero up to rounding; the free-form network's is not, so no
# function $E$ has it as its gradient. Nothing in the architecture of a free-form network
# constrains it to be a gradient. Training can push it towards one only where the data have
# mass: the minimiser of the loss, the true score, is a gradient field, but the loss weights
# errors by $p(x)$. Lesson 2 measures the curl of a trained one.

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
# The score of a Gaussian is **affine** in $x$. It points back into the distribution — its
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
# from component $k$; they are positive and sum to one. So the mixture's score is a soft
# average of the components' scores, weighted at every $x$ by the responsibilities $r_k(x)$. Where
# one component dominates, its own score takes over; between two components the
# responsibilities switch over and the score turns around.
#
# `lessons_lib.densities` implements both formulas. We check them against an independent
# implementation: autograd (`score_from_log_prob`) applied to the log-densities of PyTorch's own
# `torch.distributions` (`MultivariateNormal`, and `MixtureSameFamily` for the mixture), which
# share no code with the course's, in double precision, on random points.

# %%
gauss = Gaussian(mean=[1.0, -0.5], cov=[[1.0, 0.8], [0.8, 2.0]])
mix2 = mixture_2d()
points = 4 * torch.randn(1000, 2, generator=generator, dtype=torch.float64)

gauss_ref = MultivariateNormal(gauss.mean, gauss.cov)
mix_ref = MixtureSameFamily(Categorical(probs=mix2.weights), MultivariateNormal(mix2.means, mix2.covs))
with torch.no_grad():
    err_gauss = (gauss.score(points) - score_from_log_prob(gauss_ref.log_prob)(points)).abs().max()
    err_mix = (mix2.score(points) - score_from_log_prob(mix_ref.log_prob)(points)).abs().max()

# %%
# NBVAL_CHECK_OUTPUT
print(f"Gaussian: max |analytic − autograd of torch.distributions| = {err_gauss.item():.0e}")
print(f"mixture : max |analytic − autograd of torch.distributions| = {err_mix.item():.0e}")

# %% [markdown]
# ## 4. Score fields
#
# In one dimension the score is a curve. The course's running 1-D example is the mixture
# $0.1\,\mathcal N(-3, 1) + 0.9\,\mathcal N(3, 1)$. Although the left mode is nine times lighter,
# near each mode the mixture's score is almost that of its component alone: locally, the score
# sees the shape of the density. The weights are encoded in the score mainly in the gap between
# the modes, where it turns around.

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
# **The score determines the density.** On a connected support (here all of $\mathbb R$), the
# score is the derivative of $\log p$, so
#
# $$ \log p(b) - \log p(a) = \int_a^b s(x)\,dx , $$
#
# and $p$ follows up to one constant, fixed by $\int p = 1$. `density_from_score_1d` does exactly
# this with the trapezoid rule. Integrating the mixture's score across the gap gives back
# $P(x < 0)$, whose exact value $0.1\,\Phi(3) + 0.9\,\Phi(-3)$ is set by the 1 : 9 weights:

# %%
# NBVAL_CHECK_OUTPUT
xs_gap = torch.linspace(-12, 12, 4801, dtype=torch.float64)
p_from_score = density_from_score_1d(mix1.score, xs_gap)
left_mass = torch.trapezoid(p_from_score * (xs_gap < 0), xs_gap).item()
exact_left = (mix1.weights * torch.special.ndtr(-mix1.means[:, 0])).sum().item()  # P(x < 0) for the mixture
print(f"P(x < 0) from the score alone: {left_mass:.4f}   exact: {exact_left:.4f}")
print(f"max |recovered p − p| on the grid: {(p_from_score - mix1.log_prob(xs_gap[:, None]).exp()).abs().max():.1e}")
xs_fine = torch.linspace(-1, 0, 100_001, dtype=torch.float64)  # between the modes, step 1e-5
zero = xs_fine[mix1.score(xs_fine[:, None])[:, 0].abs().argmin()].item()
r_fine = mix1.responsibilities(xs_fine[:, None])
switch = xs_fine[(r_fine[:, 0] - r_fine[:, 1]).abs().argmin()].item()
print(f"between the modes: responsibilities equal at x = {switch:.3f}, score zero at x = {zero:.3f}")

# %% [markdown]
# **Not every score grows.** How the score behaves far out follows the tails of the density;
# for the usual families: tails lighter than exponential give a growing score (the Gaussian's
# grows linearly in $|x|$, the double well's like $|x|^3$); exponential tails give a bounded
# score that does not vanish (the Laplace density $\tfrac12 e^{-|x|}$ has
# $s(x) = -\operatorname{sign}(x)$); tails heavier than exponential give a score that tends to
# zero (the Student-t with $\nu$ degrees of freedom has $s(x) = -(\nu+1)x/(\nu+x^2)$, and
# $e^{-\sqrt{|x|}}$ has $|s(x)| = 1/(2\sqrt{|x|})$). By autograd:

# %%
# NBVAL_CHECK_OUTPUT
tails = {"N(0, 1)": torch.distributions.Normal(0.0, 1.0), "Student-t, ν = 3": torch.distributions.StudentT(3.0),
         "Laplace(0, 1)": torch.distributions.Laplace(0.0, 1.0)}
far_points = torch.tensor([[1.0], [10.0], [100.0]], dtype=torch.float64)
for name, dist in tails.items():
    with torch.no_grad():
        s_far = score_from_log_prob(lambda x, dist=dist: dist.log_prob(x[:, 0]))(far_points)[:, 0]
    print(f"{name:<17} s(1), s(10), s(100) = " + ", ".join(f"{v:8.3f}" for v in s_far.tolist()))

# %% [markdown]
# In two dimensions we draw the score as arrows over the density. All arrows have the same
# length, so that every direction is visible; the **colour** encodes the magnitude
# $\log(1 + \|s(x)\|)$ (dark = small, yellow = large). Left: the correlated Gaussian from
# above. Its field $-\Sigma^{-1}(x-\mu)$ is affine, and it is the steepest-ascent direction of
# $\log p$, i.e. it points *down the gradient of half the squared Mahalanobis distance*
# $\tfrac12(x-\mu)^\top\Sigma^{-1}(x-\mu)$, at right angles to the elliptical contours. It does
# **not** in general aim at the mean: when the two eigenvalues of $\Sigma$ differ, it is parallel
# to $\mu - x$ only when $x - \mu$ lies along a principal axis (an eigenvector of $\Sigma$). Right: the three-component mixture
# `mixture_2d()`. First, how far from "at the mean" the Gaussian's arrows are on the plotted
# grid (exercise 3 asks for the largest angle possible):

# %%
# NBVAL_CHECK_OUTPUT
_, _, grid = grid_2d((-5, 5), (-5, 5), 15)
grid = grid.double()
s_grid, towards_mean = gauss.score(grid), gauss.mean - grid
cos = (s_grid * towards_mean).sum(-1) / (s_grid.norm(dim=-1) * towards_mean.norm(dim=-1))
angle = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
print(f"angle between s(x) and μ − x on the 15×15 grid: largest {angle.max():.4f}°, mean {angle.mean():.1f}°")
eigvecs = torch.linalg.eigh(gauss.cov).eigenvectors
on_axes = gauss.mean + torch.cat([2 * eigvecs.T, -3 * eigvecs.T])  # points on the two principal axes
s_axes, t_axes = gauss.score(on_axes), gauss.mean - on_axes
cos_axes = (s_axes * t_axes).sum(-1) / (s_axes.norm(dim=-1) * t_axes.norm(dim=-1))
print(f"a demonstration, zero by construction: largest angle at 4 points on the principal axes: {torch.rad2deg(torch.arccos(cos_axes.clamp(-1, 1))).max():.1f}°")

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
# Things to notice: the arrows converge on the modes; between the modes the field turns around
# and vanishes at points that are not modes: a saddle point of $\log p$ between each pair of
# modes, and a local minimum of $p$ in the region the three modes enclose (this coarse grid
# locates none of them); far from the data all arrows point inwards and their colour moves up
# the scale. This mixture has Gaussian components, so far away $\|s(x)\|$ grows linearly with
# the distance. Along a ray from the origin:

# %%
# NBVAL_CHECK_OUTPUT
direction = torch.tensor([[0.6, 0.8]], dtype=torch.float64)
for r in (5, 10, 20, 40):
    print(f"‖s(x)‖ of mixture_2d() at distance {r:2d}: {mix2.score(r * direction).norm().item():6.2f}")

# %% [markdown]
# ## 5. What the score is for: sampling
#
# Langevin dynamics turns a score into samples: repeat
# $x \leftarrow x + \varepsilon\, s(x) + \sqrt{2\varepsilon}\, z$ with fresh $z\sim\mathcal N(0, 1)$.
# This is the **unadjusted Langevin algorithm** (ULA), the Euler–Maruyama discretisation of the
# diffusion $dX = \nabla\log p(X)\,dt + \sqrt2\,dW$, whose stationary law is $p$. When the score is
# globally Lipschitz and pulls inwards far out (a mixture of Gaussians with one shared covariance,
# such as `mixture_1d`, is an example; with different covariances, as in `mixture_2d`, the score's
# Jacobian is not bounded), a small enough $\varepsilon$ gives the chain a stationary law within
# $O(\varepsilon)$ of $p$ (in expectations of smooth test functions), which it approaches from any
# start (Talay & Tubaro 1990; Durmus &
# Moulines 2017; lesson 5 computes the bias exactly for a Gaussian). The double well's score grows like $|x|^3$, faster
# than linearly, and then ULA is transient for every step size: it has no stationary law at all
# (Roberts & Tweedie 1996). The step $\varepsilon s(x)$ far out overshoots the wells. Without the noise,
# the update is $x\,(1 - \varepsilon(x^2-4)/2)$, which for $|x| > 2$ shrinks $|x|$ only while
# $x^2 < 4 + 4/\varepsilon$; beyond that each step lands farther out on the other side:

# %%
# NBVAL_CHECK_OUTPUT
step_size = 0.01
print(f"ε = {step_size}: the noise-free step shrinks |x| only while 2 < |x| < √(4 + 4/ε) = {(4 + 4 / step_size) ** 0.5:.2f}")
for x0 in (-20.0, -21.0):
    x_free = torch.tensor([[x0]], dtype=torch.float64)
    for n_free in range(1, 51):
        x_free = x_free + step_size * analytic_score(x_free)
        if not torch.isfinite(x_free).all():
            break
    print(f"start x₀ = {x0:.0f}: after {n_free} noise-free steps x = {x_free.item():.3g}")
kick = ((4 + 4 / step_size) ** 0.5 - 2) / (2 * step_size) ** 0.5
print(f"from x = −2, one step lands beyond −√(4 + 4/ε) only with a noise z below −{kick:.0f} (standard deviations)")

# %% [markdown]
# Past that threshold the chain almost surely diverges. The Gaussian kicks are unbounded, so from
# any bounded region and for any $\varepsilon$ a step lands past the threshold with a probability
# bounded below, and from there the chain does not come back: it has no stationary law (Roberts &
# Tweedie 1996 show this transience for scores that grow faster than linearly). From inside the
# wells, though, escape needs an astronomically unlikely excursion: from $x = -2$ a single step
# gets there only with a kick of about 128 standard deviations. So the chain is *metastable*:
# until it escapes, it moves exactly as ULA on a score changed outside some radius to grow only
# linearly. How close that chain's law is to $p$ depends on $\varepsilon$ against the changed
# score's steepness, which no bound here settles for $\varepsilon = 0.01$; the run below measures
# it, and on any practical horizon it does not escape. We run 20 000
# chains, all in the left well at $x = -2$, with the exact double-well score and no $Z$ anywhere. We record the fraction of chains in the right well,
# $P(x > 0)$, every 50 steps; it is ½ by symmetry once the chains have mixed.

# %%
# NBVAL_CHECK_OUTPUT
langevin_gen = torch.Generator().manual_seed(0)
n_chains, n_steps, every = 20_000, 8000, 50
x_chain = torch.full((n_chains, 1), -2.0, dtype=torch.float64)
recorded = []  # (step, P(x > 0), its standard error)
for step in range(1, n_steps + 1):
    noise = torch.randn(x_chain.shape, generator=langevin_gen, dtype=torch.float64)
    x_chain = x_chain + step_size * analytic_score(x_chain) + (2 * step_size) ** 0.5 * noise
    if step % every == 0:
        recorded.append((step, *mean_and_se((x_chain > 0).double())))
for step, frac, se in recorded:
    if step in (1000, 3000, 6000, n_steps):
        print(f"step {step:4d}: fraction of chains in the right well {frac:.4f} ± {se:.4f}   "
              f"({100 * (frac - 0.5):+.1f} percentage points, {(frac - 0.5) / se:+.1f} SE from 0.5)")
p_well = torch.exp(-energy(xs)) / Z
second, second_se = mean_and_se(x_chain**2)
print(f"E[x²] over the chains at step {n_steps}: {second:.3f} ± {second_se:.3f}   by quadrature: "
      f"{torch.trapezoid(p_well * xs[:, 0] ** 2, xs[:, 0]):.3f}")

# %%
steps_rec, frac_rec, se_rec = (torch.tensor(c) for c in zip(*recorded))
fig, ax = plt.subplots(figsize=(7, 3))
ax.fill_between(steps_rec, frac_rec - 2 * se_rec, frac_rec + 2 * se_rec, color="C0", alpha=0.3, label="± 2 SE")
ax.plot(steps_rec, frac_rec, color="C0", label="fraction of chains with x > 0")
ax.axhline(0.5, color="k", ls="--", lw=1, label="exact ½")
ax.set(xlabel="Langevin step", ylabel="P(x > 0)", ylim=(0.3, 0.55),
       title=f"{n_chains} chains started at x = −2, ε = {step_size}")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# The chains cross the barrier at $x = 0$ one by one, so the fraction approaches ½ slowly (the
# curve starts at 0, below the plotted range). At step 3000 it is still short by about four
# standard errors, 1.5 percentage points, from incomplete mixing; at steps 6000 and 8000 it is
# within about two standard errors of ½ (the printed lines). The band is drawn point by point over
# the same chains, so neighbouring points are strongly correlated and long runs on one side of ½
# are expected: near the end the curve alone cannot tell the last of the mixing from noise.
# What these checks can and cannot see:
#
# - ± is the sampling error over the 20 000 independent chains. For the fraction it is small
#   enough to show a shortfall of that size (several standard errors), so it does detect
#   incomplete mixing. It cannot detect the step-size bias: the chain with $\varepsilon = 0.01$ is
#   symmetric too, so the fraction under its metastable law is exactly ½.
# - $E[x^2]$ may carry a bias of order $\varepsilon$; the agreement with quadrature says only
#   that the bias is no larger than about two standard errors.
#
# ## 6. Explore
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
# ## Exercises
#
# ### Exercise 1 (2 points): the score of a Gaussian
#
# Implement `gaussian_score(x, mean, cov)` for a batch `x` of shape `(B, d)`, a mean of
# shape `(d,)` and a covariance of shape `(d, d)`; return $-\Sigma^{-1}(x-\mu)$ for each row,
# shape `(B, d)`. Solving the linear system $\Sigma y = x - \mu$ is more accurate than forming
# $\Sigma^{-1}$; for a symmetric positive-definite $\Sigma$ a Cholesky factorisation is the usual
# way to solve it.

# %%
def gaussian_score(x, mean, cov):
    """Score −cov⁻¹(x − mean) of N(mean, cov) for every row of x: (B, d) → (B, d)."""
    # Hint: Σ⁻¹u is the solution y of Σy = u. torch.linalg can solve for many right-hand sides at
    # once; mind which axis holds the points.
    ### BEGIN SOLUTION
    return -torch.linalg.solve(cov, (x - mean).T).T
    ### END SOLUTION


# %%
check_gaussian_score(gaussian_score)

# %% [markdown]
# ### Exercise 2 (3 points): the score of a Gaussian mixture, far from the data too
#
# Implement `mixture_score(x, weights, means, covs)` for `x` of shape `(B, d)`, `weights` of
# shape `(K,)`, `means` of shape `(K, d)` and `covs` of shape `(K, d, d)`: the score
# $\sum_k r_k(x)\,(-\Sigma_k^{-1}(x-\mu_k))$ of section 3, shape `(B, d)`. It must stay correct at
# points about 40 units from the origin (the check draws a random mixture with means
# `2 * randn` and points 40 units from the origin). Before you write it, work out what
# $\pi_k\,\mathcal N(x;\mu_k,\Sigma_k)$ is there in float32 (and in float64), and what the
# responsibilities then become.
# You may use `Gaussian(mean, cov).log_prob`.

# %%
def mixture_score(x, weights, means, covs):
    """Score of Σₖ weights[k]·N(means[k], covs[k]) for every row of x: (B, d) → (B, d)."""
    # Hint: work out what πₖ N(x; μₖ, Σₖ) is at distance 40 in float32, and what that makes the
    # responsibilities.
    ### BEGIN SOLUTION
    log_joint = torch.stack(
        [torch.log(weights[k]) + Gaussian(means[k], covs[k]).log_prob(x) for k in range(len(weights))], dim=-1
    )
    resp = torch.softmax(log_joint, dim=-1)  # (B, K), stable: softmax subtracts the max first
    scores = torch.stack([-torch.linalg.solve(covs[k], (x - means[k]).T).T for k in range(len(weights))], dim=1)
    return (resp[..., None] * scores).sum(1)
    ### END SOLUTION


# %%
check_mixture_score(mixture_score)

# %% [markdown]
# The naive formula, with $p = \sum_k\pi_k p_k$ computed first, along a ray from the origin.
# Double precision does not rescue it: at distance 40 the log-joints are below $-1000$, far
# beyond the smallest float64 (about $e^{-745}$), and in float32 (about $e^{-104}$) every term is 0
# already at distance 10. Only the logarithms survive:

# %%
# NBVAL_CHECK_OUTPUT
for r in (10, 40):
    far = r * torch.tensor([[0.6, 0.8]], dtype=torch.float64)
    log_joint_far = torch.stack([mix2.weights[k].log() + Gaussian(mix2.means[k], mix2.covs[k]).log_prob(far)
                                 for k in range(mix2.n_components)], -1)[0]
    print(f"distance {r} from the origin ({', '.join(f'{d:.1f}' for d in (far - mix2.means).norm(dim=-1).tolist())} "
          "from the means)")
    print("  log πₖ + log N(x; μₖ, Σₖ):", [round(v, 1) for v in log_joint_far.tolist()])
    for dtype in (torch.float32, torch.float64):
        joint = log_joint_far.to(dtype).exp()
        print(f"  πₖ N(x; μₖ, Σₖ) in {str(dtype)[6:]}:", joint.tolist(),
              " responsibilities from them:", [round(v, 3) for v in (joint / joint.sum()).tolist()])
print("score at distance 40 in log space (the library):", [round(v, 3) for v in mix2.score(far)[0].tolist()])

# %% [markdown]
# For exercise 3, the eigenvalues of the covariance of section 2:

# %%
# NBVAL_CHECK_OUTPUT
lam = torch.linalg.eigvalsh(gauss.cov)
print("eigenvalues of Σ:", [round(v, 4) for v in lam.tolist()])

# %% [markdown]
# ### Exercise 3 (written, 3 points): the largest angle between the score and the mean
#
# Section 4 printed the largest angle between $s(x) = -\Sigma^{-1}(x-\mu)$ and $\mu - x$ on a grid,
# for a 2-D Gaussian whose covariance has eigenvalues $\lambda_1 \ge \lambda_2 > 0$. Show that the
# cosine of that angle is never below $2\sqrt{\lambda_1\lambda_2}/(\lambda_1+\lambda_2)$, say for which
# $x$ the bound is attained, and compute the bound for the covariance of section 2 (its
# eigenvalues are printed just above). Is the grid's maximum a coincidence?

# %% [markdown]
# <!-- BEGIN WRITTEN ANSWER maximal_angle -->
# **Model answer.** Write $u = \mu - x$ and $P = \Sigma^{-1}$, so $s = Pu$ and
# $\cos\angle(s, u) = u^\top P u / (\|Pu\|\,\|u\|)$. In the eigenbasis of $\Sigma$, $P$ has
# eigenvalues $a = 1/\lambda_1 \le b = 1/\lambda_2$; with $u = (u_1, u_2)$ and weights
# $w_i = u_i^2/\|u\|^2$ ($w_1 + w_2 = 1$),
# $$ \cos^2 = \frac{(a w_1 + b w_2)^2}{a^2 w_1 + b^2 w_2} . $$
# Minimising over $w_1$ (the Kantorovich inequality in two dimensions; or set the derivative to
# zero) gives $w_1 = b/(a+b)$, i.e. $u_1^2/u_2^2 = b/a = \lambda_1/\lambda_2$, and there
# $\cos^2 = 4ab/(a+b)^2$, so $\cos \ge 2\sqrt{ab}/(a+b) = 2\sqrt{\lambda_1\lambda_2}/(\lambda_1+\lambda_2)$.
# The bound does not depend on $\|u\|$: it is attained on the four rays from $\mu$ with
# $|u_1|/|u_2| = \sqrt{\lambda_1/\lambda_2}$ in the eigenbasis; on the principal axes the angle is 0.
# For the printed eigenvalues, $\lambda_1\lambda_2 = \det\Sigma$ and $\lambda_1+\lambda_2 = \operatorname{tr}\Sigma = 3$,
# so $\cos = 2\sqrt{\det\Sigma}/3 = 2\sqrt{1.36}/3 \approx 0.7775$, an angle of $38.9714°$. The grid
# printed 38.9710°, below the bound as it must be, and within $0.001°$ of it: not a coincidence.
# The angle is stationary around its maximiser (a smooth function of the direction of $u$, at
# its maximum), so a grid point merely near one of those rays already has an angle within a
# quadratically small amount of the bound.
#
# <!-- RUBRIC -->
# - 1 point: writes the cosine in the eigenbasis of Σ as a function of how u splits between the two axes.
# - 1 point: minimises it (Kantorovich or calculus) to 2√(λ₁λ₂)/(λ₁ + λ₂), attained where |u₁|/|u₂| = √(λ₁/λ₂), at every distance.
# - 1 point: evaluates the bound for section 2's Σ (about 39°) and explains that the grid's maximum is this bound.
# <!-- END WRITTEN ANSWER -->

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
# likelihoods with another model. Expectations remain within reach, the probability of a region
# included (it is the expectation of an indicator): they can be estimated by Monte Carlo from
# Langevin samples, as section 5 estimated $P(x > 0)$, without $Z$. Section 1's printout is the
# example: the score never needed $Z \approx 2.82$, but drawing $p$ did.
#
# </details>
#
# 2. Section 4 printed two points between the modes of the 1-D mixture: where the two
#    responsibilities are equal, and where the score vanishes. Why are they not the same point,
#    and which way do both move as the left weight shrinks?
#
# <details><summary>Model answer</summary>
#
# The score is $s = r_1 s_1 + r_2 s_2$ with $s_1 = -(x+3)$, $s_2 = -(x-3)$, so
# $s(x) = -x + 3(r_2 - r_1)$. Where $r_1 = r_2$ it equals $-x$, which is zero only at $x = 0$
# (equal weights). Equal responsibilities solve $\ln 0.1 - (x+3)^2/2 = \ln 0.9 - (x-3)^2/2$, i.e.
# $x = -\ln 9/6 \approx -0.366$, where $s = +0.366$. The zero of the score (the density's minimum)
# solves $x = 3\tanh(3x + \tfrac12\ln 9)$, at $x \approx -0.412$. As the left weight shrinks, both
# points move towards the light mode. In general $s(x) = -x + 3\tanh\big(3x + \tfrac12\ln(\pi_2/\pi_1)\big)$:
# the weight enters only as the shift of the tanh switch. Away from the gap the tanh is
# exponentially close to $\pm1$, so there the weight's effect on the score is exponentially
# small (not zero), and a sampler that stays near one mode hardly sees it.
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
# but also local minima of $p$ and, in $d \ge 2$, saddle points. In 1-D a minimum is the dip
# between two modes (near $x \approx -0.4$ for the course's mixture); `mixture_2d()` has a saddle
# between each pair of its three modes and a local minimum of $p$ in the region they enclose. The
# Hessian of $\log p$, i.e. the Jacobian of the score, often tells them apart: negative definite
# means a strict local maximum, positive definite a strict local minimum, eigenvalues of both
# signs a saddle. When it is singular with no eigenvalues of both signs it decides nothing:
# $e^{-x^4}$ has Hessian 0 at its mode. So $s = 0$ is not enough to call a point a mode.
#
# </details>
#
# ## Summary
#
# - An energy defines a density $e^{-E}/Z$ only when $Z$ is finite. The score
#   $s(x) = \nabla_x\log p(x)$ ignores the normaliser: for $p = e^{-E}/Z$ it is $-\nabla_x E$,
#   computable by autograd from an unnormalised model.
# - A Gaussian has the affine score $-\Sigma^{-1}(x-\mu)$; a mixture's score is the
#   responsibility-weighted average of its components' scores. Both agree to rounding error
#   with autograd applied to `torch.distributions`' log-densities.
# - A score field points towards higher density (for a Gaussian: down the gradient of half the
#   squared Mahalanobis distance, which is not always towards the mean) and vanishes at modes,
#   saddles and minima of $p$. Far from the data, for the usual families, it grows for tails
#   lighter than exponential (Gaussian), stays bounded without vanishing for exponential tails
#   (Laplace) and tends to zero for heavier tails (Student-t).
# - On a connected support the score determines $\log p$ up to a constant: integrating it across
#   the gap recovered $P(x < 0)$ of the 1-D mixture, which the 1 : 9 weights set. Near each mode it is almost blind to
#   the weights (exponentially small effects, Think 2).
# - Langevin dynamics (ULA, the Euler–Maruyama scheme for $dX = \nabla\log p\,dt + \sqrt2\,dW$)
#   samples a density approximately from its score alone, given enough steps to mix between the
#   modes (3000 steps were too few for the double well). For a globally Lipschitz score that
#   pulls inwards far out, a small enough ε gives a stationary law within $O(\varepsilon)$ of $p$.
#   For the double well's faster-growing score it is transient for every $\varepsilon$, but from
#   inside the wells escape is astronomically unlikely: the chain is metastable.
# - A model built as $-\nabla E_\theta$ is a gradient field; a free-form score network need not
#   be one (its curl need not vanish), and then there is no density or energy to read off.
# - Next lesson: how to *fit* a score model to data when the true score is unknown.
