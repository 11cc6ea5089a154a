"""Every bad flag of ``python -m lessons_lib.mnist``: exit code 2, one line on stderr naming the flag,
before any work, nothing written (issue 33)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lessons_lib.mnist.__main__ import main

ROOT = Path(__file__).resolve().parents[2]

BAD_FLAGS = [  # (arguments, what the one line must name)
    (["sample", "--threads", "-1"], "--threads"),
    (["sample", "--n", "0"], "--n "),
    (["sample", "--n", "abc"], "--n"),
    (["sample", "--method", "annealed", "--step-size", "-1"], "--step-size"),
    (["sample", "--method", "annealed", "--step-size", "nan"], "--step-size"),
    (["sample", "--method", "annealed", "--n-steps-each", "0"], "--n-steps-each"),
    (["sample", "--n-steps", "1"], "--n-steps"),
    (["sample", "--sigma-max", "inf"], "--sigma-max"),
    (["sample", "--churn", "-2"], "--churn"),
    (["sample", "--seed", "-1"], "--seed"),
    (["sample", "--device", "gpu9"], "gpu9"),
    (["sample", "--out", "{tmp}/samples"], "--out"),
    (["sample", "--out", "{tmp}/no_such_dir/x.npy"], "no_such_dir"),
    (["sample", "--checkpoint", "{tmp}/missing.pt"], "missing.pt"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--n-steps", "0"], "--n-steps"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--threads", "-1"], "--threads"),
    (["train", "--ema-decay", "1.5"], "--ema-decay"),
    (["train", "--sigma-min", "20"], "larger than sigma_min"),
    (["train", "--channels", "8", "0", "8"], "--channels"),
    (["train", "--checkpoint-every", "0"], "--checkpoint-every"),
    (["train", "--seed", "-5"], "--seed"),
    (["train", "--out", "{tmp}/no_such_dir/ncsn.pt"], "no_such_dir"),
]


def _args(flags, tmp_path):
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    if "--out" not in flags:
        flags += ["--out", str(tmp_path / ("s.npy" if flags[0] == "sample" else "ncsn.pt"))]
    return flags + ["--no-progress"]


@pytest.mark.parametrize("flags, name", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_a_bad_flag_is_one_line_and_exit_code_2_before_any_work(flags, name, tmp_path, capsys):
    threads = torch.get_num_threads()
    if "abc" in flags:  # argparse's own error, on one line
        with pytest.raises(SystemExit, match="2"):
            main(_args(flags, tmp_path))
    else:
        assert main(_args(flags, tmp_path)) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert torch.get_num_threads() == threads


@pytest.mark.slow
def test_the_command_line_never_prints_a_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for flags in (["sample", "--threads", "-1"],
                  ["sample", "--method", "annealed", "--n-steps-each", "5", "--step-size", "1e-3", "--n", "1"]):
        proc = subprocess.run([sys.executable, "-m", "lessons_lib.mnist", *flags, "--out", str(tmp_path / "s.npy")],
                              capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
        lines = [line for line in proc.stderr.splitlines() if line.strip() and "%|" not in line]
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
        assert list(tmp_path.iterdir()) == []


def test_a_diverging_sampler_ends_the_progress_bar_line_before_the_error(tmp_path, capsys):
    code = main(["sample", "--method", "annealed", "--n-steps-each", "5", "--step-size", "1e-3", "--n", "1",
                 "--out", str(tmp_path / "s.npy")])
    err = capsys.readouterr().err
    assert code == 2 and list(tmp_path.iterdir()) == []
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("error: ") and "left the scale" in last and "step_size" in last
