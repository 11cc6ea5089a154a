"""The exercise checks accept the reference solutions, reject typical wrong answers with the
right diagnosis, and report a stub that still raises NotImplementedError as "not attempted".

The right and wrong answers are written here as small functions, as a student would write them,
independently of the library's implementations (which a check refuses: an answer that calls
them is "not your own work") and of the list of known mistakes inside lessons_lib.checks."""

import functools
import math
import subprocess
import sys
import textwrap

import pytest
import torch

from lessons_lib import checks
from lessons_lib.autodiff import hutchinson_trace

CHECKS = {name: getattr(checks, f"check_{name}") for name in checks.REFERENCES}


def _stub(*args):
    raise NotImplementedError("replace this line with your solution")


@pytest.fixture(autouse=True)
def not_grading(monkeypatch):
    """Each test starts outside grading mode (which, once on, stays on for the process)."""
    monkeypatch.delenv(checks.GRADING_ENV, raising=False)
    monkeypatch.delenv(checks.NBGRADER_ENV, raising=False)
    monkeypatch.setattr(checks, "_GRADING_SEEN", False)


# ------------------------------------------------------------------------ other right answers
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


def _sampler(f, x, sigmas, lr, z, step=lambda si, sl, lr: lr * (si / sl) ** 2, scale=lambda e, lr: (2 * e) ** 0.5):
    """Annealed Langevin written out, with a replaceable step rule and noise scale (the wrong
    answers above change one of them); z[i, t] is the noise of step t at level i."""
    for i in range(len(sigmas)):
        e = step(float(sigmas[i]), float(sigmas[-1]), lr)
        for t in range(z.shape[1]):
            x = x + e * f(x, sigmas[i]) + scale(e, lr) * z[i, t]
    return x


OTHER_RIGHT_ANSWERS = {
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
    "ncsn_loss": [_ncsn_einsum],
    "reverse_sde_step": [lambda x, s, g, dt, z: x + (g * g * dt) * s + (g * g * dt) ** 0.5 * z],
    "probability_flow_step": [lambda x, s, g, dt: torch.add(x, s, alpha=g**2 * dt / 2)],
    "annealed_langevin": [
        _sampler,
        lambda f, x, s, lr, z: _sampler(f, x.clone(), s.tolist(), lr, z),
    ],
}



OWN_SOLUTIONS = {name: answers[0] for name, answers in OTHER_RIGHT_ANSWERS.items()}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_own_solution_passes(name, capsys):
    CHECKS[name](OWN_SOLUTIONS[name])
    out = capsys.readouterr().out
    assert out.startswith(f"✓ {name} matches the reference on ") and "test cases" in out


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_stub_is_not_attempted(name, capsys):
    assert CHECKS[name](_stub) is None
    assert "not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_leaves_global_random_state_alone(name):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CHECKS[name](OWN_SOLUTIONS[name])
    assert torch.equal(torch.rand(3), expected)


def test_other_errors_are_reported_with_the_case():
    def broken(x, mean, cov):
        return x @ torch.ones(7, 7)

    with pytest.raises(AssertionError, match=r"raised RuntimeError(.|\n)*test case: x of shape"):
        checks.check_gaussian_score(broken)


# ------------------------------------------------------------------------ wrong answers
def _precision(cov):
    return torch.linalg.inv(cov)


