"""The repository is self-contained: a fresh clone with nothing beside it runs every test and
every lesson offline. (The suite itself runs that way: see conftest.py.)"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from lessons_lib.mnist.data import BUNDLED_MNIST_DIR, load_mnist, mnist_search_path

ROOT = Path(__file__).resolve().parents[2]
# The folder CI keeps beside the clone (students have none), spelt so this line is no match.
OUTSIDE = re.compile(r"\b" + "sha" + r"red[/\\]")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.splitlines()]


def test_suite_runs_with_nothing_outside_the_repository():
    home = Path(os.environ["HOME"])
    assert home.name.startswith("lessons-lib-tests-home-")
    assert "LESSONS_LIB_MNIST_DIR" not in os.environ and "XDG_CACHE_HOME" not in os.environ
    searched = mnist_search_path()
    assert searched == [BUNDLED_MNIST_DIR, home / ".cache" / "lessons_lib" / "mnist"]
    assert BUNDLED_MNIST_DIR == ROOT / "data" / "mnist"
    assert not searched[1].exists()  # so the test split below can only come from the repository
    x, y = load_mnist("test")
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)


def test_no_file_points_outside_the_repository():
    offenders = []
    for path in _tracked_files():
        if path.suffix not in {".py", ".md", ".toml", ".yml", ".cfg", ".ipynb", ".txt"} and path.name != "Makefile":
            continue  # .ci/run alone may use what CI keeps beside the clone
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "references to folders outside the repository:\n" + "\n".join(offenders)


def test_bundled_data_and_checkpoints_are_tracked():
    tracked = {str(p.relative_to(ROOT)) for p in _tracked_files()}
    for name in (
        "data/mnist/t10k-images-idx3-ubyte.gz",
        "data/mnist/t10k-labels-idx1-ubyte.gz",
        "data/mnist/README.md",
        "checkpoints/ncsn_mnist.pt",
        "checkpoints/mnist_classifier.pt",
    ):
        assert name in tracked, f"{name} must be committed: a fresh clone needs it"
