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
# the trace, and in its plain form the whole objective, by its value along random directions, each
# costing one vector–Jacobian product.
#
# **Objectives.** By the end of this lesson you can
#
# 1. prove that Hutchinson's estimator $v^\top A v$ (Hutchinson 1989 for Rademacher projections,
#    Girard 1989 for Gaussian ones) is unbiased for $\operatorname{tr}A$ and
#    check it numerically, with Rademacher and with Gaussian projections;
# 2. derive the variance of the estimator for both kinds of projections and watch it fall
#    like $1/M$ with the number $M$ of projections;
# 3. write down SSM and its variance-reduced version SSM-VR, check that their expectation
#    is the ISM objective, and read SSM as a **sliced Fisher divergence**;
# 4. fit a 2-D score model with ISM, SSM and SSM-VR over several training seeds and compare
#    the results with the right error bars;
# 5. measure the gradient noise of each objective at a trained model, and the cost per step of
#    ISM, SSM, SSM-VR and DSM as the dimension grows;
# 6. implement the Rademacher variance, SSM and SSM-VR yourself, and derive the variance.
#
# Conventions: losses carry the papers' $\tfrac12$, sum over dimensions and average over the
# batch (and over projections); points are batch-first, shape `(B, d)`; the Jacobian of a field
# $s$ has entries $(\nabla_x s)_{ij} = \partial s_i/\partial x_j$.

# %%
import time

import matplotlib.pyplot as plt
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.autodiff import (
    hutchinson_trace,
    hutchinson_variance,
    jacobian_trace,
    linear_hutchinson_estimates,
    sample_projections,
)
from lessons_lib.course.checks import check_rademacher_variance, check_ssm_loss, check_ssm_vr_loss
from lessons_lib.densities import Gaussian, fisher_constant_2d
from lessons_lib.explorers import ProjectionVarianceExplorer
from lessons_lib.nets import ScoreMLP
from lessons_lib.plotting import plot_score_error, score_error_by_region
from lessons_lib.stats import mean_and_sd, mean_and_se
from lessons_lib.toy_data import mixture_2d
from lessons_lib.training import train
from lessons_lib.utils import make_generator

generator = seed_everything(0)
torch.set_num_threads(1)  # the networks here are tiny: more threads only add synchronisation, worst on a busy machine

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
# Unbiased is not enough: a single projection can be far off. Let $A$ be symmetric, as a Hessian
# of $\log p$ is; a score network's Jacobian $\nabla_x s_\theta$ generally is not, and exercise 1
# works out what changes then. Split the quadratic form into diagonal and off-diagonal terms:
#
# $$ v^\top A v = \sum_i A_{ii}\, v_i^2 + \sum_{i\ne j} A_{ij}\, v_i v_j . $$
#
# - **Rademacher.** $v_i^2 = 1$ always, so the first sum *is* $\operatorname{tr}A$, with no
#   randomness. The products $v_iv_j$ ($i\ne j$) have mean 0 and variance 1; working out which
#   fourth moments $\mathbb E[v_iv_jv_kv_l]$ survive (exercise 4) gives
#   $$ \operatorname{Var}_\mathrm{Rad}\big[v^\top Av\big] = \sum_{i\ne j}\sum_{k\ne l} A_{ij}A_{kl}\,\mathbb E[v_iv_jv_kv_l]
#      = 2\sum_{i\ne j} A_{ij}^2 . $$
# - **Gaussian.** Now $v_i^2$ varies too: $\operatorname{Var}[v_i^2] = \mathbb E v_i^4 - 1 = 2$,
#   and the diagonal and off-diagonal sums are uncorrelated, since
#   $\mathbb E[(v_i^2 - 1)\,v_jv_k] = 0$ for $j \ne k$ (one of $j, k$ differs from $i$ and enters with
#   odd power); that adds $2\sum_i A_{ii}^2$:
#   $$ \operatorname{Var}_\mathrm{Gauss}\big[v^\top Av\big] = 2\sum_i A_{ii}^2 + 2\sum_{i\ne j}A_{ij}^2 = 2\|A\|_F^2 . $$
#
# Rademacher projections are never worse; by how much they win depends on how much of $A$'s
# weight sits on its diagonal: the ratio of the two variances is
# $1 + \sum_i A_{ii}^2 / \sum_{i\ne j}A_{ij}^2$. Averaging $M$ independent projections divides
# either variance by $M$: the standard error falls only like $1/\sqrt M$.
#
# **Check.** A random symmetric $10\times10$ matrix $A$, and the linear field $f(x) = Ax$ whose
# Jacobian is $A$ everywhere: for $M = 1, 2, 4, \dots, 64$ we draw 4 000 independent
# $M$-projection estimates (`linear_hutchinson_estimates`, with a generator seeded with 1 for
# every setting, exactly as the explorer below does) and measure their variance. (With one seed
# for every $M$ the measured points are correlated with one another: common random numbers.)

# %%
g_matrix = make_generator(1)
B = torch.randn(10, 10, generator=g_matrix, dtype=torch.float64)
A = (B + B.T) / 2
closed_form = {kind: hutchinson_variance(A, kind) for kind in ("rademacher", "gaussian")}

