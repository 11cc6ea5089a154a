"""The MNIST score network, its checkpoints, the command line and annealed in-painting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lessons_lib import mnist
from lessons_lib.densities import Gaussian
from lessons_lib.losses import ncsn_loss
from lessons_lib.nets import NCSNUNet
from lessons_lib.noise import geometric_sigmas
from lessons_lib.samplers import annealed_inpainting

# The test split shipped with the repository; the tests find it by the loader's own search.
BUNDLED_MNIST = Path(__file__).resolve().parents[1] / "data" / "mnist"


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


def test_checkpoint_round_trip(tmp_path):
    net = small_net().eval()
    sigmas = geometric_sigmas(1.0, 0.01, 5)
    path = tmp_path / "ck.pt"
    mnist.save_checkpoint(path, net, sigmas, {"steps": 7})
    ck = mnist.load_checkpoint(path)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(ck.score(x, 0.1), net(x, 0.1).detach())
    torch.testing.assert_close(ck.sigmas, sigmas)
    assert ck.meta == {"steps": 7}
    # the file is plain tensors and builtins: the safe loader reads it
    torch.load(path, weights_only=True)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="lessons_lib.mnist train"):
        mnist.load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        mnist.load_checkpoint(bad)


def test_sample_is_seeded_and_records_the_levels(tmp_path, monkeypatch):
    net = small_net().eval()
    mnist.save_checkpoint(tmp_path / "ck.pt", net, geometric_sigmas(1.0, 0.1, 3), {})
    ck = mnist.load_checkpoint(tmp_path / "ck.pt")
    for method, settings in [("annealed", {"n_steps_each": 2}), ("heun", {"n_steps": 3})]:
        a = mnist.sample(ck, 5, method, generator=torch.Generator().manual_seed(3), batch_size=2, **settings)
        b = mnist.sample(ck, 5, method, generator=torch.Generator().manual_seed(3), batch_size=2, **settings)
        assert a.shape == (5, 1, 28, 28) and torch.isfinite(a).all()
        torch.testing.assert_close(a, b)
        # the default batch is the device's entry of SAMPLE_BATCH: batches draw their noise in turn
        monkeypatch.setitem(mnist.SAMPLE_BATCH, "cpu", 2)
        torch.testing.assert_close(mnist.sample(ck, 5, method, generator=torch.Generator().manual_seed(3), **settings), a)
        monkeypatch.setitem(mnist.SAMPLE_BATCH, "cpu", 5)
        c = mnist.sample(ck, 5, method, generator=torch.Generator().manual_seed(3), **settings)
        assert not torch.allclose(c, a)
    x, traj = mnist.sample(ck, 2, "annealed", n_steps_each=2, record_every=2, denoise=True)
    # x0, the end of each of the 3 levels, and the denoised result
    assert traj.shape == (5, 2, 1, 28, 28)
    torch.testing.assert_close(traj[-1], x)
    x, traj = mnist.sample(ck, 2, "heun", n_steps=4, record_every=1)
    assert traj.shape == (5, 2, 1, 28, 28)  # σ₀ … σ₃ and 0
    torch.testing.assert_close(traj[-1], x)


def test_sample_counts_and_checks_its_settings():
    ck = mnist.Checkpoint(small_net().eval(), geometric_sigmas(1.0, 0.1, 3), {})
    assert mnist.n_evaluations(ck, "annealed", n_steps_each=4, denoise=True) == 3 * 4 + 1
    assert mnist.n_evaluations(ck, "annealed", n_steps_each=1, sigmas=geometric_sigmas(1.0, 0.1, 7),
                               denoise=False) == 7
    assert mnist.n_evaluations(ck, "heun", n_steps=18) == 35
    with pytest.raises(ValueError, match="annealed sampler takes"):
        mnist.sample(ck, 2, "annealed", n_steps=3)
    with pytest.raises(ValueError, match="method must be one of"):
        mnist.sample(ck, 2, "euler")


def test_heun_sample_of_the_network_matches_the_library_sampler():
    # mnist.sample("heun") is karras_sigmas + heun_sample from σ_max·z, nothing else
    from lessons_lib.sde import heun_sample, karras_sigmas

    ck = mnist.Checkpoint(small_net().eval(), geometric_sigmas(1.0, 0.1, 3), {})
    got = mnist.sample(ck, 3, "heun", n_steps=4, sigma_max=5.0, sigma_min=0.01,
                       generator=torch.Generator().manual_seed(1))
    levels = karras_sigmas(4, 0.01, 5.0)
    g = torch.Generator().manual_seed(1)
    x0 = 5.0 * torch.randn((3, 1, 28, 28), generator=g)  # then the churn's noise, from the same generator
    torch.testing.assert_close(got, heun_sample(ck.score, x0, levels, churn=mnist.HEUN["churn"], generator=g))
    plain = mnist.sample(ck, 3, "heun", n_steps=4, sigma_max=5.0, sigma_min=0.01, churn=0.0,
                         generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(plain, heun_sample(ck.score, x0, levels))


def test_edm_preconditioning_is_tweedie_of_its_denoiser():
    # s = (D − x)/σ² with D = c_skip·x + c_out·F(c_in·x): rebuild D from the U-Net by hand
    torch.manual_seed(0)
    net = NCSNUNet(channels=(8, 16, 16), emb_dim=16, preconditioning="edm", sigma_data=0.3).double().eval()
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    sigma = torch.tensor([0.01, 0.5, 20.0], dtype=torch.float64)
    s, sd = sigma.view(-1, 1, 1, 1), 0.3
    c_skip, c_out, c_in = sd**2 / (s**2 + sd**2), s * sd / (s**2 + sd**2).sqrt(), 1 / (s**2 + sd**2).sqrt()
    with torch.no_grad():
        denoised = c_skip * x + c_out * net._unet(c_in * x, sigma.log())
        torch.testing.assert_close(net(x, sigma), (denoised - x) / s**2)
        torch.testing.assert_close(net.denoise(x, sigma), denoised)
    with pytest.raises(ValueError, match="sigma_data"):
        NCSNUNet(preconditioning="edm")
    with pytest.raises(ValueError, match="preconditioning must be one of"):
        NCSNUNet(preconditioning="karras")


def test_edm_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    net = NCSNUNet(channels=(8, 16, 16), emb_dim=16, preconditioning="edm", sigma_data=0.33).eval()
    mnist.save_checkpoint(tmp_path / "ck.pt", net, geometric_sigmas(1.0, 0.01, 4), {})
    ck = mnist.load_checkpoint(tmp_path / "ck.pt")
    assert ck.model.preconditioning == "edm" and ck.model.sigma_data == 0.33
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(ck.score(x, 0.2), net(x, 0.2).detach())


def test_annealed_inpainting_samples_the_gaussian_conditional():
    # p = N(μ, Σ) in 2-D with correlation 0.8; keep x₁ = 2 and fill in x₂:
    # x₂ | x₁ ~ N(μ₂ + 0.8 (x₁ − μ₁), 1 − 0.8²) = N(−0.2, 0.36)
    gauss = Gaussian(torch.tensor([1.0, -1.0]), torch.tensor([[1.0, 0.8], [0.8, 1.0]]))
    perturbed = {}

    def score(x, sigma):
        if sigma not in perturbed:
            perturbed[sigma] = gauss.perturbed(sigma)
        return perturbed[sigma].score(x)

    image = torch.zeros(4000, 2)
    image[:, 0] = 2.0
    out = annealed_inpainting(score, image, torch.tensor([1.0, 0.0]), geometric_sigmas(2.0, 0.02, 8),
                              n_steps_each=100, step_lr=1e-3, generator=torch.Generator().manual_seed(0))
    assert (out[:, 0] == 2.0).all()
    assert abs(float(out[:, 1].mean()) - (-0.2)) < 0.04
    assert abs(float(out[:, 1].var()) - 0.36) < 0.04


def test_annealed_inpainting_rejects_bad_masks():
    score = lambda x, s: -x  # noqa: E731
    with pytest.raises(ValueError, match="0 .*1"):
        annealed_inpainting(score, torch.zeros(2, 3), torch.tensor([0.5, 1.0, 0.0]), [1.0, 0.5])
    with pytest.raises(ValueError, match="broadcast"):
        annealed_inpainting(score, torch.zeros(2, 3), torch.ones(4), [1.0, 0.5])


def test_cli_train_resume_and_sample(tmp_path, capsys):
    out = tmp_path / "ncsn.pt"
    common = ["train", "--out", str(out), "--batch-size", "8", "--checkpoint-every", "2", "--no-progress",
              "--n-sigmas", "4"]
    assert mnist.main(common + ["--steps", "2", "--noise", "levels"]) == 0
    assert out.is_file() and (tmp_path / "ncsn.state.pt").is_file()
    assert mnist.main(common + ["--steps", "3", "--resume", "--noise", "levels"]) == 0
    err = capsys.readouterr().err
    assert "test split" in err and "resuming from step 2" in err
    ck = mnist.load_checkpoint(out)
    assert ck.meta["steps"] == 3 and "lessons_lib.mnist train" in ck.meta["command"]
    assert len(ck.sigmas) == 4
    samples = tmp_path / "s.npy"
    assert mnist.main(["sample", "--checkpoint", str(out), "--n", "3", "--method", "annealed", "--steps-each", "1",
                       "--out", str(samples)]) == 0
    assert np.load(samples).shape == (3, 1, 28, 28)
    assert (tmp_path / "s.png").stat().st_size > 0
    # a progress bar over the network evaluations: 4 levels × 1 step + the denoising step
    assert "sampling 3 digits" in (err := capsys.readouterr().err) and "5/5" in err
    assert mnist.main(["sample", "--checkpoint", str(out), "--n", "2", "--steps", "3", "--no-progress",
                       "--out", str(samples)]) == 0
    assert "sampling" not in capsys.readouterr().err
    # the default: continuous σ with EDM's preconditioning, sampled by Heun
    edm = tmp_path / "edm.pt"
    assert mnist.main(["train", "--out", str(edm), "--batch-size", "8", "--steps", "2", "--no-progress"]) == 0
    ck = mnist.load_checkpoint(edm)
    assert ck.model.preconditioning == "edm" and ck.meta["training"]["noise"] == "edm"
    assert abs(ck.model.sigma_data - 0.33) < 0.01  # the RMS of MNIST pixels in [0, 1]
    assert mnist.main(["sample", "--checkpoint", str(edm), "--n", "2", "--steps", "3", "--out", str(samples)]) == 0
    assert "5/5" in capsys.readouterr().err  # Heun: 2·3 − 1 evaluations
    assert mnist.main(["sample", "--checkpoint", str(edm), "--method", "annealed", "--steps", "3",
                       "--out", str(samples)]) == 2
    assert "annealed sampler takes" in capsys.readouterr().err


def test_cosine_lr_decay_follows_torchs_schedule_and_channels_reach_the_network(tmp_path, monkeypatch):
    used = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    ck = mnist.train_ncsn(tmp_path / "c.pt", steps=4, batch_size=4, lr=1e-3, lr_decay="cosine", channels=(8, 16, 16),
                          progress=False)
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
    mnist.train_ncsn(tmp_path / "n.pt", steps=3, batch_size=4, channels=(8, 16, 16), progress=False)
    assert used == [1e-3] * 3  # "none": constant
    with pytest.raises(ValueError, match="lr_decay"):
        mnist.train_ncsn(tmp_path / "x.pt", steps=1, lr_decay="linear")


def test_bfloat16_training_and_scores_stay_close_to_float32(tmp_path, monkeypatch):
    # The same two steps (same weights, batches and noise) in float32 and under bfloat16
    # autocast: the first loss, computed from identical weights, differs by rounding only.
    runs = {p: mnist.train_ncsn(tmp_path / f"{p}.pt", steps=2, batch_size=16, channels=(8, 16, 16), precision=p,
                                progress=False) for p in mnist.PRECISIONS}
    first = {p: torch.load(tmp_path / f"{p}.state.pt", weights_only=True)["losses"][0] for p in runs}
    assert first["bfloat16"] != first["float32"]  # autocast did run
    assert first["bfloat16"] == pytest.approx(first["float32"], rel=0.02)
    ck = runs["bfloat16"]
    native = mnist.native_bfloat16(torch.device("cpu"))
    assert ck.meta["precision"] == "bfloat16" and ck.precision == ("bfloat16" if native else "float32")
    assert all(w.dtype == torch.float32 for w in ck.model.parameters())
    # scoring: the checkpoint's own precision (where the machine has it natively), float32 on request
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    as_trained = mnist.load_checkpoint(tmp_path / "bfloat16.pt", precision="bfloat16").score(x, 0.5)
    exact = mnist.load_checkpoint(tmp_path / "bfloat16.pt", precision="float32").score(x, 0.5)
    assert as_trained.dtype == torch.float32 and not torch.equal(as_trained, exact)
    assert (as_trained - exact).norm() < 0.02 * exact.norm()
    # a machine without native bfloat16 scores in float32, which is faster there
    monkeypatch.setattr(mnist, "native_bfloat16", lambda device: False)
    assert mnist.load_checkpoint(tmp_path / "bfloat16.pt").precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        mnist.train_ncsn(tmp_path / "x.pt", steps=1, precision="float16")
    with pytest.raises(ValueError, match="precision"):
        mnist.load_checkpoint(tmp_path / "bfloat16.pt", precision="half")


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    assert mnist.main(["sample", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "s.npy")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert mnist.main(["train", "--out", str(tmp_path / "x.pt"), "--steps", "1", "--resume", "--no-progress",
                       "--data", str(BUNDLED_MNIST)]) == 2
    assert "no training state" in capsys.readouterr().err


def test_shipped_checkpoint_loads_safely():
    ck = mnist.load_checkpoint()
    assert ck.meta["steps"] >= 1000 and "lessons_lib.mnist train" in ck.meta["command"]
    assert ck.model.preconditioning == "edm" and ck.meta["training"]["noise"] == "edm"
    assert mnist.DEFAULT_CHECKPOINT.stat().st_size < 5_000_000
    x = torch.rand(2, 1, 28, 28)
    assert torch.isfinite(ck.score(x, float(ck.sigmas[-1]))).all()


def test_shipped_checkpoint_denoises_heldout_digits_by_tweedie():
    # x̃ + σ²·s_θ(x̃, σ) estimates E[x | x̃]: on digits never trained on it must beat the noisy
    # image (mean squared error σ² per pixel) by far at every σ; s = 0 would only match it
    from lessons_lib.data import mnist_train_heldout

    ck = mnist.load_checkpoint()
    clean = mnist_train_heldout().heldout[:200]
    gen = torch.Generator().manual_seed(0)
    for sigma in (5.0, 1.0, 0.2):  # trained on a continuum of σ: none of these is one of ck.sigmas
        noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
        denoised = noisy + sigma**2 * ck.score(noisy, sigma)
        mse = (denoised - clean).pow(2).mean().item()
        assert mse < 0.2 * sigma**2, f"σ = {sigma:.3g}: Tweedie MSE {mse:.4g} against σ² = {sigma**2:.4g}"
