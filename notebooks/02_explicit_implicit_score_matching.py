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
# 2. derive Hyvärinen's implicit score matching (ISM) by integration by parts, in 1-D and in
#    $d$ dimensions, and state when the boundary term vanishes;
# 3. verify numerically that ESM − ISM is the *same constant* for very different models;
# 4. fit a small network by ISM, measure how far it is from the true score (and how much that
#    changes from one training seed to the next), and see where the error concentrates;
# 5. say what each of the two ISM terms does, and why ISM on a fixed finite data set overfits;
# 6. solve Hyvärinen's Gaussian example by hand and check it against a fitted linear model;
# 7. train an energy-based model by ISM (which then needs the Hessian's trace);
# 8. explain, with a measurement, why the exact ISM objective becomes expensive in high
#    dimension;
# 9. implement `ism_loss(score_fn, x)` yourself.
#
# Names you will meet in the literature: ESM is (half) the **Fisher divergence**, and the
# integration by parts at the heart of ISM is an instance of **Stein's identity**.
#
# Conventions (as in the whole course): losses carry the papers' $\tfrac12$, **sum over
# dimensions and average over the batch**; points are batch-first, shape `(B, d)`.

# %%
import matplotlib.pyplot as plt
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.autodiff import jacobian_trace
from lessons_lib.course.checks import check_ism_loss
from lessons_lib.densities import Gaussian, density_from_score_1d
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
# wherever $p>0$, which for connected supports means $p_\theta = p$. In this course we use it to *grade*
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
# **Check, by quadrature.** For the 1-D mixture $0.1\,\mathcal N(-3,1) + 0.9\,\mathcal N(3,1)$ and
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
# The same argument works coordinate by coordinate. The cross term is
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
# surface integral vanishes as $R\to\infty$ when $p(x)\,\|s_\theta(x)\|$ decays faster than
# $\|x\|^{-(d-1)}$. That holds for densities with Gaussian-like tails and models that grow at
# most polynomially (any MLP, any linear model) — our setting. It can fail when $p$ is cut off
# abruptly (e.g. uniform on a box: $p$ does not go to zero at the box's faces) or has heavy
# tails while $s_\theta$ grows fast. The other assumptions of Hyvärinen's theorem (2005):
#
# - $p$ is differentiable, and the **model score $s_\theta$ is differentiable** in $x$ (we take
#   its divergence; an MLP with smooth activations such as SiLU qualifies, a ReLU network only
#   almost everywhere, with a divergence that misses the kinks);
# - the expectations are finite: $\mathbb E_p\|\nabla\log p\|^2$ (that is $C$),
#   $\mathbb E_p\|s_\theta\|^2$ and $\mathbb E_p|\nabla\cdot s_\theta|$, so that splitting ESM into
#   three terms is legitimate.
#
# Under these conditions
#
# $$ J_\mathrm{ESM}(\theta) = J_\mathrm{ISM}(\theta) + C, \qquad
#    J_\mathrm{ISM}(\theta) = \mathbb E_p\Big[\operatorname{tr}\nabla_x s_\theta(x) + \tfrac12\|s_\theta(x)\|^2\Big], \qquad
#    C = \tfrac12\,\mathbb E_p\|\nabla_x\log p(x)\|^2 . $$
#
# $J_\mathrm{ISM}$ only needs samples of $p$ and the model: minimising it minimises ESM.
#
# ## 4. A numerical proof that ESM − ISM does not depend on θ
#
# Take very different models — three randomly initialised MLPs (their last layer scaled by 1, 5
# and 15 so that they are far from each other and from the truth) and two random linear
# fields $s(x) = Ax + b$ — and estimate, on the same 100 000 samples of `mixture_2d()`,
# $J_\mathrm{ESM}$ (with the true score), $J_\mathrm{ISM}$ (without it), their difference,
# and $C$. Each Monte-Carlo average is printed with its standard error
# $\hat\sigma/\sqrt n$ (one standard error ≈ 68 % interval).

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
C, C_se = mean_and_se(half_true_sq)
print(f"{'model':<24}{'ESM':>8}{'ISM':>8}{'ESM − ISM':>18}{'(ESM − ISM) − C':>20}")
for name, (esm, ism) in rows.items():
    diff, diff_se = mean_and_se(esm - ism)
    gap, gap_se = mean_and_se(esm - ism - half_true_sq)  # paired: the same x for both terms
    print(f"{name:<24}{esm.mean():8.3f}{ism.mean():8.3f}{diff:11.3f} ± {diff_se:.3f}{gap:13.3f} ± {gap_se:.3f}")
