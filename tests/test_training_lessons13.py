"""seconds_per_step: times real training steps (no assertion on the time itself)."""

import math

import pytest
import torch

from lessons_lib.losses import dsm_loss
from lessons_lib.nets import ScoreMLP
from lessons_lib.training import seconds_per_step


def _loss(model, x, generator):
    return dsm_loss(model, x, 0.5, generator=generator)


def test_seconds_per_step_trains_the_model_and_returns_a_positive_time():
    torch.manual_seed(0)
    model = ScoreMLP(2, hidden=8)
    before = [p.detach().clone() for p in model.parameters()]
    data = torch.randn(64, 2)
    seconds = seconds_per_step(model, _loss, data, n_steps=3, batch_size=16)
    assert math.isfinite(seconds) and seconds > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_seconds_per_step_rejects_zero_steps():
    with pytest.raises(ValueError, match="n_steps"):
        seconds_per_step(ScoreMLP(2), _loss, torch.randn(8, 2), n_steps=0)