def _ism_parts(score_fn, x):
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = sum(torch.autograd.grad(s[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(x.shape[1]))
    return trace, (s**2).sum(-1)


def _ism_with_detached_trace(score_fn, x):
    """The exact trace, but torch.autograd.grad without create_graph=True."""
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = sum(torch.autograd.grad(s[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1]))
    return (trace + 0.5 * (s**2).sum(-1)).mean()


def _ssm_parts(score_fn, x, v):
    """vᵀ∇s v and vᵀs for each projection, shapes (M, B)."""
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    vjv = torch.stack([(torch.autograd.grad(s, x, vm, create_graph=True)[0] * vm).sum(-1) for vm in v])
    return vjv, (v * s).sum(-1), s


def _sigma_view(sigma, x):
    return sigma.view(-1, *[1] * (x.dim() - 1))


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
        ("missing ½", lambda f, x: (lambda t, n: (t + n).mean())(*_ism_parts(f, x)), "½ in front of ‖s‖² is missing"),
        ("trace sign", lambda f, x: (lambda t, n: (-t + 0.5 * n).mean())(*_ism_parts(f, x)), "wrong sign"),
        ("no trace", lambda f, x: (lambda t, n: (0.5 * n).mean())(*_ism_parts(f, x)), "trace term tr ∇ₓs is missing"),
        ("per sample", lambda f, x: (lambda t, n: t + 0.5 * n)(*_ism_parts(f, x)), "single number"),
        ("sum over batch", lambda f, x: (lambda t, n: (t + 0.5 * n).sum())(*_ism_parts(f, x)), "sum over the batch"),
        ("item", lambda f, x: (lambda t, n: (t + 0.5 * n).mean().item())(*_ism_parts(f, x)), "Python float"),
        ("detached", lambda f, x: (lambda t, n: (t + 0.5 * n).mean().detach())(*_ism_parts(f, x)), "detached"),
        ("no create_graph", _ism_with_detached_trace, "create_graph=True"),
        ("Hutchinson estimate", lambda f, x: (hutchinson_trace(f, x) + 0.5 * (f(x) ** 2).sum(-1)).mean(), "not a random estimate"),
    ],
    "ssm_loss": [
        ("missing ½", lambda f, x, v: (lambda a, b, s: (a + b**2).mean())(*_ssm_parts(f, x, v)), "½ in front of (vᵀs)²"),
        ("SSM-VR", lambda f, x, v: (lambda a, b, s: a.mean() + 0.5 * (s**2).sum(-1).mean())(*_ssm_parts(f, x, v)), "SSM-VR"),
        ("first projection", lambda f, x, v: (lambda a, b, s: (a[0] + 0.5 * b[0] ** 2).mean())(*_ssm_parts(f, x, v)), "first projection"),
        ("sum over projections", lambda f, x, v: (lambda a, b, s: (a + 0.5 * b**2).sum(0).mean())(*_ssm_parts(f, x, v)), "sum over the projections"),
        ("per projection and sample", lambda f, x, v: (lambda a, b, s: a + 0.5 * b**2)(*_ssm_parts(f, x, v)), "single number"),
        ("detached", lambda f, x, v: (lambda a, b, s: (a + 0.5 * b**2).mean().detach())(*_ssm_parts(f, x, v)), "detached"),
    ],
    "dsm_loss": [
        ("target sign", lambda f, x, s, z: 0.5 * ((f(x + s * z) - z / s) ** 2).sum(-1).mean(), "wrong sign on the target"),
        ("z instead of z/σ", lambda f, x, s, z: 0.5 * ((f(x + s * z) + z) ** 2).sum(-1).mean(), "uses z instead of z/σ"),
        ("z/σ²", lambda f, x, s, z: 0.5 * ((f(x + s * z) + z / s**2) ** 2).sum(-1).mean(), "z/σ² instead of z/σ"),
        ("clean x", lambda f, x, s, z: 0.5 * ((f(x) + z / s) ** 2).sum(-1).mean(), "at the clean x"),
        ("missing ½", lambda f, x, s, z: ((f(x + s * z) + z / s) ** 2).sum(-1).mean(), "½ in front of the loss is missing"),
        ("σ² weight", lambda f, x, s, z: 0.5 * ((s * f(x + s * z) + z) ** 2).sum(-1).mean(), "σ² times the reference"),
        ("mean over dims", lambda f, x, s, z: 0.5 * ((f(x + s * z) + z / s) ** 2).mean(), "averaged over the dimensions"),
        ("sum over batch", lambda f, x, s, z: 0.5 * ((f(x + s * z) + z / s) ** 2).sum(), "sum over the batch"),
        ("fresh noise", lambda f, x, s, z: 0.5 * ((f(x + s * torch.randn_like(x)) + z / s) ** 2).sum(-1).mean(), "use the noise z you are given"),
        ("no_grad", lambda f, x, s, z: torch.no_grad()(lambda: 0.5 * ((f(x + s * z) + z / s) ** 2).sum(-1).mean())(), "detached"),
    ],
    "langevin_step": [
        ("missing √2", lambda x, s, e, z: x + e * s + math.sqrt(e) * z, "√2 is missing"),
        ("α/2 convention", lambda x, s, e, z: x + e / 2 * s + math.sqrt(e) * z, "(ε/2)·score + √ε·z convention"),
        ("noise ε", lambda x, s, e, z: x + e * s + e * z, "noise is scaled by ε"),
        ("score sign", lambda x, s, e, z: x - e * s + math.sqrt(2 * e) * z, "wrong sign on the score"),
        ("no noise", lambda x, s, e, z: x + e * s, "noise term √(2ε)·z is missing"),
        ("increment", lambda x, s, e, z: e * s + math.sqrt(2 * e) * z, "returns the increment"),
        ("fresh noise", lambda x, s, e, z: x + e * s + math.sqrt(2 * e) * torch.randn_like(x), "use the noise z you are given"),
        ("flattened", lambda x, s, e, z: (x + e * s + math.sqrt(2 * e) * z).flatten(1), "expected"),
    ],
    "ncsn_loss": [
        ("no σ² weighting", lambda f, x, s, z: 0.5 * ((f(x + _sigma_view(s, x) * z, s) + z / _sigma_view(s, x)) ** 2).flatten(1).sum(-1).mean(), "no σ² weighting"),
        ("sign", lambda f, x, s, z: 0.5 * ((_sigma_view(s, x) * f(x + _sigma_view(s, x) * z, s) - z) ** 2).flatten(1).sum(-1).mean(), "wrong sign"),
        ("clean x", lambda f, x, s, z: 0.5 * ((_sigma_view(s, x) * f(x, s) + z) ** 2).flatten(1).sum(-1).mean(), "at the clean x"),
        ("missing ½", lambda f, x, s, z: ((_sigma_view(s, x) * f(x + _sigma_view(s, x) * z, s) + z) ** 2).flatten(1).sum(-1).mean(), "½ in front of the loss is missing"),
        ("mean over pixels", lambda f, x, s, z: 0.5 * ((_sigma_view(s, x) * f(x + _sigma_view(s, x) * z, s) + z) ** 2).mean(), "averaged over the dimensions"),
        ("per sample", lambda f, x, s, z: 0.5 * ((_sigma_view(s, x) * f(x + _sigma_view(s, x) * z, s) + z) ** 2).flatten(1).sum(-1), "single number"),
        ("one level for all", lambda f, x, s, z: 0.5 * ((s[0] * f(x + s[0] * z, s[0].expand_as(s)) + z) ** 2).flatten(1).sum(-1).mean(), "first level sigma[0]"),
        ("sigma not reshaped", lambda f, x, s, z: 0.5 * ((s * f(x + s * z, s) + z) ** 2).flatten(1).sum(-1).mean(), "reshape it so it broadcasts"),
        ("detached", lambda f, x, s, z: 0.5 * ((_sigma_view(s, x) * f(x + _sigma_view(s, x) * z, s) + z) ** 2).flatten(1).sum(-1).mean().detach(), "detached"),
    ],
    "reverse_sde_step": [
        ("½ of the ODE", lambda x, s, g, dt, z: x + 0.5 * g**2 * s * dt + g * math.sqrt(dt) * z, "has a ½"),
        ("sign", lambda x, s, g, dt, z: x - g**2 * s * dt + g * math.sqrt(dt) * z, "wrong sign on the score"),
        ("g² on the noise", lambda x, s, g, dt, z: x + g**2 * s * dt + g**2 * math.sqrt(dt) * z, "noise is multiplied by g²"),
        ("g on the score", lambda x, s, g, dt, z: x + g * s * dt + g * math.sqrt(dt) * z, "score is multiplied by g;"),
        ("no √dt", lambda x, s, g, dt, z: x + g**2 * s * dt + g * z, "not scaled by √dt"),
        ("no noise", lambda x, s, g, dt, z: x + g**2 * s * dt, "noise term g·√dt·z is missing"),
        ("fresh noise", lambda x, s, g, dt, z: x + g**2 * s * dt + g * math.sqrt(dt) * torch.randn_like(x), "use the noise z"),
    ],
    "probability_flow_step": [
        ("missing ½", lambda x, s, g, dt: x + g**2 * s * dt, "the ½ is missing"),
        ("sign", lambda x, s, g, dt: x - 0.5 * g**2 * s * dt, "wrong sign"),
        ("g instead of g²", lambda x, s, g, dt: x + 0.5 * g * s * dt, "multiplied by ½·g;"),
        ("(½g)²", lambda x, s, g, dt: x + (0.5 * g) ** 2 * s * dt, "(½g)²"),
        ("no dt", lambda x, s, g, dt: x + 0.5 * g**2 * s, "not multiplied by dt"),
        ("noise added", lambda x, s, g, dt: x + 0.5 * g**2 * s * dt + g * math.sqrt(dt) * torch.randn_like(x), "do not draw any noise"),
    ],
    "annealed_langevin": [
        ("smallest σ first", lambda f, x, s, lr, n: _sampler(f, x, s.flip(0), lr, n, lambda si, sl, lr: lr * (si / s[-1]) ** 2), "wrong order"),
        ("constant step", lambda f, x, s, lr, n: _sampler(f, x, s, lr, n, lambda si, sl, lr: lr), "same at every level"),
        ("step ∝ σ", lambda f, x, s, lr, n: _sampler(f, x, s, lr, n, lambda si, sl, lr: lr * si / sl), "grows like σᵢ"),
        ("step lr·σ²", lambda f, x, s, lr, n: _sampler(f, x, s, lr, n, lambda si, sl, lr: lr * si**2), "divide by σ_L²"),
        ("noise √ε", lambda f, x, s, lr, n: _sampler(f, x, s, lr, n, scale=lambda e, lr: e**0.5), "√2 is missing"),
        ("noise ε", lambda f, x, s, lr, n: _sampler(f, x, s, lr, n, scale=lambda e, lr: e), "noise is scaled by εᵢ"),
        ("noise √(2 lr)", lambda f, x, s, lr, n: _sampler(f, x, s, lr, n, scale=lambda e, lr: (2 * lr) ** 0.5), "√(2·step_lr)"),
        ("one step a level", lambda f, x, s, lr, n: _sampler(f, x, s, lr, n[:, :1]), "evaluations, one per step"),
        ("fresh noise", lambda f, x, s, lr, n: _sampler(f, x, s, lr, torch.randn_like(n)), "do not draw new noise"),
    ],
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_check_has_at_least_three_wrong_answers(name):
    assert len(WRONG[name]) >= 3


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
        return 1.37 * OWN_SOLUTIONS["dsm_loss"](f, x, s, z)

    with pytest.raises(AssertionError, match=r"ratio got/expected = 1\.37"):
        checks.check_dsm_loss(off)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_stub_fails_when_grading(name, monkeypatch):
    monkeypatch.setenv(checks.GRADING_ENV, "1")
    with pytest.raises(AssertionError, match=f"{name}: not attempted"):
        CHECKS[name](_stub)
    CHECKS[name](OWN_SOLUTIONS[name])  # a right answer still passes


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/environ")
@pytest.mark.parametrize("variable, value", [("NBGRADER_EXECUTION", "autograde"), ("LESSONS_LIB_GRADING", "1")])
def test_a_kernel_started_for_grading_grades_even_if_the_answer_edits_os_environ(variable, value, tmp_path):
    code = textwrap.dedent(f"""
        import os
        os.environ.pop("NBGRADER_EXECUTION", None)       # a student's cell, run before the
        os.environ["LESSONS_LIB_GRADING"] = "0"          # setup cell imports the checks
        from lessons_lib.checks import check_langevin_step
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


_alias = checks.losses.dsm_loss


def _via_getattr(f, x, s, z):
    import importlib

    return getattr(importlib.import_module("lessons_lib." + "losses"), "dsm" + "_loss")(f, x, s, z=z)


def _profile_off(f, x, s, z):
    sys.setprofile(None)
    return OWN_SOLUTIONS["dsm_loss"](f, x, s, z)


LIBRARY_CALLS = {
    "the reference itself": (checks.REFERENCES["dsm_loss"], "lessons_lib.losses.dsm_loss"),
    "an import inside the function": (_import_inside, "lessons_lib.losses.dsm_loss"),
    "an alias": (lambda f, x, s, z: _alias(f, x, s, z=z), "lessons_lib.losses.dsm_loss"),
    "getattr": (_via_getattr, "lessons_lib.losses.dsm_loss"),
    "functools.partial": (functools.partial(checks.losses.dsm_loss), "lessons_lib.losses.dsm_loss"),
    "the σ²-weighted loss, rescaled": (
        lambda f, x, s, z: checks.losses.ncsn_loss_at(lambda y, _: f(y), x, torch.full((x.shape[0],), s), z=z) / s**2,
        "lessons_lib.losses.ncsn_loss_at",
    ),
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
    assert checks.OWN_WORK[name], f"{name} lists no library implementation to refuse"
    with pytest.raises(checks.NotOwnWorkError, match="not your own work: calls lessons_lib."):
        CHECKS[name](checks.REFERENCES[name])
    with pytest.raises(checks.NotOwnWorkError):
        CHECKS[name](lambda *args: checks.REFERENCES[name](*args))


def test_library_building_blocks_stay_allowed(capsys):
    # the Gaussian's log-density and autograd are what lesson 01 teaches before its exercise
    def by_autograd(x, mean, cov):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(checks.Gaussian(mean, cov).log_prob(x).sum(), x)
        return g

    checks.check_gaussian_score(by_autograd)
    assert capsys.readouterr().out.startswith("✓ gaussian_score")


@pytest.mark.parametrize(
    "name, right",
    [(name, fn) for name, fns in OTHER_RIGHT_ANSWERS.items() for fn in fns],
    ids=[f"{name}-{i}" for name, fns in OTHER_RIGHT_ANSWERS.items() for i in range(len(fns))],
)
def test_other_correct_solutions_pass(name, right, capsys):
    CHECKS[name](right)
    assert capsys.readouterr().out.startswith(f"✓ {name}")


def test_annealed_langevin_reference_is_the_library_sampler_with_replayed_noise():
    """The check's reference (noise given) equals lessons_lib.samplers.annealed_langevin, which
    draws one standard normal of x's shape per step from its generator."""
    from lessons_lib.noise import geometric_sigmas
    from lessons_lib.samplers import annealed_langevin

    def score(x, sigma):
        return -(x - 1.0) / (0.3 + sigma**2)

    sigmas, T, lr = geometric_sigmas(3.0, 0.1, 5), 4, 0.002
    x0 = torch.randn(10, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    library = annealed_langevin(score, x0, sigmas, n_steps_each=T, step_lr=lr, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    noise = torch.stack([torch.stack([torch.randn(x0.shape, generator=g, dtype=x0.dtype) for _ in range(T)])
                         for _ in sigmas])
    torch.testing.assert_close(checks.REFERENCES["annealed_langevin"](score, x0, sigmas, lr, noise), library,
                               rtol=0, atol=1e-12)
