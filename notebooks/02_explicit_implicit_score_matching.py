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
# 4. fit a small network by ISM and measure how far it is from the true score;
# 5. explain, with a measurement, why the exact ISM objective becomes expensive in high
#    dimension;
# 6. implement `ism_loss(score_fn, x)` yourself.
#
# Conventions (as in the whole course): losses carry the papers' $\tfrac12$, **sum over
# dimensions and average over the batch**; points are batch-first, shape `(B, d)`.

# %%
import math

import matplotlib.pyplot as plt
import torch

from lessons_lib import losses, seed_everything
from lessons_lib.autodiff import jacobian_trace
from lessons_lib.checks import check_ism_loss
from lessons_lib.data import mixture_1d, mixture_2d
from lessons_lib.densities import Gaussian
from lessons_lib.nets import LinearScore, ScoreMLP
from lessons_lib.plotting import plot_density_2d, plot_score_field
from lessons_lib.training import seconds_per_step, train

generator = seed_everything(0)

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
# unknown. ESM is a yardstick, not a training objective. In this course we use it to *grade*
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
# tails while $s_\theta$ grows fast. Hyvärinen (2005) also assumes $p$ differentiable and
# $\mathbb E_p\|\nabla\log p\|^2$, $\mathbb E_p\|s_\theta\|^2$ finite. Under these conditions
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


def mean_and_se(values):
    """Monte-Carlo average and its standard error."""
    return values.mean().item(), values.std().item() / math.sqrt(len(values))


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
# ## 5. Fitting a score model by ISM
#
# Now train `ScoreMLP(2)` with `losses.ism_loss` through the course's training loop, with fresh
# samples of `mixture_2d()` at every step, and grade the result with ESM (which the training
# never saw) on fresh samples; ISM + C must give the same number. Since $J_\mathrm{ISM} = J_\mathrm{ESM} - C \ge -C$, the training loss should
# approach $-C$ from above.

# %%
torch.manual_seed(0)
ism_model = ScoreMLP(2, hidden=64)
result = train(
    ism_model, lambda model, batch, gen: losses.ism_loss(model, batch), mix2.sample,
    n_steps=600, batch_size=256, lr=1e-2, seed=0, progress=False,
)
x_test = mix2.sample(100_000, generator=generator)
with torch.no_grad():
    esm_fit = losses.esm_loss(ism_model, x_test, mix2.score, reduction="none")
    ism_fit = losses.ism_loss(ism_model, x_test, reduction="none")
    half_true_sq_test = 0.5 * (mix2.score(x_test) ** 2).sum(-1)

# %%
# NBVAL_CHECK_OUTPUT
print("ESM of the ISM fit (fresh samples): {:.3f} ± {:.3f}".format(*mean_and_se(esm_fit)))
print("ISM + C of the fit:                 {:.3f} ± {:.3f}".format(*mean_and_se(ism_fit + half_true_sq_test)))
print("ESM of the zero model (= C):        {:.3f} ± {:.3f}".format(*mean_and_se(half_true_sq_test)))

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
window = 25
smooth = torch.tensor(result.losses).unfold(0, window, 1).mean(-1)
axes[0].plot(result.losses, color="C0", alpha=0.3, label="ISM loss per step")
axes[0].plot(range(window - 1, len(result.losses)), smooth, color="C0", label=f"running mean ({window} steps)")
axes[0].axhline(-C, color="k", ls="--", label="−C (the lowest possible ISM)")
axes[0].set(xlabel="step", ylabel="ISM loss", title="training by implicit score matching", ylim=(-4, 1))
axes[0].legend()
for ax, field, title in ((axes[1], mix2.score, "true score"), (axes[2], ism_model, "score learned by ISM")):
    plot_density_2d(ax, mix2.log_prob, xlim=(-5, 5), ylim=(-4, 4.5))
    quiver = plot_score_field(ax, field, xlim=(-5, 5), ylim=(-4, 4.5), n=20)
    quiver.set_clim(0, 3)
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
fig.colorbar(quiver, ax=axes[1:], label="log(1 + ‖s(x)‖)", shrink=0.8)
plt.show()