print(f"C = ½ E‖∇log p‖² = {C:.3f} ± {C_se:.3f}")

# %% [markdown]
# ESM and ISM change a lot from one model to the next, yet
# $J_\mathrm{ESM} - J_\mathrm{ISM}$ is the same number for all of them, and it equals $C$:
# the last column, computed sample by sample (a *paired* comparison, hence its much smaller
# error bar), is zero within a couple of standard errors. Whatever lowers ISM lowers ESM by
# exactly as much.
#
# That last column is a classical identity in disguise. Expanding the squares,
# $\tfrac12\|s_\theta - \nabla\log p\|^2 - \operatorname{tr}\nabla s_\theta - \tfrac12\|s_\theta\|^2 - \tfrac12\|\nabla\log p\|^2
# = -\big(s_\theta^\top\nabla\log p + \nabla\cdot s_\theta\big)$, so the column measures
# $-\mathbb E_p\big[s_\theta^\top\nabla\log p + \nabla\cdot s_\theta\big]$. **Stein's identity**
# says that $\mathbb E_p\big[f^\top\nabla\log p + \nabla\cdot f\big] = 0$ for every smooth vector field
# $f$ for which the boundary term vanishes; it is exactly the integration by parts of section 3,
# and ESM − ISM = C is Stein's identity applied to $f = s_\theta$. (The name *Stein score* for
# $\nabla_x\log p$ comes from its role in this identity.)
#
# ## 5. Fitting a score model by ISM
#
# Now train `ScoreMLP(2)` with `losses.ism_loss` through the course's training loop, with fresh
# samples of `mixture_2d()` at every step, and grade the result with ESM (which the training
# never saw) on fresh samples; ISM + C must give the same number. We train **five times**, with
# training seeds 0 to 4 (initial weights, batches), because two error bars matter here and they
# answer different questions:
#
# - the **Monte-Carlo standard error** of evaluating *one* trained model on 100 000 samples
#   (how precisely we know this model's ESM);
# - the **spread between training seeds**, the standard deviation over the five runs (how much
#   the result changes if you train again). Only this one can tell whether two training methods
#   differ.

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

# %%
# NBVAL_CHECK_OUTPUT
print("seed 0: ESM of the ISM fit, fresh samples : {:.3f} ± {:.3f}  (± Monte-Carlo SE)".format(*mean_and_se(esm_by_seed[0])))
print("seed 0: ISM + C of the same fit           : {:.3f} ± {:.3f}  (± Monte-Carlo SE)".format(
    *mean_and_se(ism_fit + half_true_sq_test)))
print("ESM for each training seed                :", " ".join(f"{e.mean():.3f}" for e in esm_by_seed))
print("ESM over the 5 training seeds             : {:.3f} ± {:.3f}  (± SD between seeds)".format(
    *mean_and_sd([e.mean() for e in esm_by_seed])))
print("ESM of the zero model (= C)               : {:.3f} ± {:.3f}  (± Monte-Carlo SE)".format(
    *mean_and_se(half_true_sq_test)))

# %% [markdown]
# The seed-to-seed spread is many times the Monte-Carlo error: a difference of a few hundredths
# in ESM between two single runs says nothing about the methods that produced them.
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
# The true and learned fields look almost the same as arrows, so instead we map the error
# $\|s_\theta(x) - \nabla\log p(x)\|$ over the plane. The white dashed line is where the
# density has fallen to $10^{-3}$ of its peak: outside it, training samples are rare (together,
# the region outside holds well under 1 % of the mass). The two ISM numbers below are the
# median error on a 100×100 grid inside and outside that line, mean ± SD over the five seeds.

# %%
inside, outside = zip(*(score_error_by_region(fit.model, mix2.score, mix2.log_prob, xlim=(-5, 5), ylim=(-4, 4.5))
                        for fit in fits))
_, _, grid = grid_2d((-5, 5), (-4, 4.5), 400)
p_grid = mix2.log_prob(grid.double()).exp()
mass_outside = (p_grid * (p_grid < 1e-3 * p_grid.max())).sum() / p_grid.sum()

