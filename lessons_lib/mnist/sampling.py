"""Drawing digits from a checkpoint: a registry of named samplers and :func:`sample`.

Each entry of :data:`SAMPLERS` is a small frozen dataclass: its fields are the sampler's
settings (their defaults are the course's), and it knows how to start (:meth:`x_init`), how
many network evaluations one digit costs (:meth:`n_evaluations`) and how to run on a batch
(:meth:`run`). :func:`sample` runs any of them in batches; ``python -m lessons_lib.mnist sample``
offers every registered sampler (``--method``) and every number or switch among their settings
as a flag (``--n-steps``, ``--step-size``, …).

To offer a new sampler on MNIST, write its dataclass here (fields with ``metadata={"help": …}``
become command-line flags) and add it to :data:`SAMPLERS`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Protocol

import torch
from tqdm.auto import tqdm

from .._validate import require_bool, require_choice, require_count, require_generator, require_positive, require_real
from ..edm import heun_sample
from ..noise import karras_sigmas, validate_sigmas
from ..samplers import annealed_langevin
from ..utils import make_generator
from .checkpoint import Checkpoint

__all__ = ["Sampler", "HeunSampler", "AnnealedLangevinSampler", "SAMPLERS", "DEFAULT_SAMPLER", "SAMPLE_BATCH",
           "sampler_settings", "sample_batch", "sample"]

IMAGE_SHAPE = (1, 28, 28)


class Sampler(Protocol):
    """What :func:`sample` needs of a registered sampler (a frozen dataclass of its settings)."""

    def n_evaluations(self, checkpoint: Checkpoint | None = None) -> int:
        """Network evaluations per digit (some samplers need the checkpoint's levels to count)."""

    def x_init(self, shape, generator: torch.Generator, device) -> torch.Tensor:
        """The start state of a batch of ``shape``."""

    def run(self, score_fn, x_init: torch.Tensor, checkpoint: Checkpoint | None = None, *,
            generator: torch.Generator | None = None, record_every: int | None = None):
        """The images from ``x_init``; with ``record_every=k``, ``(x, trajectory)``."""


@dataclass(frozen=True)
class HeunSampler:
    """EDM's sampler (Karras et al. 2022): Heun on the probability-flow ODE from σ_max·z, z
    standard normal, along ``karras_sigmas(sigma_max, sigma_min, n_steps, rho)`` then 0
    (:func:`lessons_lib.edm.heun_sample`): 2·n_steps − 1 network evaluations. ``churn`` is EDM's
    S_churn, fresh noise before each step between σ = 0.05 and 50 (ImageNet-64's value 40; with
    18 steps γ = min(40/18, √2 − 1) = √2 − 1); ``churn=0`` is the deterministic ODE solver."""

    n_steps: int = field(default=18, metadata={"help": "levels of the Karras schedule"})
    sigma_max: float = field(default=40.0, metadata={"help": "the first level"})
    sigma_min: float = field(default=0.002, metadata={"help": "the last level before 0"})
    rho: float = field(default=7.0, metadata={"help": "the schedule's ρ"})
    churn: float = field(default=40.0, metadata={"help": "S_churn (0: the deterministic ODE)"})

    def __post_init__(self):
        self.levels()  # validates the schedule's settings
        require_real(self.churn, "churn", 0.0)

    def levels(self, checkpoint: Checkpoint | None = None) -> torch.Tensor:
        """σ₀ > … > σ_{n−1}, then 0."""
        n_steps = require_count(self.n_steps, "n_steps", minimum=2)
        return karras_sigmas(self.sigma_max, self.sigma_min, n_steps, self.rho)

    def n_evaluations(self, checkpoint: Checkpoint | None = None) -> int:
        return 2 * self.n_steps - 1

    def x_init(self, shape, generator: torch.Generator, device) -> torch.Tensor:
        return float(self.levels()[0]) * torch.randn(shape, generator=generator, device=device)

    def run(self, score_fn, x_init: torch.Tensor, checkpoint: Checkpoint | None = None, *,
            generator: torch.Generator | None = None, record_every: int | None = None):
        """The images; with ``record_every=k``, ``(x, trajectory)``: the start and every k-th level."""
        return heun_sample(score_fn, x_init, self.levels(), churn=self.churn, generator=generator,
                           record_every=record_every)


@dataclass(frozen=True)
class AnnealedLangevinSampler:
    """Annealed Langevin as lesson 06 runs it (Song & Ermon 2019), from uniform noise on [0, 1]:
    ``n_steps_each`` steps at each level of ``sigmas`` (default: the checkpoint's), step
    εᵢ = ε·σᵢ²/σ_L² with ε = ``step_size`` (:func:`lessons_lib.samplers.annealed_langevin`), then
    with ``denoise`` a final Tweedie step (NCSNv2). With the shipped checkpoint's 15 levels:
    15 × 20 + 1 = 301 network evaluations."""

    n_steps_each: int = field(default=20, metadata={"help": "Langevin steps per level"})
    step_size: float = field(default=3e-5, metadata={"help": "ε, the step at the last level"})
    denoise: bool = field(default=True, metadata={"help": "a final Tweedie denoising step"})
    sigmas: torch.Tensor | None = None  # the levels, largest first; None: the checkpoint's

    def __post_init__(self):
        require_count(self.n_steps_each, "n_steps_each")
        require_positive(self.step_size, "step_size")
        require_bool(self.denoise, "denoise")
        if self.sigmas is not None:
            validate_sigmas(self.sigmas)

    def levels(self, checkpoint: Checkpoint | None = None) -> torch.Tensor:
        """``sigmas`` when given, else the levels ``checkpoint`` was trained on."""
        if self.sigmas is not None:
            return validate_sigmas(self.sigmas)
        if checkpoint is None:
            raise ValueError("annealed Langevin walks the checkpoint's levels: give a checkpoint or sigmas=")
        return validate_sigmas(checkpoint.sigmas)

    def n_evaluations(self, checkpoint: Checkpoint | None = None) -> int:
        return len(self.levels(checkpoint)) * self.n_steps_each + bool(self.denoise)

    def x_init(self, shape, generator: torch.Generator, device) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=device)

    def run(self, score_fn, x_init: torch.Tensor, checkpoint: Checkpoint | None = None, *,
            generator: torch.Generator | None = None, record_every: int | None = None):
        """The images; with ``record_every=k``, ``(x, trajectory)``: the start, every k-th Langevin
        step and the denoised result."""
        return annealed_langevin(score_fn, x_init, self.levels(checkpoint).tolist(), self.n_steps_each, self.step_size,
                                 generator=generator, record_every=record_every, denoise=self.denoise)


