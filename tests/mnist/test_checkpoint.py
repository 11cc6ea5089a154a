"""Checkpoints: the file format round trip, the errors, the shipped checkpoint."""

from __future__ import annotations

import pytest
import torch

from lessons_lib.mnist import SCORE_CHECKPOINT, NCSNUNet, load_checkpoint, mnist_train_heldout, save_checkpoint
from lessons_lib.noise import geometric_sigmas


def small_net(seed: int = 0, **kwargs) -> NCSNUNet:
    torch.manual_seed(seed)
    return NCSNUNet(channels=(8, 16, 16), emb_dim=16, **kwargs)


def test_checkpoint_round_trip(tmp_path):
    net = small_net().eval()
    sigmas = geometric_sigmas(1.0, 0.01, 5)
    path = tmp_path / "ck.pt"
    save_checkpoint(path, net, sigmas, {"steps": 7})
    ck = load_checkpoint(path)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(ck.score(x, 0.1), net(x, 0.1).detach())
    torch.testing.assert_close(ck.sigmas, sigmas)
    assert ck.meta == {"steps": 7}
    # the file is plain tensors and builtins: the safe loader reads it
    torch.load(path, weights_only=True)


def test_edm_checkpoint_round_trip(tmp_path):
    net = small_net(preconditioning="edm", sigma_data=0.33).eval()
    save_checkpoint(tmp_path / "ck.pt", net, geometric_sigmas(1.0, 0.01, 4), {})
    ck = load_checkpoint(tmp_path / "ck.pt")
    assert ck.model.preconditioning == "edm" and ck.model.sigma_data == 0.33
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(ck.score(x, 0.2), net(x, 0.2).detach())


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="lessons_lib.mnist train"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint(bad)
    save_checkpoint(tmp_path / "ck.pt", small_net(), geometric_sigmas(1.0, 0.01, 4), {})
    with pytest.raises(ValueError, match="precision"):
        load_checkpoint(tmp_path / "ck.pt", precision="half")


def test_shipped_checkpoint_loads_safely():
    ck = load_checkpoint()
    assert ck.meta["steps"] >= 1000 and "lessons_lib.mnist train" in ck.meta["command"]
    assert ck.model.preconditioning == "edm"
    assert SCORE_CHECKPOINT.stat().st_size < 5_000_000
    x = torch.rand(2, 1, 28, 28)
    assert torch.isfinite(ck.score(x, float(ck.sigmas[-1]))).all()


@pytest.mark.slow
def test_shipped_checkpoint_denoises_heldout_digits_by_tweedie():
    # x̃ + σ²·s_θ(x̃, σ) estimates E[x | x̃]: on digits never trained on it must beat the noisy
    # image (mean squared error σ² per pixel) by far at every σ; s = 0 would only match it
    ck = load_checkpoint()
    clean = mnist_train_heldout().heldout[:200]
    gen = torch.Generator().manual_seed(0)
    for sigma in (5.0, 1.0, 0.2):  # trained on a continuum of σ: none of these is one of ck.sigmas
        noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
        denoised = noisy + sigma**2 * ck.score(noisy, sigma)
        mse = (denoised - clean).pow(2).mean().item()
        assert mse < 0.2 * sigma**2, f"σ = {sigma:.3g}: Tweedie MSE {mse:.4g} against σ² = {sigma**2:.4g}"