M_values = [1, 2, 4, 8, 16, 32, 64]
n_rep, estimate_seed = 4000, 1
variances = {kind: [] for kind in closed_form}
variance_se = {kind: [] for kind in closed_form}
for kind in closed_form:
    for M in M_values:
        est = linear_hutchinson_estimates(A, n_rep, M, kind, make_generator(estimate_seed))
        squared_dev = (est - est.mean()) ** 2  # the variance is their mean; its SE from their spread
        var, se = (t * n_rep / (n_rep - 1) for t in mean_and_se(squared_dev))  # n − 1: the unbiased variance
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
       title="Hutchinson's estimator: variance falls like 1/M", xticks=M_values, xticklabels=[str(m) for m in M_values])
ax.minorticks_off()
ax.legend()
plt.show()

# %% [markdown]
# Both kinds follow their closed forms and the $1/M$ slope (the error bars, ± one standard error,
# are smaller than the markers); the Rademacher line sits lower by the
# constant factor $1 + \sum_i A_{ii}^2/\sum_{i\ne j}A_{ij}^2$. For this random matrix that is a
# small gain (closed forms 93 against 114 for $M = 1$): most of its weight is off the diagonal. To see when
# Rademacher projections win big, scale the diagonal of the same matrix by a factor $c$,
# $A(c) = c\cdot\operatorname{diag}(A) + (\text{off-diagonal part of } A)$, and measure the
# variance of one projection of each kind ($M = 1$, 4 000 estimates):

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'c':>4}{'diagonal share of ‖A‖²':>24}{'Rademacher':>12}{'Gaussian':>10}{'ratio':>8}")
for c in (0.0, 1.0, 4.0, 16.0):
    A_c = A + (c - 1) * torch.diag(torch.diagonal(A))
    var_c = {kind: linear_hutchinson_estimates(A_c, n_rep, 1, kind, make_generator(estimate_seed)).var().item()
             for kind in closed_form}
    share = (torch.diagonal(A_c) ** 2).sum() / (A_c**2).sum()
    print(f"{c:4g}{share:24.2f}{var_c['rademacher']:12.1f}{var_c['gaussian']:10.1f}"
          f"{var_c['gaussian'] / var_c['rademacher']:8.1f}")

# %% [markdown]
# With no diagonal ($c = 0$) the two kinds are equally good; as the diagonal takes over, the
# Gaussian variance grows like $c^2$ while the Rademacher one does not move. That column is the
# same in every row by construction, not by measurement: with $v_i^2 = 1$, scaling the diagonal
# shifts every Rademacher estimate by the same constant. How much of a score model's Jacobian sits
# on its diagonal is an empirical question; section 4 measures it for a trained model.
#
# The explorer below repeats these experiments interactively on the *same* matrix and the
# same seed (its diagonal slider stops at $c = 8$), so its first view ($M = 1$, Rademacher, $c = 1$) shows exactly the variance printed
# above (its message line repeats it): move $M$, switch the kind of projection, and scale the diagonal, and watch the
# histogram of 4 000 estimates tighten around the exact trace.

# %%
# NBVAL_IGNORE_OUTPUT
ProjectionVarianceExplorer(A=A, n_repeats=n_rep, seed=estimate_seed)

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
# $\tfrac12\|s\|^2$, which costs nothing, and only estimates the trace. That removes the variance
# of $\tfrac12(v^\top s)^2$ and also its covariance with the trace estimate; the covariance can be
# negative, so a lower variance for SSM-VR is not guaranteed in general. In practice
# $v^\top\nabla_x s_\theta\,v$ is computed as
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
    m, se = mean_and_se(values)
    print(f"{name:<18} {m:7.4f} ± {se:.4f}   (paired; {abs(m) / se:.1f} standard errors from 0)")

# %% [markdown]
# Pairing removes the noise that the two losses share, so the differences have smaller standard
# errors than the averages: somewhat smaller for SSM − ISM, several times smaller for SSM-VR − ISM,
# whose only random part is the trace estimate. SSM − ISM is well within its standard error of zero; SSM-VR − ISM lies about two standard errors from zero. SSM-VR is exactly
# unbiased, so that is a fluctuation of a size that turns up in a few runs in a hundred; more
# samples would shrink it. The per-sample spread shows the price of the projections: SSM is
# noisier than SSM-VR, which is noisier than exact ISM. This model is an untrained probe, so
# these spreads say nothing yet about training; section 4 measures them at a trained model.
#
# ### SSM in its own right: the sliced Fisher divergence
#
# So far SSM looks like "ISM with Hutchinson's trick". Song, Garg, Shi & Ermon (2019) derive it
# differently, and the derivation explains the name. Instead of comparing the full score
# vectors (ESM, half the Fisher divergence of lesson 2), compare only their components along a
# random direction $v$, a one-dimensional *slice*:
#
# $$ L(\theta) = \tfrac12\,\mathbb E_v\,\mathbb E_p\big(v^\top s_\theta(x) - v^\top\nabla_x\log p(x)\big)^2 , $$
#
# the **sliced Fisher divergence**. With $\mathbb E[vv^\top] = I$ it equals ESM. Other distributions
# of $v$ give a divergence too, provided $\mathbb E[vv^\top]$ is positive definite (always slicing
# along $e_1$ would ignore every other component of the score), but then SSM's expectation is no
# longer ISM, and SSM-VR would need $\tfrac12 s^\top\mathbb E[vv^\top]s$ instead of $\tfrac12\|s\|^2$. Its
# cross term is integrated by parts along $v$ alone, a one-dimensional integration by parts on
# every line parallel to $v$: with $\partial_v = v^\top\nabla_x$ the derivative along $v$ and
# $p\,v^\top\nabla\log p = \partial_v p$,
#
# $$ \mathbb E_p\big[(v^\top s_\theta)(v^\top\nabla\log p)\big] = \int (v^\top s_\theta)\,\partial_v p\,dx
#    = -\int p\,\partial_v(v^\top s_\theta)\,dx = -\mathbb E_p\big[v^\top\nabla_x s_\theta\,v\big] , $$
#
# provided the boundary terms vanish, $p\,(v^\top s_\theta)\to0$ at both ends of every line
# parallel to $v$, and $s_\theta$, $\nabla\log p$ have finite second moments and
# $v^\top\nabla_x s_\theta\,v$ is integrable under $p$. This line-by-line version is a sufficient
# variant of the conditions of Song, Garg, Shi & Ermon (2019), who assume
# $s_\theta(x)\,p(x)\to0$ as $\|x\|\to\infty$, $\mathbb E\|v\|^2<\infty$ and
# $\mathbb E[vv^\top]\succ0$. Then $L(\theta) = J_\mathrm{SSM}(\theta) + \tfrac12\mathbb E_v\mathbb E_p(v^\top\nabla\log p)^2$: SSM is
# the sliced Fisher divergence up to a constant, exactly as ISM is ESM up to a constant. It
# only needs the number $v^\top\nabla_x s_\theta\,v$: one reverse pass of $v^\top s_\theta$ gives the
# vector $\nabla_x(v^\top s_\theta) = (\nabla_x s_\theta)^\top v$, and its dot product with $v$ is that
# number. (A forward-mode Jacobian–vector product would give $(\nabla_x s_\theta)\,v$ at the same cost.)
#
# **Check.** With the *same* projections for both, the per-sample sliced Fisher divergence
# minus the per-sample SSM must average to the constant $\tfrac12\mathbb E(v^\top\nabla\log p)^2$,
# which for $\mathbb E[vv^\top] = I$ is $C = \tfrac12\mathbb E\|\nabla\log p\|^2$ of lesson 2 (here
# sample by sample; its exact value by quadrature is printed last), for the probe model and for
# a second random, untrained MLP.

