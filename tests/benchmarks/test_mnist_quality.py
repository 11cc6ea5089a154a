"""benchmarks/mnist/quality.py: the tables' plumbing on a network trained for one step (the numbers mean nothing)."""

import pytest

from benchmarks.mnist import quality as mnist_quality
from lessons_lib.mnist import SAMPLERS, train_ncsn
from lessons_lib.mnist import checkpoint as checkpoint_module

TINY = {"n_steps": 1, "batch_size": 4, "channels": (8, 16, 16), "progress": False}


@pytest.mark.slow
def test_quality_table_adds_a_float32_row_for_a_bfloat16_network(tmp_path, monkeypatch):
    # every sampler row is scored, and a network that samples in bfloat16 is also scored in
    # float32 with the course's sampler, so the table shows what the rounding costs
    monkeypatch.setattr(checkpoint_module, "native_bfloat16", lambda device: True)  # bfloat16 on any machine
    path = tmp_path / "b.pt"
    train_ncsn(path, precision="bfloat16", **TINY)
    table = mnist_quality.quality_table(path, n=8)
    assert "the network in bfloat16" in table.splitlines()[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    labels = [r[0][2:] for r in rows]
    assert "the course's, the network in float32 instead of bfloat16" in labels
    # real, noise, the registry's samplers and Heun at other step counts, float32, the SDE samplers
    assert len(rows) == 2 + len(mnist_quality.mnist_rows(15)) + 1 + 4
    assert all(float(r[3]) >= 0 for r in rows)  # every row got a Fréchet distance


@pytest.mark.slow
def test_settings_table_changes_one_heun_setting_per_row(tmp_path):
    path = tmp_path / "s.pt"
    train_ncsn(path, **TINY)
    table = mnist_quality.settings_table(path, n=6, settings=[{}, {"n_steps": 4}, {"rho": 3.0}])
    rows = [line.split(" | ") for line in table.splitlines()[4:]]
    assert [r[0][2:] for r in rows] == ["none (the course's)", "n_steps = 4", "rho = 3"]
    course = SAMPLERS["heun"].n_evaluations()
    assert [int(r[1]) for r in rows] == [course, 7, course]
    assert rows[0][2] != rows[2][2]  # a different ρ gives different samples
