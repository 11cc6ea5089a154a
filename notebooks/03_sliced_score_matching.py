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
# # Lesson 3 — Sliced score matching
#
# Implicit score matching (lesson 2) needs $\operatorname{tr}\nabla_x s_\theta(x)$, which costs
# $d$ backward passes per sample. Sliced score matching (Song, Garg, Shi & Ermon 2019) replaces
# the trace by a random projection that costs one.
#
# **Objectives.** By the end of this lesson you can
#
# 1. prove that Hutchinson's estimator $v^\top A v$ is unbiased for $\operatorname{tr}A$ and
#    check it numerically, with Rademacher and with Gaussian projections;
# 2. derive the variance of the estimator for both kinds of projections and watch it fall
#    like $1/M$ with the number $M$ of projections;
# 3. write down SSM and its variance-reduced version SSM-VR, and check that their expectation
#    is the ISM objective;
# 4. fit a 2-D score model with ISM, SSM and SSM-VR and compare the results;
# 5. measure the cost per step of ISM, SSM, SSM-VR and DSM as the dimension grows;
# 6. implement `ssm_loss(score_fn, x, v)` yourself.
#
# Conventions: losses carry the papers' $\tfrac12$, sum over dimensions and average over the
# batch (and over projections); points are batch-first, shape `(B, d)`.

# %%
import math

import matplotlib.pyplot as plt
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.autodiff import hutchinson_trace, jacobian_trace
from lessons_lib.checks import check_ssm_loss
from lessons_lib.data import mixture_2d
from lessons_lib.densities import Gaussian
from lessons_lib.nets import ScoreMLP
from lessons_lib.plotting import plot_density_2d, plot_score_field
from lessons_lib.training import seconds_per_step, train
from lessons_lib.utils import make_generator
from lessons_lib.widgets import ProjectionVarianceExplorer

generator = seed_everything(0)


def mean_and_se(values):
    """Monte-Carlo average and its standard error σ̂/√n."""
    return values.mean().item(), values.std().item() / math.sqrt(len(values))


# %% [markdown]
# ## 1. Hutchinson's trace estimator
#
# Let $A$ be a $d\times d$ matrix and $v$ a random vector with $\mathbb E[vv^\top] = I$, i.e.
# $\mathbb E[v_iv_j] = 1$ if $i = j$ and $0$ otherwise. Then
#
# $$ \mathbb E\big[v^\top A v\big] = \mathbb E\Big[\sum_{i,j} A_{ij} v_i v_j\Big]
#    = \sum_{i,j} A_{ij}\,\mathbb E[v_iv_j] = \sum_i A_{ii} = \operatorname{tr}A . $$
#
# (In matrix form: $v^\top A v = \operatorname{tr}(A\,vv^\top)$, and trace and expectation
# commute.) Two standard choices satisfy $\mathbb E[vv^\top]=I$:
#
# - **Rademacher**: independent entries $\pm1$ with probability ½ each;
# - **Gaussian**: $v\sim\mathcal N(0, I)$.
#
# Why this helps: for $A = \nabla_x s_\theta(x)$ the product $v^\top A$ is a single
# vector–Jacobian product — *one* backward pass of $v^\top s_\theta(x)$ — whatever $d$ is. The
# average over $M$ independent projections is still unbiased.
#
# **Check.** For a random `ScoreMLP` in $d = 10$ and three points, compare the exact trace
# (`jacobian_trace`) with the average of 20 000 single-projection estimates
# (`hutchinson_trace`), with its standard error.

# %%
torch.manual_seed(0)
mlp10 = ScoreMLP(10, hidden=64)
with torch.no_grad():
    mlp10.net[-1].weight.mul_(5.0)  # a less trivial Jacobian than at initialisation
points = torch.randn(3, 10, generator=generator)
n_rep = 20_000
exact = jacobian_trace(mlp10, points).detach()
estimates = {
    kind: hutchinson_trace(mlp10, points.repeat_interleave(n_rep, 0), 1, kind=kind, generator=generator)
    .detach()
    .reshape(3, n_rep)
    for kind in ("rademacher", "gaussian")
}