# %%
# NBVAL_CHECK_OUTPUT
v = sample_projections((1, *x.shape), generator=generator)
true_score = mix2.score(x)
half_true_sq = 0.5 * (true_score**2).sum(-1)
torch.manual_seed(2)
for name, model in (("probe model", probe_model), ("another random MLP", ScoreMLP(2, hidden=64))):
    ssm_v = losses.ssm_loss(model, x, v=v, reduction="none").detach()
    with torch.no_grad():
        sliced_fisher = 0.5 * ((v[0] * (model(x) - true_score)).sum(-1)) ** 2
    gap, gap_se = mean_and_se(sliced_fisher - ssm_v - half_true_sq)  # paired, sample by sample
    print(f"{name:<19} sliced Fisher {sliced_fisher.mean():6.3f}   SSM {ssm_v.mean():6.3f}   "
          f"difference − C {gap:7.4f} ± {gap_se:.4f}")
C_exact = fisher_constant_2d(mix2)  # ½ E‖∇log p‖² by quadrature, used from here on
print("C: Monte Carlo {:.3f} ± {:.3f}, quadrature {:.4f}".format(*mean_and_se(half_true_sq), C_exact))

# %% [markdown]
# For both models the sliced Fisher divergence and SSM differ by $C$, within Monte-Carlo error.
#
# ## 4. Fitting the 2-D mixture with ISM, SSM and SSM-VR
#
# Same network, same initial weights, same data stream, same 400 Adam steps; only the loss
# differs (one Rademacher projection per sample for SSM and SSM-VR). We grade each fit with ESM
# against the true score on 100 000 fresh samples, and we repeat the whole comparison for five
# training seeds (0 to 4: initial weights, batches and projections), because a single run cannot
# tell a better method from a lucky seed. Because the three objectives share the seed, the start
# and the data, we compare them **seed by seed**: the mean of the paired differences in ESM over
# the five seeds ± its standard error (SD/√5), with $t$ = mean/SE judged against the $t$
# distribution with 4 degrees of freedom ($|t| > 2.78$ is significant at 5 %). The Monte-Carlo
# error of evaluating one model on 100 000 samples is printed too; it is much smaller.
#
# Along the way, a callback records each run's ESM on a fixed set of 5 000 samples every 20
# steps: every training loss is a noisy estimate offset by the unknown constant −C, while the ESM
# against the known score is not.

# %%
objectives = {
    "ISM": lambda model, batch, gen: losses.ism_loss(model, batch),
    "SSM": lambda model, batch, gen: losses.ssm_loss(model, batch, generator=gen),
    "SSM-VR": lambda model, batch, gen: losses.ssm_vr_loss(model, batch, generator=gen),
}
seeds = range(5)
n_train = 400
x_test = mix2.sample(100_000, generator=generator)
x_track = x_test[:5000]
score_test = mix2.score(x_test)  # the true score at the evaluation points, computed once
score_track = score_test[:5000]
track_every = 20
fits = {name: [] for name in objectives}
esm_curves = {name: [] for name in objectives}
for name, objective in objectives.items():
    for seed in seeds:
        torch.manual_seed(seed)
        model = ScoreMLP(2, hidden=64)
        curve = []

        def track(step, loss, model=model, curve=curve):
            if step % track_every == 0:
                with torch.no_grad():
                    curve.append(losses.esm_loss(model, x_track, score_track).item())

        fits[name].append(train(model, objective, mix2.sample, n_steps=n_train, batch_size=256, lr=1e-2, seed=seed,
                                progress=False, callback=track))
        esm_curves[name].append(curve)
