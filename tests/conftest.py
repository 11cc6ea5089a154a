"""Suite-wide set-up: every test, and every notebook kernel nbval starts, runs as on a fresh
clone with nothing beside it.

Before the first test, ``LESSONS_LIB_MNIST_DIR`` and ``XDG_CACHE_HOME`` are removed from the
environment and ``HOME`` points at an empty temporary folder, so MNIST can come only from the
repository's own ``data/mnist`` and nothing from a user cache or a folder beside the checkout
can make a test pass. ``tests/repo/test_self_contained.py`` checks that this holds.

Every notebook that nbval collects is marked ``notebooks``, so ``make check`` can leave out the
slow kinds (``-m "not slow and not browser and not notebooks"``) while ``make test`` runs them all.
"""

import os
import shutil
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")

ISOLATED_HOME_PREFIX = "lessons-lib-tests-home-"
_home = None


def pytest_configure(config):
    global _home
    _home = tempfile.mkdtemp(prefix=ISOLATED_HOME_PREFIX)
    for name in ("LESSONS_LIB_MNIST_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        os.environ.pop(name, None)
    os.environ["HOME"] = _home


def pytest_unconfigure(config):
    if _home is not None:
        shutil.rmtree(_home, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