#: The samplers :func:`sample` and the command line know, by name, with the course's settings.
SAMPLERS = {"heun": HeunSampler(), "annealed": AnnealedLangevinSampler()}
#: The course's sampler.
DEFAULT_SAMPLER = "heun"

#: :func:`sample`'s default batch by device type: on a CPU larger batches run slower per image
#: (they outgrow the caches); a GPU needs large batches to keep busy.
SAMPLE_BATCH = {"cpu": 100, "cuda": 500}


def sample_batch(device: torch.device) -> int:
    """:func:`sample`'s default batch on ``device``: its :data:`SAMPLE_BATCH` entry, 500 elsewhere."""
    return SAMPLE_BATCH.get(device.type, 500)


def sampler_settings(method: str | Sampler = DEFAULT_SAMPLER, **changes) -> Sampler:
    """The sampler ``method`` (a name in :data:`SAMPLERS`, or settings) with ``changes`` to its settings."""
    if isinstance(method, str) or not dataclasses.is_dataclass(method):
        name = require_choice(method, "method", sorted(SAMPLERS))
        method = SAMPLERS[name]
    else:
        name = next((k for k, v in SAMPLERS.items() if type(v) is type(method)), type(method).__name__)
    allowed = [f.name for f in dataclasses.fields(method)]
    unknown = set(changes) - set(allowed)
    if unknown:
        raise ValueError(f"the {name} sampler takes {sorted(allowed)}, got {sorted(unknown)}")
    return dataclasses.replace(method, **changes)


def sample(
    checkpoint: Checkpoint,
    n: int,
    method: str | Sampler = DEFAULT_SAMPLER,
    *,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
    record_every: int | None = None,
    progress: bool = False,
    **changes,
):
    """Draw ``n`` digits from the checkpoint's score network with the sampler ``method`` (a name
    in :data:`SAMPLERS` or a sampler's settings), its settings updated by ``changes``.

    Runs in batches of ``batch_size`` (default :func:`sample_batch` of the checkpoint's device)
    on the checkpoint's device, the batches drawing their noise from ``generator`` in turn.
    Returns images (n, 1, 28, 28) on the CPU, not clipped (pixel values slightly outside [0, 1]
    are part of the sample); with ``record_every=k`` also the trajectory (T, n, 1, 28, 28), every
    k-th step of the sampler (a Langevin step, a Heun level). ``progress`` shows a tqdm bar over
    the network evaluations of all batches.
    """
    n = require_count(n, "n")
    if not isinstance(checkpoint, Checkpoint):
        raise ValueError(f"checkpoint must be a Checkpoint, got {type(checkpoint).__name__}; "
                         "load one with lessons_lib.mnist.load_checkpoint(path)")
    require_generator(generator)
    sampler = sampler_settings(method, **changes)
    device = next(checkpoint.model.parameters()).device
    batch_size = require_count(sample_batch(device) if batch_size is None else batch_size, "batch_size")
    generator = generator if generator is not None else make_generator(0, device)
    n_batches = math.ceil(n / batch_size)
    bar = tqdm(total=n_batches * sampler.n_evaluations(checkpoint), desc=f"sampling {n} digits", unit="eval",
               disable=not progress)

    def score(x: torch.Tensor, sigma) -> torch.Tensor:
        bar.update(1)
        return checkpoint.score(x, sigma)

    images, trajectories = [], []
    for b in range(n_batches):
        x_init = sampler.x_init((min(batch_size, n - b * batch_size), *IMAGE_SHAPE), generator, device)
        out = sampler.run(score, x_init, checkpoint, generator=generator, record_every=record_every)
        images.append((out if record_every is None else out[0]).cpu())
        if record_every is not None:
            trajectories.append(out[1].cpu())
    bar.close()
    return torch.cat(images) if record_every is None else (torch.cat(images), torch.cat(trajectories, dim=1))

