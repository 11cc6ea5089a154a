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
# # Lesson 2 — Explicit and implicit score matching
#
# Lesson 1 showed that the score $\nabla_x \log p$ needs no normaliser. Now we want to *learn*
# it from samples: fit a model $s_\theta(x)$ so that $s_\theta \approx \nabla_x \log p$.
#
# **Objectives.** By the end of this lesson you can
#
# 1. write down explicit score matching (ESM) and say why it cannot be computed on real data;
# 2. derive Hyvärinen's score matching by integration by parts, in 1-D and in $d$ dimensions, and
#    state when the boundary term vanishes (Hyvärinen 2005 calls it simply "score matching"; the
#    names *explicit* and *implicit* score matching, ESM and ISM, are Vincent's, 2011);
# 3. verify numerically that ESM − ISM is the *same constant* for very different models;
# 4. fit a small network by ISM, measure how far it is from the true score (and how much that
#    changes from one training seed to the next), and see where the error concentrates;
# 5. say what each of the two ISM terms does, and why ISM on a fixed finite data set has no
#    lower bound for a flexible model;
# 6. solve Hyvärinen's Gaussian example by hand and check it against a fitted linear model;
# 7. train an energy-based model by ISM (which then needs the Hessian's trace);
# 8. explain, with a measurement, why the exact ISM objective becomes expensive in high
#    dimension;
# 9. implement the exact trace, the ISM loss and its energy-based variant yourself.
#
# Names you will meet in the literature: ESM is (half) the **Fisher divergence**, and the
# integration by parts at the heart of ISM is an instance of **Stein's identity**.
#
# Conventions (as in the whole course): losses carry the papers' $\tfrac12$, **sum over
# dimensions and average over the batch**; points are batch-first, shape `(B, d)`.

# %%
import math

import matplotlib.pyplot as plt
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.autodiff import jacobian_trace, score_from_energy
from lessons_lib.course.checks import check_ebm_ism_loss, check_exact_trace, check_ism_loss
from lessons_lib.densities import Gaussian, GaussianMixture, density_from_score_1d, fisher_constant_2d
from lessons_lib.nets import EnergyMLP, LinearScore, ScoreMLP
from lessons_lib.plotting import grid_2d, plot_density_2d, plot_score_error, plot_score_field, score_error_by_region
from lessons_lib.stats import mean_and_sd, mean_and_se
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.training import step_costs, train
from lessons_lib.utils import make_generator

generator = seed_everything(0)
torch.set_num_threads(1)  # the networks here are tiny: more threads only add synchronisation, worst on a busy machine

# %% [markdown]
# ## 1. Explicit score matching
#
# The most direct objective compares the model with the true score in mean square, under the
# data distribution:
#
# $$ J_\mathrm{ESM}(\theta) = \tfrac12\, \mathbb E_{x\sim p}\big\| s_\theta(x) - \nabla_x \log p(x)\big\|^2 . $$
#
# It is zero exactly when $s_\theta = \nabla_x\log p$ wherever $p > 0$. The catch is the
# target: we have samples $x_1,\dots,x_n$ from $p$, not $p$ itself, so $\nabla_x \log p(x_i)$ is
# unknown. ESM is a yardstick, not a training objective.
#
# When $s_\theta$ is itself the score of a model density $p_\theta$, the quantity
# $\mathbb E_p\|\nabla\log p_\theta - \nabla\log p\|^2$ is called the **Fisher divergence**
# between $p$ and $p_\theta$ (ESM is half of it). It is zero only when the two scores agree
# wherever $p>0$, which, when $p > 0$ everywhere (or both densities share one connected support),
# means $p_\theta = p$. In this course we use it to *grade*
# fits on toy densities whose score we know exactly (`lessons_lib.densities`), as here with the
# 2-D mixture `mixture_2d()`.
#
# ## 2. Integration by parts in one dimension
#
# Expand the square:
#
# $$ J_\mathrm{ESM}(\theta) = \mathbb E_p\big[\tfrac12 s_\theta(x)^2\big]
#    - \mathbb E_p\big[s_\theta(x)\, (\log p)'(x)\big] + \tfrac12\,\mathbb E_p\big[(\log p)'(x)^2\big] . $$
#
# The last term does not depend on $\theta$. The first is computable from samples. Only the
# middle (cross) term involves the unknown score — and it can be rewritten. Since
# $p\,(\log p)' = p'$,
#
# $$ \mathbb E_p\big[s_\theta\,(\log p)'\big] = \int s_\theta(x)\, p'(x)\,dx
#    = \Big[s_\theta(x)\,p(x)\Big]_{-\infty}^{+\infty} - \int s_\theta'(x)\,p(x)\,dx . $$
#
# If $s_\theta(x)\,p(x) \to 0$ as $x\to\pm\infty$, the bracket vanishes and the cross term is
# $-\mathbb E_p[s_\theta'(x)]$, an expectation of something we *can* compute. Hence
#
# $$ J_\mathrm{ESM}(\theta) = \underbrace{\mathbb E_p\big[s_\theta'(x) + \tfrac12 s_\theta(x)^2\big]}_{J_\mathrm{ISM}(\theta)}
#    + \underbrace{\tfrac12\,\mathbb E_p\big[(\log p)'(x)^2\big]}_{C} . $$
#
# **A demonstration, by quadrature** (of the calculus only: both sides are computed from the
# known $p$). For the 1-D mixture $0.1\,\mathcal N(-3,1) + 0.9\,\mathcal N(3,1)$ and
# an arbitrary smooth "model" $s_\theta(x) = 2\tanh(x - 1) - 0.3x$, compute
# $\int s_\theta\, p'\,dx$ and $-\int s_\theta'\, p\, dx$ on a fine grid, and the boundary term at
# the ends of the grid.

# %%
mix1 = mixture_1d()
x_grid = torch.linspace(-15, 15, 30001, dtype=torch.float64)[:, None]


def s_theta(x):
    return 2 * torch.tanh(x - 1) - 0.3 * x


def s_theta_prime(x):
    return 2 / torch.cosh(x - 1) ** 2 - 0.3


p = mix1.log_prob(x_grid).exp()
p_prime = p * mix1.score(x_grid)[:, 0]  # p′ = p · (log p)′
lhs = torch.trapezoid(s_theta(x_grid)[:, 0] * p_prime, x_grid[:, 0])
rhs = -torch.trapezoid(s_theta_prime(x_grid)[:, 0] * p, x_grid[:, 0])
boundary = (s_theta(x_grid) * p[:, None])[[0, -1], 0]

# %%
# NBVAL_CHECK_OUTPUT
print("∫ s_θ p′ dx          =", round(lhs.item(), 6))
print("−∫ s_θ′ p dx         =", round(rhs.item(), 6))
print("boundary s_θ·p at ±15:", [round(b, 12) for b in boundary.tolist()])