with torch.no_grad():
    esm = {name: [losses.esm_loss(fit.model, x_test, score_test, reduction="none") for fit in runs]
           for name, runs in fits.items()}
    C = C_exact

# %%
# NBVAL_CHECK_OUTPUT
for name, values in esm.items():
    finals = [v.mean() for v in values]
    print(f"ESM of the {name:<6} fits: " + " ".join(f"{f:.3f}" for f in finals)
          + "   mean {:.3f}, SD between seeds {:.3f}".format(*mean_and_sd(finals)))
print(f"Monte-Carlo SE of one evaluation: at most {max(mean_and_se(v)[1] for vs in esm.values() for v in vs):.4f}")
for name in ("SSM", "SSM-VR"):
    diffs = [(a - b).mean() for a, b in zip(esm[name], esm["ISM"])]  # same seed: same start and same data
    relative = [d / b.mean() for d, b in zip(diffs, esm["ISM"])]
    m, se = mean_and_se(torch.stack(diffs))
    print(f"{name} − ISM, seed by seed: " + " ".join(f"{d:+.3f}" for d in diffs)
          + f"   → {m:+.4f} ± {se:.4f} (± SE of the paired mean), t = {m / se:.1f}")
    print(f"{name} − ISM relative to ISM, seed by seed: " + " ".join(f"{q:+.0%}" for q in relative))
print(f"ESM of the zero model (C by quadrature): {C:.3f}")

# %% [markdown]
# In these five seeds SSM ends above ISM in four, by 12 % to 109 % of ISM's ESM (the relative
# line), and below it in one; the paired mean difference is positive but its $t$
# is below the 5 % threshold, so five seeds at this training length do not establish that SSM is
# worse. SSM-VR − ISM changes sign from seed to seed and its $t$ is smaller still. The
# Monte-Carlo error of each evaluation is far smaller than either standard error: what limits the
# comparison is the training seed, not the evaluation.
#
# Where do the fits go wrong? For each fit, the median of the error $\|s_\theta - \nabla\log p\|$
# over a grid, inside and outside the line where the density falls to $10^{-3}$ of its peak
# (outside it, training samples are rare), as mean ± SD over the five seeds; then maps of the
# error of the seed-0 fits, with that line dashed. Seed 0 is the one seed of five in which SSM
# ended below ISM, so its maps flatter SSM:

# %%
# NBVAL_CHECK_OUTPUT
for name, runs in fits.items():
    inside, outside = zip(*(score_error_by_region(fit.model, mix2.score, mix2.log_prob, xlim=(-5, 5), ylim=(-4, 4.5))
                            for fit in runs))
    print(f"{name:<7} median error where p ≥ 1e-3·max: {mean_and_sd(inside)[0]:.2f} ± {mean_and_sd(inside)[1]:.2f}"
          f"   where p < 1e-3·max: {mean_and_sd(outside)[0]:.2f} ± {mean_and_sd(outside)[1]:.2f}"
          "   (grid median per seed; mean ± SD over 5 seeds)")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.3), layout="constrained", sharey=True)
for ax, (name, runs) in zip(axes, fits.items()):
    mesh, _ = plot_score_error(ax, runs[0].model, mix2.score, mix2.log_prob, xlim=(-5, 5), ylim=(-4, 4.5), vmax=4)
    ax.set(title=f"error of the {name} fit (seed 0)", xlabel="$x_1$", aspect="equal")
axes[0].set_ylabel("$x_2$")
fig.colorbar(mesh, ax=axes, label="‖s_θ(x) − ∇log p(x)‖", shrink=0.9, extend="max", pad=0.01)
plt.show()

# %%
fig, (ax_loss, ax_esm) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
window = 25
steps = torch.arange(track_every, n_train + 1, track_every)
for (name, runs), color in zip(fits.items(), ("C0", "C1", "C2")):
    smooth = torch.tensor(runs[0].losses).unfold(0, window, 1).mean(-1)
    ax_loss.plot(range(window - 1, n_train), smooth, color=color, label=name)
    curves = torch.tensor(esm_curves[name])
    mean, sd = curves.mean(0), curves.std(0)
    ax_esm.plot(steps, mean, color=color, label=f"{name}: mean of 5 seeds")
    ax_esm.fill_between(steps, mean - sd, mean + sd, color=color, alpha=0.2)
ax_loss.axhline(-C, color="k", ls="--", label="−C: the lowest possible expected loss")
ax_loss.set(xlabel="step", ylabel=f"training loss (running mean of {window})", ylim=(-4, 1),
            title="training losses (seed 0, the same batches for all three)")
ax_esm.set(xlabel="step", ylabel="ESM on 5 000 fixed samples", yscale="log", ylim=(0.05, 3),
           title="ESM along training: mean ± SD over 5 seeds")
ax_loss.legend()
ax_esm.legend()
plt.show()

# %% [markdown]
# Left, the training losses of seed 0: all three estimate the same objective, and their running
# means nearly coincide, partly because the three runs share their batches and a running mean
# over 25 steps hides the projection noise. Right, the ESM along training, mean ± SD over the five
# seeds. All three fields are qualitatively right where the data are, and all are poor where
# data are rare (the maps): slicing changes the noise, not what the loss can see.
#
# **The gradient noise itself.** Are SSM's gradients noisier, as its extra term suggests? At the trained
# seed-0 ISM model, we draw 40 batches of 256 samples (fresh projections for each) and measure,
# for each objective (SSM and SSM-VR also with Gaussian projections), the total variance of the
# minibatch gradient over all parameters (for three
# independent sets of 40 batches, to show how much that estimate itself varies), the
# per-sample spread of the loss, and the diagonal share $\sum_i S_{ii}^2/\|S\|_F^2$ of the
# symmetric Jacobian $S$ (median over 500 samples) that decides how much Rademacher projections
# gain over Gaussian ones.

