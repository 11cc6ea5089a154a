"""The exercise checks accept right answers, reject typical wrong answers with the right
diagnosis, and report a stub that still raises NotImplementedError as "not attempted".

The right and wrong answers are written here as small functions, as a student would write them,
independently of the library's implementations (which a check refuses: an answer that calls
them is "not your own work") and of the known mistakes the exercises list."""

import functools
import math
import subprocess
import sys
import textwrap

import pytest
import torch

from lessons_lib import losses
from lessons_lib.autodiff import hutchinson_trace
from lessons_lib.course import checks
from lessons_lib.course.checks import engine
from lessons_lib.densities import Gaussian

CHECKS = {ex.name: getattr(checks, ex.check_name) for ex in checks.exercises()}


def _stub(*args):
    raise NotImplementedError("replace this line with your solution")


@pytest.fixture(autouse=True)
def not_grading(monkeypatch):
    """Each test starts outside grading mode (which, once on, stays on for the process)."""
    monkeypatch.delenv(checks.GRADING_ENV, raising=False)
    monkeypatch.delenv(checks.NBGRADER_ENV, raising=False)
    monkeypatch.setattr(engine, "_GRADING_SEEN", False)


# ------------------------------------------------------------------------ right answers
def _ism_loop(score_fn, x):
    """The exact trace one coordinate at a time, with create_graph=True."""
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = sum(
        torch.autograd.grad(s[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(x.shape[1])
    )
    return (trace + 0.5 * (s**2).sum(dim=1)).mean()


def _ssm_loop(score_fn, x, v):
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    terms = []
    for vm in v:
        (g,) = torch.autograd.grad((s * vm).sum(), x, create_graph=True)
        terms.append((g * vm).sum(-1) + 0.5 * (vm * s).sum(-1) ** 2)
    return torch.stack(terms).mean()


def _ncsn_einsum(score_fn, x, sigma, z):
    shape = (-1,) + (1,) * (x.dim() - 1)
    residual = sigma.reshape(shape) * score_fn(x + sigma.reshape(shape) * z, sigma) + z
    return 0.5 * residual.pow(2).sum(dim=tuple(range(1, x.dim()))).mean()


def _last_level_step(si, sl, size):
    return size * (si / sl) ** 2


def _sqrt_2eps(e, size):
    return (2 * e) ** 0.5


def _sampler(f, x, sigmas, size, z, step=_last_level_step, scale=_sqrt_2eps):
    """Annealed Langevin written out, with a replaceable step rule and noise scale (the wrong
    answers below change one of them); z[i, t] is the noise of step t at level i."""
    for i in range(len(sigmas)):
        e = step(float(sigmas[i]), float(sigmas[-1]), size)
        for t in range(z.shape[1]):
            x = x + e * f(x, sigmas[i]) + scale(e, size) * z[i, t]
    return x



def _dsm_step(model, optimizer, x, sigma, z):
    optimizer.zero_grad()
    residual = model(x + sigma * z) + z / sigma
    loss = 0.5 * (residual**2).sum(dim=1).mean()
    loss.backward()
    optimizer.step()
    return loss.detach()


def _dsm_step_set_to_none(model, optimizer, x, sigma, z):
    for q in model.parameters():
        q.grad = None
    loss = ((model(x + sigma * z) * sigma + z) ** 2).sum(-1).mean() / (2 * sigma**2)
    loss.backward()
    optimizer.step()
    return loss.clone().detach()


def _mala_log_q(score_fn, b, a, eps):
    return -((b - a - eps * score_fn(a)) ** 2).sum(-1) / (4 * eps)


def _mala(log_prob, score_fn, x, y, eps):
    ratio = log_prob(y) - log_prob(x) + _mala_log_q(score_fn, x, y, eps) - _mala_log_q(score_fn, y, x, eps)
    return torch.minimum(ratio, torch.zeros_like(ratio))


def _mala_logsumexp_free(log_prob, score_fn, x, y, eps):
    forward = y - x - eps * score_fn(x)
    backward = x - y - eps * score_fn(y)
    ratio = log_prob(y) - log_prob(x) + ((forward**2).sum(1) - (backward**2).sum(1)) / (4 * eps)
    return ratio.clamp(max=0)

# lessons 01-03, second edition: written as a student would
def _mixture_logsumexp(x, weights, means, covs):
    precision = torch.linalg.inv(covs)
    diff = x[:, None, :] - means
    comp = -torch.einsum("kij,bkj->bki", precision, diff)
    log_joint = torch.log(weights) - 0.5 * ((diff * -comp).sum(-1) + torch.logdet(2 * math.pi * covs))
    r = torch.exp(log_joint - torch.logsumexp(log_joint, -1, keepdim=True))
    return (r[..., None] * comp).sum(1)


def _mixture_naive(x, weights, means, covs):
    precision = torch.linalg.inv(covs)
    diff = x[:, None, :] - means
    comp = -torch.einsum("kij,bkj->bki", precision, diff)
    joint = weights * torch.exp(-0.5 * (diff * -comp).sum(-1)) / torch.sqrt(torch.det(2 * math.pi * covs))
    return ((joint / joint.sum(-1, keepdim=True))[..., None] * comp).sum(1)


def _trace_loop(score_fn, x, keep=lambda g, i: g[:, i]):
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    return sum(keep(torch.autograd.grad(s[:, i].sum(), x, create_graph=True)[0], i) for i in range(x.shape[1]))


def _ebm_ism(energy_fn, x, combine=lambda lap, g: -lap + 0.5 * (g**2).sum(-1), graph=True):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(energy_fn(x).sum(), x, create_graph=graph)
    lap = sum(torch.autograd.grad(g[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(x.shape[1]))
    return combine(lap, g).mean()


def _vr_loop(score_fn, x, v, square=lambda vm, s: 0.0):
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = sum((torch.autograd.grad((s * vm).sum(), x, create_graph=True)[0] * vm).sum(-1) for vm in v) / len(v)
    return (trace + 0.5 * (s**2).sum(-1)).mean()


def _rademacher_variance(A):
    S = (A + A.T) / 2
    return 2 * (S**2 - torch.diag(torch.diagonal(S) ** 2)).sum()


def _ncsn_step(model, optimizer, x, sigma, z):
    """Lesson 06's capstone step, the loss written out."""
    optimizer.zero_grad()
    sv = sigma.view(-1, *[1] * (x.dim() - 1))
    loss = 0.5 * (sv * model(x + sv * z, sigma) + z).pow(2).flatten(1).sum(1).mean()
    loss.backward()
    optimizer.step()
    return loss.detach()


def _ncsn_step_set_to_none(model, optimizer, x, sigma, z):
    for p in model.parameters():
        p.grad = None
    sv = sigma.view(-1, *[1] * (x.dim() - 1))
    loss = 0.5 * ((sv * model(x + sv * z, sigma) + z) ** 2).sum(dim=tuple(range(1, x.dim()))).mean()
    loss.backward()
    optimizer.step()
    return loss.detach().clone()


def _denoised_sampler(f, x, s, size, n, denoise=lambda f, x, sl: x + sl**2 * f(x, sl)):
    out = _sampler(f, x, s, size, n)
    return denoise(f, out, float(s[-1])) if denoise else out


def _pc(f, x, s, r, n, predictor="rd", corrector_at=1, per_sample=False, factor=2.0, corrector=True):
    s = [float(v) for v in s]
    for k in range(len(s) - 1):
        var = s[k] ** 2 - s[k + 1] ** 2 if predictor == "rd" else 2 * math.log(s[k] / s[k + 1]) * s[k] ** 2
        x = x + var * f(x, s[k]) + var**0.5 * n[k, 0]
        if not corrector:
            continue
        sc, z = f(x, s[k + corrector_at]), n[k, 1]
        if per_sample:
            eps = factor * (r * z.flatten(1).norm(dim=1) / sc.flatten(1).norm(dim=1)) ** 2
            eps = eps.view(-1, *[1] * (x.dim() - 1))
        else:
            eps = factor * (r * z.flatten(1).norm(dim=1).mean() / sc.flatten(1).norm(dim=1).mean()) ** 2
        x = x + eps * sc + (2 * eps) ** 0.5 * z
    return x


def _div(f, x, sigma, g, v, scale=lambda g: -0.5 * g**2, second_v=True, reduce=lambda t: t.flatten(1).sum(1)):
    x = x.detach().requires_grad_(True)
    (u,) = torch.autograd.grad((f(x, sigma) * v).sum(), x)
    return scale(g) * reduce(u * v if second_v else u)


RIGHT_ANSWERS = {
    "gaussian_score": [
        lambda x, m, c: -(x - m) @ torch.linalg.inv(c),
        lambda x, m, c: -torch.linalg.solve(c, (x - m).T).T,
        lambda x, m, c: -torch.cholesky_solve((x - m).T.double(), torch.linalg.cholesky(c.double())).T,
    ],
    "ism_loss": [_ism_loop],
    "ssm_loss": [_ssm_loop],
    "mixture_score": [_mixture_logsumexp],
    "exact_trace": [_trace_loop],
    "ebm_ism_loss": [_ebm_ism],
    "rademacher_variance": [_rademacher_variance, lambda A: 2 * ((A + A.T) / 2).triu(1).pow(2).sum() * 2],
    "ssm_vr_loss": [_vr_loop],
    "dsm_loss": [
        lambda f, x, s, z: ((f(x + s * z) + z / s) ** 2).sum(-1).mean() / 2,
        lambda f, x, s, z: 0.5 * torch.mean(torch.sum((s * f(x + s * z) + z) ** 2, dim=1)) / s**2,
    ],
    "tweedie_denoiser": [
        lambda f, y, s: y + s**2 * f(y),
        lambda f, y, s: torch.addcmul(y, torch.full_like(y, s * s), f(y)),
    ],
    "dsm_training_step": [_dsm_step, _dsm_step_set_to_none],
    "mala_log_acceptance": [_mala, _mala_logsumexp_free],
    "langevin_step": [
        lambda x, s, e, z: x + e * s + (2 * e) ** 0.5 * z,
        lambda x, s, e, z: torch.addcmul(x + e * s, torch.sqrt(torch.tensor(2.0 * e)), z),
    ],
    "annealed_langevin_loop": [
        _sampler,
        lambda f, x, s, size, z: _sampler(f, x.clone(), s.tolist(), size, z),
    ],
    "ncsn_loss_at": [_ncsn_einsum],
    "reverse_sde_step": [lambda x, s, g, dt, z: x + (g * g * dt) * s + (g * g * dt) ** 0.5 * z],
    "probability_flow_step": [lambda x, s, g, dt: torch.add(x, s, alpha=g**2 * dt / 2)],
    "ncsn_training_step": [_ncsn_step, _ncsn_step_set_to_none],
    "annealed_sampler": [_denoised_sampler],
    "pc_loop": [_pc],
    "divergence_integrand": [
        _div,
        lambda f, x, sigma, g, v: -0.5 * g * g * _div(f, x, sigma, 1.0, v, scale=lambda g: 1.0),
    ],
}


def _right(name):
    return RIGHT_ANSWERS[name][0]


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_stub_is_not_attempted(name, capsys):
    assert CHECKS[name](_stub) is None
    assert "not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_leaves_global_random_state_alone(name):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CHECKS[name](_right(name))
    assert torch.equal(torch.rand(3), expected)


def test_other_errors_are_reported_with_the_case():
    def broken(x, mean, cov):
        return x @ torch.ones(7, 7)

    with pytest.raises(AssertionError, match=r"raised RuntimeError(.|\n)*test case: x of shape"):
        checks.check_gaussian_score(broken)


@pytest.mark.parametrize(
    "name, right",
    [(name, fn) for name, fns in RIGHT_ANSWERS.items() for fn in fns],
    ids=[f"{name}-{i}" for name, fns in RIGHT_ANSWERS.items() for i in range(len(fns))],
)
def test_correct_solutions_pass(name, right, capsys):
    CHECKS[name](right)
    out = capsys.readouterr().out
    assert out.startswith(f"✓ {name} matches the reference on ") and "test cases" in out


# ------------------------------------------------------------------------ wrong answers
def _precision(cov):
    return torch.linalg.inv(cov)


def _ism_parts(score_fn, x):
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = sum(torch.autograd.grad(s[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(x.shape[1]))
    return trace, (s**2).sum(-1)


def _ism(combine):
    """An ISM answer ``combine(trace, ‖s‖²)`` over the exact per-sample terms."""
    return lambda f, x: combine(*_ism_parts(f, x))


def _ism_with_detached_trace(score_fn, x):
    """The exact trace, but torch.autograd.grad without create_graph=True."""
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = sum(torch.autograd.grad(s[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1]))
    return (trace + 0.5 * (s**2).sum(-1)).mean()


def _ism_without_any_graph(score_fn, x):
    """The exact trace with a plain torch.autograd.grad per coordinate: PyTorch's 'backward through
    the graph a second time' on the second coordinate."""
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = sum(torch.autograd.grad(s[:, i].sum(), x)[0][:, i] for i in range(x.shape[1]))
    return (trace + 0.5 * (s**2).sum(-1)).mean()


def _ssm_parts(score_fn, x, v):
    """vᵀ∇s v and vᵀs for each projection, shapes (M, B), and s."""
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    vjv = torch.stack([(torch.autograd.grad(s, x, vm, create_graph=True)[0] * vm).sum(-1) for vm in v])
    return vjv, (v * s).sum(-1), s


def _ssm(combine):
    """An SSM answer ``combine(vJv, vᵀs, s)``."""
    return lambda f, x, v: combine(*_ssm_parts(f, x, v))


def _dsm(noisy=lambda x, s, z: x + s * z, target=lambda z, s: z / s, reduce=lambda r: r.sum(-1).mean()):
    """A DSM answer ½ reduce((s(noisy) + target)²)."""
    return lambda f, x, s, z: 0.5 * reduce((f(noisy(x, s, z)) + target(z, s)) ** 2)


def _sigma_view(sigma, x):
    return sigma.view(-1, *[1] * (x.dim() - 1))


def _ncsn(residual, reduce=lambda r: r.flatten(1).sum(-1).mean()):
    """An NCSN answer ½ reduce(residual(f, x, σ (B, 1, ...), σ (B,), z)²)."""
    return lambda f, x, s, z: 0.5 * reduce(residual(f, x, _sigma_view(s, x), s, z) ** 2)


def _ncsn_right(f, x, sv, s, z):
    return sv * f(x + sv * z, s) + z


def _annealed(**kw):
    return lambda f, x, s, size, n: _sampler(f, x, s, size, n, **kw)



def _step_without(zero=True, step=True, order="backward first", after=False, noisy=True):
    """A DSM training step with one slip."""
    def answer(model, optimizer, x, sigma, z):
        if zero:
            optimizer.zero_grad()
        loss = 0.5 * ((model(x + sigma * z if noisy else x) + z / sigma) ** 2).sum(1).mean()
        if order == "step first":
            optimizer.step()
            loss.backward()
        else:
            loss.backward()
            if step:
                optimizer.step()
        if after:
            return 0.5 * ((model(x + sigma * z) + z / sigma) ** 2).sum(1).mean().detach()
        return loss.detach()

    return answer

WRONG = {
    "mixture_score": [
        ("naive sum underflows", _mixture_naive, "underflows to 0"),
        ("weights only", lambda x, w, m, c: (w[:, None] * -torch.einsum("kij,bkj->bki", torch.linalg.inv(c),
                                                                        x[:, None] - m)).sum(1), "mixture weights"),
        ("sign", lambda x, w, m, c: -_mixture_logsumexp(x, w, m, c), "wrong sign"),
    ],
    "exact_trace": [
        ("all entries", lambda f, x: _trace_loop(f, x, keep=lambda g, i: g.sum(-1)), "every entry"),
        ("first only", lambda f, x: _trace_loop(f, x, keep=lambda g, i: g[:, 0] * (i == 0)), "first diagonal"),
        ("mean", lambda f, x: _trace_loop(f, x) / x.shape[1], "averages the diagonal"),
        ("scalar", lambda f, x: _trace_loop(f, x).mean(), "expected"),
        ("detached", lambda f, x: _trace_loop(f, x).detach(), "no (or the wrong) gradient"),
    ],
    "ebm_ism_loss": [
        ("+ΔE", lambda e, x: _ebm_ism(e, x, lambda lap, g: lap + 0.5 * (g**2).sum(-1)), "wrong sign"),
        ("missing ½", lambda e, x: _ebm_ism(e, x, lambda lap, g: -lap + (g**2).sum(-1)), "½ in front"),
        ("no Laplacian", lambda e, x: _ebm_ism(e, x, lambda lap, g: 0.5 * (g**2).sum(-1)), "Laplacian term is missing"),
        ("first grad without graph", lambda e, x: _ebm_ism(e, x, graph=False), "create_graph"),
    ],
    "rademacher_variance": [
        ("not symmetrised", lambda A: 2 * (A**2 - torch.diag(torch.diagonal(A) ** 2)).sum(),
         "right for symmetric A only"),
        ("Gaussian", lambda A: 2 * ((A + A.T) / 2).pow(2).sum(), "variance for Gaussian v"),
        ("no factor 2", lambda A: _rademacher_variance(A) / 2, "factor 2 is missing"),
        ("float", lambda A: float(_rademacher_variance(A)), "torch.Tensor"),
    ],
    "ssm_vr_loss": [
        ("plain SSM", _ssm_loop, "plain SSM"),
        ("½‖s‖² per projection", lambda f, x, v: _vr_loop(f, x, v) + (len(v) - 1) * 0.5 * (f(x) ** 2).sum(-1).mean(),
         "once per projection"),
        ("first projection", lambda f, x, v: _vr_loop(f, x, v[:1]), "first projection"),
        ("detached", lambda f, x, v: _vr_loop(f, x, v).detach(), "detached"),
    ],
    "gaussian_score": [
        ("sign", lambda x, m, c: (x - m) @ _precision(c), "wrong sign"),
        ("covariance instead of precision", lambda x, m, c: -(x - m) @ c, "multiplies by the covariance"),
        ("mean not subtracted", lambda x, m, c: -x @ _precision(c), "mean is not subtracted"),
        ("diagonal only", lambda x, m, c: -(x - m) / torch.diagonal(c), "diagonal of Σ"),
        ("factor 2", lambda x, m, c: -2 * (x - m) @ _precision(c), "twice the score"),
        ("transposed", lambda x, m, c: (-(x - m) @ _precision(c)).T, "transposed"),
        ("solve, points as rows", lambda x, m, c: -torch.linalg.solve(c, x - m), "one point per row"),
        ("solve, arguments swapped", lambda x, m, c: -torch.linalg.solve(x - m, c), "matrix A first"),
        ("log-density", lambda x, m, c: -0.5 * (((x - m) @ _precision(c)) * (x - m)).sum(-1), "one number per point"),
        ("numpy", lambda x, m, c: (-(x - m) @ _precision(c)).numpy(), "return a torch.Tensor"),
    ],
    "ism_loss": [
        ("missing ½", _ism(lambda t, n: (t + n).mean()), "½ in front of ‖s‖² is missing"),
        ("trace sign", _ism(lambda t, n: (-t + 0.5 * n).mean()), "wrong sign"),
        ("no trace", _ism(lambda t, n: (0.5 * n).mean()), "trace term tr ∇ₓs is missing"),
        ("per sample", _ism(lambda t, n: t + 0.5 * n), "single number"),
        ("sum over batch", _ism(lambda t, n: (t + 0.5 * n).sum()), "sum over the batch"),
        ("item", _ism(lambda t, n: (t + 0.5 * n).mean().item()), "Python float"),
        ("detached", _ism(lambda t, n: (t + 0.5 * n).mean().detach()), "detached"),
        ("no create_graph", _ism_with_detached_trace, "create_graph option"),
        ("no create_graph, no retain_graph", _ism_without_any_graph, "retain_graph), which would make"),
        ("Hutchinson estimate", lambda f, x: (hutchinson_trace(f, x) + 0.5 * (f(x) ** 2).sum(-1)).mean(),
         "not a random estimate"),
    ],
    "ssm_loss": [
        ("missing ½", _ssm(lambda a, b, s: (a + b**2).mean()), "½ in front of (vᵀs)²"),
        ("SSM-VR", _ssm(lambda a, b, s: a.mean() + 0.5 * (s**2).sum(-1).mean()), "SSM-VR"),
        ("first projection", _ssm(lambda a, b, s: (a[0] + 0.5 * b[0] ** 2).mean()), "first projection"),
        ("sum over projections", _ssm(lambda a, b, s: (a + 0.5 * b**2).sum(0).mean()), "sum over the projections"),
        ("per projection and sample", _ssm(lambda a, b, s: a + 0.5 * b**2), "single number"),
        ("detached", _ssm(lambda a, b, s: (a + 0.5 * b**2).mean().detach()), "detached"),
    ],
    "dsm_loss": [
        ("target sign", _dsm(target=lambda z, s: -z / s), "wrong sign on the target"),
        ("z instead of z/σ", _dsm(target=lambda z, s: z), "uses z instead of z/σ"),
        ("z/σ²", _dsm(target=lambda z, s: z / s**2), "z/σ² instead of z/σ"),
        ("clean x", _dsm(noisy=lambda x, s, z: x), "at the clean x"),
        ("missing ½", lambda f, x, s, z: 2 * _dsm()(f, x, s, z), "½ in front of the loss is missing"),
        ("σ² weight", lambda f, x, s, z: 0.5 * ((s * f(x + s * z) + z) ** 2).sum(-1).mean(), "σ² times the reference"),
        ("mean over dims", _dsm(reduce=lambda r: r.mean()), "averaged over the dimensions"),
        ("sum over batch", _dsm(reduce=lambda r: r.sum()), "sum over the batch"),
        ("fresh noise", _dsm(noisy=lambda x, s, z: x + s * torch.randn_like(x)), "use the noise z you are given"),
        ("no_grad", lambda f, x, s, z: torch.no_grad()(lambda: _dsm()(f, x, s, z))(), "detached"),
    ],
    "tweedie_denoiser": [
        ("σ not σ²", lambda f, y, s: y + s * f(y), "σ instead of σ²"),
        ("sign", lambda f, y, s: y - s**2 * f(y), "wrong sign"),
        ("correction only", lambda f, y, s: s**2 * f(y), "correction σ²·score alone"),
        ("σ⁴", lambda f, y, s: y + s**4 * f(y), "σ⁴"),
        ("no σ²", lambda f, y, s: y + f(y), "not multiplied by σ²"),
        ("numpy", lambda f, y, s: (y + s**2 * f(y)).detach().numpy(), "return a torch.Tensor"),
    ],
    "dsm_training_step": [
        ("no zero_grad", _step_without(zero=False), "optimizer.zero_grad() before loss.backward()"),
        ("no step", _step_without(step=False), "call optimizer.step()"),
        ("step before backward", _step_without(zero=False, order="step first"), "call loss.backward() before"),
        ("zero_grad, then step before backward", _step_without(order="step first"), "did not change"),
        ("loss after the step", _step_without(after=True), "loss after the step"),
        ("clean x", _step_without(noisy=False), "at the clean x"),
        ("item", lambda m, o, x, s, z: _dsm_step(m, o, x, s, z).item(), "return a torch.Tensor"),
    ],
    "mala_log_acceptance": [
        ("random-walk rule", lambda lp, sf, x, y, e: (lp(y) - lp(x)).clamp(max=0), "proposal correction"),
        ("swapped q", lambda lp, sf, x, y, e: (lp(y) - lp(x) + _mala_log_q(sf, y, x, e)
                                                - _mala_log_q(sf, x, y, e)).clamp(max=0), "swapped"),
        ("2ε", lambda lp, sf, x, y, e: (lp(y) - lp(x) + 2 * (_mala_log_q(sf, x, y, e)
                                                             - _mala_log_q(sf, y, x, e))).clamp(max=0), "/(2ε)"),
        ("no min", lambda lp, sf, x, y, e: lp(y) - lp(x) + _mala_log_q(sf, x, y, e) - _mala_log_q(sf, y, x, e),
         "minimum with 0"),
        ("α", lambda lp, sf, x, y, e: _mala(lp, sf, x, y, e).exp(), "returns α"),
    ],
    "langevin_step": [
        ("missing √2", lambda x, s, e, z: x + e * s + math.sqrt(e) * z, "√2 is missing"),
        ("α/2 convention", lambda x, s, e, z: x + e / 2 * s + math.sqrt(e) * z, "(ε/2)·score + √ε·z convention"),
        ("noise ε", lambda x, s, e, z: x + e * s + e * z, "noise is scaled by ε"),
        ("score sign", lambda x, s, e, z: x - e * s + math.sqrt(2 * e) * z, "wrong sign on the score"),
        ("no noise", lambda x, s, e, z: x + e * s, "noise term √(2ε)·z is missing"),
        ("increment", lambda x, s, e, z: e * s + math.sqrt(2 * e) * z, "returns the increment"),
        ("fresh noise", lambda x, s, e, z: x + e * s + math.sqrt(2 * e) * torch.randn_like(x),
         "use the noise z you are given"),
        ("flattened", lambda x, s, e, z: (x + e * s + math.sqrt(2 * e) * z).flatten(1), "expected"),
    ],
    "annealed_langevin_loop": [
        ("smallest σ first", lambda f, x, s, size, n: _sampler(f, x, s.flip(0), size, n,
                                                               lambda si, sl, size: size * (si / s[-1]) ** 2),
         "wrong order"),
        ("constant step", _annealed(step=lambda si, sl, size: size), "same at every level"),
        ("step ∝ σ", _annealed(step=lambda si, sl, size: size * si / sl), "grows like σᵢ"),
        ("step size·σ²", _annealed(step=lambda si, sl, size: size * si**2), "divide by σ_L²"),
        ("noise √ε", _annealed(scale=lambda e, size: e**0.5), "√2 is missing"),
        ("noise ε", _annealed(scale=lambda e, size: e), "noise is scaled by εᵢ"),
        ("noise √(2 step_size)", _annealed(scale=lambda e, size: (2 * size) ** 0.5), "√(2·step_size)"),
        ("one step a level", lambda f, x, s, size, n: _sampler(f, x, s, size, n[:, :1]), "evaluations, one per step"),
        ("fresh noise", lambda f, x, s, size, n: _sampler(f, x, s, size, torch.randn_like(n)), "do not draw new noise"),
    ],
    "ncsn_loss_at": [
        ("no σ² weighting", _ncsn(lambda f, x, sv, s, z: f(x + sv * z, s) + z / sv), "no σ² weighting"),
        ("sign", _ncsn(lambda f, x, sv, s, z: sv * f(x + sv * z, s) - z), "wrong sign"),
        ("clean x", _ncsn(lambda f, x, sv, s, z: sv * f(x, s) + z), "at the clean x"),
        ("missing ½", lambda f, x, s, z: 2 * _ncsn(_ncsn_right)(f, x, s, z), "½ in front of the loss is missing"),
        ("mean over pixels", _ncsn(_ncsn_right, reduce=lambda r: r.mean()), "averaged over the dimensions"),
        ("per sample", _ncsn(_ncsn_right, reduce=lambda r: r.flatten(1).sum(-1)), "single number"),
        ("one level for all", _ncsn(lambda f, x, sv, s, z: s[0] * f(x + s[0] * z, s[0].expand_as(s)) + z),
         "first level sigma[0]"),
        ("sigma not reshaped", _ncsn(lambda f, x, sv, s, z: s * f(x + s * z, s) + z), "reshape it so it broadcasts"),
        ("detached", lambda f, x, s, z: _ncsn(_ncsn_right)(f, x, s, z).detach(), "detached"),
    ],
    "reverse_sde_step": [
        ("½ of the ODE", lambda x, s, g, dt, z: x + 0.5 * g**2 * s * dt + g * math.sqrt(dt) * z, "has a ½"),
        ("sign", lambda x, s, g, dt, z: x - g**2 * s * dt + g * math.sqrt(dt) * z, "wrong sign on the score"),
        ("g² on the noise", lambda x, s, g, dt, z: x + g**2 * s * dt + g**2 * math.sqrt(dt) * z,
         "noise is multiplied by g²"),
        ("g on the score", lambda x, s, g, dt, z: x + g * s * dt + g * math.sqrt(dt) * z, "score is multiplied by g;"),
        ("no √dt", lambda x, s, g, dt, z: x + g**2 * s * dt + g * z, "not scaled by √dt"),
        ("no noise", lambda x, s, g, dt, z: x + g**2 * s * dt, "noise term g·√dt·z is missing"),
        ("fresh noise", lambda x, s, g, dt, z: x + g**2 * s * dt + g * math.sqrt(dt) * torch.randn_like(x),
         "use the noise z"),
    ],
    "probability_flow_step": [
        ("missing ½", lambda x, s, g, dt: x + g**2 * s * dt, "the ½ is missing"),
        ("sign", lambda x, s, g, dt: x - 0.5 * g**2 * s * dt, "wrong sign"),
        ("g instead of g²", lambda x, s, g, dt: x + 0.5 * g * s * dt, "multiplied by ½·g;"),
        ("(½g)²", lambda x, s, g, dt: x + (0.5 * g) ** 2 * s * dt, "(½g)²"),
        ("no dt", lambda x, s, g, dt: x + 0.5 * g**2 * s, "not multiplied by dt"),
        ("noise added", lambda x, s, g, dt: x + 0.5 * g**2 * s * dt + g * math.sqrt(dt) * torch.randn_like(x),
         "do not draw any noise"),
    ],
    "ncsn_training_step": [
        ("no zero_grad", lambda m, o, x, s, z: _ncsn_step(m, type("NoZero", (), {
            "zero_grad": lambda self: None, "step": lambda self: o.step()})(), x, s, z), "were not cleared"),
        ("no step", lambda m, o, x, s, z: _ncsn_step(m, type("NoStep", (), {
            "zero_grad": lambda self: o.zero_grad(), "step": lambda self: None})(), x, s, z), "did not change"),
        ("float", lambda m, o, x, s, z: _ncsn_step(m, o, x, s, z).item(), "return a torch.Tensor"),
        ("missing ½", lambda m, o, x, s, z: 2 * _ncsn_step(m, o, x, s, z), "½ in front of the loss is missing"),
    ],
    "annealed_sampler": [
        ("no denoising", functools.partial(_denoised_sampler, denoise=None), "final denoising step"),
        ("σ_L not squared", functools.partial(_denoised_sampler, denoise=lambda f, x, sl: x + sl * f(x, sl)),
         "scaled by σ_L"),
        ("denoise sign", functools.partial(_denoised_sampler, denoise=lambda f, x, sl: x - sl**2 * f(x, sl)),
         "wrong sign"),
    ],
    "pc_loop": [
        ("Euler–Maruyama predictor", functools.partial(_pc, predictor="em"), "Euler–Maruyama's g²Δt"),
        ("corrector at the old level", functools.partial(_pc, corrector_at=0), "old level"),
        ("ε per sample", functools.partial(_pc, per_sample=True), "per sample"),
        ("ε without the 2", functools.partial(_pc, factor=1.0), "ε = 2(r‖z‖/‖s‖)²"),
        ("no corrector", functools.partial(_pc, corrector=False), "corrector step is missing"),
    ],
    "divergence_integrand": [
        ("the trace", functools.partial(_div, scale=lambda g: 1.0), "trace estimate"),
        ("sign", functools.partial(_div, scale=lambda g: 0.5 * g**2), "sign is wrong"),
        ("no ½", functools.partial(_div, scale=lambda g: -g**2), "½ is missing"),
        ("mean over dimensions", functools.partial(_div, reduce=lambda t: t.flatten(1).mean(1)), "averaged"),
    ],
}


def test_every_registered_exercise_has_right_and_wrong_answers_here():
    assert set(RIGHT_ANSWERS) == set(CHECKS) == set(WRONG)


@pytest.mark.parametrize(
    "name, label, wrong, diagnosis",
    [(name, label, wrong, diagnosis) for name, cases in WRONG.items() for label, wrong, diagnosis in cases],
    ids=[f"{name}-{label}" for name, cases in WRONG.items() for label, _, _ in cases],
)
def test_wrong_answer_is_rejected_with_its_diagnosis(name, label, wrong, diagnosis):
    with pytest.raises(AssertionError) as info:
        CHECKS[name](wrong)
    assert diagnosis in str(info.value)


def test_message_shows_the_case_the_numbers_and_the_formula():
    def missing_sqrt2(x, score, step_size, z):
        return x + step_size * score + math.sqrt(step_size) * z

    with pytest.raises(AssertionError) as info:
        checks.check_langevin_step(missing_sqrt2)
    message = str(info.value)
    assert message.startswith("langevin_step is not right yet: the noise term is √ε·z")
    assert "test case: x, score and z of shape (6, 2), step_size = 0.1" in message
    assert "got      first row [" in message and "expected first row [" in message
    assert "The exercise asks for x + ε·score + √(2ε)·z" in message


def test_unrecognised_error_reports_the_ratio():
    def off(f, x, s, z):
        return 1.37 * _right("dsm_loss")(f, x, s, z)

    with pytest.raises(AssertionError, match=r"ratio got/expected = 1\.37"):
        checks.check_dsm_loss(off)


# ------------------------------------------------------------------------ grading mode
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_stub_fails_when_grading(name, monkeypatch):
    monkeypatch.setenv(checks.GRADING_ENV, "1")
    with pytest.raises(AssertionError, match=f"{name}: not attempted"):
        CHECKS[name](_stub)
    CHECKS[name](_right(name))  # a right answer still passes


@pytest.mark.parametrize("mode", ["autograde", "validate"])
def test_nbgrader_turns_grading_on_by_itself(mode, monkeypatch):
    CHECKS["dsm_loss"](_stub)  # not graded: "not attempted yet"
    monkeypatch.setenv(checks.NBGRADER_ENV, mode)
    with pytest.raises(AssertionError, match="not attempted"):
        CHECKS["dsm_loss"](_stub)


def test_grading_cannot_be_switched_off_once_on(monkeypatch):
    monkeypatch.setenv(checks.GRADING_ENV, "1")
    with pytest.raises(AssertionError, match="not attempted"):
        CHECKS["langevin_step"](_stub)
    monkeypatch.setenv(checks.GRADING_ENV, "0")  # what a student's cell could do
    monkeypatch.delenv(checks.NBGRADER_ENV, raising=False)
    with pytest.raises(AssertionError, match="not attempted"):
        CHECKS["langevin_step"](_stub)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/environ")
@pytest.mark.parametrize("variable, value", [("NBGRADER_EXECUTION", "autograde"), ("LESSONS_LIB_GRADING", "1")])
def test_a_kernel_started_for_grading_grades_even_if_the_answer_edits_os_environ(variable, value, tmp_path):
    code = textwrap.dedent("""
        import os
        os.environ.pop("NBGRADER_EXECUTION", None)       # a student's cell, run before the
        os.environ["LESSONS_LIB_GRADING"] = "0"          # setup cell imports the checks
        from lessons_lib.course.checks import check_langevin_step
        def stub(*args):
            raise NotImplementedError
        try:
            check_langevin_step(stub)
        except AssertionError as err:
            print("FAILED:", err)
    """)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), variable: value}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "FAILED: langevin_step: not attempted" in out.stdout, out.stdout + out.stderr


# ------------------------------------------------------------------------ not your own work
def _import_inside(f, x, s, z):
    from lessons_lib.losses import dsm_loss as mine

    return mine(f, x, s, z=z)


_alias = losses.dsm_loss


def _via_getattr(f, x, s, z):
    import importlib

    return getattr(importlib.import_module("lessons_lib." + "losses"), "dsm" + "_loss")(f, x, s, z=z)


def _profile_off(f, x, s, z):
    sys.setprofile(None)
    return _right("dsm_loss")(f, x, s, z)


def _rescaled_ncsn(f, x, s, z):
    return losses.ncsn_loss_at(lambda y, _: f(y), x, torch.full((x.shape[0],), s), z=z) / s**2


LIBRARY_CALLS = {
    "the reference itself": (checks.REFERENCES["dsm_loss"], "lessons_lib.losses.dsm_loss"),
    "an import inside the function": (_import_inside, "lessons_lib.losses.dsm_loss"),
    "an alias": (lambda f, x, s, z: _alias(f, x, s, z=z), "lessons_lib.losses.dsm_loss"),
    "getattr": (_via_getattr, "lessons_lib.losses.dsm_loss"),
    "functools.partial": (functools.partial(losses.dsm_loss), "lessons_lib.losses.dsm_loss"),
    "the σ²-weighted loss, rescaled": (_rescaled_ncsn, "lessons_lib.losses.ncsn_loss_at"),
    "switching the tracing off": (_profile_off, "switched off the check's call tracing"),
}


@pytest.mark.parametrize("disguise", sorted(LIBRARY_CALLS))
def test_an_answer_that_calls_the_library_is_not_own_work(disguise):
    answer, named = LIBRARY_CALLS[disguise]
    with pytest.raises(checks.NotOwnWorkError, match="dsm_loss: not your own work") as info:
        checks.check_dsm_loss(answer)
    assert named in str(info.value)
    assert sys.getprofile() is None  # the hook is gone after the check


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_exercise_refuses_its_reference(name):
    with pytest.raises(checks.NotOwnWorkError, match="not your own work: calls lessons_lib."):
        CHECKS[name](checks.REFERENCES[name])
    with pytest.raises(checks.NotOwnWorkError):
        CHECKS[name](lambda *args: checks.REFERENCES[name](*args))


def test_library_building_blocks_stay_allowed(capsys):
    # the Gaussian's log-density and autograd are what lesson 01 teaches before its exercise
    def by_autograd(x, mean, cov):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(Gaussian(mean, cov).log_prob(x).sum(), x)
        return g

    checks.check_gaussian_score(by_autograd)
    assert capsys.readouterr().out.startswith("✓ gaussian_score")


def test_annealed_reference_is_the_library_sampler_with_replayed_noise():
    """The check's reference (noise given) equals lessons_lib.samplers.annealed_langevin, which
    draws one standard normal of x's shape per step from its generator."""
    from lessons_lib.noise import geometric_sigmas
    from lessons_lib.samplers import annealed_langevin

    def score(x, sigma):
        return -(x - 1.0) / (0.3 + sigma**2)

    sigmas, n_steps, size = geometric_sigmas(sigma_max=3.0, sigma_min=0.1, n=5), 4, 0.002
    x_init = torch.randn(10, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    library = annealed_langevin(score, x_init, sigmas, n_steps_each=n_steps, step_size=size,
                                generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    noise = torch.stack([torch.stack([torch.randn(x_init.shape, generator=g, dtype=x_init.dtype)
                                      for _ in range(n_steps)]) for _ in sigmas])
    reference = checks.REFERENCES["annealed_langevin_loop"](score, x_init, sigmas, size, noise)
    torch.testing.assert_close(reference, library, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, answer", [
    ("tweedie_denoiser", lambda f, y, s: __import__("lessons_lib.noise").noise.tweedie_denoise(f, y, s)),
    ("tweedie_denoiser", None),
    ("dsm_training_step", None),
    ("mala_log_acceptance", None),
    ("mala_log_acceptance", lambda lp, sf, x, y, e: __import__("lessons_lib.samplers").samplers.mala_log_acceptance(
        lp, sf, x, y, e)),
], ids=["tweedie-library", "tweedie-reference", "training-step-reference", "mala-reference", "mala-library"])
def test_lesson04_05_library_answers_are_refused(name, answer):
    with pytest.raises(checks.NotOwnWorkError, match=f"{name}: not your own work"):
        CHECKS[name](answer or checks.REFERENCES[name])
