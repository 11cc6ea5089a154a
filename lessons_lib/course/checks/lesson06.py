"""Lesson 06, a noise-conditional score network on MNIST: ``ncsn_loss_at``, and the capstone's
``ncsn_training_step`` and ``annealed_sampler``; the written ``ncsn_loss_minimum``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from lessons_lib import losses, samplers, training
from lessons_lib.nets import ScoreMLP
from lessons_lib.noise import geometric_sigmas, sigma_like

from .common import FlatScore, broadcast_hint, loss_reduction_mistakes, noisy_point, sum_event
from .engine import Case, Exercise, Mistake, Written, close, fail, register, seeded
from .lesson05 import _annealed_cases, _annealed_like, _right_step, annealed_reference


def reference(score_fn, x, sigma, z):
    return losses.ncsn_loss_at(score_fn, x, sigma, z=z)


def _case(seed: int, shape: tuple[int, ...]) -> Case:
    schedule = geometric_sigmas(sigma_max=5.0, sigma_min=0.1, n=6)

    def make(g: torch.Generator) -> tuple:
        model = ScoreMLP(shape[1], hidden=16, sigma_conditioned=True) if len(shape) == 2 else FlatScore(shape[1:])
        x = torch.randn(shape, generator=g)
        sigma = schedule[torch.randint(0, len(schedule), (shape[0],), generator=g)]
        return model, x, sigma, torch.randn(shape, generator=g)

    what = "points" if len(shape) == 2 else "images"
    return Case(
        f"a small σ-conditioned score model on {what}, x and z of shape {shape}, sigma of shape ({shape[0]},) "
        "with levels between 0.1 and 5",
        seeded(seed, make),
    )


def _cases() -> list[Case]:
    return [_case(50, (6, 2)), _case(51, (5, 3)), _case(52, (4, 1, 28, 28))]


def _like(weight: Callable, noisy: Callable, target: Callable, score_sigma: Callable = lambda s: s):
    """A wrong NCSN loss: ½ mean ‖weight(σ)·s(noisy(x, σ, z), σ') + target(z, σ)‖²."""

    def wrong(score_fn, x, sigma, z):
        s_b = sigma_like(sigma, x)
        s = score_fn(noisy(x, s_b, z), score_sigma(sigma))
        return (0.5 * sum_event((weight(s_b) * s + target(z, s_b)) ** 2)).mean()

    return wrong


def _plus_z(z, sigma):
    return z


def _weighted_by_sigma(score_fn, x, sigma, z):
    s_b = sigma_like(sigma, x)
    return (0.5 * sigma * sum_event((score_fn(x + s_b * z, sigma) + z / s_b) ** 2)).mean()


NCSN_LOSS_AT = register(Exercise(
    name="ncsn_loss_at",
    lesson="06_mnist_ncsn",
    signature="(score_fn, x, sigma, z)",
    summary="½ mean ‖σ·s(x + σz, σ) + z‖² at the given levels, sigma (B,): one σ per sample",
    formula=(
        "J_NCSN = ½ · mean over the batch of ‖σ·s(x + σz, σ) + z‖² (summed over dimensions), "
        "each sample with its own σ, score_fn(x_tilde, sigma)"
    ),
    reference=reference,
    forbidden=(losses.ncsn_loss, losses.ncsn_loss_at, losses.dsm_loss),
    points=3,
    cases=_cases,
    description="Check ``ncsn_loss_at(score_fn, x, sigma, z)`` against :func:`lessons_lib.losses.ncsn_loss_at` "
                "with the same levels and noise (value and gradient), on points and on 28×28 images.",
    is_loss=True,
    reduce_hint="sum the squares over the dimensions of each sample, then average over the batch",
    random_hint="use the noise z and the levels sigma you are given; do not draw new ones",
    error_hint=broadcast_hint,
    mistakes=[
        Mistake(
            "there is no σ² weighting: this is plain DSM ½‖s + z/σ‖²; the NCSN loss weights each "
            "level by σ², ½‖σ·s + z‖²",
            _like(lambda s: 1.0, noisy_point, lambda z, s: z / s),
        ),
        Mistake(
            "wrong sign: the loss is ½‖σ·s(x̃, σ) + z‖² (the target score is −z/σ)",
            _like(lambda s: s, noisy_point, lambda z, s: -z),
        ),
        Mistake(
            "the score is multiplied by σ²; the σ² weight of ½‖s + z/σ‖² becomes ½‖σ·s + z‖²",
            _like(lambda s: s**2, noisy_point, _plus_z),
        ),
        Mistake("it is weighted by σ instead of σ²: ½σ‖s + z/σ‖²", _weighted_by_sigma),
        Mistake(
            "the model is evaluated at the clean x; evaluate it at the noisy point x̃ = x + σz",
            _like(lambda s: s, lambda x, s, z: x, _plus_z),
        ),
        Mistake("the noisy point is x̃ = x + σz, not x + z", _like(lambda s: s, lambda x, s, z: x + z, _plus_z)),
        Mistake(
            "every sample uses the first level sigma[0]; each sample has its own level sigma[i]",
            lambda score_fn, x, sigma, z: reference(score_fn, x, sigma[:1].expand_as(sigma), z),
        ),
        *loss_reduction_mistakes(reference),
    ],
))


# --------------------------------------------------------------------------- ncsn_training_step (capstone)
class _TinyImageScore(torch.nn.Module):
    """A σ-conditioned score on images with few parameters: (a·x + b)/σ per pixel plus a 1×1 mixing."""

    def __init__(self, g: torch.Generator):
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(1, generator=g))
        self.b = torch.nn.Parameter(0.1 * torch.randn(1, 1, 28, 28, generator=g))

    def forward(self, x, sigma):
        return (self.a * x + self.b) / sigma_like(sigma, x)


