"""Bad input to the MNIST application: clear errors naming the argument or the file (issue 33)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lessons_lib.mnist import checkpoint as ckm
from lessons_lib.mnist import quality, sampling
from lessons_lib.mnist.unet import NCSNUNet
from lessons_lib.samplers import DivergenceError

NET = NCSNUNet((8, 8, 8))
IMAGES = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
U8 = (IMAGES * 255).to(torch.uint8)


@pytest.fixture(scope="module")
def shipped():
    return ckm.load_checkpoint()


ROWS = [
    ("NCSNUNet channels None", lambda: NCSNUNet(None), "channels"),
    ("NCSNUNet preconditioning", lambda: NCSNUNet((8, 8, 8), preconditioning="bogus"), "preconditioning"),
    ("NCSNUNet.forward numpy", lambda: NET(IMAGES.numpy(), 0.5), "x"),
    ("NCSNUNet.forward int", lambda: NET(U8, 0.5), "x"),
    ("NCSNUNet.forward meta", lambda: NET(torch.empty(2, 1, 28, 28, device="meta"), 0.5), "x"),
    ("NCSNUNet.forward sigma nan", lambda: NET(IMAGES, math.nan), "sigma"),
    ("load_checkpoint path int", lambda: ckm.load_checkpoint(3), "path"),
    ("load_checkpoint precision", lambda: ckm.load_checkpoint(precision="float16"), "precision"),
    ("save sigmas increasing", lambda: ckm.save_checkpoint("/tmp/x.pt", NET, [0.5, 1.0], {}), "sigmas"),
    ("save model str", lambda: ckm.save_checkpoint("/tmp/x.pt", "net", [1.0], {}), "model"),
    ("save meta set", lambda: ckm.save_checkpoint("/tmp/x.pt", NET, [1.0], {"x": {1, 2}}), "meta['x']"),
    ("HeunSampler churn nan", lambda: sampling.HeunSampler(churn=math.nan), "churn"),
    ("HeunSampler n_steps 1", lambda: sampling.HeunSampler(n_steps=1), "n_steps"),
    ("Annealed denoise str", lambda: sampling.AnnealedLangevinSampler(denoise="no"), "denoise"),
    ("Annealed step_size 0", lambda: sampling.AnnealedLangevinSampler(step_size=0.0), "step_size"),
    ("sampler_settings method None", lambda: sampling.sampler_settings(None), "method"),
    ("class_histogram uint8", lambda: quality.class_histogram(U8, quality.MNISTClassifier()), "float() / 255"),
    ("class_histogram 0..255 floats", lambda: quality.class_histogram(IMAGES * 255, quality.MNISTClassifier()),
     "/ 255"),
    ("class_histogram classifier str", lambda: quality.class_histogram(IMAGES, "clf"), "classifier"),
    ("sample_quality reference uint8", lambda: quality.sample_quality(IMAGES, U8, quality.MNISTClassifier()),
     "reference_images"),
    ("nearest_neighbours train uint8", lambda: quality.nearest_neighbours(IMAGES, U8), "train"),
    ("nearest_neighbours chunk 0", lambda: quality.nearest_neighbours(IMAGES, IMAGES, chunk=0), "chunk"),
    ("frechet_distance str", lambda: quality.frechet_distance("ab", np.zeros((3, 2))), "feats_a"),
]


@pytest.mark.parametrize("label, call, name", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_a_clear_error_naming_the_argument(label, call, name):
    with pytest.raises(ValueError) as info:
        call()
    assert name in str(info.value), str(info.value)


def test_sample_needs_a_checkpoint_not_a_path():
    with pytest.raises(ValueError, match="checkpoint must be a Checkpoint.*load_checkpoint"):
        sampling.sample(str(ckm.SCORE_CHECKPOINT), 1)


def test_a_33x_step_size_is_a_divergence_not_8e12_pixels(shipped):
    with pytest.raises(DivergenceError, match="left the scale.*step_size"):
        sampling.sample(shipped, 1, "annealed", n_steps_each=5, step_size=1e-3)


def test_save_checkpoint_writes_what_load_checkpoint_reads(tmp_path):
    path = tmp_path / "ck.pt"
    ckm.save_checkpoint(path, NET, np.array([1.0, 0.5]), {"loss": np.float32(0.25), "steps": np.int64(3),
                                                           "nested": {"lr": np.float64(1e-3)}})
    meta = ckm.load_checkpoint(path).meta
    assert (type(meta["loss"]), type(meta["steps"]), type(meta["nested"]["lr"])) == (float, int, float)


def test_a_failed_save_leaves_nothing_behind(tmp_path):
    path = tmp_path / "ck.pt"
    with pytest.raises(ValueError, match="meta"):
        ckm.save_checkpoint(path, NET, [1.0], {"f": lambda: 0})
    assert list(tmp_path.iterdir()) == []
    ckm.save_checkpoint(path, NET, [1.0], {})
    with pytest.raises(ValueError, match="sigmas"):
        ckm.save_checkpoint(path, NET, [0.5, 1.0], {})  # the old file stays, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"] and ckm.load_checkpoint(path)


def _files(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckm.SCORE_CHECKPOINT.read_bytes()[:5000])
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": object}, pickled)
    no_sigmas = tmp_path / "no_sigmas.pt"
    payload = torch.load(ckm.SCORE_CHECKPOINT, weights_only=True)
    torch.save({k: v for k, v in payload.items() if k != "sigmas"}, no_sigmas)
    return {"foreign": foreign, "truncated": truncated, "pickled": pickled, "no_sigmas": no_sigmas}


@pytest.mark.parametrize("kind, says", [("foreign", "no 'model'"), ("truncated", "truncated"),
                                        ("pickled", "Python objects"), ("no_sigmas", "no 'sigmas'")])
def test_both_loaders_name_the_file_and_say_what_it_is_not(tmp_path, kind, says):
    path = _files(tmp_path)[kind]
    with pytest.raises(ValueError) as info:
        ckm.load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "not a score-network checkpoint" in message and says in message
    assert "weights_only" not in message
    with pytest.raises(ValueError) as info:
        quality.load_classifier(path)
    assert str(path) in str(info.value) and "is not the MNIST classifier" in str(info.value)
    assert "weights_only" not in str(info.value)