# %% [markdown]
# ## 3. In $d$ dimensions: the divergence
#
# Hyvärinen (2005) integrates by parts one coordinate at a time (Fubini); here we use the
# divergence theorem instead. The cross term is
#
# $$ \mathbb E_p\big[s_\theta(x)^\top \nabla_x\log p(x)\big] = \int s_\theta(x)^\top \nabla_x p(x)\, dx . $$
#
# The product rule for the divergence, $\nabla\cdot(p\, s_\theta) = s_\theta^\top\nabla p + p\,\nabla\cdot s_\theta$,
# and the divergence theorem on a ball $B_R$ of radius $R$ give
#
# $$ \int_{B_R} s_\theta^\top \nabla p\, dx = \oint_{\partial B_R} p\, s_\theta^\top n\, dS
#    - \int_{B_R} p\, \nabla\cdot s_\theta\, dx , $$
#
# where $n$ is the outward normal and $\nabla\cdot s_\theta = \sum_i \partial s_{\theta,i}/\partial x_i
# = \operatorname{tr}\nabla_x s_\theta(x)$, the trace of the Jacobian of the model.
#
# **The boundary term.** The sphere $\partial B_R$ has area proportional to $R^{d-1}$, so the
# surface integral certainly vanishes as $R\to\infty$ when $p(x)\,\|s_\theta(x)\|$ decays faster
# than $\|x\|^{-(d-1)}$, as for Gaussian-like tails and models that grow at most polynomially.
# That is sufficient, not necessary: for a density differentiable on all of $\mathbb R^d$, the
# integrability conditions below already suffice. They make $\int p\,\|s_\theta\|\,dx$ finite
# (Cauchy–Schwarz), and that integral is $\int_0^\infty\big(\oint_{\partial B_R} p\,\|s_\theta\|\,dS\big)dR$,
# so the surface integral has $\liminf$ 0 as $R\to\infty$; they also make
# $\nabla\cdot(p\,s_\theta)$ integrable, so $\int_{B_R}\nabla\cdot(p\,s_\theta)\,dx$, which equals the
# surface integral, has a limit. That limit is therefore 0. One way to break the identity is a $p$ that is not differentiable
# on $\mathbb R^d$, e.g. uniform on a box: $p$ jumps to zero at the faces; a failed
# integrability condition is another. Hyvärinen (2005) assumes a differentiable data density and model score,
# finite $\mathbb E_p\|s_\theta\|^2$ and $\mathbb E_p\|\nabla\log p\|^2$, and $p\,s_\theta \to 0$ as
# $\|x\|\to\infty$. A different set of conditions, also sufficient, and the one this course uses:
#
# - $p$ is differentiable, and $s_\theta$ is locally Lipschitz in $x$, so that its divergence
#   exists almost everywhere and the integration by parts holds. Networks with smooth
#   activations qualify, and so does a ReLU score network (section 8 shows a case that does not);
# - $\mathbb E_p\|\nabla\log p\|^2$ (that is $2C$) and $\mathbb E_p\|s_\theta\|^2$ are finite, so that
#   splitting ESM into three terms is legitimate (the cross term is then finite by
#   Cauchy–Schwarz), and $\mathbb E_p|\nabla\cdot s_\theta|$ is finite, so that the integration by
#   parts gives a finite expectation.
#
# Under these conditions
#
# $$ J_\mathrm{ESM}(\theta) = J_\mathrm{ISM}(\theta) + C, \qquad
#    J_\mathrm{ISM}(\theta) = \mathbb E_p\Big[\operatorname{tr}\nabla_x s_\theta(x) + \tfrac12\|s_\theta(x)\|^2\Big], \qquad
#    C = \tfrac12\,\mathbb E_p\|\nabla_x\log p(x)\|^2 . $$
#
# $J_\mathrm{ISM}$ only needs samples of $p$ and the model: minimising it minimises ESM.
#
# ## 4. A numerical check that ESM − ISM does not depend on θ
#
# Take very different models — three randomly initialised MLPs (their last layer scaled by 1, 5
# and 15 so that they are far from each other and from the truth) and two random linear
# fields $s(x) = Ax + b$ — and estimate, on the same 100 000 samples of `mixture_2d()`,
# $J_\mathrm{ESM}$ (with the true score), $J_\mathrm{ISM}$ (without it), their difference,
# and $C$. The differences are printed with their Monte-Carlo standard error
# $\hat\sigma/\sqrt n$ (one standard error ≈ 68 % interval). For `mixture_2d()` the constant $C$
# is also known by quadrature (`fisher_constant_2d`); the last column instead subtracts the
# per-sample $\tfrac12\|\nabla\log p(x)\|^2$ on the same samples.

# %%
mix2 = mixture_2d()
x = mix2.sample(100_000, generator=generator)


models = {}
for seed, gain in ((0, 1.0), (1, 5.0), (2, 15.0)):
    torch.manual_seed(seed)
    mlp = ScoreMLP(2, hidden=64)
    with torch.no_grad():
        mlp.net[-1].weight.mul_(gain)
    models[f"MLP, seed {seed}, gain {gain:g}"] = mlp
for seed in (10, 11):
    torch.manual_seed(seed)
    linear = LinearScore(2)
    with torch.no_grad():
        linear.A.add_(0.5 * torch.randn(2, 2))
        linear.b.copy_(torch.randn(2))
    models[f"linear, seed {seed}"] = linear

with torch.no_grad():
    half_true_sq = 0.5 * (mix2.score(x) ** 2).sum(-1)  # per-sample ½‖∇log p‖², mean = C
    rows = {}
    for name, model in models.items():
        esm = losses.esm_loss(model, x, mix2.score, reduction="none")
        ism = losses.ism_loss(model, x, reduction="none")
        rows[name] = (esm, ism)

# %%
# NBVAL_CHECK_OUTPUT
C = fisher_constant_2d(mix2)  # C = ½ E‖∇log p‖² by quadrature: the value used from here on
C_mc, C_se = mean_and_se(half_true_sq)
print(f"{'model':<24}{'ESM':>8}{'ISM':>8}{'ESM − ISM':>18}{'(ESM − ISM) − C':>20}")
for name, (esm, ism) in rows.items():
    diff, diff_se = mean_and_se(esm - ism)
    gap, gap_se = mean_and_se(esm - ism - half_true_sq)  # paired: the same x for both terms
    print(f"{name:<24}{esm.mean():8.3f}{ism.mean():8.3f}{diff:11.3f} ± {diff_se:.3f}{gap:13.3f} ± {gap_se:.3f}")
print(f"C = ½ E‖∇log p‖²: Monte Carlo {C_mc:.3f} ± {C_se:.3f}, quadrature {C:.4f}")

# %% [markdown]
# ESM and ISM change a lot from one model to the next, yet
# $J_\mathrm{ESM} - J_\mathrm{ISM}$ is the same number for all of them, and it equals $C$: the last
# column is zero within about two standard errors. Whatever lowers ISM lowers ESM by exactly as
# much.
#
# That last column is a classical identity in disguise. Expanding the squares,
# $\tfrac12\|s_\theta - \nabla\log p\|^2 - \operatorname{tr}\nabla s_\theta - \tfrac12\|s_\theta\|^2 - \tfrac12\|\nabla\log p\|^2
# = -\big(s_\theta^\top\nabla\log p + \nabla\cdot s_\theta\big)$, so the column measures
# $-\mathbb E_p\big[s_\theta^\top\nabla\log p + \nabla\cdot s_\theta\big]$. **Stein's identity**
# says that $\mathbb E_p\big[f^\top\nabla\log p + \nabla\cdot f\big] = 0$ for every smooth vector field
# $f$ for which the boundary term vanishes; it is exactly the integration by parts of section 3,
# and ESM − ISM = C is Stein's identity applied to $f = s_\theta$. ($\nabla_x\log p$ is sometimes
# called the *Stein score*, to tell it apart from the Fisher score $\nabla_\theta\log p_\theta$.)
#
# ## 5. Fitting a score model by ISM
#
# Now train `ScoreMLP(2)` with `losses.ism_loss` through the course's training loop, with fresh
# samples of `mixture_2d()` at every step, and grade the result with ESM (which the training
# never saw) on fresh samples; ISM + C must give the same number in expectation (we add
# the per-sample $\tfrac12\|\nabla\log p(x)\|^2$, whose mean is $C$). We train **five
# times**, with training seeds 0 to 4 (initial weights, batches), because two kinds of noise
# matter here:
#
# - the **Monte-Carlo standard error** of evaluating *one* trained model on 100 000 samples
#   (how precisely we know this model's ESM);
# - the **spread between training seeds**, the standard deviation over the five runs (how much
#   the result changes if you train again).
#
# To compare two training methods, neither number is the right one: lesson 3 runs both with the
# same seeds and reports the mean of the paired differences ± its standard error.

