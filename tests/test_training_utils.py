import pytest
import torch

from lessons_lib.data import mixture_2d
from lessons_lib.densities import Gaussian
from lessons_lib.losses import dsm_loss, esm_loss
from lessons_lib.nets import LinearScore, ScoreMLP
from lessons_lib.training import train
from lessons_lib.utils import get_device, seed_everything


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


def test_seed_everything_and_device():
    g = seed_everything(3)
    a = torch.randn(3), torch.randn(3, generator=g)
    g = seed_everything(3)
    b = torch.randn(3), torch.randn(3, generator=g)
    torch.testing.assert_close(a, b)
    assert get_device() == torch.device("cpu") and get_device("cpu").type == "cpu"
    assert get_device("auto").type in {"cpu", "cuda"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        get_device("banana")
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_score_mlp_checks_its_input():
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        ScoreMLP(2)(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="sigma"):
        ScoreMLP(2, sigma_conditioned=True)(torch.zeros(3, 2))
    out = ScoreMLP(2, sigma_conditioned=True)(torch.zeros(3, 2), torch.tensor([0.1, 1.0, 2.0]))
    assert out.shape == (3, 2)