def _step_case(seed: int, shape: tuple[int, ...]) -> Case:
    """A model whose .grad already holds stale gradients, and plain SGD: every slip changes the update."""
    schedule = geometric_sigmas(sigma_max=5.0, sigma_min=0.1, n=6)

    def make(g: torch.Generator) -> tuple:
        model = ScoreMLP(shape[1], hidden=16, sigma_conditioned=True) if len(shape) == 2 else _TinyImageScore(g)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
                p.grad = torch.randn(p.shape, generator=g)  # a previous step's gradients, not yet cleared
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        x = torch.rand(shape, generator=g)
        sigma = schedule[torch.randint(0, len(schedule), (shape[0],), generator=g)]
        return model, optimizer, x, sigma, torch.randn(shape, generator=g)

    what = "points" if len(shape) == 2 else "images"
    return Case(f"a small σ-conditioned score model on {what} (x of shape {shape}) with stale gradients in .grad, "
                "plain SGD with learning rate 0.05", seeded(seed, make))


def _step_cases() -> list[Case]:
    return [_step_case(70, (8, 2)), _step_case(71, (4, 1, 28, 28))]


def training_step_reference(model, optimizer, x, sigma, z):
    """optimizer.zero_grad(); J_NCSN on (x, sigma, z); backward; optimizer.step(); the loss before the step."""
    optimizer.zero_grad()
    loss = losses.ncsn_loss_at(model, x, sigma, z=z)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _updated(step: Callable, case: Case) -> torch.Tensor:
    model, optimizer, x, sigma, z = case.build()
    step(model, optimizer, x, sigma, z)
    return _params(model)


def _no_zero_grad(model, optimizer, x, sigma, z):
    loss = losses.ncsn_loss_at(model, x, sigma, z=z)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _loss_after(model, optimizer, x, sigma, z):
    training_step_reference(model, optimizer, x, sigma, z)
    with torch.no_grad():
        return losses.ncsn_loss_at(model, x, sigma, z=z)


def _step_scaled(factor: Callable) -> Callable:
    """The reference step, returning its loss times factor(x)."""
    return lambda model, optimizer, x, sigma, z: factor(x) * training_step_reference(model, optimizer, x, sigma, z)


def _check_update(ex: Exercise, fn: Callable) -> None:
    """Before the returned loss: the parameters after the step must be the reference's."""
    __tracebackhide__ = True
    for case in ex.cases():
        start = _params(case.build()[0])
        try:
            got = _updated(fn, case)
        except Exception:  # noqa: BLE001 - NotImplementedError and other errors are reported by the run
            return
        if close(got, _updated(training_step_reference, case)):
            continue
        if close(got, start):
            problem = ("the parameters did not change: call optimizer.step() after loss.backward() "
                       "(a step before backward uses the old gradients, and without a step nothing is learned)")
        elif close(got, _updated(_no_zero_grad, case)):
            problem = ("the gradients of an earlier step were not cleared: PyTorch adds each backward pass to "
                       ".grad, so call optimizer.zero_grad() before loss.backward()")
        else:
            problem = ("the parameters after the step differ from the reference's: zero the gradients, compute "
                       "the NCSN loss with the given sigma and z, call backward once, then optimizer.step()")
        raise fail(ex, case, problem)