# %%
ism_objective = lambda model, batch, gen: losses.ism_loss(model, batch)  # noqa: E731
seeds = range(5)
fits = []
for seed in seeds:
    torch.manual_seed(seed)
    fits.append(train(ScoreMLP(2, hidden=64), ism_objective, mix2.sample, n_steps=600, batch_size=256, lr=1e-2,
                      seed=seed, progress=False))
result, ism_model = fits[0], fits[0].model
x_test = mix2.sample(100_000, generator=generator)
with torch.no_grad():
    esm_by_seed = [losses.esm_loss(fit.model, x_test, mix2.score, reduction="none") for fit in fits]
    ism_fit = losses.ism_loss(ism_model, x_test, reduction="none")
    half_true_sq_test = 0.5 * (mix2.score(x_test) ** 2).sum(-1)
trace_fit, s_fit = (t.detach() for t in jacobian_trace(ism_model, x_test, return_output=True))
stein_term = (s_fit * mix2.score(x_test)).sum(-1) + trace_fit  # ISM + ½‖∇log p‖² − ESM, per sample
torch.manual_seed(0)
untrained = ScoreMLP(2, hidden=64)


def relative_curl(model, points):
    jac = torch.func.vmap(torch.func.jacrev(lambda xi: model(xi[None])[0]))(points)
    return ((jac[:, 1, 0] - jac[:, 0, 1]).abs() / jac.flatten(1).norm(dim=-1)).median()

# %%
# NBVAL_CHECK_OUTPUT
print("seed 0: ESM of the ISM fit, fresh samples : {:.3f} ± {:.3f}  (± Monte-Carlo SE)".format(*mean_and_se(esm_by_seed[0])))
print("seed 0: ISM + ½‖∇log p‖² of the same fit   : {:.3f} ± {:.3f}  (± Monte-Carlo SE)".format(
    *mean_and_se(ism_fit + half_true_sq_test)))
print("ESM for each training seed                :", " ".join(f"{e.mean():.3f}" for e in esm_by_seed))
print("ESM over the 5 training seeds             : {:.3f} ± {:.3f}  (± SD between seeds)".format(
    *mean_and_sd([e.mean() for e in esm_by_seed])))
print(f"ESM of the zero model (= C, quadrature)   : {C:.3f}")
squares = 0.5 * (s_fit**2).sum(-1) + half_true_sq_test
print(f"seed 0, per-sample variance: trace term {trace_fit.var():.1f}, ½‖s_θ‖² + ½‖∇log p‖² {squares.var():.1f}, "
      f"ISM + ½‖∇log p‖² {(ism_fit + half_true_sq_test).var():.1f}, ESM {esm_by_seed[0].var():.2f}")
print(f"seed 0, Stein term sᵀ∇log p + ∇·s per sample: mean {stein_term.mean():.3f}, variance {stein_term.var():.1f}")
print(f"median |J₂₁ − J₁₂| / ‖J‖_F over 500 test points: at initialisation {relative_curl(untrained, x_test[:500]):.2f}, "
      f"after training (seed 0) {relative_curl(ism_model, x_test[:500]):.3f}")

# %% [markdown]
# The seed-to-seed spread is many times the Monte-Carlo error: a difference of a few hundredths
# in ESM between two single runs (about two standard deviations of the difference of two runs)
# says little about the methods that produced them. ISM + ½‖∇log p‖² agrees
# with ESM within its standard error, which is larger: per sample, ISM + ½‖∇log p‖² differs from
# ESM by the Stein term $s_\theta^\top\nabla\log p + \nabla\cdot s_\theta$, of mean zero and large
# variance, and the printed variances show that most of it comes from the squared norms, which near
# the optimum add up instead of cancelling, not from the trace. The free-form network's curl
# (lesson 1), relative to its Jacobian, is much smaller after training than at initialisation,
# but not zero: training made it nearly, not exactly, a gradient field.
#
# Since $J_\mathrm{ISM} = J_\mathrm{ESM} - C \ge -C$, the *expected* ISM of any model is at least
# $-C$. A training loss is an average over a minibatch of 256 samples, a random number around
# that expectation, so single minibatches can and do fall below $-C$:

# %%
# NBVAL_CHECK_OUTPUT
last = torch.tensor(result.losses[300:])
print(f"−C = {-C:.3f}; seed 0, steps 301–600: mean minibatch ISM {last.mean():.3f}, "
      f"{(last < -C).float().mean():.0%} of the minibatches below −C")

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
window = 25
smooth = torch.tensor(result.losses).unfold(0, window, 1).mean(-1)
ax.plot(result.losses, color="C0", alpha=0.3, label="ISM loss per minibatch")
ax.plot(range(window - 1, len(result.losses)), smooth, color="C0", label=f"running mean ({window} steps)")
ax.axhline(-C, color="k", ls="--", label="−C: the lowest possible expected ISM")
ax.set(xlabel="step", ylabel="ISM loss", title="training by implicit score matching (seed 0)", ylim=(-4, 1))
ax.legend()
plt.show()

# %% [markdown]
# ### Where the learned score is wrong
#
# Arrows show the learned field's direction, not how far it is off, so we map the error
# $\|s_\theta(x) - \nabla\log p(x)\|$ over the plane. The white dashed line is where the
# density has fallen to $10^{-3}$ of its peak: outside it, training samples are rare (together,
# the region outside holds well under 1 % of the mass); the thin white lines are the contours at
# 0.1 and 0.5 of the peak. The last two printed numbers are the median error on a 100×100 grid
# inside and outside the dashed line, mean ± SD over the five seeds.

# %%
inside, outside = zip(*(score_error_by_region(fit.model, mix2.score, mix2.log_prob, xlim=(-5, 5), ylim=(-4, 4.5))
                        for fit in fits))
_, _, grid = grid_2d((-5, 5), (-4, 4.5), 400)
p_grid = mix2.log_prob(grid.double()).exp()
mass_outside = (p_grid * (p_grid < 1e-3 * p_grid.max())).sum() / p_grid.sum()

# %%
# NBVAL_CHECK_OUTPUT
err_grid = (ism_model(grid).detach() - mix2.score(grid.double()).float()).norm(dim=-1)
inside_line = p_grid >= 1e-3 * p_grid.max()
print(f"mass of the box outside the dashed line: {mass_outside:.4f}")
bad = inside_line & (err_grid > 1.5)
switch_over = mix2.responsibilities(grid.double()).max(-1).values < 0.95  # no component dominates
rel_p = p_grid / p_grid.max()
print(f"seed 0: share of the grid inside the line where the error exceeds 1.5: "
      f"{(err_grid[inside_line] > 1.5).float().mean():.3f}")
print(f"on a switch-over line (max responsibility < 0.95): {switch_over[bad].float().mean():.2f} of those cells, "
      f"{switch_over[inside_line].float().mean():.3f} of all cells inside the line")
print(f"below the median p of the cells inside the line: {(rel_p[bad] < rel_p[inside_line].median()).float().mean():.2f} "
      f"of those cells (0.5 by definition for all cells inside the line)")
