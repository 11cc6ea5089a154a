"""The exercise checks of lessons 04–05 accept the reference and reject the usual mistakes."""

import math

import pytest
import torch

from lessons_lib.checks import check_dsm_loss, check_langevin_step
from lessons_lib.samplers import langevin_step


def dsm_reference(score_fn, x, sigma, z):
    return 0.5 * (score_fn(x + sigma * z) + z / sigma).pow(2).flatten(1).sum(1).mean()


def test_dsm_check_accepts_the_reference(capsys):
    check_dsm_loss(dsm_reference)
    assert "correct" in capsys.readouterr().out


def test_checks_say_not_attempted_for_a_stub(capsys):
    def stub(*args):
        raise NotImplementedError

    check_dsm_loss(stub)
    check_langevin_step(stub)
    out = capsys.readouterr().out
    assert out.count("not attempted yet") == 2


@pytest.mark.parametrize(
    "wrong",
    [
        lambda f, x, s, z: 0.5 * (f(x + s * z) - z / s).pow(2).sum(1).mean(),  # wrong sign of the target
        lambda f, x, s, z: (f(x + s * z) + z / s).pow(2).sum(1).mean(),  # no ½
        lambda f, x, s, z: 0.5 * (f(x + s * z) + z / s).pow(2).mean(),  # mean over dimensions
        lambda f, x, s, z: 0.5 * (f(x + s * z) + z * s).pow(2).sum(1).mean(),  # z·σ instead of z/σ
    ],
    ids=["sign", "half", "mean_dims", "z_times_sigma"],
)
def test_dsm_check_rejects_typical_mistakes(wrong):
    with pytest.raises(AssertionError, match="dsm_loss"):
        check_dsm_loss(wrong)


def test_langevin_check_accepts_the_reference(capsys):
    check_langevin_step(langevin_step)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, s, e, z: x + e / 2 * s + math.sqrt(e) * z, "Song & Ermon"),
        (lambda x, s, e, z: x + e * s + e * z, "√\\(2ε\\)"),
        (lambda x, s, e, z: x - e * s + math.sqrt(2 * e) * z, "expected"),
    ],
    ids=["alpha_form", "noise_scale", "sign"],
)
def test_langevin_check_rejects_typical_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_langevin_step(wrong)


def test_checks_do_not_touch_the_global_generator():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    check_langevin_step(langevin_step)
    check_dsm_loss(dsm_reference)
    assert torch.equal(torch.rand(1), before)