# %% [markdown]
# Where the data are, the learned field matches the truth: arrows converge on the three modes
# and turn around between them. Far from the data (the corners) the samples are rare and the
# loss hardly looks there: the expectation over $p$ weights every error by $p(x)$, so score
# matching only constrains $s_\theta$ where $p$ puts mass. That the corners look right here is
# the smooth MLP extrapolating, not something ISM enforces.
#
# ## 6. The price of the trace
#
# The term $\operatorname{tr}\nabla_x s_\theta(x) = \sum_{i=1}^d \partial s_{\theta,i}/\partial x_i$
# needs the diagonal of the $d\times d$ Jacobian. Reverse-mode autodiff produces one *row* of it
# per backward pass, so the exact trace costs $d$ backward passes per sample
# (`jacobian_trace` batches them with `torch.func.vmap(jacrev(...))`, but the work is still
# there). For an MLP of width $h$, one backward pass costs $O(dh + h^2)$, so an ISM step costs
# $O(d^2 h + d h^2)$: between linear and quadratic in $d$.
#
# We measure the time per training step (loss, backward pass, Adam update; the median over a
# few steps) of `ScoreMLP(d,
# hidden=128)` on standard-normal data for $d$ from 2 to 512, batch 64, on one CPU thread.
# (Timings depend on the machine; they are not checked outputs.)

# %%
dims = [2, 4, 8, 16, 32, 64, 128, 256, 512]
threads = torch.get_num_threads()
torch.set_num_threads(1)  # time the algorithm, not how threads share a busy machine
ism_seconds = []
for d in dims:
    torch.manual_seed(0)
    ism_seconds.append(
        seconds_per_step(
            ScoreMLP(d, hidden=128), lambda model, batch, gen: losses.ism_loss(model, batch),
            Gaussian(torch.zeros(d), 1.0).sample, n_steps=15 if d < 128 else 5, batch_size=64,
        )
    )
torch.set_num_threads(threads)
for d, sec in zip(dims, ism_seconds):
    print(f"d = {d:4d}: {1000 * sec:8.1f} ms per ISM step")

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
ax.loglog(dims, ism_seconds, "o-", color="C3", label="ISM (exact trace), measured")
d_ref = torch.tensor(dims[4:], dtype=torch.float64)  # reference slopes through the d = 512 point
ax.loglog(d_ref, ism_seconds[-1] * d_ref / dims[-1], ":", color="grey", label="∝ d")
ax.loglog(d_ref, ism_seconds[-1] * (d_ref / dims[-1]) ** 2, "--", color="grey", label="∝ d²")
ax.set(xlabel="dimension d", ylabel="seconds per training step", title="cost of exact implicit score matching")
ax.legend()
plt.show()

# %% [markdown]
# For small $d$ the fixed costs of a step dominate; from about a hundred dimensions on, the
# $d^2$ term takes over and the time climbs with the slope of the $\propto d^2$ line. A 28×28 image has $d = 784$, a 256×256 colour image $d\approx 2\times10^5$:
# exact ISM is out of reach there. Lessons 3 and 4 remove the trace: sliced score matching
# estimates it with random projections, denoising score matching avoids it altogether.
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
# 2. Where in the derivation did we use that the data distribution has tails? Think of $p$
#    uniform on $[0, 1]$: which term of the 1-D derivation survives, and what would ISM then
#    reward?
# 3. The fitted model is good near the data and arbitrary in the corners. Why can no amount of
#    training on samples of $p$ fix the corners? Which later algorithm (lesson 5) needs the
#    score exactly there?
# 4. Your `ism_loss` loops over the $d$ coordinates. Estimate, from the timing plot, how long one
#    step would take for 28×28 images; what would you try instead?
#
# ## Summary
#
# - ESM $\tfrac12\mathbb E\|s_\theta - \nabla\log p\|^2$ is the natural objective but needs the
#   unknown score.
# - Integration by parts (the divergence theorem in $d$ dimensions) turns the cross term into
#   $-\mathbb E[\operatorname{tr}\nabla s_\theta]$ when $p\,s_\theta$ vanishes at infinity fast
#   enough: $J_\mathrm{ESM} = J_\mathrm{ISM} + \tfrac12\mathbb E\|\nabla\log p\|^2$.
# - Measured: for five very different models ESM − ISM is the same constant $C$, within Monte
#   Carlo error.
# - A small MLP trained by ISM recovers the score of a 2-D mixture where the data are.
# - The exact trace costs $d$ backward passes: ISM's cost per step grows steeply with the
#   dimension. Next lesson: estimate the trace with random projections instead.