# %%
# NBVAL_CHECK_OUTPUT
for i in range(3):
    line = f"point {i}: exact trace {exact[i]:7.3f}"
    for kind, est in estimates.items():
        m, se = mean_and_se(est[i])
        line += f" | {kind} {m:7.3f} ± {se:.3f}"
    print(line)

# %% [markdown]
# Every average lies within about two standard errors of the exact trace, for both kinds of
# projection.
#
# ## 2. The variance of the estimator
#
# Unbiased is not enough: a single projection can be far off. Let $A$ be symmetric (a Hessian
# of $\log p$ is; for a non-symmetric $A$ only its symmetric part $(A + A^\top)/2$ enters
# $v^\top Av$, so replace $A$ by it). Split the quadratic form into diagonal and off-diagonal
# terms:
#
# $$ v^\top A v = \sum_i A_{ii}\, v_i^2 + \sum_{i\ne j} A_{ij}\, v_i v_j . $$
#
# - **Rademacher.** $v_i^2 = 1$ always, so the first sum *is* $\operatorname{tr}A$, with no
#   randomness. The products $v_iv_j$ ($i\ne j$) have mean 0 and variance 1, and
#   $\mathbb E[v_iv_jv_kv_l]$ is nonzero only when $\{k,l\} = \{i,j\}$; each unordered pair
#   appears twice in the sum, so
#   $$ \operatorname{Var}_\mathrm{Rad}\big[v^\top Av\big] = \sum_{i\ne j}\sum_{k\ne l} A_{ij}A_{kl}\,\mathbb E[v_iv_jv_kv_l]
#      = 2\sum_{i\ne j} A_{ij}^2 . $$
# - **Gaussian.** Now $v_i^2$ varies too: $\operatorname{Var}[v_i^2] = \mathbb E v_i^4 - 1 = 2$,
#   and the diagonal and off-diagonal sums are uncorrelated, which adds $2\sum_i A_{ii}^2$:
#   $$ \operatorname{Var}_\mathrm{Gauss}\big[v^\top Av\big] = 2\sum_i A_{ii}^2 + 2\sum_{i\ne j}A_{ij}^2 = 2\|A\|_F^2 . $$
#
# Rademacher projections are never worse, and much better when $A$ is dominated by its
# diagonal. Averaging $M$ independent projections divides either variance by $M$: the standard
# error falls only like $1/\sqrt M$.
#
# **Check.** A random symmetric $10\times10$ matrix $A$, and the linear field $f(x) = Ax$ whose
# Jacobian is $A$ everywhere: for $M = 1, 2, 4, \dots, 64$ we draw 4 000 independent
# $M$-projection estimates and measure their variance.

# %%
g_matrix = make_generator(1)
B = torch.randn(10, 10, generator=g_matrix, dtype=torch.float64)
A = (B + B.T) / 2
off_diagonal = A - torch.diag(torch.diagonal(A))
closed_form = {"rademacher": 2 * (off_diagonal**2).sum().item(), "gaussian": 2 * (A**2).sum().item()}

M_values = [1, 2, 4, 8, 16, 32, 64]
n_rep = 4000
variances = {kind: [] for kind in closed_form}
variance_se = {kind: [] for kind in closed_form}
origin = torch.zeros(n_rep, 10, dtype=torch.float64)
for kind in closed_form:
    for M in M_values:
        est = hutchinson_trace(lambda y: y @ A.T, origin, M, kind=kind, generator=generator).detach()
        squared_dev = (est - est.mean()) ** 2  # the variance is their mean; its SE from their spread
        var, se = mean_and_se(squared_dev)
        variances[kind].append(var)
        variance_se[kind].append(se)

# %%
# NBVAL_CHECK_OUTPUT
print(f"tr A = {torch.trace(A).item():.3f}")
for kind in closed_form:
    for i in (0, 3):
        print(f"{kind:<10} M = {M_values[i]:2d}: measured variance {variances[kind][i]:7.2f} ± {variance_se[kind][i]:.2f}"
              f"   closed form {closed_form[kind] / M_values[i]:7.2f}")