print("median ‖s_θ − ∇log p‖ where p ≥ 1e-3·max: {:.2f} ± {:.2f}  (± SD over 5 seeds)".format(*mean_and_sd(inside)))
print("median ‖s_θ − ∇log p‖ where p < 1e-3·max: {:.2f} ± {:.2f}  (± SD over 5 seeds)".format(*mean_and_sd(outside)))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.8), layout="constrained")
plot_density_2d(axes[0], mix2.log_prob, xlim=(-5, 5), ylim=(-4, 4.5), alpha=0.6)
quiver = plot_score_field(axes[0], ism_model, xlim=(-5, 5), ylim=(-4, 4.5), n=15)
quiver.set_clim(0, 3)
fig.colorbar(quiver, ax=axes[0], label="log(1 + ‖s_θ(x)‖)", shrink=0.85)
axes[0].set(title="score learned by ISM (seed 0)", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
mesh, _ = plot_score_error(axes[1], ism_model, mix2.score, mix2.log_prob, xlim=(-5, 5), ylim=(-4, 4.5), vmax=4)
fig.colorbar(mesh, ax=axes[1], label="‖s_θ(x) − ∇log p(x)‖", shrink=0.85, extend="max")
axes[1].set(title="its error; dashed: p = 10⁻³·max p", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
plt.show()

# %% [markdown]
# Where the data are, the learned field is mostly close to the truth: arrows converge on the
# three modes and turn around between them. Inside the dashed line, the cells with an error above
# 1.5 (the share printed above) sit where $p$ is low: most of them lie below the median $p$ of the
# region. They are also over-represented on the switch-over lines between components, where the
# true score turns sharply, compared with those lines' share of the region; the two findings
# overlap, since the switch-over lines run between the modes, where $p$ is low too. Away from the
# data the error grows:
# the expectation over $p$ weights every error by $p(x)$, so score matching only constrains
# $s_\theta$ where $p$ puts mass. What the network does out there is whatever its smooth
# extrapolation happens to give, which is why the printed error outside the line is both
# larger and more seed-dependent than inside.
#
# ## 6. Hyvärinen's Gaussian example
#
# For the linear family $s(x) = Ax + b$ (`LinearScore`) ISM can be minimised by hand. On a data
# set $x_1,\dots,x_n$ with mean $\bar x$ and covariance $\hat\Sigma = \frac1n\sum_i (x_i-\bar x)(x_i-\bar x)^\top$,
#
# $$ J_\mathrm{ISM}(A, b) = \operatorname{tr}A + \frac1{2n}\sum_i\|Ax_i + b\|^2 . $$
#
# Setting the gradients to zero: $\partial_b J = \frac1n\sum_i (Ax_i + b) = 0$ gives
# $b = -A\bar x$; then $\partial_A J = I + \frac1n\sum_i (Ax_i + b)x_i^\top = I + A\hat\Sigma = 0$ gives
#
# $$ A = -\hat\Sigma^{-1}, \qquad b = \hat\Sigma^{-1}\bar x, \qquad s(x) = -\hat\Sigma^{-1}(x - \bar x), $$
#
# the score of $\mathcal N(\bar x, \hat\Sigma)$ — exactly the Gaussian that **maximum likelihood**
# fits to the same data (Hyvärinen 2005). For Gaussians, score matching and maximum likelihood
# agree. We check it on 200 samples of a correlated Gaussian, minimising ISM over $(A, b)$ on
# the whole data set with L-BFGS.

# %%
gauss = Gaussian(mean=[1.0, -0.5], cov=[[1.0, 0.8], [0.8, 2.0]])
x_gauss = gauss.sample(200, generator=generator)
linear_fit = LinearScore(2)
lbfgs = torch.optim.LBFGS(linear_fit.parameters(), lr=1.0, max_iter=200, line_search_fn="strong_wolfe")


def closure():
    lbfgs.zero_grad()
    loss = losses.ism_loss(linear_fit, x_gauss)
    loss.backward()
    return loss


lbfgs.step(closure)
x_bar = x_gauss.mean(0)
sigma_hat = (x_gauss - x_bar).T @ (x_gauss - x_bar) / len(x_gauss)  # the maximum-likelihood covariance

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    A_ml = -torch.linalg.inv(sigma_hat)
    print("A fitted by ISM :", [[round(a, 3) for a in row] for row in linear_fit.A.tolist()])
    print("−Σ̂⁻¹ (max. lik.):", [[round(a, 3) for a in row] for row in A_ml.tolist()])
    print("−Σ⁻¹ (true)      :", [[round(a, 3) for a in row] for row in (-torch.linalg.inv(gauss.cov)).tolist()])
    print(f"max |A − (−Σ̂⁻¹)| = {(linear_fit.A - A_ml).abs().max():.5f},  "
          f"max |b − Σ̂⁻¹x̄| = {(linear_fit.b - (-A_ml @ x_bar)).abs().max():.5f}")

# %% [markdown]
# ISM's fit and the maximum-likelihood fit agree to the optimiser's tolerance; both differ from
# the true $-\Sigma^{-1}$, as any estimate from 200 points does.
#
# ## 7. What the two ISM terms do — and why a finite data set is not enough
#
# Look at ISM one data point at a time: $\operatorname{tr}\nabla s_\theta(x_i) + \tfrac12\|s_\theta(x_i)\|^2$.
#
# - $\tfrac12\|s_\theta(x_i)\|^2$ is smallest when $s_\theta(x_i) = 0$: it makes every data point a
#   **zero of the field** (a stationary point, when the field is the gradient of a log-density).
# - $\operatorname{tr}\nabla s_\theta(x_i)$ is smallest when the divergence is very negative: net
#   **inflow** of the field around $x_i$. In one dimension that makes $x_i$ a local maximum of the
#   model density; in $d \ge 2$ it does not by itself (a zero with Jacobian eigenvalues $-5$ and
#   $+1$ has trace $-4$ and is a saddle).
#
# With the true $p$ (infinitely many samples) the two pulls balance at $s_\theta = \nabla\log p$.
# On a *fixed, finite* data set nothing stops a flexible model from obeying both literally: put
# zeros of $s_\theta$ on the training points with ever steeper negative slopes, and the training
# ISM has no lower bound (exercise 4 asks why).
# A 1-D demonstration: 6 points from $\mathcal N(0,1)$ (true score $-x$,
# $C = \tfrac12\mathbb E[x^2] = 0.5$), a `ScoreMLP(1, hidden=128)` trained by ISM on those 6
# points only; we look at it after 30, 100 and 300 steps. "Mass near the data" is the
# probability that the model density (recovered from $s_\theta$ on a grid) puts within ±0.1 of a
# training point; the last line of the printout splits the model's mass between the six points.

# %%
x_few = torch.randn(6, 1, generator=make_generator(3))
standard_normal = Gaussian([0.0], 1.0)
x_fresh = standard_normal.sample(20_000, generator=generator).float()
xs_1d = torch.linspace(-4, 4, 8001)
near_data = ((xs_1d[:, None] - x_few[:, 0]).abs().min(1).values < 0.1).double()
torch.manual_seed(0)
spiky = ScoreMLP(1, hidden=128)
snapshots = {}


def snapshot(step, loss):
    if step in (30, 100, 300):
        density = density_from_score_1d(spiky, xs_1d)
        with torch.no_grad():
            snapshots[step] = {
                "score": spiky(xs_1d[:, None])[:, 0], "density": density,
                "training ISM": losses.ism_loss(spiky, x_few).item(),
                "mean s′(xᵢ)": jacobian_trace(spiky, x_few).mean().item(),
                "mass near the data": torch.trapezoid(density * near_data, xs_1d.double()).item(),
                "ESM on fresh samples": losses.esm_loss(spiky, x_fresh, standard_normal.score).item(),
            }


_ = train(spiky, ism_objective, x_few, n_steps=300, batch_size=64, lr=1e-2, seed=0, progress=False, callback=snapshot)
true_near = torch.trapezoid(standard_normal.log_prob(xs_1d[:, None].double()).exp() * near_data, xs_1d.double())
gauss_fit = Gaussian([x_few.mean().item()], x_few.var(unbiased=False).item())  # the 2-parameter ML fit

# %%
# NBVAL_CHECK_OUTPUT
print(f"true density: lowest expected ISM −C = −0.50, mass near the data {true_near:.2f}")
print(f"Gaussian ML fit to the 6 points: variance {gauss_fit.cov.item():.3f}, slope {-1 / gauss_fit.cov.item():.2f}, "
      f"training ISM {losses.ism_loss(gauss_fit.score, x_few.double()).item():.3g}, "
      f"ESM on fresh samples {losses.esm_loss(gauss_fit.score, x_fresh.double(), standard_normal.score).item():.3g}")
for step, snap in snapshots.items():
    print(f"after {step:3d} steps: " + ", ".join(f"{k} {v:.3g}" for k, v in snap.items() if k not in ("score", "density")))
near_each = ((xs_1d[:, None] - x_few[:, 0]).abs() < 0.1).double()  # (grid, 6)
share = torch.trapezoid(snapshots[300]["density"][:, None] * near_each, xs_1d.double(), dim=0)
print("after 300 steps, mass within ±0.1 of each training point:",
      ", ".join(f"x = {xi:.2f}: {m:.3f}" for xi, m in zip(x_few[:, 0].tolist(), share.tolist())))

# %%
fig, (ax_s, ax_p) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
ax_s.plot(xs_1d, -xs_1d, color="k", lw=2.5, alpha=0.4, label="true score −x")
ax_p.plot(xs_1d, standard_normal.log_prob(xs_1d[:, None].double()).exp(), color="k", lw=2.5, alpha=0.4,
          label="true density N(0, 1)")
for (step, snap), color in zip(snapshots.items(), ("C0", "C1", "C3")):
    ax_s.plot(xs_1d, snap["score"], color=color, label=f"ISM fit after {step} steps")
    ax_p.plot(xs_1d, snap["density"], color=color, label=f"after {step} steps")
for ax in (ax_s, ax_p):
    ax.plot(x_few[:, 0], torch.full((6,), 1e-2 if ax is ax_p else 0.0), "|", color="k", ms=16, mew=2,
            label="the 6 training points")
ax_s.set_yscale("symlog", linthresh=1)  # linear for |score| < 1, logarithmic beyond
ax_s.set(xlabel="x", ylabel="score (symlog: linear for |s| < 1)", xlim=(-3, 3), title="score: steep descents through the data")
ax_p.set(xlabel="x", ylabel="density (normalised on the grid)", yscale="log", ylim=(1e-4, 100), xlim=(-3, 3),
         title="model density: its mass ends on one training point")
ax_s.legend(loc="upper right", fontsize=9)
ax_p.legend(loc="upper right", fontsize=9)
plt.show()

# %% [markdown]
# (The bend of the true score $-x$ at $x = \pm1$ in the left panel is the axis's: symlog is linear
# for $|s| < 1$ and logarithmic beyond.) Six points say little about $p$: even the correct two-parameter model, the Gaussian fitted by
# maximum likelihood, is narrower than $\mathcal N(0, 1)$, with a slope steeper than $-1$ and a
# training ISM below $-C$ (second line). A training ISM below $-C$ is therefore a statement
# about these 6 points: the ordinary optimism of any fit on its own training set, not yet the
# degenerate overfitting of a flexible model. The ESM on fresh samples tells the two apart: after
# 30 steps the network's is already several times the Gaussian fit's, and by 300 steps the mean
# slope $s'(x_i)$ at the training points is hugely negative and the ESM has exploded. The mass
# does not spread over the six points: it collapses onto one (the last printed line). ISM
# rewards a zero and a steep descent at each point, but puts no constraint on $\int s$ *between*
# points, which sets the relative heights of the bumps; as exponentials of large integrals, one
# of them wins.
#
# With fresh samples at every step (section 5) the objective being minimised is the expected
# ISM, which is bounded below by $-C$; with a fixed data set, as in practice, the collapse must
# be prevented. Kingma & LeCun (2010) added a penalty on the curvature of the
# model (regularised score matching), which they derived from perturbing the data with small
# noise. Denoising score matching (Vincent 2011, lesson 4) perturbs the data with Gaussian noise
# of scale σ: its loss is bounded below, and the spikes of its optimum are no sharper than about
# $1/\sigma^2$. It does not stop memorisation: on a fixed finite data set the optimum is the score
# of a Gaussian kernel density estimate with a bump on every training point, and as σ → 0 it
# becomes spiky too, though with equal weights $1/n$ on the points (lesson 4's Parzen view).
#
# ## 8. An energy-based model fitted by ISM
#
# Lesson 1 introduced energy-based models $p_\theta = e^{-E_\theta}/Z_\theta$. Their score is
# $s_\theta = -\nabla_x E_\theta$, so its Jacobian is minus the **Hessian** of the energy and its
# trace is minus the **Laplacian** $\Delta E_\theta = \sum_i \partial^2 E_\theta/\partial x_i^2$:
#
# $$ J_\mathrm{ISM}(\theta) = \mathbb E_p\Big[-\Delta E_\theta(x) + \tfrac12\|\nabla_x E_\theta(x)\|^2\Big]. $$
#
# Computing it takes two rounds of differentiation with respect to $x$ (one backward pass for
# $\nabla E$, then $d$ more for the Hessian's diagonal), and a third, with respect to $\theta$,
# for training. `losses.ism_loss` needs no change: we pass it `EnergyMLP.score`, which is
# $-\nabla E_\theta$ by autograd. `EnergyMLP` uses SiLU, whose first and second derivatives are
# bounded, so the energy's gradient and Hessian are bounded: $\mathbb E_p\|s_\theta\|^2$ and
# $\mathbb E_p|\nabla\cdot s_\theta|$ are finite, the conditions of section 3 hold, and so does the
# integration by parts. The reward: the fitted model is a density $e^{-E_\theta}/Z_\theta$ *if*
# $Z_\theta$ is finite, which nothing in `EnergyMLP` guarantees (it has no confining term), so
# we check it: $\log Z_\theta$ by a Riemann sum on ever larger squares must settle, and the
# energy must grow in every direction far away.

# %%
torch.manual_seed(0)
ebm = EnergyMLP(2, hidden=64)
ebm_fit = train(ebm, lambda model, batch, gen: losses.ism_loss(model.score, batch), mix2.sample, n_steps=300,
                batch_size=128, lr=1e-2, seed=0, progress=False)
X_e, Y_e, grid_e = grid_2d((-5, 5), (-4, 4.5), 120)
with torch.no_grad():
    energy_grid = ebm(grid_e)
    cell = (10 / 119) * (8.5 / 119)
    log_Z = torch.logsumexp(-energy_grid, 0) + torch.log(torch.tensor(cell))  # Z by a Riemann sum on the grid
    p_ebm = torch.exp(-energy_grid - log_Z).reshape(120, 120)
    p_true = mix2.log_prob(grid_e.double()).exp().reshape(120, 120).float()
esm_ebm = losses.esm_loss(ebm.score, x_test[:20_000], mix2.score, reduction="none").detach()

# %%
# NBVAL_CHECK_OUTPUT
print("ESM of the energy-based model fitted by ISM: {:.3f} ± {:.3f}  (one seed, ± Monte-Carlo SE)".format(
    *mean_and_se(esm_ebm)))
for half in (5, 10, 40):
    u = torch.linspace(-half, half, 401)
    gx, gy = torch.meshgrid(u, u, indexing="xy")
    with torch.no_grad():
        e_sq = ebm(torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)).double()
    print(f"log Z_θ on [−{half}, {half}]²: {torch.logsumexp(-e_sq, 0) + 2 * torch.log(u[1] - u[0]).double():.4f}")
angles = torch.linspace(0, 2 * torch.pi, 73)[:-1]
ray = torch.stack([angles.cos(), angles.sin()], -1)
with torch.no_grad():
    slope = (ebm(200 * ray) - ebm(100 * ray)) / 100
print(f"radial slope dE_θ/dr between radius 100 and 200, over 72 directions: min {slope.min():.2f}, "
      f"max {slope.max():.2f}")
print(f"½∫|p_θ − p| dx on the grid (total variation): {0.5 * (p_ebm - p_true).abs().sum() * cell:.3f}")
resp_e = mix2.responsibilities(grid_e.double()).float().reshape(120, 120, -1)
w_ebm = (p_ebm[..., None] * resp_e).sum((0, 1)) * cell
print("mass of p_θ by responsibility of each component:", " ".join(f"{w:.3f}" for w in w_ebm),
      "; true weights:", " ".join(f"{w:.1f}" for w in mix2.weights),
      f"; ½Σ|w_θ − w| = {0.5 * (w_ebm.double() - mix2.weights).abs().sum():.3f}")
reweighted = GaussianMixture(w_ebm.double() / w_ebm.sum(), mix2.means, mix2.covs)  # true components, p_θ's weights
print("ESM of the true components with those weights: {:.4f} ± {:.4f}  (± Monte-Carlo SE)".format(
    *mean_and_se(losses.esm_loss(reweighted.score, x_test[:20_000].double(), mix2.score, reduction="none"))))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.5), layout="constrained", sharey=True)
