"""Lesson 04, denoising score matching: ``dsm_loss``, ``tweedie_denoiser``, ``dsm_training_step`` and
the written ``gaussian_dsm_constant``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lessons_lib import losses
from lessons_lib.densities import GaussianMixture
from lessons_lib.nets import ScoreMLP
from lessons_lib.noise import tweedie_denoise
from lessons_lib.toy_data import mixture_1d
from lessons_lib.training import train

from .common import GIVEN_NOISE_HINT, loss_reduction_mistakes, noisy_point, scaled, sum_event
from .engine import MISTAKE_ATOL, MISTAKE_RTOL, Case, Exercise, Mistake, Written, call, close, fail, register, seeded

Tensor = torch.Tensor


def reference(score_fn, x, sigma, z):
    return losses.dsm_loss(score_fn, x, sigma, z=z)


def _case(seed: int, batch: int, dim: int, sigma: float) -> Case:
    def make(g: torch.Generator) -> tuple:
        x, z = torch.randn(batch, dim, generator=g), torch.randn(batch, dim, generator=g)
        return ScoreMLP(dim, hidden=16), x, sigma, z

    return Case(f"a small MLP score model, x and z of shape ({batch}, {dim}), sigma = {sigma}", seeded(seed, make))


def _cases() -> list[Case]:
    return [_case(30, 6, 2, 0.3), _case(31, 5, 1, 1.5), _case(32, 8, 3, 0.7)]


def _like(noisy: Callable, target: Callable) -> Callable[..., Tensor]:
    """A wrong DSM: ½ mean ‖s(noisy(x, σ, z)) + target(z, σ)‖²."""
    def wrong(score_fn, x, sigma, z):
        return (0.5 * sum_event((score_fn(noisy(x, sigma, z)) + target(z, sigma)) ** 2)).mean()

    return wrong


DSM_LOSS = register(Exercise(
    name="dsm_loss",
    lesson="04_denoising_score_matching",
    signature="(score_fn, x, sigma, z)",
    summary="½ mean ‖s(x + σz) + z/σ‖² for the given noise z",
    formula="J_DSM = ½ · mean over the batch of ‖s(x + σz) + z/σ‖² (summed over dimensions), with the z you are given",
    reference=reference,
    forbidden=(losses.dsm_loss, losses.ncsn_loss, losses.ncsn_loss_at),
    points=2,
    cases=_cases,
    description="Check ``dsm_loss(score_fn, x, sigma, z)`` against :func:`lessons_lib.losses.dsm_loss` with "
                "the same noise (value and gradient) at σ = 0.3, 1.5, 0.7.",
    is_loss=True,
    reduce_hint="sum the squares over the dimensions of each sample, then average over the batch",
    random_hint=GIVEN_NOISE_HINT,
    mistakes=[
        Mistake(
            "wrong sign on the target: the score of N(x, σ²I) at x̃ = x + σz is −z/σ, so the "
            "loss is ½‖s(x̃) + z/σ‖²",
            _like(noisy_point, lambda z, sigma: -z / sigma),
        ),
        Mistake(
            "it uses z instead of z/σ: the score of N(x, σ²I) at x̃ = x + σz is −(x̃ − x)/σ² = −z/σ",
            _like(noisy_point, lambda z, sigma: z),
        ),
        Mistake(
            "it uses z/σ² instead of z/σ: (x̃ − x)/σ² = σz/σ² = z/σ",
            _like(noisy_point, lambda z, sigma: z / sigma**2),
        ),
        Mistake(
            "the model is evaluated at the clean x; evaluate it at the noisy point x̃ = x + σz",
            _like(lambda x, sigma, z: x, lambda z, sigma: z / sigma),
        ),
        Mistake(
            "the noisy point is x̃ = x + σz, not x + z",
            _like(lambda x, sigma, z: x + z, lambda z, sigma: z / sigma),
        ),
        scaled(
            "it is σ² times the reference: the σ² weighting belongs to the NCSN loss, plain DSM at "
            "one σ has none",
            lambda score_fn, x, sigma, z: sigma**2,
            reference,
        ),
        *loss_reduction_mistakes(reference),
    ],
))


# --------------------------------------------------------------------------- written
GAUSSIAN_DSM_CONSTANT = register(Written(
    name="gaussian_dsm_constant", lesson="04_denoising_score_matching",
    summary="Vincent's constant C in closed form for Gaussian data, and why C ≥ 0", points=4))


# --------------------------------------------------------------------------- tweedie_denoiser
def tweedie_reference(score_fn, x_noisy, sigma):
    return tweedie_denoise(score_fn, x_noisy, sigma)


def _tweedie_case(seed: int, what: str, batch: int, dim: int, sigma: float) -> Case:
    def make(g: torch.Generator) -> tuple:
        if what == "mixture":
            score_fn = mixture_1d().perturbed(sigma).score
        else:
            score_fn = ScoreMLP(dim, hidden=16)
        return score_fn, 4 * torch.randn(batch, dim, generator=g), sigma

    label = ("the exact score of the lesson's 1-D mixture perturbed to σ" if what == "mixture"
             else "a small MLP score model")
    return Case(f"{label}, x_noisy of shape ({batch}, {dim}), sigma = {sigma}", seeded(seed, make))


def _tweedie_cases() -> list[Case]:
    return [_tweedie_case(33, "mixture", 7, 1, 0.5), _tweedie_case(34, "mlp", 5, 2, 1.5),
            _tweedie_case(35, "mixture", 6, 1, 3.0)]


def _tweedie_like(factor: Callable, keep_x: float = 1.0) -> Callable:
    return lambda score_fn, y, sigma: keep_x * y + factor(sigma) * score_fn(y)


TWEEDIE_DENOISER = register(Exercise(
    name="tweedie_denoiser",
    lesson="04_denoising_score_matching",
    signature="(score_fn, x_noisy, sigma)",
    summary="Tweedie's posterior mean x̃ + σ²·s(x̃)",
    formula="E[x | x̃] written through x̃, σ and score_fn(x̃), one row per noisy point",
    reference=tweedie_reference,
    forbidden=(tweedie_denoise, GaussianMixture.posterior_mean),
    points=2,
    cases=_tweedie_cases,
    description="Check ``tweedie_denoiser(score_fn, x_noisy, sigma)`` against "
                ":func:`lessons_lib.noise.tweedie_denoise` at σ = 0.5, 1.5 and 3.",
    mistakes=[
        Mistake("it uses σ instead of σ²: compare the units of the score (1/distance) with those of a "
                "shift of x̃ (distance)", _tweedie_like(lambda s: s)),
        Mistake("wrong sign: the posterior mean lies on the side of x̃ where p_σ is higher",
                _tweedie_like(lambda s: -s**2)),
        Mistake("it returns the correction σ²·score alone, a shift rather than a point",
                _tweedie_like(lambda s: s**2, keep_x=0.0)),
        Mistake("it divides the score by σ² where the derivation multiplies", _tweedie_like(lambda s: 1 / s**2)),
        Mistake("it uses σ⁴: that is the factor between the denoising and the DSM *losses*, not a factor "
                "of the denoiser", _tweedie_like(lambda s: s**4)),
        Mistake("the score is not multiplied by σ²", _tweedie_like(lambda s: 1.0)),
    ],
))


# --------------------------------------------------------------------------- dsm_training_step
LEARNING_RATE = 0.05


def training_step_reference(model, optimizer, x, sigma, z):
    optimizer.zero_grad()
    loss = losses.dsm_loss(model, x, sigma, z=z)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _step_case(seed: int, batch: int, dim: int, sigma: float) -> Case:
    def make(g: torch.Generator) -> tuple:
        model = ScoreMLP(dim, hidden=16)
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        for q in model.parameters():  # what the previous step left behind
            q.grad = torch.randn(q.shape, generator=g)
        return model, optimizer, torch.randn(batch, dim, generator=g), sigma, torch.randn(batch, dim, generator=g)

    return Case(f"a small MLP, SGD (lr = {LEARNING_RATE}) with the previous step's gradients still in .grad, "
                f"x and z of shape ({batch}, {dim}), sigma = {sigma}", seeded(seed, make))


def _step_cases() -> list[Case]:
    return [_step_case(36, 16, 1, 0.3), _step_case(37, 8, 2, 1.0)]


def _flat_parameters(model) -> Tensor:
    return torch.cat([q.detach().flatten() for q in model.parameters()])


def _parameter_slips(model, optimizer, x, sigma, z):
    """What the parameters would be after each typical slip in the order of the steps."""
    start = _flat_parameters(model)
    stale = torch.cat([q.grad.flatten() for q in model.parameters()])
    model.zero_grad()
    losses.dsm_loss(model, x, sigma, z=z).backward()
    fresh = torch.cat([q.grad.flatten() for q in model.parameters()])
    return {
        "the parameters did not change: call optimizer.step() after loss.backward()": start,
        "the previous step's gradient was still in .grad: backward() adds to .grad, so call "
        "optimizer.zero_grad() before loss.backward()": start - LEARNING_RATE * (stale + fresh),
        "optimizer.step() ran before loss.backward(): it used the gradients left in .grad, not this "
        "batch's": start - LEARNING_RATE * stale,
        "the step went uphill: use optimizer.step(), which subtracts lr·gradient": start + LEARNING_RATE * fresh,
    }


def _check_parameters(ex: Exercise, fn: Callable) -> None:
    """When the returned loss is right, the parameters must be those after one SGD step."""
    __tracebackhide__ = True
    for case in ex.cases():
        called = call(ex, fn, case)
        if called is None:
            return
        got, args = called
        if not isinstance(got, Tensor) or not close(got, ex.reference(*case.build())):
            return  # the run diagnoses the returned value
        reference_args = case.build()
        ex.reference(*reference_args)
        after, expected = _flat_parameters(args[0]), _flat_parameters(reference_args[0])
        if close(after, expected):
            continue
        for message, slip in _parameter_slips(*case.build()).items():
            if close(after, slip, MISTAKE_RTOL, MISTAKE_ATOL):
                raise fail(ex, case, message)
        raise fail(ex, case, "the returned loss is right but the parameters after the step are not those of one "
                   "optimizer step on this batch's gradient")


def _wrong_step(loss_fn: Callable, after: bool = False) -> Callable:
    def wrong(model, optimizer, x, sigma, z):
        optimizer.zero_grad()
        loss = loss_fn(model, x, sigma, z)
        loss.backward()
        optimizer.step()
        return loss_fn(model, x, sigma, z).detach() if after else loss.detach()

    return wrong


def _dsm(noisy: Callable, target: Callable) -> Callable:
    return lambda model, x, sigma, z: (0.5 * sum_event((model(noisy(x, sigma, z)) + target(z, sigma)) ** 2)).mean()


DSM_TRAINING_STEP = register(Exercise(
    name="dsm_training_step",
    lesson="04_denoising_score_matching",
    signature="(model, optimizer, x, sigma, z)",
    summary="one optimizer step on the DSM loss of a batch; returns the loss before the step",
    formula="zero the old gradients, compute J_DSM = ½ mean ‖s(x + σz) + z/σ‖² with the z you are given, "
            "back-propagate, take one optimizer step, return the loss (a tensor) computed before the step",
    reference=training_step_reference,
    forbidden=(train,),
    points=3,
    cases=_step_cases,
    description="Check ``dsm_training_step(model, optimizer, x, sigma, z)``: the loss it returns, then the "
                "parameters after the step, against zero_grad → DSM loss → backward → step (SGD, stale "
                "gradients left in .grad).",
    random_hint=GIVEN_NOISE_HINT,
    error_hint=lambda message: (
        "call loss.backward() before optimizer.step(): the step changes the parameters in place, and the "
        "backward pass still needs their old values" if "modified by an inplace operation" in message else ""),
    precheck=_check_parameters,
    mistakes=[
        Mistake("it returns the loss after the step; return the loss computed on the batch before the step",
                _wrong_step(lambda m, x, s, z: losses.dsm_loss(m, x, s, z=z), after=True)),
        Mistake("the model is evaluated at the clean x; evaluate it at the noisy point x̃ = x + σz",
                _wrong_step(_dsm(lambda x, s, z: x, lambda z, s: z / s))),
        Mistake("it uses z instead of z/σ as the target", _wrong_step(_dsm(noisy_point, lambda z, s: z))),
        Mistake("wrong sign on the target: the loss is ½‖s(x̃) + z/σ‖²",
                _wrong_step(_dsm(noisy_point, lambda z, s: -z / s))),
        Mistake("the ½ in front of the loss is missing",
                _wrong_step(lambda m, x, s, z: 2 * losses.dsm_loss(m, x, s, z=z))),
    ],
))