# %%
fig, ax = plt.subplots(figsize=(7, 4.8))
M_arr = torch.tensor(M_values, dtype=torch.float64)
for kind, color in (("rademacher", "C0"), ("gaussian", "C1")):
    ax.errorbar(M_values, variances[kind], yerr=variance_se[kind], fmt="o", color=color, label=f"{kind}: measured")
    ax.loglog(M_arr, closed_form[kind] / M_arr, "-", color=color, alpha=0.7, label=f"{kind}: closed form / M")
ax.set(xscale="log", yscale="log", xlabel="number of projections M", ylabel="variance of the trace estimate",
       title="Hutchinson's estimator: variance falls like 1/M")
ax.legend()
plt.show()

# %% [markdown]
# Both kinds follow their closed forms and the $1/M$ slope; the Rademacher line sits lower by
# exactly the diagonal's contribution $2\sum_i A_{ii}^2$.
#
# The explorer below repeats the experiment interactively: move $M$ (and switch the kind of
# projection) and watch the histogram of 2 000 estimates tighten around the exact trace.

# %%
# NBVAL_IGNORE_OUTPUT
ProjectionVarianceExplorer(dim=10)

# %% [markdown]
# ## 3. Sliced score matching and its variance-reduced form
#
# Insert the estimator into ISM, $J_\mathrm{ISM} = \mathbb E_p\big[\operatorname{tr}\nabla_x s_\theta + \tfrac12\|s_\theta\|^2\big]$.
# With projections $v$ independent of $x$ and $\mathbb E[vv^\top] = I$:
#
# $$ J_\mathrm{SSM}(\theta) = \mathbb E_{p}\,\mathbb E_{v}\Big[v^\top \nabla_x s_\theta(x)\, v + \tfrac12\big(v^\top s_\theta(x)\big)^2\Big], $$
#
# $$ J_\mathrm{SSM\text{-}VR}(\theta) = \mathbb E_{p}\Big[\mathbb E_{v}\big[v^\top \nabla_x s_\theta(x)\, v\big] + \tfrac12\|s_\theta(x)\|^2\Big]. $$
#
# Both equal $J_\mathrm{ISM}$: the first terms by Hutchinson, and
# $\mathbb E_v[(v^\top s)^2] = s^\top\mathbb E[vv^\top]\,s = \|s\|^2$. SSM is the "sliced" form of
# Song et al. (the whole objective seen along a random direction); SSM-VR keeps the exact
# $\tfrac12\|s\|^2$, which costs nothing, and only estimates the trace — removing the variance of
# $(v^\top s)^2$. In practice $v^\top\nabla_x s_\theta\,v$ is computed as
# $\nabla_x\big(v^\top s_\theta(x)\big)\cdot v$: one backward pass per projection.
#
# **Check.** On 100 000 samples of `mixture_2d()` and a random `ScoreMLP(2)`, the per-sample
# values of ISM (exact), SSM and SSM-VR (one Rademacher projection each). Since all three use
# the same samples, the differences SSM − ISM and SSM-VR − ISM are compared sample by sample.

# %%
mix2 = mixture_2d()
x = mix2.sample(100_000, generator=generator)
torch.manual_seed(1)
probe_model = ScoreMLP(2, hidden=64)
with torch.no_grad():
    probe_model.net[-1].weight.mul_(5.0)
ism_values = losses.ism_loss(probe_model, x, reduction="none").detach()
ssm_values = losses.ssm_loss(probe_model, x, generator=generator, reduction="none").detach()
vr_values = losses.ssm_vr_loss(probe_model, x, generator=generator, reduction="none").detach()

# %%
# NBVAL_CHECK_OUTPUT
for name, values in (("ISM (exact trace)", ism_values), ("SSM", ssm_values), ("SSM-VR", vr_values)):
    m, se = mean_and_se(values)
    print(f"{name:<18} {m:7.3f} ± {se:.3f}   per-sample std {values.std():6.3f}")
