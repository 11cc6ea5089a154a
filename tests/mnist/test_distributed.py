"""Training in several processes (torch.distributed, gloo on the CPU): the gradients are
averaged, so every process holds the same weights after every step, and the run equals one
process that trains on the processes' batches put together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lessons_lib.losses import esm_loss
from lessons_lib.mnist import load_checkpoint
from lessons_lib.nets import ScoreMLP
from lessons_lib.toy_data import mixture_2d
from lessons_lib.training import train

B, STEPS, WORLD = 16, 6, 2
ROOT = Path(__file__).resolve().parents[2]


def _data() -> torch.Tensor:
    return mixture_2d().sample(WORLD * B, generator=torch.Generator().manual_seed(3))


def _run(model: ScoreMLP, batch: torch.Tensor) -> list[torch.Tensor]:
    """Train on a fixed batch with a deterministic loss (explicit score matching against the
    mixture's exact score); return the flattened weights after every step."""
    target = mixture_2d()
    after: list[torch.Tensor] = []
    train(model, lambda m, x, g: esm_loss(m, x, target.score), lambda n, generator: batch, n_steps=STEPS,
          batch_size=len(batch), lr=1e-2, progress=False,
          callback=lambda step, loss: after.append(
              torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()))
    return after


def _rank(rank: int, rendezvous: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    torch.manual_seed(rank)  # different initial weights on purpose: DDP starts everyone from rank 0's
    after = _run(ScoreMLP(2, hidden=32), _data()[rank * B:(rank + 1) * B])
    torch.save(after, f"{out}.{rank}")
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_average_gradients_and_equal_one_process_with_both_batches(tmp_path):
    mp.spawn(_rank, args=(str(tmp_path / "rendezvous"), str(tmp_path / "weights")), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"weights.{r}", weights_only=True) for r in range(WORLD)]
    for step in range(STEPS):  # the same weights in both processes after every step
        assert torch.equal(ranks[0][step], ranks[1][step]), f"the processes differ after step {step + 1}"
    torch.manual_seed(0)  # rank 0's initial weights
    single = _run(ScoreMLP(2, hidden=32), _data())
    for step in range(STEPS):  # the mean gradient over 2 × 16 examples, up to float32 summation order
        torch.testing.assert_close(ranks[0][step], single[step], rtol=1e-4, atol=1e-5)
    moved = (single[-1] - single[0]).abs().max()
    assert moved > 1e-3  # the comparison is not of weights that never moved


@pytest.mark.slow
def test_mnist_command_trains_and_resumes_under_torchrun(tmp_path):
    out = tmp_path / "ncsn.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
               "-m", "lessons_lib.mnist", "train", "--out", str(out), "--batch-size", "4",
               "--checkpoint-every", "1", "--threads", "1", "--no-progress", "--channels", "8", "16", "16"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.run(command + ["--n-steps", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("wrote ") == 1  # process 0 alone reports and writes
    ck = load_checkpoint(out)
    assert ck.meta["processes"] == WORLD and ck.meta["images_per_step"] == WORLD * 4 and ck.meta["steps"] == 2
    resumed = subprocess.run(command + ["--n-steps", "3", "--resume"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from step 2 of 3" in resumed.stderr
    assert load_checkpoint(out).meta["steps"] == 3