levels = torch.linspace(0, float(max(p_true.max(), p_ebm.max())), 16).tolist()  # one colour scale for both
for ax, dens, title in ((axes[0], p_true, "true density p"), (axes[1], p_ebm, "EBM fitted by ISM: exp(−E_θ)/Z_θ")):
    filled = ax.contourf(X_e, Y_e, dens, levels=levels, cmap="Blues")
    ax.set(title=title, xlabel="$x_1$", aspect="equal")
axes[0].set_ylabel("$x_2$")
fig.colorbar(filled, ax=axes, label="density", shrink=0.85)
plt.show()

# %% [markdown]
# The same fit from three more seeds, its weights measured the same way:

# %%
# NBVAL_CHECK_OUTPUT
for seed in (1, 2, 3):
    torch.manual_seed(seed)
    ebm_seed = EnergyMLP(2, hidden=64)
    train(ebm_seed, lambda model, batch, gen: losses.ism_loss(model.score, batch), mix2.sample, n_steps=300,
          batch_size=128, lr=1e-2, seed=seed, progress=False)
    with torch.no_grad():
        energy_seed = ebm_seed(grid_e)
        p_seed = torch.exp(-energy_seed - torch.logsumexp(-energy_seed, 0) - math.log(cell)).reshape(120, 120)
    w_seed = (p_seed[..., None] * resp_e).sum((0, 1)) * cell
    print(f"seed {seed}: mass by responsibility", " ".join(f"{w:.3f}" for w in w_seed),
          f"; ½Σ|w_θ − w| = {0.5 * (w_seed.double() - mix2.weights).abs().sum():.3f}")

