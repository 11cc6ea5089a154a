"""The one training loop of the course, used by every notebook and by the MNIST command line.

``train(model, loss_fn, data, n_steps=...)`` draws a batch, evaluates
``loss_fn(model, batch, generator)``, takes an Adam step and records the loss. ``data`` is
either a tensor of examples (batches are drawn uniformly with replacement) or a sampler
``data(n, generator=g)`` such as ``GaussianMixture.sample`` (fresh data every step).

Everything random (batches, noise, projections) flows from one ``seed``; the model's initial
weights are the caller's (call ``seed_everything`` before building it).

**Several processes** (``torchrun --nproc_per_node=N ...``, or any caller that has run
``torch.distributed.init_process_group``): each process draws its own batches and noise (its
generators are seeded with ``seed + RANK_STRIDE·rank``), the model is wrapped in
``DistributedDataParallel``, and every backward pass averages the gradients over the
processes, so all of them take the same Adam step and hold the same weights: one step is a
step on the N batches together (N × ``batch_size`` examples). Only rank 0 shows progress.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from ._validate import (
    require_batch,
    require_callable,
    require_count,
    require_module,
    require_positive,
    require_real,
    require_seed,
)
from .utils import get_device, make_generator

__all__ = ["train", "TrainResult", "ema_model", "seconds_per_step", "step_costs", "process_rank", "RANK_STRIDE"]

# Seeds of different processes lie this far apart, so their batches and noise never coincide.
RANK_STRIDE = 1_000_003


@dataclass
class TrainResult:
    """What a training run leaves behind."""

    model: nn.Module
    losses: list[float] = field(default_factory=list)
    ema: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    seconds: float = 0.0

    @property
    def best_model(self) -> nn.Module:
        """The EMA of the weights when one was kept (it samples better; Song & Ermon 2020), else the model."""
        return self.ema.module if self.ema is not None else self.model


def ema_model(model: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average θ̄ ← decay·θ̄ + (1 − decay)·θ of the model's weights."""
    require_real(decay, "ema_decay", 0.0, 1.0, open_lo=True, open_hi=True)
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def process_rank() -> tuple[int, int]:
    """(rank, number of processes) of this process: (0, 1) unless torch.distributed is running."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _batches(data, batch_size: int, generator: torch.Generator, device: torch.device):
    if callable(data):
        while True:
            yield data(batch_size, generator=generator).to(device)
    if not isinstance(data, torch.Tensor) or data.dim() < 2 or data.shape[0] == 0:
        raise ValueError("data must be a non-empty tensor of shape (N, ...) or a sampler data(n, generator=g)")
    while True:
        idx = torch.randint(0, data.shape[0], (batch_size,), generator=generator)
        yield data[idx].to(device)


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor],
    data,
    *,
    n_steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device=None,
    progress: bool = True,
    ema_decay: float | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    ema: AveragedModel | None = None,
    callback: Callable[[int, float], None] | None = None,
    desc: str = "training",
) -> TrainResult:
    """Train ``model`` for ``n_steps`` Adam steps on ``loss_fn(model, batch, generator)``.

    ``progress`` shows a tqdm bar (a widget in Jupyter, text in a terminal). ``ema_decay``
    keeps an exponential moving average of the weights (``result.ema``). Pass ``optimizer``
    and ``ema`` from an earlier result to resume. ``callback(step, loss)`` runs after every
    step (checkpoints, logging). Raises ``ValueError`` if the loss stops being finite.

    Under ``torch.distributed`` the loss is called with the ``DistributedDataParallel`` wrapper
    of ``model`` and this process's batch; ``result.losses`` are this process's losses.
    """
    n_steps = require_count(n_steps, "n_steps", minimum=0)
    batch_size = require_count(batch_size, "batch_size")
    lr = require_positive(lr, "lr")
    seed = require_seed(seed)
    require_module(model)
    require_callable(loss_fn, "loss_fn")
    if not callable(data) and require_batch(data, "data").shape[0] == 0:
        raise ValueError("data must be a non-empty tensor of shape (N, ...) or a sampler data(n, generator=g)")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    dev = get_device(device)
    model.to(dev).train()
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    if ema is None and ema_decay is not None:
        ema = ema_model(model, ema_decay)
    rank, world = process_rank()
    net = model
    if world > 1:  # gradients averaged over the processes in every backward pass
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    progress = progress and rank == 0
    batch_gen = make_generator(seed + RANK_STRIDE * rank)
    noise_gen = make_generator(seed + 1 + RANK_STRIDE * rank, dev)
    batches = _batches(data, batch_size, batch_gen, dev)
    losses: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(1, n_steps + 1), desc=desc, disable=not progress, leave=True)
    for step in bar:
        loss = loss_fn(net, next(batches), noise_gen)
        value = float(loss.detach())
        if not math.isfinite(value):
            used = opt.param_groups[0]["lr"]  # the optimiser's own, which may not be the lr argument
            raise ValueError(
                f"the loss became {value} at step {step} (the optimizer's learning rate lr = {float(used):g}); "
                "lower the learning rate or check the data and loss_fn for NaNs"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
        losses.append(value)
        if progress and (step % 25 == 0 or step == n_steps):
            bar.set_postfix(loss=f"{sum(losses[-25:]) / len(losses[-25:]):.4g}")
        if callback is not None:
            callback(step, value)
    bar.close()
    model.eval()
    return TrainResult(model, losses, ema, opt, time.perf_counter() - start)


def seconds_per_step(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor],
    data,
    *,
    n_steps: int = 5,
    warmup: int = 1,
    **train_kwargs,
) -> float:
    """Median wall-clock seconds of one :func:`train` step (batch, loss, backward, Adam update).

    Runs ``warmup`` untimed steps first (the first call pays one-off costs such as tracing
    ``torch.func`` transforms), then ``n_steps`` timed ones; the median is robust to a few
    steps slowed down by other processes. Trains ``model`` as a side effect. Other keyword
    arguments go to :func:`train` (``batch_size``, ``lr``, ``seed``, ``device``).
    """
    n_steps = require_count(n_steps, "n_steps")
    warmup = require_count(warmup, "warmup", minimum=0)
    train_kwargs["progress"] = False
    train(model, loss_fn, data, n_steps=warmup, **train_kwargs)
    stamps = [time.perf_counter()]
    train(model, loss_fn, data, n_steps=n_steps, callback=lambda step, loss: stamps.append(time.perf_counter()),
          **train_kwargs)
    return float(torch.tensor(stamps, dtype=torch.float64).diff().median())


def step_costs(
    objectives: dict,
    dims,
    *,
    hidden: int = 128,
    batch_size: int = 64,
    n_steps: int = 5,
    warmup: int = 2,
    threads: int | None = 1,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Seconds per training step of ``ScoreMLP(d, hidden)`` on standard-normal data for every
    objective and every dimension: the one way the course times its objectives.

    ``objectives`` maps a name to ``loss_fn(model, batch, generator)``; each (name, d) pair gets
    a fresh network (seeded with ``seed``) and :func:`seconds_per_step` with the same
    ``n_steps``, ``warmup`` and ``batch_size``. ``threads`` (default 1) pins torch's intra-op
    threads while timing, so the numbers measure the algorithm rather than how threads share
    a busy machine; the previous setting is restored. Returns ``{name: [seconds for each d]}``.
    """
    from .densities import Gaussian
    from .nets import ScoreMLP

    dims = [require_count(d, "dims") for d in dims]
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(require_count(threads, "threads"))
    try:
        costs: dict[str, list[float]] = {name: [] for name in objectives}
        for name, loss_fn in objectives.items():
            for d in dims:
                torch.manual_seed(seed)
                data = Gaussian(torch.zeros(d), 1.0).sample
                costs[name].append(seconds_per_step(ScoreMLP(d, hidden=hidden), loss_fn, data, n_steps=n_steps,
                                                    warmup=warmup, batch_size=batch_size, seed=seed))
    finally:
        torch.set_num_threads(before)
    return costs
