"""RECIPE and train_ncsn: the recipe is the shipped checkpoint's, the learning-rate schedule, the arithmetic."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lessons_lib.mnist import RECIPE, Recipe, load_checkpoint, train_ncsn
from lessons_lib.mnist import checkpoint as checkpoint_module
from lessons_lib.mnist.checkpoint import PRECISIONS, native_bfloat16
from lessons_lib.noise import geometric_sigmas

TINY = {"channels": (8, 16, 16), "progress": False}


def test_recipe_is_the_shipped_checkpoints():
    ck = load_checkpoint()
    meta = ck.meta
    assert (meta["steps"], meta["batch_size"], meta["lr"], meta["lr_decay"], meta["ema_decay"], meta["precision"],
            meta["seed"]) == (RECIPE.n_steps, RECIPE.batch_size, RECIPE.lr, RECIPE.lr_decay, RECIPE.ema_decay,
                              RECIPE.precision, RECIPE.seed)
    assert tuple(ck.model.config["channels"]) == RECIPE.channels
    assert RECIPE.objective == "edm" and ck.model.preconditioning == "edm"
    assert (meta["training"]["p_mean"], meta["training"]["p_std"]) == (RECIPE.p_mean, RECIPE.p_std)
    torch.testing.assert_close(ck.sigmas, geometric_sigmas(RECIPE.sigma_max, RECIPE.sigma_min, RECIPE.n_sigmas))


def test_recipe_rejects_bad_settings():
    for change, match in [({"lr_decay": "linear"}, "lr_decay"), ({"objective": "levels"}, "objective"),
                          ({"precision": "float16"}, "precision"), ({"n_steps": 0}, "n_steps")]:
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(RECIPE, **change)
    assert dataclasses.replace(RECIPE, n_steps=4).lr_at(2) == RECIPE.lr


def test_cosine_lr_decay_follows_torchs_schedule_and_channels_reach_the_network(tmp_path, monkeypatch):
    used = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    ck = train_ncsn(tmp_path / "c.pt", n_steps=4, batch_size=4, lr=1e-3, lr_decay="cosine", **TINY)
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=4)
    expected = []
    for _ in range(4):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        schedule.step()
    assert used == pytest.approx(expected) and expected[0] == 1e-3 and expected[2] == pytest.approx(5e-4)
    assert ck.model.config["channels"] == [8, 16, 16] and ck.meta["lr_decay"] == "cosine"
    used.clear()
    train_ncsn(tmp_path / "n.pt", n_steps=3, batch_size=4, lr=1e-3, **TINY)
    assert used == [1e-3] * 3  # "none": constant
    with pytest.raises(ValueError, match="lr_decay"):
        train_ncsn(tmp_path / "x.pt", n_steps=1, lr_decay="linear")


def test_bfloat16_training_and_scores_stay_close_to_float32(tmp_path, monkeypatch):
    # The same two steps (same weights, batches and noise) in float32 and under bfloat16
    # autocast: the first loss, computed from identical weights, differs by rounding only.
    runs = {p: train_ncsn(tmp_path / f"{p}.pt", n_steps=2, batch_size=16, precision=p, **TINY) for p in PRECISIONS}
    first = {p: torch.load(tmp_path / f"{p}.state.pt", weights_only=True)["losses"][0] for p in runs}
    assert first["bfloat16"] != first["float32"]  # autocast did run
    assert first["bfloat16"] == pytest.approx(first["float32"], rel=0.02)
    ck = runs["bfloat16"]
    native = native_bfloat16(torch.device("cpu"))
    assert ck.meta["precision"] == "bfloat16" and ck.precision == ("bfloat16" if native else "float32")
    assert all(w.dtype == torch.float32 for w in ck.model.parameters())
    # scoring: the checkpoint's own precision (where the machine has it natively), float32 on request
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    as_trained = load_checkpoint(tmp_path / "bfloat16.pt", precision="bfloat16").score(x, 0.5)
    exact = load_checkpoint(tmp_path / "bfloat16.pt", precision="float32").score(x, 0.5)
    assert as_trained.dtype == torch.float32 and not torch.equal(as_trained, exact)
    assert (as_trained - exact).norm() < 0.02 * exact.norm()
    # a machine without native bfloat16 scores in float32, which is faster there
    monkeypatch.setattr(checkpoint_module, "native_bfloat16", lambda device: False)
    assert load_checkpoint(tmp_path / "bfloat16.pt").precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        train_ncsn(tmp_path / "x.pt", n_steps=1, precision="float16")


def test_recipe_fields_are_what_train_ncsn_changes():
    assert {f.name for f in dataclasses.fields(Recipe)} >= {"n_steps", "batch_size", "objective", "channels"}
    with pytest.raises(TypeError):
        train_ncsn("unused.pt", steps=3)  # the glossary's n_steps, nothing else
