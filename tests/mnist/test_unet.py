"""NCSNUNet: shapes, per-sample σ, input checks, the two preconditionings, and that it can learn a score."""

from __future__ import annotations

import pytest
import torch

from lessons_lib.losses import ncsn_loss
from lessons_lib.mnist import NCSNUNet
from lessons_lib.noise import geometric_sigmas


def small_net(seed: int = 0) -> NCSNUNet:
    torch.manual_seed(seed)
    return NCSNUNet(channels=(8, 16, 16), emb_dim=16)


def test_unet_shapes_and_per_sample_sigma():
    net = small_net().eval()
    x = torch.rand(3, 1, 28, 28)
    sigmas = torch.tensor([1.0, 0.1, 0.01])
    out = net(x, sigmas)
    assert out.shape == x.shape
    # each sample is conditioned on its own level: the batch equals the samples one by one
    one_by_one = torch.cat([net(x[i:i + 1], float(sigmas[i])) for i in range(3)])
    torch.testing.assert_close(out, one_by_one, rtol=1e-4, atol=1e-4)
    # a number is the same level for the whole batch
    torch.testing.assert_close(net(x, 0.1), net(x, torch.full((3,), 0.1)))


def test_unet_output_scales_like_one_over_sigma_at_initialisation():
    # σ·s(x, σ) is the network's raw output, of order one at every level
    net = small_net()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        raw = [float((s * net(x, s)).abs().mean()) for s in (1.0, 0.01)]
    assert all(0.001 < r < 10 for r in raw)


def test_unet_rejects_wrong_input():
    net = small_net()
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        net(torch.rand(2, 28, 28), 0.1)
    with pytest.raises(ValueError, match="sigma"):
        net(torch.rand(2, 1, 28, 28), -1.0)
    with pytest.raises(ValueError, match="channels"):
        NCSNUNet(channels=(8, 16))


@pytest.fixture
def one_thread():
    # a tiny network: one thread is faster, and immune to oversubscribed cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_unet_learns_the_score_of_a_gaussian_image_distribution(one_thread):
    # data: every pixel N(0.5, 0.1²) independently; the score of p_σ is −(x − 0.5)/(0.01 + σ²)
    torch.manual_seed(0)
    net = small_net()
    sigmas = geometric_sigmas(1.0, 0.1, 4)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(60):
        x = 0.5 + 0.1 * torch.randn(8, 1, 28, 28, generator=g)
        loss = ncsn_loss(net, x, sigmas, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        for sigma in (1.0, 0.1):
            # where p_σ puts its mass: x ~ N(0.5, 0.1² + σ²) per pixel
            x = 0.5 + (0.01 + sigma**2) ** 0.5 * torch.randn(16, 1, 28, 28, generator=g)
            truth = -(x - 0.5) / (0.01 + sigma**2)
            rel = float((net(x, sigma) - truth).norm() / truth.norm())
            assert rel < 0.3, (sigma, rel)


def test_edm_preconditioning_is_tweedie_of_its_denoiser():
    # s = (D − x)/σ² with D = c_skip·x + c_out·F(c_in·x): rebuild D from the U-Net F by hand
    torch.manual_seed(0)
    net = NCSNUNet(channels=(8, 16, 16), emb_dim=16, preconditioning="edm", sigma_data=0.3).double().eval()
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    sigma = torch.tensor([0.01, 0.5, 20.0], dtype=torch.float64)
    s, sd = sigma.view(-1, 1, 1, 1), 0.3
    c_skip, c_out, c_in = sd**2 / (s**2 + sd**2), s * sd / (s**2 + sd**2).sqrt(), 1 / (s**2 + sd**2).sqrt()
    with torch.no_grad():
        denoised = c_skip * x + c_out * net.unet(c_in * x, sigma.log())
        torch.testing.assert_close(net(x, sigma), (denoised - x) / s**2)
        torch.testing.assert_close(net.denoise(x, sigma), denoised)
    with pytest.raises(ValueError, match="sigma_data"):
        NCSNUNet(preconditioning="edm")
    with pytest.raises(ValueError, match="preconditioning must be one of"):
        NCSNUNet(preconditioning="karras")


def test_ncsnv2_preconditioning_divides_the_unet_by_sigma():
    net = small_net().double().eval()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    sigma = torch.tensor([0.05, 3.0], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(x, sigma), net.unet(x, sigma.log()) / sigma.view(-1, 1, 1, 1))
