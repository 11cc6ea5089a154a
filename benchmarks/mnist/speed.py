"""MNIST speed: training throughput and sampling time of the noise-conditional score network.

    python -m benchmarks.mnist.speed

For the shipped checkpoint's network, in each of ``lessons_lib.mnist.PRECISIONS`` (bfloat16 under
``torch.autocast``), on the CPU (all of torch's threads) and, when CUDA is available, on the GPU:
training steps per second (batch 128, EDM's loss and preconditioning, Adam; median step time),
and the time to draw 100 digits with the course's sampler and with lesson 06's annealed Langevin
on the recipe's levels (``lessons_lib.mnist.SAMPLERS``): median network evaluation
(``torch.utils.benchmark``) × the number of evaluations.
"""

from __future__ import annotations

import torch
from torch.utils import benchmark

from lessons_lib.losses import edm_loss
from lessons_lib.mnist import (
    DEFAULT_SAMPLER,
    PRECISIONS,
    RECIPE,
    SAMPLERS,
    Checkpoint,
    NCSNUNet,
    autocast,
    load_checkpoint,
)
from lessons_lib.training import seconds_per_step
from lessons_lib.utils import get_device, seed_everything


def speed_row(channels, device: str, precision: str = "float32", train_steps: int = 10) -> str:
    """One table row: the U-Net with these widths (fresh weights) on ``device``, its arithmetic in
    ``precision`` (``lessons_lib.mnist.autocast``)."""
    dev = get_device(device)
    seed_everything(0)
    sigmas = RECIPE.sigmas().to(dev)
    data = torch.rand(1024, 1, 28, 28)
    sigma_data = float(data.pow(2).mean().sqrt())

    def loss_fn(m, x, g):
        with autocast(dev, precision):
            return edm_loss(m, x, sigma_data, generator=g)

    net = NCSNUNet(channels, preconditioning="edm", sigma_data=sigma_data)
    step = seconds_per_step(net, loss_fn, data, n_steps=train_steps, batch_size=128, device=dev)
    ck = Checkpoint(net.eval(), sigmas, {}, precision)
    x = torch.rand(100, 1, 28, 28, device=dev)
    # the Timer synchronises CUDA around each measurement
    timer = benchmark.Timer(stmt="ck.score(x, 0.1)", globals={"ck": ck, "x": x}, num_threads=torch.get_num_threads())
    per_eval = timer.blocked_autorange(min_run_time=1.0).median
    n_course = SAMPLERS[DEFAULT_SAMPLER].n_evaluations(ck)
    n_annealed = SAMPLERS["annealed"].n_evaluations(ck)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return (f"| {name} | {precision} | {1 / step:.2f} | {per_eval * 1e3:.1f} | {per_eval * n_course:.1f} "
            f"({n_course} evaluations) | {per_eval * n_annealed:.1f} ({n_annealed} evaluations) |")


def speed_table() -> str:
    channels = tuple(load_checkpoint().model.config["channels"])
    lines = [f"The shipped checkpoint's U-Net, widths {channels}.", "",
             "| device | network's arithmetic | training steps/s (batch 128) | ms per evaluation (100 images) | "
             "s per 100 digits, course sampler | s per 100 digits, lesson 06's annealed Langevin |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    lines += [speed_row(channels, d, p, train_steps=10 if d == "cpu" else 50) for d in devices for p in PRECISIONS]
    return "\n".join(lines)


if __name__ == "__main__":
    print(speed_table())