# %%
# NBVAL_CHECK_OUTPUT
trained = fits["ISM"][0].model
params = list(trained.parameters())
g_noise = make_generator(7)
batch_sets = [[mix2.sample(256, generator=g_noise) for _ in range(40)] for _ in range(3)]
noise_objectives = dict(
    objectives,
    **{f"{name} (Gaussian)": lambda model, batch, gen, fn=fn: fn(model, batch, kind="gaussian", generator=gen)
       for name, fn in (("SSM", losses.ssm_loss), ("SSM-VR", losses.ssm_vr_loss))},
)
grad_var = {}
for name in noise_objectives:
    grad_var[name] = []
    for batches in batch_sets:
        grads = []
        for batch in batches:
            loss = noise_objectives[name](trained, batch, g_noise)
            grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
        grad_var[name].append(torch.stack(grads).var(0).sum().item())
for name in noise_objectives:
    per_sample = {"ISM": losses.ism_loss, "SSM": losses.ssm_loss, "SSM-VR": losses.ssm_vr_loss}[name.split()[0]]
    kwargs = {} if name == "ISM" else {"generator": g_noise, "kind": "gaussian" if "Gaussian" in name else "rademacher"}
    spread = per_sample(trained, x_test[:20_000], reduction="none", **kwargs).detach().std().item()
    ratios = " ".join(f"{v / w:.2f}" for v, w in zip(grad_var[name], grad_var["ISM"]))
    print(f"{name:<17} total variance of a batch-256 gradient, 3 sets of 40 batches: "
          + " ".join(f"{v:6.2f}" for v in grad_var[name]) + f"   (÷ ISM: {ratios})   per-sample SD of the loss {spread:.2f}")
jac_t = torch.func.vmap(torch.func.jacrev(lambda xi: trained(xi[None])[0]))(x_test[:500]).detach()
sym_t = (jac_t + jac_t.transpose(1, 2)) / 2
share_t = (torch.diagonal(sym_t, dim1=1, dim2=2) ** 2).sum(-1) / (sym_t**2).sum((1, 2))
print(f"median diagonal share of the symmetric Jacobian at the trained model: {share_t.median():.2f}")

# %% [markdown]
# At the trained model, plain SSM's minibatch gradient has roughly twice the variance of exact
# ISM's in each of the three sets of batches, while SSM-VR adds only a few per cent: the extra
# noise comes from the $\tfrac12(v^\top s_\theta)^2$ term, net of its covariance with the trace
# estimate, which SSM-VR removes by using the term's mean.
# That is a mechanism by which SSM could train worse; the seed comparison above is too short to
# show the effect on ESM conclusively. The diagonal share of the trained Jacobian is high, so for
# a single sample a Gaussian projection's *trace estimate* is several times noisier than a
# Rademacher one (section 2's ratio formula). The Gaussian rows measure what that costs in the
# minibatch gradient: each is noisier than its Rademacher counterpart in every set of batches.
# SSM-VR's excess over ISM grows severalfold (three sets of 40 batches estimate an excess of a
# few per cent only roughly) yet stays a fraction of ISM's own variance, diluted by the data
# noise; plain SSM with Gaussian projections has the noisiest gradient.
#
# The last column does not rank the objectives as their gradients do. With Gaussian projections
# plain SSM's per-sample *loss* is slightly less spread than SSM-VR's (7.46 against 7.58: the
# covariance of section 3 is negative here), while its *gradient* variance is about four times
# ISM's against SSM-VR's 1.2–1.3. The spread of a loss's values is not the noise of its gradient.
#
# **A dimension where the exact trace is too slow.** The exact trace needs all $d$ diagonal
# entries of the Jacobian, one projection needs one vector–Jacobian product, so the saving grows
# with $d$ (section 5 times one step against $d$). In $d = 100$, fit `ScoreMLP(100, hidden=128)`
# to a Gaussian with independent coordinates
# (variances from 0.5 to 2, so the true score is known) by ISM and by SSM-VR, giving each **the
# same wall-clock time** (after one untimed warm-up step each, which also absorbs one-off
# first-call costs), and grade both with ESM on 5 000 fresh samples (the zero model's ESM is the
# last number). The times and numbers depend on the machine and its load, and are not checked.

# %%
d_big = 100
big = Gaussian(torch.zeros(d_big), torch.diag(torch.linspace(0.5, 2.0, d_big)))
x_big_test = big.sample(5000, generator=make_generator(8))
budget_s = 1.0
for name in ("ISM", "SSM-VR"):
    torch.manual_seed(0)
    big_model = ScoreMLP(d_big, hidden=128)
    optimiser = torch.optim.Adam(big_model.parameters(), lr=1e-3)
    g_big, n_steps, start = make_generator(9), -1, None
    while start is None or time.perf_counter() - start < budget_s:
        loss = objectives[name](big_model, big.sample(64, generator=g_big), g_big)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        n_steps += 1
        if start is None:  # the first step is an untimed warm-up
            start = time.perf_counter()
    with torch.no_grad():
        print(f"{name:<7} {n_steps:5d} steps in {budget_s:g} s: ESM {losses.esm_loss(big_model, x_big_test, big.score):.3f}")
print(f"zero model: ESM {0.5 * (big.score(x_big_test) ** 2).sum(-1).mean():.3f}")