# %% [markdown]
# $\log Z_\theta$ is the same on the three squares and the energy grows at least linearly in all
# 72 directions probed: consistent with a finite $Z_\theta$, so that $e^{-E_\theta}/Z_\theta$ is a
# density (72 directions at two radii are evidence, not a proof). Because it is an energy we can
# draw it, which the free-form `ScoreMLP` of section 5 cannot offer. It puts its mass on the
# three modes, but with weights that are off: for seed 0 the mis-weighting
# $\tfrac12\sum_k|w_{\theta,k} - w_k|$ is 0.046, a large part of the total variation, and the three
# other seeds are off by more, 0.118 to 0.133, each in its own direction. ISM pins the weights
# down poorly, and the figure shows the closest of the four fits. ESM barely sees it: the true components with these wrong weights have an
# ESM (last line) far below the fitted model's. The Fisher divergence is weakly sensitive to the weights of well-separated modes:
# the score inside each mode barely depends on its weight, and the regions between modes, where
# it does, carry little mass (Wenliang et al. 2019; Song & Ermon 2019). A SiLU energy grows at most linearly, so its score stays
# bounded far away: its tails are Laplace-like, and it cannot follow the true score, which grows
# linearly there (lesson 1). Lesson 3's projections apply unchanged: for
# $s_\theta = -\nabla E_\theta$, $v^\top\nabla_x s_\theta\,v = -v^\top(\nabla_x^2 E_\theta)\,v$ is one
# Hessian–vector product.
#
# **A ReLU energy breaks ISM.** With ReLU activations the energy is piecewise linear and its score
# $-\nabla E_\theta$ piecewise constant, with jumps across the kinks: it is not Lipschitz, so the
# condition of section 3 fails. Autograd's divergence is 0 almost everywhere and misses the
# jumps, which the integration by parts needs. The Laplacian that autograd returns is 0 at every
# point probed:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
relu_energy = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                  torch.nn.Linear(64, 1))
relu_score = score_from_energy(lambda x: relu_energy(x)[:, 0])
print("ReLU energy: max |autograd Laplacian| over 1 000 samples:",
      jacobian_trace(relu_score, x_test[:1000]).abs().max().item())

# %% [markdown]
# So ISM on a ReLU energy reduces to $\tfrac12\mathbb E\|\nabla E_\theta\|^2$, minimised by a flat
# energy: the training signal of the trace term, carried by the jumps of the score across the
# kinks, is lost.
#
# ## 9. The price of the trace
#
# The term $\operatorname{tr}\nabla_x s_\theta(x) = \sum_{i=1}^d \partial s_{\theta,i}/\partial x_i$
# needs the diagonal of the $d\times d$ Jacobian. Reverse-mode autodiff produces one *row* of it
# per backward pass, so the exact trace costs $d$ backward passes per sample
# (`jacobian_trace` hands all $d$ of them to one batched backward call, but the work is still
# there). For an MLP of width $h$, one backward pass costs $O(dh + h^2)$, so an ISM step costs
# $O(d^2 h + d h^2)$: between linear and quadratic in $d$.
#
# We time one training step (loss, backward pass, Adam update) of `ScoreMLP(d, hidden=128)` on
# standard-normal data, batch 64, one CPU thread, for $d$ from 2 to 512, with the library's
# `step_costs` (the median of 5 timed steps after 1 untimed one; lesson 3 takes the fastest of
# 5 instead). Beside ISM we time a step of denoising score matching (DSM, lesson 4), which
# never differentiates the network with respect to $x$: it regresses $s_\theta(x + \sigma z)$ onto
# $-z/\sigma$ for Gaussian noise $z$, a plain forward and backward pass. (Timings are not checked
# outputs, and they are noisy: another program running at the same time inflates them.)

# %%
dims = [2, 8, 32, 128, 256, 512]
costs = step_costs({"ISM": ism_objective, "DSM": lambda model, batch, gen: losses.dsm_loss(model, batch, 0.1, generator=gen)},
                   dims, n_steps=5, warmup=1)
for d, ism_s, dsm_s in zip(dims, costs["ISM"], costs["DSM"]):
    print(f"d = {d:4d}: ISM {1000 * ism_s:8.1f} ms, DSM {1000 * dsm_s:5.1f} ms per step, ratio {ism_s / dsm_s:6.1f}")
slopes = [math.log(t2 / t1) / math.log(d2 / d1) for d1, d2, t1, t2 in zip(dims, dims[1:], costs["ISM"], costs["ISM"][1:])]
print("local slope of log(ISM time) against log d:", " ".join(f"{d2}: {k:.2f}" for d2, k in zip(dims[1:], slopes)))
model_cost = [2 * d * d * 128 + d * 128**2 for d in dims]  # 2d²h + dh²: d passes through layers d→h, h→h, h→d
print("the same slope of 2d²h + dh²            :", " ".join(
    f"{d2}: {math.log(c2 / c1) / math.log(d2 / d1):.2f}" for d1, d2, c1, c2 in zip(dims, dims[1:], model_cost, model_cost[1:])))
