import math

import pytest
import torch

from lessons_lib.noise import geometric_sigmas, perturb, sigma_like, validate_sigmas
from lessons_lib.sde import (
    VESDE,
)


def test_geometric_sigmas_are_largest_first_with_a_constant_ratio():
    s = geometric_sigmas(50.0, 0.01, 10, dtype=torch.float64)
    assert s[0].item() == pytest.approx(50.0) and s[-1].item() == pytest.approx(0.01)
    ratios = s[1:] / s[:-1]
    torch.testing.assert_close(ratios, torch.full((9,), (0.01 / 50.0) ** (1 / 9), dtype=torch.float64))
    assert (ratios < 1).all()


@pytest.mark.parametrize(
    "args, match",
    [((1.0, 2.0, 5), "larger"), ((1.0, 0.0, 5), "sigma_min"), ((-1.0, 0.1, 5), "sigma_max"), ((1.0, 0.1, 1), "n")],
)
def test_geometric_sigmas_reject_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        geometric_sigmas(*args)


def test_validate_sigmas():
    assert validate_sigmas([3.0, 2.0, 1.0]).shape == (3,)
    with pytest.raises(ValueError, match="largest to smallest"):
        validate_sigmas([1.0, 1.0])
    with pytest.raises(ValueError, match="1-D"):
        validate_sigmas([[1.0]])


def test_perturb_adds_sigma_times_standard_noise():
    x = torch.full((200_000, 2), 3.0, dtype=torch.float64)
    xt, z = perturb(x, 0.5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(xt, x + 0.5 * z)
    assert abs(z.mean().item()) < 0.01 and abs(z.var().item() - 1) < 0.01
    # one level per sample broadcasts over any trailing shape
    imgs = torch.zeros(4, 1, 3, 3)
    sig = torch.tensor([0.1, 1.0, 2.0, 4.0])
    xt, z = perturb(imgs, sig, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(xt, sig.view(4, 1, 1, 1) * z)


def test_sigma_like_rejects_bad_levels():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="batch"):
        sigma_like(torch.ones(3), x)
    for bad in [0, -1.0, math.inf, torch.tensor([1.0, 0.0, 1.0, 1.0])]:
        with pytest.raises(ValueError, match="sigma"):
            sigma_like(bad, x)


# --------------------------------------------------------------------------- EDM's Heun sampler
def test_karras_sigmas_endpoints_and_limits():
    from lessons_lib.noise import karras_sigmas

    s = karras_sigmas(80.0, 0.002, 18)
    assert len(s) == 19 and s[-1] == 0 and (s[1:] < s[:-1]).all()
    assert math.isclose(float(s[0]), 80.0, rel_tol=1e-12) and math.isclose(float(s[-2]), 0.002, rel_tol=1e-12)
    equal_steps = torch.linspace(9.0, 1.0, 5, dtype=torch.float64)
    torch.testing.assert_close(karras_sigmas(9.0, 1.0, 5, rho=1.0)[:-1], equal_steps)
    # ρ → ∞ tends to equal ratios, the geometric schedule of the VESDE grid
    sde = VESDE(sigma_max=50.0, sigma_min=0.01)
    geometric = torch.tensor([sde.sigma(t) for t in torch.linspace(1, 0, 6).tolist()], dtype=torch.float64)
    torch.testing.assert_close(karras_sigmas(50.0, 0.01, 6, rho=1e5)[:-1], geometric, rtol=1e-3, atol=0)
    with pytest.raises(ValueError, match="sigma_max must be larger"):
        karras_sigmas(1.0, 2.0, 5)