# %% [markdown]
# In the same wall-clock time SSM-VR took many times as many steps as exact ISM (the printed counts).
# ISM's exact trace needs 100 Jacobian rows per sample, about 100 times the arithmetic of one
# projection; an ISM step costs fewer than 100 SSM-VR steps, but still many (one batched
# backward call computes the rows, and both steps share costs that do not grow with $d$: the forward pass, the
# optimiser, Python). In this run SSM-VR reached the lower ESM, while ISM had moved only part
# of the way from the zero model. Both objectives have the same expectation; how much noisier an
# SSM-VR gradient is than an ISM gradient in $d = 100$ is not measured here (section 4's ratios
# are for the 2-D model). The target has independent coordinates, so its score's Jacobian is
# diagonal; the model's Jacobian, which the projections probe, is not diagonal at the start of
# training, and the θ-gradient keeps off-diagonal noise even where the trace's value is nearly
# exact (Think 1). This is one seed,
# and the step counts depend on the machine and its load.
#
# ## 5. Cost per step against dimension
#
# The point of slicing is the cost. We time one training step of `ScoreMLP(d, hidden=128)` on
# standard-normal data, batch 64, one CPU thread, for exact ISM, SSM and SSM-VR with one
# projection, and denoising score matching (DSM, lesson 4: no derivative of the model with
# respect to $x$ at all), up to $d = 256$. Each entry is the *fastest* of 5 timed steps after one
# untimed one (lesson 2's `step_costs` reports the median instead): other processes can only slow
# a step down, so on a shared machine the minimum is the more robust estimate of what a step
# costs. Times depend on the machine and on whatever else it is running; individual entries still
# vary between runs, most for the long ISM steps, and none is checked.

# %%
dims = [2, 8, 32, 128, 256]
timed = dict(objectives, DSM=lambda model, batch, gen: losses.dsm_loss(model, batch, 0.1, generator=gen))


def fastest_step(loss_fn, d, n_steps=5, warmup=1):
    """Seconds of the fastest of `n_steps` training steps of ScoreMLP(d, 128), batch 64, after `warmup` untimed ones."""
    torch.manual_seed(0)
    stamps = []  # one time stamp after every step
    train(ScoreMLP(d, hidden=128), loss_fn, Gaussian(torch.zeros(d), 1.0).sample, n_steps=warmup + n_steps,
          batch_size=64, seed=0, progress=False, callback=lambda step, loss: stamps.append(time.perf_counter()))
    return min(b - a for a, b in zip(stamps[warmup - 1:], stamps[warmup:]))  # other processes only slow a step


step_seconds = {name: [fastest_step(loss_fn, d) for d in dims] for name, loss_fn in timed.items()}
print(" " * 8 + "".join(f"{f'd = {d}':>20}" for d in dims))
for name, secs in step_seconds.items():
    print(f"{name:<8}" + "".join(f"{1000 * t:9.1f} ms ({t / dsm:5.1f}×)" for t, dsm in zip(secs, step_seconds["DSM"])))

# %%
fig, ax = plt.subplots(figsize=(7, 4.8))
for name, marker in zip(step_seconds, "osD^"):
    ax.loglog(dims, step_seconds[name], marker + "-", label=name)
ax.set(xlabel="dimension d", ylabel="seconds per training step", title="cost per step: exact trace vs projections",
       xticks=dims, xticklabels=[str(d) for d in dims])
ax.minorticks_off()
ax.legend()
plt.show()

# %% [markdown]
# (Each number in brackets is the ratio to a DSM step of the same dimension.) With this
# implementation a sliced step is cheaper than an exact-ISM step at every $d$, already at $d = 2$,
# and the gap widens with $d$: ISM's step grows steeply, because its trace needs $d$ Jacobian
# rows, while SSM and SSM-VR stay within a small factor of DSM: they need a constant number of
# network passes per step, not $d$ of them (each pass still grows with $d$, through the
# network's input and output layers).
#
# ## Exercises
#
# ### Exercise 1 (2 points): the variance of one Rademacher projection
#
# Implement `rademacher_variance(A)` for a square matrix `A`, *not necessarily symmetric*: the
# variance of one Rademacher estimate $v^\top Av$ (section 2 derived it for a symmetric matrix;
# work out what changes when $A$ is not), returned as a tensor holding one number.

# %%
def rademacher_variance(A):
    """Var[vᵀAv] over Rademacher v, for a square matrix A (not necessarily symmetric)."""
    # Hint: write vᵀAv as a sum over pairs (i, j) and ask which of its terms are random.
    ### BEGIN SOLUTION
    sym = (A + A.T) / 2
    off = sym - torch.diag(torch.diagonal(sym))
    return 2 * (off**2).sum()
    ### END SOLUTION


# %%
check_rademacher_variance(rademacher_variance)

# %% [markdown]
# ### Exercise 2 (3 points): the SSM loss
#
# Implement `ssm_loss(score_fn, x, v)` where `x` has shape `(B, d)` and `v` has shape
# `(M, B, d)`: $M$ projection vectors for every sample (given, so the result is deterministic).
# Return the scalar mean over the $M$ projections and the batch of
# $v^\top\nabla_x s(x)\,v + \tfrac12\big(v^\top s(x)\big)^2$, differentiable with respect to the
# model's parameters.