print(f"slope from d = 128 to 512: measured {math.log(costs['ISM'][-1] / costs['ISM'][3]) / math.log(4):.2f}, "
      f"operation count {math.log(model_cost[-1] / model_cost[3]) / math.log(4):.2f}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
ax.loglog(dims, costs["ISM"], "o-", color="C3", label="ISM (exact trace)")
ax.loglog(dims, costs["DSM"], "s-", color="C2", label="DSM (no derivative in x)")
d_ref = torch.tensor(dims[2:], dtype=torch.float64)  # reference slopes, drawn through the d = 512 point
ax.loglog(d_ref, costs["ISM"][-1] * d_ref / dims[-1], ":", color="grey", label="∝ d")
ax.loglog(d_ref, costs["ISM"][-1] * (d_ref / dims[-1]) ** 2, "--", color="grey", label="∝ d²")
ax.set(xlabel="dimension d", ylabel="seconds per training step", title="cost of exact implicit score matching",
       xticks=dims, xticklabels=[str(d) for d in dims])
ax.minorticks_off()
ax.legend()
plt.show()

# %% [markdown]
# For small $d$ an ISM step already costs more than a DSM step: the double backward pass has a cost of
# its own, and so does the batched backward call's bookkeeping (this lesson does not separate the two);
# at small $d$ such fixed costs dominate, and the local slopes there say little. As $d$ grows the
# curve steepens. The operation count $2d^2h + dh^2$ (one backward pass through the layers
# $d\to h$, $h\to h$ and $h\to d$ costs about $2dh + h^2$, and there are $d$ of them) predicts the
# slopes of the second printed line, below 2 at every $d$. The measured slopes are read from a single run, each from two medians
# of 5 timed steps, so this lesson cannot say how much of their difference from the count is
# noise and how much is real (materialising $B\cdot d$ copies of the activations and $B\cdot d^2$
# Jacobian entries would add cost the count leaves out); what the printout shows is that at large
# $d$ the time grows much faster than $d$, with a slope of the same size as the count's.
# The grey reference lines are drawn through the $d = 512$ point, so they meet the curve there
# by construction: only their slopes carry information. A 28×28 image has $d = 784$, where exact
# ISM is expensive; a 256×256 colour image has $d\approx 2\times10^5$, where it is out of reach.
# Lessons 3 and 4 remove the trace: sliced score matching estimates it with random projections,
# denoising score matching avoids it altogether.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 (2 points): the exact trace, one coordinate at a time
#
# Implement `exact_trace(score_fn, x)`: for a batch `x` of shape `(B, d)` return
# $\operatorname{tr}\nabla_x s(x_b) = \sum_i \partial s_i/\partial x_i$ for every point, shape `(B,)`, with a loop
# over the $d$ coordinates (one backward pass each). Assume that each output row `s(x)[b]`
# depends only on its own input row `x[b]`, as for the course's networks. Keep the graph, so that
# exercise 2 can use it in a loss: the check verifies that a gradient reaches the model's
# parameters.

# %%
def exact_trace(score_fn, x):
    """tr ∇ₓs(x) for every row of x, by d backward passes: (B, d) → (B,)."""
    # Hint: one backward pass of a scalar built from the outputs gives, for every row of the batch
    # at once, one row of that point's Jacobian (rows do not mix).
    ### BEGIN SOLUTION
    x = x.detach().requires_grad_(True) if not x.requires_grad else x
    s = score_fn(x)
    trace = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for i in range(x.shape[1]):
        (row_i,) = torch.autograd.grad(s[:, i].sum(), x, create_graph=True)
        trace = trace + row_i[:, i]
    return trace
    ### END SOLUTION


# %%
check_exact_trace(exact_trace)

# %% [markdown]
# ### Exercise 2 (3 points): the ISM loss
#
# Implement `ism_loss(score_fn, x)`: for a batch `x` of shape `(B, d)`, return the scalar
# $\frac1B\sum_b \big[\operatorname{tr}\nabla_x s(x_b) + \tfrac12\|s(x_b)\|^2\big]$ with the
# **exact** trace. The result must stay differentiable with respect to the model's parameters
# (it is a training loss). Your `exact_trace` may help, but `s` and the trace must come from the
# same input tensor.

# %%
def ism_loss(score_fn, x):
    """Implicit score matching: mean over the batch of tr ∇ₓs(x) + ½‖s(x)‖² (exact trace)."""
    # Hint: a training loss is differentiated once more, with respect to θ: every derivative with
    # respect to x on the way must itself be differentiable.
    ### BEGIN SOLUTION
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for i in range(x.shape[1]):
        (grad_i,) = torch.autograd.grad(s[:, i].sum(), x, create_graph=True)
        trace = trace + grad_i[:, i]
    return (trace + 0.5 * (s**2).sum(-1)).mean()
    ### END SOLUTION


# %%
check_ism_loss(ism_loss)

# %% [markdown]
# ### Exercise 3 (3 points): ISM for an energy-based model
#
# Implement `ebm_ism_loss(energy_fn, x)` for an energy `energy_fn` mapping `(B, d)` to `(B,)`:
# the scalar $\frac1B\sum_b\big[-\Delta E(x_b) + \tfrac12\|\nabla_x E(x_b)\|^2\big]$ of section 8, with the
# exact Laplacian $\Delta E = \sum_i \partial^2E/\partial x_i^2$, differentiable with respect to the
# energy's parameters. Compute $\nabla_x E$ yourself with `torch.autograd.grad`.

# %%
def ebm_ism_loss(energy_fn, x):
    """ISM of p ∝ exp(−E): mean over the batch of −ΔE(x) + ½‖∇ₓE(x)‖² (exact Laplacian)."""
    # Hint: the score is −∇ₓE, and its Jacobian is minus the Hessian; both differentiations with
    # respect to x will be differentiated again during training.
    ### BEGIN SOLUTION
    x = x.detach().requires_grad_(True)
    (grad_e,) = torch.autograd.grad(energy_fn(x).sum(), x, create_graph=True)
    laplacian = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for i in range(x.shape[1]):
        (hess_row,) = torch.autograd.grad(grad_e[:, i].sum(), x, create_graph=True)
        laplacian = laplacian + hess_row[:, i]
    return (-laplacian + 0.5 * (grad_e**2).sum(-1)).mean()
    ### END SOLUTION


# %%
check_ebm_ism_loss(ebm_ism_loss)

# %% [markdown]
# ### Exercise 4 (written, 3 points): why the training ISM has no lower bound
#
# Section 7 trained a network by ISM on 6 fixed points and saw its training ISM fall far below
# $-C$. Let $x_1 < \dots < x_n$ be distinct points in one dimension. (a) Construct a family of
# smooth score fields $s_a$, $a > 0$, whose ISM on these points,
# $\frac1n\sum_i [s_a'(x_i) + \tfrac12 s_a(x_i)^2]$, tends to $-\infty$ as $a\to\infty$, and compute it.
# (b) Explain why this does not contradict $J_\mathrm{ISM}(\theta) \ge -C$, and what the
# *expected* ISM of $s_a$ under the true $p$ does as $a \to \infty$.

# %% [markdown]
# <!-- BEGIN WRITTEN ANSWER ism_unbounded -->
# **Model answer.** (a) Let $\delta$ be less than half the smallest gap between the points and
# $\varphi$ a smooth bump with $\varphi = 1$ on $[-\delta/2, \delta/2]$ and $\varphi = 0$ outside
# $[-\delta, \delta]$. Set $s_a(x) = -a\sum_i (x - x_i)\,\varphi(x - x_i)$. Near each $x_i$ only one
# term is non-zero and equals $-a(x - x_i)$, so $s_a(x_i) = 0$ and $s_a'(x_i) = -a$. The ISM on the
# points is $\frac1n\sum_i(-a + 0) = -a \to -\infty$.
# (b) $J_\mathrm{ISM} \ge -C$ holds for the *expectation* under $p$, because it equals
# $J_\mathrm{ESM} - C$ by an integration by parts that needs a differentiable density. The
# empirical ISM is the ISM of the empirical distribution, a sum of point masses, for which that
# integration by parts fails: it is not ESM minus a constant of anything. Under the true $p$ the
# term $\tfrac12 s_a^2$ is of order $a^2$ on the intervals around the points where $p > 0$, while the
# trace term is only of order $a$, so the expected ISM of $s_a$ grows like $a^2$: the field that
# wins on the data is terrible on fresh samples, as section 7's ESM showed.
#
# <!-- RUBRIC -->
# - 1 point: a concrete smooth family with zeros at the data and slope tending to −∞ there, and its ISM (−a or similar) computed.
# - 1 point: says that the bound −C is on the expectation under p, from an integration by parts that the empirical (point-mass) distribution does not allow.
# - 1 point: shows that the expected ISM (or ESM) of the family grows without bound, because ½s² is of order a² on the δ-intervals around the points.
# <!-- END WRITTEN ANSWER -->
#
# ## Think
#
# 1. Take $p = \mathcal N(0, 1)$ and the one-parameter family $s_a(x) = -ax$. Compute
#    $J_\mathrm{ISM}(a)$ and $J_\mathrm{ESM}(a)$ by hand, find the minimiser and the smallest ISM,
#    and check that their difference is $C$. What changes if the expectation is replaced by an
#    average over $n$ fixed data points?
#
# <details><summary>Model answer</summary>
#
# $s_a' = -a$, so $J_\mathrm{ISM}(a) = \mathbb E[-a + \tfrac12 a^2x^2] = -a + \tfrac12 a^2$, minimised at
# $a = 1$ (the true score $-x$) with value $-\tfrac12$. $J_\mathrm{ESM}(a) = \tfrac12\mathbb E[(1-a)^2x^2]
# = \tfrac12(1-a)^2 \ge 0$, and $J_\mathrm{ESM} - J_\mathrm{ISM} = \tfrac12(1 - 2a + a^2) + a - \tfrac12a^2
# = \tfrac12 = C$: ISM is negative near its optimum because it is ESM shifted down by $C$. On $n$
# fixed points with $m_2 = \frac1n\sum_i x_i^2$ the training ISM is $-a + \tfrac12a^2m_2$, minimised
# at $a = 1/m_2$ (the maximum-likelihood precision about 0) with value $-1/(2m_2)$, which can lie
# below $-C$ but is finite: a small family cannot exploit the data the way section 7's network does.
#
# </details>
#
# 2. Where in the derivation did we use how $p$ behaves at the edge of its support? Compare
#    $p$ uniform on $[0, 1]$ with the Beta(3, 3) density $30x^2(1-x)^2$ on $[0, 1]$: for which does
#    a term of the 1-D derivation survive, what would ISM then reward, and is $C$ finite for
#    Beta(3, 3)?
#
# <details><summary>Model answer</summary>
#
# In dropping the boundary term $[s_\theta\,p]$ of the integration by parts. For $p$ uniform on
# $[0,1]$, $p' = 0$ inside, the true score is $0$, and ESM is $\tfrac12\mathbb E[s_\theta^2]$,
# minimised by $s_\theta = 0$. But $p$ jumps to zero at the ends, so
# $\int_0^1 s_\theta\,p'\,dx = 0$ while $-\int_0^1 s_\theta'\,p\,dx = -(s_\theta(1) - s_\theta(0))$:
# the boundary term $s_\theta(1) - s_\theta(0)$ survives and ESM − ISM is no longer a constant.
# ISM $= s_\theta(1) - s_\theta(0) + \tfrac12\mathbb E[s_\theta^2]$ rewards a model that is large
# and positive at $0$ and large and negative at $1$ (arrows pushing inwards at the edges), with
# no lower bound — it is not a valid objective there. For Beta(3, 3), $p$ vanishes at $0$ and $1$,
# so for a bounded smooth $s_\theta$ the bracket $[s_\theta\,p]_0^1$ is zero; its score is
# $2/x - 2/(1-x) = 2(1-2x)/(x(1-x))$, so
# $\mathbb E_p[(\log p)'^2] = \int_0^1 120\,(1-2x)^2\,dx = 40$ and $C = 20$ is finite: ISM is valid.
# What matters is not tails but that $p\,s_\theta \to 0$ at the boundary of the support, and
# that the Fisher constant is finite. (For Beta(2, 2) the bracket vanishes too, but
# $\mathbb E_p[(\log p)'^2] = \int_0^1 6(1-2x)^2/(x(1-x))\,dx$ diverges at both ends: $C = \infty$,
# and ESM is infinite for every bounded model.)
#
# </details>
#
# 3. The fitted model is good near the data and arbitrary in the corners. Why can no practical
#    amount of training on samples of $p$ fix the corners? Which later algorithm (lesson 5) needs the
#    score exactly there?
#
# <details><summary>Model answer</summary>
#
# Every score-matching objective is an expectation under $p$, so an error at $x$ counts with
# weight $p(x)$; where $p$ is tiny, samples almost never land (the region outside the dashed
# line holds 0.09 % of the box's mass, and in the corners the weight is exponentially small) and
# the loss carries essentially no information there — the error map of section 5 shows it. More
# training only refits the region the samples cover.
# Langevin dynamics (lesson 5) starts its chains from noise, typically far from the data, and
# its first steps follow the learned score where training did not constrain it; lesson 4's noise
# perturbation puts training samples there.
#
# </details>
#
# 4. Your `ism_loss` loops over the $d$ coordinates. Estimate, from the printed timings, how long
#    one step would take for 28×28 images; what would you try instead?
#
# <details><summary>Model answer</summary>
#
# At the largest dimensions timed the printed local slope is near 2 (the operation count's is
# below 2), so from the time $t_{512}$ printed for $d = 512$ a step at $d = 784$ costs about
# $(784/512)^{2}\,t_{512} \approx 2.3\,t_{512}$ or a little less — on
# the order of seconds for this small MLP on one thread (with a convolutional network and a
# realistic batch, far more), so thousands of steps take hours. The printed timings are for the
# library's single batched backward call; a Python loop of $d$ backward passes, like yours, was
# not timed and may be faster or slower. Instead, estimate the trace
# with random projections (sliced score matching, lesson 3: one backward pass per projection),
# or avoid it entirely with denoising score matching (lesson 4).
#
# </details>
#
# ## Summary
#
# - ESM $\tfrac12\mathbb E\|s_\theta - \nabla\log p\|^2$ (half the Fisher divergence) is the natural
#   objective but needs the unknown score.
# - Integration by parts (the divergence theorem in $d$ dimensions; Stein's identity) turns the
#   cross term into $-\mathbb E[\operatorname{tr}\nabla s_\theta]$ when $s_\theta$ is differentiable,
#   the expectations are finite and $p\,s_\theta$ vanishes at infinity fast enough:
#   $J_\mathrm{ESM} = J_\mathrm{ISM} + \tfrac12\mathbb E\|\nabla\log p\|^2$.
# - Measured: for five very different models ESM − ISM is the same constant $C$, within about two
#   Monte-Carlo standard errors.
# - A small MLP trained by ISM recovers the score of a 2-D mixture where the data are; its
#   largest errors inside the data region sit mostly where $p$ is small, and its error is several
#   times larger where data are rare.
# - $-C$ bounds the *expected* ISM, not a minibatch.
# - For a linear model ISM's optimum is $A = -\hat\Sigma^{-1}$, $b = \hat\Sigma^{-1}\bar x$: the fitted
#   field is the score of the maximum-likelihood Gaussian.
# - ½‖s‖² puts zeros of the field on the data, tr ∇s < 0 pulls the field into them; on a fixed
#   finite data set a flexible model takes both literally, the training ISM has no lower bound,
#   and the density collapses (here onto one point).
# - An energy-based model trained by ISM needs the Laplacian of its energy (a smooth activation
#   gives one) and numerical evidence that $Z_\theta$ is finite; then it gives a density, whose
#   weights of well-separated modes ISM pins down poorly (off by 0.046 to 0.133 over four seeds).
# - The exact trace costs $d$ backward passes: ISM's cost per step grows steeply with the
#   dimension. Next lesson: estimate the trace with random projections instead.
