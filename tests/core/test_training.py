"""seconds_per_step: times real training steps (no assertion on the time itself)."""

import math

import pytest
import torch

from lessons_lib import losses
from lessons_lib.densities import Gaussian
from lessons_lib.losses import dsm_loss, esm_loss
from lessons_lib.nets import LinearScore, ScoreMLP
from lessons_lib.toy_data import mixture_2d
from lessons_lib.training import seconds_per_step, step_costs, train
from lessons_lib.utils import seed_everything


def dsm(sigma):
    return lambda model, batch, g: dsm_loss(model, batch, sigma, generator=g)


def test_training_by_dsm_approaches_the_perturbed_score():
    gauss = Gaussian([1.0, -1.0], [[1.0, 0.3], [0.3, 0.5]])
    seed_everything(0)
    result = train(LinearScore(2), dsm(0.5), gauss.sample, n_steps=400, batch_size=512, lr=2e-2, progress=False)
    target = -torch.linalg.inv(gauss.perturbed(0.5).cov).float()
    torch.testing.assert_close(result.model.A.detach(), target, atol=0.1, rtol=0.1)
    assert len(result.losses) == 400 and result.seconds > 0


def test_training_is_reproducible_from_the_seed():
    data = mixture_2d().sample(1000, generator=torch.Generator().manual_seed(0))
    runs = []
    for _ in range(2):
        seed_everything(1)
        runs.append(train(ScoreMLP(2, hidden=16), dsm(0.3), data, n_steps=30, seed=7, progress=False).losses)
    assert runs[0] == runs[1]


def test_ema_and_resume():
    data = mixture_2d().sample(512, generator=torch.Generator().manual_seed(0))
    seed_everything(2)
    first = train(ScoreMLP(2, hidden=16), dsm(0.3), data, n_steps=20, ema_decay=0.9, progress=False)
    assert first.best_model is first.ema.module
    ema_w = first.ema.module.net[0].weight
    assert not torch.allclose(ema_w, first.model.net[0].weight)
    more = train(first.model, dsm(0.3), data, n_steps=10, optimizer=first.optimizer, ema=first.ema, progress=False)
    assert more.ema is first.ema and len(more.losses) == 10


def test_training_stops_with_a_clear_error_on_a_nan_loss():
    data = torch.randn(64, 2)
    with pytest.raises(ValueError, match="became nan at step 1"):
        train(ScoreMLP(2), lambda m, b, g: esm_loss(m, b, b * float("nan")), data, n_steps=5, progress=False)
    with pytest.raises(ValueError, match="lr"):
        train(ScoreMLP(2), dsm(0.3), data, n_steps=5, lr=0, progress=False)
    with pytest.raises(ValueError, match="data"):
        train(ScoreMLP(2), dsm(0.3), torch.randn(5), n_steps=5, progress=False)


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


def test_step_costs_times_every_objective_at_every_dimension_and_restores_threads():
    before = torch.get_num_threads()
    seen = []

    def loss(model, batch, gen):
        seen.append((batch.shape, torch.get_num_threads()))
        return losses.dsm_loss(model, batch, 0.5, generator=gen)

    costs = step_costs({"a": loss, "b": loss}, [2, 3], hidden=8, batch_size=4, n_steps=2, warmup=1)
    assert list(costs) == ["a", "b"] and all(len(v) == 2 and all(t > 0 for t in v) for v in costs.values())
    assert {shape for shape, _ in seen} == {torch.Size([4, 2]), torch.Size([4, 3])}
    assert {threads for _, threads in seen} == {1}
    assert torch.get_num_threads() == before
