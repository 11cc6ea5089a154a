"""python -m lessons_lib.mnist: train, resume and sample; defaults are RECIPE; errors without a traceback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from lessons_lib.mnist import RECIPE, SAMPLERS, load_checkpoint
from lessons_lib.mnist.__main__ import main, parser, recipe_of

# The test split shipped with the repository; the tests find it by the loader's own search.
BUNDLED_MNIST = Path(__file__).resolve().parents[2] / "data" / "mnist"


def test_train_defaults_are_the_recipe():
    assert recipe_of(parser().parse_args(["train"])) == RECIPE
    changed = recipe_of(parser().parse_args(["train", "--n-steps", "7", "--objective", "ncsn", "--channels", "8", "16",
                                             "16"]))
    assert changed == dataclasses.replace(RECIPE, n_steps=7, objective="ncsn", channels=(8, 16, 16))


def test_sample_offers_every_registered_sampler_and_its_settings():
    args = parser().parse_args(["sample"])
    assert args.method == "heun"
    for sampler in SAMPLERS.values():
        for f in dataclasses.fields(sampler):
            if "help" in f.metadata:
                assert getattr(args, f.name) is None  # None: the sampler's own default
    args = parser().parse_args(["sample", "--method", "annealed", "--n-steps-each", "3", "--step-size", "1e-4",
                                "--no-denoise"])
    assert (args.n_steps_each, args.step_size, args.denoise) == (3, 1e-4, False)


def test_cli_train_resume_and_sample(tmp_path, capsys):
    out = tmp_path / "ncsn.pt"
    common = ["train", "--out", str(out), "--batch-size", "8", "--checkpoint-every", "2", "--no-progress",
              "--n-sigmas", "4", "--channels", "8", "16", "16", "--precision", "float32"]
    assert main(common + ["--n-steps", "2", "--objective", "ncsn"]) == 0
    assert out.is_file() and (tmp_path / "ncsn.state.pt").is_file()
    assert main(common + ["--n-steps", "3", "--resume", "--objective", "ncsn"]) == 0
    err = capsys.readouterr().err
    assert "test split" in err and "resuming from step 2" in err
    ck = load_checkpoint(out)
    assert ck.meta["steps"] == 3 and "lessons_lib.mnist train" in ck.meta["command"]
    first, resumed = ck.meta["commands"]  # both runs are on record, the one that chose the recipe first
    assert first == ck.meta["command"] and "--resume" not in first and "--resume" in resumed
    assert len(ck.sigmas) == 4 and ck.meta["training"]["objective"] == "ncsn"
    samples = tmp_path / "s.npy"
    assert main(["sample", "--checkpoint", str(out), "--n", "3", "--method", "annealed", "--n-steps-each", "1",
                 "--out", str(samples)]) == 0
    assert np.load(samples).shape == (3, 1, 28, 28)
    assert (tmp_path / "s.png").stat().st_size > 0
    # a progress bar over the network evaluations: 4 levels × 1 step + the denoising step
    assert "sampling 3 digits" in (err := capsys.readouterr().err) and "5/5" in err
    assert main(["sample", "--checkpoint", str(out), "--n", "2", "--n-steps", "3", "--no-progress",
                 "--out", str(samples)]) == 0
    assert "sampling" not in capsys.readouterr().err
    # the default objective: continuous σ with EDM's preconditioning, sampled by Heun
    edm = tmp_path / "edm.pt"
    assert main(["train", "--out", str(edm), "--batch-size", "8", "--n-steps", "2", "--no-progress",
                 "--channels", "8", "16", "16"]) == 0
    ck = load_checkpoint(edm)
    assert ck.model.preconditioning == "edm" and ck.meta["training"]["objective"] == "edm"
    assert abs(ck.model.sigma_data - 0.33) < 0.01  # the RMS of MNIST pixels in [0, 1]
    assert main(["sample", "--checkpoint", str(edm), "--n", "2", "--n-steps", "3", "--out", str(samples)]) == 0
    assert "5/5" in capsys.readouterr().err  # Heun: 2·3 − 1 evaluations
    assert main(["sample", "--checkpoint", str(edm), "--method", "annealed", "--n-steps", "3",
                 "--out", str(samples)]) == 2
    assert "annealed sampler takes" in capsys.readouterr().err


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "s.npy")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "x.pt"), "--n-steps", "1", "--resume", "--no-progress",
                 "--data-dir", str(BUNDLED_MNIST)]) == 2
    assert "no training state" in capsys.readouterr().err
