"""The sampler registry and sample(): seeding, batches, trajectories, evaluation counts, settings."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lessons_lib.edm import heun_sample
from lessons_lib.mnist import (
    DEFAULT_SAMPLER,
    SAMPLERS,
    AnnealedLangevinSampler,
    Checkpoint,
    HeunSampler,
    NCSNUNet,
    sample,
    sampler_settings,
)
from lessons_lib.mnist import sampling as sampling_module
from lessons_lib.noise import geometric_sigmas, karras_sigmas


@pytest.fixture(scope="module")
def ck() -> Checkpoint:
    torch.manual_seed(0)
    return Checkpoint(NCSNUNet(channels=(8, 16, 16), emb_dim=16).eval(), geometric_sigmas(1.0, 0.1, 3), {})


def test_sample_is_seeded_batched_and_records_the_levels(ck, monkeypatch):
    for method, settings in [("annealed", {"n_steps_each": 2}), ("heun", {"n_steps": 3})]:
        a = sample(ck, 5, method, generator=torch.Generator().manual_seed(3), batch_size=2, **settings)
        b = sample(ck, 5, method, generator=torch.Generator().manual_seed(3), batch_size=2, **settings)
        assert a.shape == (5, 1, 28, 28) and torch.isfinite(a).all()
        torch.testing.assert_close(a, b)
        # the default batch is the device's entry of SAMPLE_BATCH: batches draw their noise in turn
        monkeypatch.setitem(sampling_module.SAMPLE_BATCH, "cpu", 2)
        torch.testing.assert_close(sample(ck, 5, method, generator=torch.Generator().manual_seed(3), **settings), a)
        monkeypatch.setitem(sampling_module.SAMPLE_BATCH, "cpu", 5)
        c = sample(ck, 5, method, generator=torch.Generator().manual_seed(3), **settings)
        assert not torch.allclose(c, a)
    x, traj = sample(ck, 2, "annealed", n_steps_each=2, record_every=2, denoise=True)
    # x_init, the end of each of the 3 levels, and the denoised result
    assert traj.shape == (5, 2, 1, 28, 28)
    torch.testing.assert_close(traj[-1], x)
    x, traj = sample(ck, 2, "heun", n_steps=4, record_every=1)
    assert traj.shape == (5, 2, 1, 28, 28)  # σ₀ … σ₃ and 0
    torch.testing.assert_close(traj[-1], x)


def test_sample_counts_and_checks_its_settings(ck):
    assert sampler_settings("annealed", n_steps_each=4, denoise=True).n_evaluations(ck) == 3 * 4 + 1
    assert sampler_settings("annealed", n_steps_each=1, sigmas=geometric_sigmas(1.0, 0.1, 7),
                            denoise=False).n_evaluations() == 7
    assert sampler_settings("heun", n_steps=18).n_evaluations() == 35
    with pytest.raises(ValueError, match="annealed sampler takes"):
        sample(ck, 2, "annealed", n_steps=3)
    with pytest.raises(ValueError, match="method must be one of"):
        sample(ck, 2, "euler")
    with pytest.raises(ValueError, match="n_steps"):
        HeunSampler(n_steps=1)
    with pytest.raises(ValueError, match="step_size"):
        AnnealedLangevinSampler(step_size=0.0)
    with pytest.raises(ValueError, match="checkpoint's levels"):
        SAMPLERS["annealed"].n_evaluations()


def test_the_registry_holds_the_course_settings_and_sample_takes_settings_objects(ck):
    assert DEFAULT_SAMPLER == "heun" and set(SAMPLERS) == {"heun", "annealed"}
    assert SAMPLERS["heun"] == HeunSampler(n_steps=18, sigma_max=40.0, sigma_min=0.002, rho=7.0, churn=40.0)
    assert dataclasses.asdict(SAMPLERS["annealed"]) == {"n_steps_each": 20, "step_size": 3e-5, "denoise": True,
                                                         "sigmas": None}
    with pytest.raises(dataclasses.FrozenInstanceError):
        SAMPLERS["heun"].n_steps = 3
    by_name = sample(ck, 2, "heun", n_steps=3, generator=torch.Generator().manual_seed(0))
    by_object = sample(ck, 2, HeunSampler(n_steps=3), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(by_name, by_object)


def test_heun_sample_of_the_network_matches_the_library_sampler(ck):
    # sample(..., "heun") is karras_sigmas + heun_sample from σ_max·z, nothing else
    got = sample(ck, 3, "heun", n_steps=4, sigma_max=5.0, sigma_min=0.01, generator=torch.Generator().manual_seed(1))
    levels = karras_sigmas(sigma_max=5.0, sigma_min=0.01, n=4)
    g = torch.Generator().manual_seed(1)
    x_init = 5.0 * torch.randn((3, 1, 28, 28), generator=g)  # then the churn's noise, from the same generator
    torch.testing.assert_close(got, heun_sample(ck.score, x_init, levels, churn=SAMPLERS["heun"].churn, generator=g))
    plain = sample(ck, 3, "heun", n_steps=4, sigma_max=5.0, sigma_min=0.01, churn=0.0,
                   generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(plain, heun_sample(ck.score, x_init, levels))