for name, values in (("SSM − ISM", ssm_values - ism_values), ("SSM-VR − ISM", vr_values - ism_values)):
    print(f"{name:<18} {mean_and_se(values)[0]:7.4f} ± {mean_and_se(values)[1]:.4f}   (paired)")

# %% [markdown]
# The three objectives agree within their standard errors (the paired differences are far
# more precise than each average), and the per-sample spread shows
# the price of the projections: SSM is noisier than SSM-VR, which is noisier than exact ISM.
#
# ## 4. Fitting the 2-D mixture with ISM, SSM and SSM-VR
#
# Same network, same initial weights, same data stream, same 600 Adam steps; only the loss
# differs (one Rademacher projection per sample for SSM and SSM-VR). We grade each fit with ESM
# against the true score on 100 000 fresh samples.

# %%
objectives = {
    "ISM": lambda model, batch, gen: losses.ism_loss(model, batch),
    "SSM": lambda model, batch, gen: losses.ssm_loss(model, batch, generator=gen),
    "SSM-VR": lambda model, batch, gen: losses.ssm_vr_loss(model, batch, generator=gen),
}
fits = {}
for name, objective in objectives.items():
    torch.manual_seed(0)
    model = ScoreMLP(2, hidden=64)
    fits[name] = train(model, objective, mix2.sample, n_steps=600, batch_size=256, lr=1e-2, seed=0, progress=False)
x_test = mix2.sample(100_000, generator=generator)
with torch.no_grad():
    esm = {name: losses.esm_loss(fit.model, x_test, mix2.score, reduction="none") for name, fit in fits.items()}

# %%
# NBVAL_CHECK_OUTPUT
for name, values in esm.items():
    print(f"ESM of the {name:<6} fit: {mean_and_se(values)[0]:.3f} ± {mean_and_se(values)[1]:.3f}")