# %%
# NBVAL_CHECK_OUTPUT
print(f"mass of the box outside the dashed line: {mass_outside:.4f}")
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
# Where the data are, the learned field matches the truth: arrows converge on the three modes
# and turn around between them, and the error map is dark. Away from the data the error grows:
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
# the true $-\Sigma^{-1}$ by the sampling error of 200 points.
#
# ## 7. What the two ISM terms do — and why a finite data set is not enough
#
# Look at ISM one data point at a time: $\operatorname{tr}\nabla s_\theta(x_i) + \tfrac12\|s_\theta(x_i)\|^2$.
#
# - $\tfrac12\|s_\theta(x_i)\|^2$ is smallest when $s_\theta(x_i) = 0$: it makes every data point a
#   **stationary point** of the model's log-density.
# - $\operatorname{tr}\nabla s_\theta(x_i)$ is smallest when the divergence is very negative: the
#   arrows around $x_i$ point *into* it, making it a **sink**, i.e. a local maximum of the model
#   density.
#
# With the true $p$ (infinitely many samples) the two pulls balance at $s_\theta = \nabla\log p$.
# On a *fixed, finite* data set nothing stops a flexible model from obeying both literally: put
# zeros of $s_\theta$ on the training points with ever steeper negative slopes. The training ISM
# then goes to $-\infty$ while the model density collapses into spikes on the training points.
# A 1-D demonstration: 6 points from $\mathcal N(0,1)$ (true score $-x$,
# $C = \tfrac12\mathbb E[x^2] = 0.5$), a `ScoreMLP(1, hidden=128)` trained by ISM on those 6
# points only; we look at it after 30, 100 and 300 steps. "Mass near the data" is the
# probability that the model density (recovered from $s_\theta$ on a grid) puts within ±0.1 of a
# training point.

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

# %%
# NBVAL_CHECK_OUTPUT
print(f"true density: lowest expected ISM −C = −0.50, mass near the data {true_near:.2f}")
for step, snap in snapshots.items():
    print(f"after {step:3d} steps: " + ", ".join(f"{k} {v:.3g}" for k, v in snap.items() if k not in ("score", "density")))

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
ax_s.set(xlabel="x", ylabel="score", ylim=(-30, 30), xlim=(-3, 3), title="score: steep descents through the data")
ax_p.set(xlabel="x", ylabel="density (normalised on the grid)", yscale="log", ylim=(1e-4, 100), xlim=(-3, 3),
         title="model density: its mass collapses onto the data")
ax_s.legend(loc="upper right", fontsize=9)
ax_p.legend(loc="upper right", fontsize=9)
plt.show()

# %% [markdown]
# After 30 steps the fit is a broad bump close to the truth. By 300 steps the training ISM has
# fallen far below $-C$ — impossible for an *expected* ISM, so this is a statement about these
# 6 points, not about $p$ — the mean slope $s'(x_i)$ at the training points is hugely negative
# (sinks), nearly all of the model's mass sits within ±0.1 of a training point, and on fresh
# samples the ESM has exploded. With fresh samples at every step (section 5) this cannot happen;
# with a fixed data set, as in practice, it must be prevented. Lesson 4's remedy is to add
# noise to the data: the model then has to match the score of a *smoothed* density, which has
# no spikes.
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
# $-\nabla E_\theta$ by autograd. The reward: the fitted model *is* a density, up to $Z_\theta$,
# which in 2-D we can compute on a grid.

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
print(f"log Z_θ by quadrature on the grid: {log_Z:.3f}")
print(f"½∫|p_θ − p| dx on the grid (total variation): {0.5 * (p_ebm - p_true).abs().sum() * cell:.3f}")

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
# The energy network recovers the three modes, and because it is an energy we can draw its
# density — something the free-form `ScoreMLP` of section 5 cannot offer (lesson 1: a
# free-form field need not be a gradient). The price is the extra order of differentiation in
# every training step. Lesson 3's projections apply unchanged: for $s_\theta = -\nabla E_\theta$,
# $v^\top\nabla_x s_\theta\,v = -v^\top(\nabla_x^2 E_\theta)\,v$ is one Hessian–vector product, one extra backward
# pass whatever the dimension.
#
# ## 9. The price of the trace
#
# The term $\operatorname{tr}\nabla_x s_\theta(x) = \sum_{i=1}^d \partial s_{\theta,i}/\partial x_i$
# needs the diagonal of the $d\times d$ Jacobian. Reverse-mode autodiff produces one *row* of it
# per backward pass, so the exact trace costs $d$ backward passes per sample
# (`jacobian_trace` batches them with `torch.func.vmap(jacrev(...))`, but the work is still
# there). For an MLP of width $h$, one backward pass costs $O(dh + h^2)$, so an ISM step costs
# $O(d^2 h + d h^2)$: between linear and quadratic in $d$.
#
# We time one training step (loss, backward pass, Adam update) of `ScoreMLP(d, hidden=128)` on
# standard-normal data, batch 64, one CPU thread, for $d$ from 2 to 512, with the library's
# `step_costs` (the median of 7 timed steps after 2 untimed ones; lesson 3 times its objectives
# the same way). Beside ISM we time a step of denoising score matching (DSM, lesson 4), which
# never differentiates the network with respect to $x$: a plain forward and backward pass. The
# ratio of the two, measured in the same cell, depends less on the machine than either time.
# (Timings are not checked outputs; another program running at the same time inflates them.)