NCSN_TRAINING_STEP = register(Exercise(
    name="ncsn_training_step",
    lesson="06_mnist_ncsn",
    signature="(model, optimizer, x, sigma, z)",
    summary="one optimizer step on J_NCSN with the given levels and noise; returns the loss before the step",
    formula=(
        "optimizer.zero_grad(); loss = ½ · mean over the batch of ‖σ·model(x + σz, σ) + z‖²; "
        "loss.backward(); optimizer.step(); return loss.detach()"
    ),
    reference=training_step_reference,
    forbidden=(losses.ncsn_loss, losses.ncsn_loss_at, losses.dsm_loss, training.train),
    points=3,
    cases=_step_cases,
    description="Check ``ncsn_training_step(model, optimizer, x, sigma, z)``: the parameters after the step "
                "(plain SGD, with stale gradients in .grad) and the returned loss against "
                ":func:`lessons_lib.losses.ncsn_loss_at` and one optimizer step, on points and on images.",
    random_hint="use the levels sigma and the noise z you are given; do not draw new ones",
    precheck=_check_update,
    mistakes=[
        Mistake("it returns the loss after the step; return the loss of the batch before the update "
                "(the one that was differentiated)", _loss_after),
        Mistake("the returned loss is twice the reference: the ½ in front of the loss is missing",
                _step_scaled(lambda x: 2.0)),
        Mistake("the returned loss is the sum over the batch instead of the mean",
                _step_scaled(lambda x: float(x.shape[0]))),
        Mistake("the returned loss is averaged over the dimensions of each sample: sum over them, "
                "average over the batch", _step_scaled(lambda x: 1.0 / x[0].numel())),
    ],
))


# --------------------------------------------------------------------------- annealed_sampler (capstone)
def annealed_sampler_reference(score_fn, x, sigmas, step_size, noise):
    """Annealed Langevin with the noise given (lesson 05), then the denoising step x + σ_L²·s(x, σ_L)."""
    x = annealed_reference(score_fn, x, sigmas, step_size, noise)
    sigma_last = float(sigmas[-1])
    return x + sigma_last**2 * score_fn(x, sigma_last)


def _denoised_like(last: Callable[[float, float], float], at: Callable = lambda sig: sig[-1], sign: float = 1.0,
                   body: Callable = annealed_reference) -> Callable:
    """The annealed chain ``body``, then a wrong final step x + sign·last(σ_at)·s(x, σ_at)."""

    def wrong(score_fn, x, sigmas, step_size, noise):
        x = body(score_fn, x, sigmas, step_size, noise)
        sig = [float(s) for s in sigmas]
        if last is None:
            return x
        return x + sign * last(at(sig)) * score_fn(x, at(sig))

    return wrong


def _wrong_chain(message: str, wrong: Callable) -> Mistake:
    return Mistake(message, _denoised_like(lambda s: s**2, body=wrong))


ANNEALED_SAMPLER = register(Exercise(
    name="annealed_sampler",
    lesson="06_mnist_ncsn",
    signature="(score_fn, x_init, sigmas, step_size, noise)",
    summary="annealed Langevin over the levels with the noise given, then the final denoising step x + σ_L²·s(x, σ_L)",
    formula=(
        "for each level i (largest σ first), εᵢ = step_size·σᵢ²/σ_L², T steps x ← x + εᵢ·score_fn(x, σᵢ) + "
        "√(2εᵢ)·noise[i, t]; then x + σ_L²·score_fn(x, σ_L)"
    ),
    reference=annealed_sampler_reference,
    forbidden=(samplers.annealed_langevin, samplers.annealed_inpainting, samplers.langevin),
    points=4,
    cases=_annealed_cases,
    description="Check ``annealed_sampler(score_fn, x_init, sigmas, step_size, noise)`` against lesson 05's "
                "annealed loop followed by the Tweedie step x + σ_L²·s(x, σ_L), on points and on images.",
    random_hint="use noise[i, t] at step t of level i; do not draw new noise with torch.randn",
    mistakes=[
        Mistake("the final denoising step x + σ_L²·s(x, σ_L) is missing", _denoised_like(None)),
        Mistake("the denoising step is scaled by σ_L; Tweedie's formula is x + σ_L²·s(x, σ_L)",
                _denoised_like(lambda s: s)),
        Mistake("the denoising step uses the first level σ₁; it removes the noise of the last level, "
                "x + σ_L²·s(x, σ_L)", _denoised_like(lambda s: s**2, at=lambda sig: sig[0])),
        Mistake("the denoising step has the wrong sign: x + σ_L²·s(x, σ_L) moves towards higher density",
                _denoised_like(lambda s: s**2, sign=-1.0)),
        _wrong_chain("the levels run in the wrong order: annealing starts at the largest σ (sigmas[0])",
                     _annealed_like(_right_step, order=lambda sig: sig[::-1])),
        _wrong_chain("the step is the same at every level: it must grow like σᵢ², εᵢ = step_size·σᵢ²/σ_L²",
                     _annealed_like(lambda s, sig, size: size)),
        _wrong_chain("the noise is scaled by √εᵢ: it must be √(2εᵢ)",
                     _annealed_like(_right_step, lambda eps, size: math.sqrt(eps))),
        _wrong_chain("every level starts again from x_init: each level continues from where the previous one ended",
                     _annealed_like(_right_step, restart=True)),
    ],
))


NCSN_LOSS_MINIMUM = register(Written(
    name="ncsn_loss_minimum", lesson="06_mnist_ncsn",
    summary="the smallest value of one level's σ²-weighted DSM term, and its limits in σ", points=3))