# %%
def ssm_loss(score_fn, x, v):
    """Sliced score matching: mean over projections and batch of vᵀ∇ₓs(x)v + ½(vᵀs(x))²."""
    # Hint: vᵀ∇ₓs is the gradient with respect to x of one scalar function of s; one backward
    # pass per projection, and the loss is differentiated again in training.
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
# ### Exercise 3 (3 points): SSM-VR with M projections
#
# Implement `ssm_vr_loss(score_fn, x, v)` with the same shapes: the mean over the batch of
# $\frac1M\sum_m v_m^\top\nabla_x s(x)\,v_m + \tfrac12\|s(x)\|^2$, differentiable with respect to the
# model's parameters.

# %%
def ssm_vr_loss(score_fn, x, v):
    """SSM-VR: mean over the batch of (1/M) Σₘ vₘᵀ∇ₓs(x)vₘ + ½‖s(x)‖²."""
    # Hint: only the trace is estimated; the squared norm needs no projection at all.
    ### BEGIN SOLUTION
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = torch.zeros(x.shape[0], dtype=x.dtype)
    for vm in v:
        (vjp,) = torch.autograd.grad((s * vm).sum(), x, create_graph=True)
        trace = trace + (vjp * vm).sum(-1)
    return (trace / len(v) + 0.5 * (s**2).sum(-1)).mean()
    ### END SOLUTION


# %%
check_ssm_vr_loss(ssm_vr_loss)

# %% [markdown]
# ### Exercise 4 (written, 3 points): the variance of Hutchinson's estimator
#
# (a) For a symmetric $d\times d$ matrix $A$ and Rademacher $v$, derive
# $\operatorname{Var}[v^\top Av] = 2\sum_{i\ne j}A_{ij}^2$ step by step: which fourth moments
# $\mathbb E[v_iv_jv_kv_l]$ with $i\ne j$, $k\ne l$ are non-zero, and why. (b) Apply it to SSM's
# extra term: $(v^\top s)^2 = v^\top(ss^\top)v$. What is its variance over Rademacher $v$ for a fixed
# vector $s$, and for which $s$ is it zero? What does that say about the difference between SSM
# and SSM-VR measured in section 4?