# %%
dims = [2, 4, 8, 16, 32, 64, 128, 256, 512]
costs = step_costs({"ISM": ism_objective, "DSM": lambda model, batch, gen: losses.dsm_loss(model, batch, 0.1, generator=gen)},
                   dims, n_steps=7, warmup=2)
for d, ism_s, dsm_s in zip(dims, costs["ISM"], costs["DSM"]):
    print(f"d = {d:4d}: ISM {1000 * ism_s:8.1f} ms, DSM {1000 * dsm_s:5.1f} ms per step, ratio {ism_s / dsm_s:6.1f}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
ax.loglog(dims, costs["ISM"], "o-", color="C3", label="ISM (exact trace)")
ax.loglog(dims, costs["DSM"], "s-", color="C2", label="DSM (no derivative in x)")
d_ref = torch.tensor(dims[4:], dtype=torch.float64)  # reference slopes through the d = 512 point
ax.loglog(d_ref, costs["ISM"][-1] * d_ref / dims[-1], ":", color="grey", label="∝ d")
ax.loglog(d_ref, costs["ISM"][-1] * (d_ref / dims[-1]) ** 2, "--", color="grey", label="∝ d²")
ax.set(xlabel="dimension d", ylabel="seconds per training step", title="cost of exact implicit score matching",
       xticks=dims, xticklabels=[str(d) for d in dims])
ax.minorticks_off()
ax.legend()
plt.show()

# %% [markdown]
# For small $d$ an ISM step already costs several DSM steps even though the trace is only a few
# backward passes: these are **fixed overheads** — `torch.func` builds a vmapped Jacobian
# computation at every call, whose bookkeeping costs about the same for $d = 2$ as for $d = 8$, so the
# curve is nearly flat there (single steps at this scale are also easily slowed by other
# programs; the median over 7 steps damps that, but a lone outlier of a few ms can remain). From
# about a hundred dimensions on, the $d^2$ term takes over, the curve climbs with the slope of
# the $\propto d^2$ line, and the ratio to DSM grows to about a hundred or more. A 28×28 image has $d = 784$,
# a 256×256 colour image $d\approx 2\times10^5$: exact ISM is out of reach there. Lessons 3 and 4
# remove the trace: sliced score matching estimates it with random projections, denoising score
# matching avoids it altogether.
#
# (For a single sample, a quick sanity check that `jacobian_trace` really is the divergence:
# a linear field $s(x) = Ax + b$ has Jacobian $A$ everywhere.)

# %%
# NBVAL_CHECK_OUTPUT
linear = models["linear, seed 10"]
with torch.no_grad():
    print("jacobian_trace of Ax + b:", round(jacobian_trace(linear, x[:3])[0].item(), 5),
          "  tr A:", round(torch.trace(linear.A).item(), 5))

# %% [markdown]
# ## Exercise — the ISM loss
#
# Implement `ism_loss(score_fn, x)`: for a batch `x` of shape `(B, d)`, return the scalar
# $\frac1B\sum_b \big[\operatorname{tr}\nabla_x s(x_b) + \tfrac12\|s(x_b)\|^2\big]$ with the
# **exact** trace. The result must stay differentiable with respect to the model's parameters
# (it is a training loss), so keep the graph when you differentiate.

# %%
def ism_loss(score_fn, x):
    """Implicit score matching: mean over the batch of tr ∇ₓs(x) + ½‖s(x)‖² (exact trace)."""
    # Hint: with x requiring grad and s = score_fn(x), torch.autograd.grad(s[:, i].sum(), x, create_graph=True) gives ∂s_i/∂x for every sample.
    ### BEGIN SOLUTION
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = torch.zeros(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[1]):
        (grad_i,) = torch.autograd.grad(s[:, i].sum(), x, create_graph=True)
        trace = trace + grad_i[:, i]
    return (trace + 0.5 * (s**2).sum(-1)).mean()
    ### END SOLUTION


# %%
check_ism_loss(ism_loss)

# %% [markdown]
# ## Think
#
# 1. ISM can be negative, ESM cannot. Why is that no contradiction? What is the smallest value
#    the ISM loss can take?
#
# <details><summary>Model answer</summary>
#
# ISM is ESM minus a positive constant: $J_\mathrm{ISM} = J_\mathrm{ESM} - C$ with
# $C = \tfrac12\mathbb E_p\|\nabla\log p\|^2 > 0$. Since $J_\mathrm{ESM}\ge 0$, the *expected* ISM
# is at least $-C$, reached exactly when $s_\theta = \nabla\log p$ (if the model family contains
# it); here $-C \approx -2.62$. A minibatch average is a noisy estimate of that expectation and
# can fall below $-C$ (section 5 counts how often); on a *fixed* finite data set, the training
# ISM has no lower bound at all (section 7).
#
# </details>
#
# 2. Where in the derivation did we use that the data distribution has tails? Think of $p$
#    uniform on $[0, 1]$: which term of the 1-D derivation survives, and what would ISM then
#    reward?
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
# no lower bound — it is not a valid objective there.
#
# </details>
#
# 3. The fitted model is good near the data and arbitrary in the corners. Why can no amount of
#    training on samples of $p$ fix the corners? Which later algorithm (lesson 5) needs the
#    score exactly there?
#
# <details><summary>Model answer</summary>
#
# Every score-matching objective is an expectation under $p$, so an error at $x$ counts with
# weight $p(x)$; where $p$ is tiny, samples almost never land (the region outside the dashed
# line holds 0.09 % of the box's mass) and the loss carries essentially no information — the
# error map of section 5 shows it. More training only refits the region the samples cover.
# Langevin dynamics (lesson 5) starts its chains from noise, typically far from the data, and
# its first steps follow the score exactly in those unconstrained regions; lesson 4's noise
# perturbation puts training samples there.
#
# </details>
#
# 4. Your `ism_loss` loops over the $d$ coordinates. Estimate, from the timing plot, how long one
#    step would take for 28×28 images; what would you try instead?
#
# <details><summary>Model answer</summary>
#
# Beyond $d\approx 100$ the measured cost follows the $d^2$ line, so from the time $t_{512}$
# printed for $d = 512$, a step at $d = 784$ costs about $(784/512)^2\,t_{512} \approx 2.3\,t_{512}$
# — on the order of seconds for this small MLP on one thread (with a convolutional network and
# a realistic batch, far more), so thousands of steps take hours. Instead, estimate the trace
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
# - Measured: for five very different models ESM − ISM is the same constant $C$, within Monte
#   Carlo error.
# - A small MLP trained by ISM recovers the score of a 2-D mixture where the data are (ESM
#   0.092 ± 0.010, SD over 5 training seeds, against 2.64 for the zero model); its error is
#   several times larger where data are rare. $-C$ bounds the *expected* ISM, not a minibatch.
# - For a linear model ISM's optimum is $-\hat\Sigma^{-1}$, the maximum-likelihood Gaussian.
# - ½‖s‖² makes data points stationary, tr ∇s < 0 makes them sinks; on a fixed finite data set
#   a flexible model takes both literally and overfits into spikes (lesson 4's noise fixes it).
# - An energy-based model trained by ISM needs the Laplacian of its energy, and gives a density.
# - The exact trace costs $d$ backward passes: ISM's cost per step grows steeply with the
#   dimension. Next lesson: estimate the trace with random projections instead.