print(f"ESM of the zero model: {mean_and_se(0.5 * (mix2.score(x_test) ** 2).sum(-1))[0]:.3f}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(19, 4.6), layout="constrained")
fields = [("true score", mix2.score)] + [(f"learned by {name}", fit.model) for name, fit in fits.items()]
for ax, (title, field) in zip(axes, fields):
    plot_density_2d(ax, mix2.log_prob, xlim=(-5, 5), ylim=(-4, 4.5))
    quiver = plot_score_field(ax, field, xlim=(-5, 5), ylim=(-4, 4.5), n=18)
    quiver.set_clim(0, 3)
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
fig.colorbar(quiver, ax=axes, label="log(1 + ‖s(x)‖)", shrink=0.8)
plt.show()

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
window = 25
for name, fit in fits.items():
    smooth = torch.tensor(fit.losses).unfold(0, window, 1).mean(-1)
    ax.plot(range(window - 1, len(fit.losses)), smooth, label=name)
ax.axhline(-mean_and_se(0.5 * (mix2.score(x_test) ** 2).sum(-1))[0], color="k", ls="--", label="−C (lowest possible)")
ax.set(xlabel="step", ylabel=f"training loss (running mean over {window} steps)", ylim=(-4, 1),
       title="three estimates of the same objective")
ax.legend()
plt.show()

# %% [markdown]
# SSM-VR does as well as exact ISM. Plain SSM, whose gradients carry the extra noise of
# $(v^\top s_\theta)^2$, is behind after the same 600 steps (a higher ESM), though its field is
# qualitatively right. The three training losses estimate the same objective and settle at the
# same level, just above $-C$.
#
# ## 5. Cost per step against dimension
#
# The point of slicing is the cost. We time one training step (median over a few steps, one
# CPU thread) of `ScoreMLP(d, hidden=128)` on standard-normal data, batch 64, for exact ISM,
# SSM and SSM-VR with one projection, and denoising score matching (DSM, lesson 4: no derivative
# of the model with respect to $x$ at all). Timings depend on the machine and are not checked.

# %%
dims = [2, 8, 32, 128, 512]
timed = dict(objectives, DSM=lambda model, batch, gen: losses.dsm_loss(model, batch, 0.1, generator=gen))
threads = torch.get_num_threads()
torch.set_num_threads(1)  # time the algorithms, not how threads share a busy machine
step_seconds = {name: [] for name in timed}
for name, objective in timed.items():
    for d in dims:
        torch.manual_seed(0)
        step_seconds[name].append(
            seconds_per_step(ScoreMLP(d, hidden=128), objective, Gaussian(torch.zeros(d), 1.0).sample,
                             n_steps=10 if name != "ISM" or d < 128 else 4, batch_size=64)
        )
torch.set_num_threads(threads)
for name, secs in step_seconds.items():
    print(f"{name:<7}" + "".join(f"  d={d}: {1000 * s:7.1f} ms" for d, s in zip(dims, secs)))

# %%
fig, ax = plt.subplots(figsize=(7, 4.8))
for name, marker in zip(step_seconds, "osD^"):
    ax.loglog(dims, step_seconds[name], marker + "-", label=name)
ax.set(xlabel="dimension d", ylabel="seconds per training step", title="cost per step: exact trace vs projections")
ax.legend()
plt.show()

# %% [markdown]
# Exact ISM grows steeply with $d$; SSM and SSM-VR stay within a small factor of DSM, their
# cost set by the network rather than by the number of Jacobian rows.
#
# ## Exercise — the SSM loss
#
# Implement `ssm_loss(score_fn, x, v)` where `x` has shape `(B, d)` and `v` has shape
# `(M, B, d)`: $M$ projection vectors for every sample (given, so the result is deterministic).
# Return the scalar mean over the $M$ projections and the batch of
# $v^\top\nabla_x s(x)\,v + \tfrac12\big(v^\top s(x)\big)^2$, differentiable with respect to the
# model's parameters.

# %%
def ssm_loss(score_fn, x, v):
    """Sliced score matching: mean over projections and batch of vᵀ∇ₓs(x)v + ½(vᵀs(x))²."""
    # Hint: for one projection vm, torch.autograd.grad((s * vm).sum(), x, create_graph=True) gives vmᵀ∇ₓs for every sample.
    ### BEGIN SOLUTION
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    total = 0.0
    for vm in v:
        (vjp,) = torch.autograd.grad((s * vm).sum(), x, create_graph=True)
        total = total + ((vjp * vm).sum(-1) + 0.5 * (s * vm).sum(-1) ** 2).mean()
    return total / len(v)
    ### END SOLUTION


# %%
check_ssm_loss(ssm_loss)

# %% [markdown]
# ## Think
#
# 1. For which matrices is one Rademacher projection *exact*? What does that mean for the
#    score of a Gaussian with diagonal covariance?
# 2. SSM-VR uses the exact $\tfrac12\|s_\theta\|^2$. Why can't we do the same for the trace term?
# 3. With $M$ projections the cost is $M$ backward passes and the variance falls like $1/M$.
#    When would you rather spend the same compute on a larger batch than on more projections?
# 4. Sliced score matching still needs one derivative of the network with respect to $x$.
#    Which method in the cost plot needs none, and what does it give up in exchange (lesson 4)?
#
# ## Summary
#
# - Hutchinson: $\operatorname{tr}A = \mathbb E[v^\top Av]$ for any $v$ with
#   $\mathbb E[vv^\top] = I$; one vector–Jacobian product per projection, whatever the dimension.
# - Variance of one projection, symmetric $A$: $2\sum_{i\ne j}A_{ij}^2$ (Rademacher) and
#   $2\|A\|_F^2$ (Gaussian), divided by $M$ for $M$ projections — confirmed by measurement.
# - SSM and SSM-VR have the ISM objective as their expectation (checked with standard errors);
#   SSM-VR removes the noise of $(v^\top s)^2$ for free.
# - On the 2-D mixture the three objectives fit equally well; in high dimension only the
#   sliced ones (and DSM, next lesson) remain affordable.
