"""benchmarks/mnist/levers.py: each variant runs the documented train command (whose defaults are
RECIPE) with its options and is scored by samples; checked on a 2-step run (the numbers mean
nothing, the plumbing does)."""

import re

import pytest

from benchmarks.mnist import levers
from lessons_lib.mnist import RECIPE, load_checkpoint


@pytest.mark.slow
def test_lever_table_trains_each_variant_with_its_options_and_scores_it(tmp_path):
    only = ["seed 1", "wider U-Net (64, 128, 128)", "batch 128, half the steps"]
    table = levers.lever_table(n_steps=2, n=20, only=only, folder=tmp_path)
    rows = {name: line for line in table.splitlines() for name in ("seed 1", "wider", "batch 128")
            if line.startswith("| " + name)}
    assert len(rows) == 3, table
    for name, row in rows.items():
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == ("1" if name == "batch 128" else "2"), row
        assert float(cells[3]) > 0 and 0 <= float(cells[4]) <= 1, row
        assert re.fullmatch(r"0\.\d{3} \(\d\)", cells[5]), row
    wide = load_checkpoint(tmp_path / "variant_wider_U_Net__64__128__128_.pt")
    assert wide.model.config["channels"] == [64, 128, 128] and wide.meta["seed"] == 0
    seed1 = load_checkpoint(tmp_path / "variant_seed_1.pt")
    assert seed1.meta["seed"] == 1 and tuple(seed1.model.config["channels"]) == RECIPE.channels  # the shipped recipe
    assert seed1.meta["precision"] == wide.meta["precision"] == RECIPE.precision
    assert seed1.meta["batch_size"] == RECIPE.batch_size
    assert load_checkpoint(tmp_path / "variant_batch_128__half_the_steps.pt").meta["batch_size"] == 128


def test_lever_table_rejects_unknown_variants():
    with pytest.raises(ValueError, match="unknown variants"):
        levers.lever_table(only=["bigger"])
