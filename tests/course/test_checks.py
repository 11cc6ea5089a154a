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

CHECKS = {name: getattr(checks, f"check_{name}") for name in checks.REGISTRY}


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


RIGHT_ANSWERS = {
    "gaussian_score": [
        lambda x, m, c: -(x - m) @ torch.linalg.inv(c),
        lambda x, m, c: -torch.linalg.solve(c, (x - m).T).T,
        lambda x, m, c: -torch.cholesky_solve((x - m).T.double(), torch.linalg.cholesky(c.double())).T,
    ],
    "ism_loss": [_ism_loop],
    "ssm_loss": [_ssm_loop],
    "dsm_loss": [
        lambda f, x, s, z: ((f(x + s * z) + z / s) ** 2).sum(-1).mean() / 2,
        lambda f, x, s, z: 0.5 * torch.mean(torch.sum((s * f(x + s * z) + z) ** 2, dim=1)) / s**2,
    ],
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


WRONG = {
    "gaussian_score": [
        ("sign", lambda x, m, c: (x - m) @ _precision(c), "wrong sign"),
        ("covariance instead of precision", lambda x, m, c: -(x - m) @ c, "multiplies by the covariance"),
        ("mean not subtracted", lambda x, m, c: -x @ _precision(c), "mean is not subtracted"),
        ("diagonal only", lambda x, m, c: -(x - m) / torch.diagonal(c), "diagonal of Σ"),
        ("factor 2", lambda x, m, c: -2 * (x - m) @ _precision(c), "twice the score"),
        ("transposed", lambda x, m, c: (-(x - m) @ _precision(c)).T, "transposed"),
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
        ("no create_graph", _ism_with_detached_trace, "create_graph=True"),
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
}


def test_every_registered_exercise_has_right_and_wrong_answers_here():
    assert set(RIGHT_ANSWERS) == set(checks.REGISTRY) == set(WRONG)


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