# %% [markdown]
# <!-- BEGIN WRITTEN ANSWER hutchinson_variance -->
# **Model answer.** (a) $v^\top Av = \sum_i A_{ii}v_i^2 + \sum_{i\ne j}A_{ij}v_iv_j$, and $v_i^2 = 1$,
# so $v^\top Av - \operatorname{tr}A = \sum_{i\ne j}A_{ij}v_iv_j$, with mean 0. Its variance is
# $\sum_{i\ne j}\sum_{k\ne l}A_{ij}A_{kl}\,\mathbb E[v_iv_jv_kv_l]$. The entries are independent with
# mean 0, so the expectation is non-zero only if every index appears an even number of times;
# with $i\ne j$ and $k\ne l$ that means $(k,l) = (i,j)$ or $(k,l) = (j,i)$, and then it is
# $\mathbb E[v_i^2]\mathbb E[v_j^2] = 1$: $\mathbb E[v_iv_jv_kv_l] = \delta_{ik}\delta_{jl} + \delta_{il}\delta_{jk}$.
# Hence $\operatorname{Var} = \sum_{i\ne j}(A_{ij}^2 + A_{ij}A_{ji}) = 2\sum_{i\ne j}A_{ij}^2$ by symmetry.
# (b) With $A = ss^\top$, $A_{ij} = s_is_j$: $\operatorname{Var}[(v^\top s)^2] = 2\sum_{i\ne j}s_i^2s_j^2
# = 2(\|s\|^4 - \sum_i s_i^4)$. It is zero exactly when $s$ has at most one non-zero coordinate
# (along an axis). Otherwise it grows like $\|s\|^4$, and at fixed $\|s\|$ it is largest when all
# $|s_i|$ are equal. For the per-sample loss at fixed $x$,
# $\operatorname{Var}_\mathrm{SSM} - \operatorname{Var}_\mathrm{VR} = \operatorname{Var}[\tfrac12(v^\top s)^2]
# + 2\operatorname{Cov}\big(v^\top\nabla_x s\,v, \tfrac12(v^\top s)^2\big)$: this term adds the first
# part, and the covariance, which can be negative, can offset some of it, so the term alone does not
# give the gap measured in section 4. Nor does it give the gradient gap: the gradient of
# $\tfrac12(v^\top s)^2$ is $(v^\top s)\,v^\top\partial_\theta s$, a different random quantity.
#
# <!-- RUBRIC -->
# - 1 point: splits off the diagonal (vᵢ² = 1) and writes the variance as a double sum of fourth moments.
# - 1 point: states which fourth moments survive (δ_ik δ_jl + δ_il δ_jk) with the reason (independence, zero mean, even powers) and reaches 2Σ_{i≠j} A_ij².
# - 1 point: obtains 2(‖s‖⁴ − Σ sᵢ⁴) for (vᵀs)², zero only for s along an axis, and states that SSM's extra per-sample variance over SSM-VR is this term's variance plus twice its covariance with the trace estimate.
# <!-- END WRITTEN ANSWER -->
#
# ## Think
#
# 1. For which matrices is one Rademacher projection *exact*? What does that mean for the
#    score of a Gaussian with diagonal covariance?
#
# <details><summary>Model answer</summary>
#
# Its variance is $2\sum_{i\ne j}S_{ij}^2$ with $S$ the symmetric part of $A$, so one projection
# is exact exactly when $S$ is diagonal — diagonal matrices, plus any antisymmetric part, which
# $v^\top Av$ never sees. (Indeed $v^\top Dv = \sum_i D_{ii}v_i^2 = \operatorname{tr}D$ since $v_i^2 = 1$.)
# The score of $\mathcal N(\mu, \operatorname{diag}(\sigma_1^2,\dots,\sigma_d^2))$ is
# $-(x_i-\mu_i)/\sigma_i^2$ coordinate by coordinate, its Jacobian is the diagonal matrix
# $-\operatorname{diag}(1/\sigma_i^2)$. For a model class whose Jacobian is diagonal for *every*
# $\theta$ (one that models each coordinate separately), SSM-VR with one Rademacher projection
# therefore *is* ISM, with no noise at all; a general network fitted to such a target has a
# Jacobian that is only nearly diagonal, so there the projection's *value* $v^\top\nabla_x s\,v$ is
# nearly exact, but its $\theta$-gradient $\sum_{ij}v_iv_j\,\partial_\theta(\nabla_x s)_{ij}$ keeps
# off-diagonal terms with weights $\pm1$ that do not shrink as the model approaches the target,
# so the gradient noise persists. The
# $c = 16$ row of section 2 is not that case: its
# off-diagonal part is unchanged, so its Rademacher variance is that of $c = 1$. It shows that a
# dominant diagonal costs Rademacher projections nothing and Gaussian ones a lot.
#
# </details>
#
# 2. SSM-VR uses the exact $\tfrac12\|s_\theta\|^2$. Why can't we do the same for the trace term?
#
# <details><summary>Model answer</summary>
#
# $\|s_\theta(x)\|^2$ needs only the forward pass we already have: all $d$ components of
# $s_\theta(x)$ come out of one evaluation. The trace needs the $d$ diagonal entries of the
# Jacobian, and reverse mode delivers one Jacobian row (or, with forward mode, one column) per
# pass, so the exact trace costs $d$ passes — the very cost slicing is there to avoid. Only the
# trace is expensive, so only the trace is estimated.
#
# </details>
#
# 3. With $M$ projections the cost is $M$ vector–Jacobian products (each differentiated again in
#    training) and the projection part of the variance falls like $1/M$.
#    When would you rather spend the same compute on a larger batch than on more projections?
#
# <details><summary>Model answer</summary>
#
# The gradient's noise has two sources: which data points are in the batch, and which
# projections are drawn. More projections reduce only the second; more samples reduce both
# (each new sample brings its own projection). Write the gradient variance at batch size $B$ as
# $(D + P/M)/B$: $D/B$ is the data part (exact ISM's variance), $P/(MB)$ the projection part.
# Doubling $B$ always gives the smaller variance, $(D + P/M)/(2B)$ against $(D + P/(2M))/B$, but
# its advantage, $D/(2B)$, matters only when $P$ is not much larger than $D$. At the 2-D trained
# model of section 4, SSM-VR's $P$ is a few per cent of $D$ and plain SSM's $P \approx D$: there a
# larger batch is the better buy unless a projection costs much less than a new sample (not timed
# here). Where $P \gg D$ — it depends on the size of the θ-gradients of the Jacobian's
# off-diagonal terms, which this lesson measures only through the total gradient variance, and
# only in 2-D — the two options give nearly the same variance, so the cheaper one, more projections,
# can win. The fix for SSM's extra noise that costs nothing is SSM-VR, which removes the
# $(v^\top s_\theta)^2$ part of $P$.
#
# </details>
#
# 4. Sliced score matching still needs one derivative of the network with respect to $x$.
#    Which method in the cost plot needs none, and what does it give up in exchange (lesson 4)?
#
# <details><summary>Model answer</summary>
#
# Denoising score matching: it only evaluates $s_\theta$ at noisy points $x + \sigma z$ and
# regresses onto $-z/\sigma$, a plain forward and backward pass — the lowest curve of the cost
# plot in this run, and far below exact ISM's at large $d$. In exchange it learns the score of
# the *noisy* density $p_\sigma = p * \mathcal N(0,\sigma^2I)$,
# not of $p$: a bias that shrinks with $\sigma$, while the variance of its target grows like
# $1/\sigma^2$. Lesson 4 measures that trade-off.
#
# </details>
#
# ## Summary
#
# - Hutchinson: $\operatorname{tr}A = \mathbb E[v^\top Av]$ for any $v$ with
#   $\mathbb E[vv^\top] = I$; one vector–Jacobian product per projection, whatever the dimension.
# - Variance of one projection, symmetric $A$: $2\sum_{i\ne j}A_{ij}^2$ (Rademacher) and
#   $2\|A\|_F^2$ (Gaussian), divided by $M$ for $M$ projections — confirmed by measurement.
#   Rademacher wins by a factor that grows with the diagonal's share of $A$ (1.2 for the random
#   test matrix; measured 61 when the diagonal holds 98 % of it).
# - SSM and SSM-VR have the ISM objective as their expectation (checked with standard errors);
#   SSM is also, up to a constant, the sliced Fisher divergence of Song, Garg, Shi & Ermon (2019).
# - On the 2-D mixture, five seeds compared seed by seed (paired mean difference ± SE): neither
#   SSM nor SSM-VR is told apart from ISM in ESM at this training length, though SSM ends higher in
#   four seeds of five. At the trained 2-D model SSM's minibatch gradients have roughly twice
#   ISM's variance, SSM-VR's only a little more.
# - In $d = 100$, at equal wall-clock time, SSM-VR takes many more steps than exact ISM.
# - For a general network in high dimension the exact trace costs $d$ passes; the sliced
#   objectives (and DSM, next lesson) need a constant number.
