"""End to end in a real browser: JupyterLab + headless Chromium + the explorers.

Starts JupyterLab on 127.0.0.1 (random port and token, temporary root, HOME and runtime
directory), opens a small notebook that trains a σ-conditioned score network briefly and shows
the :class:`~lessons_lib.explorers.SigmaExplorer`, runs all cells, drags the σ slider with the
keyboard and checks that the figure changed, that the drag left no backlog and that the kernel
drew the value the slider shows. Then every explorer of
:data:`lessons_lib.explorers.cases.EXPLORER_CASES` gets key presses, each of which must bring a
new figure (their felt latency is recorded, not asserted).
Screenshots and the latencies go to ``artifacts/`` (git-ignored).

Needs Debian's ``chromium`` (apt) and the ``playwright`` Python package (no browser download).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from lessons_lib.explorers.cases import EXPLORER_CASES
from tools.browser import CHROMIUM, FIGURE, fast_drag, felt_latency, launch_chromium, open_and_run, serve_notebook

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")

NOTEBOOK_CELLS = [
    """import torch
from lessons_lib import seed_everything
from lessons_lib.explorers import SigmaExplorer
from lessons_lib.losses import ncsn_loss
from lessons_lib.nets import ScoreMLP
from lessons_lib.noise import geometric_sigmas
from lessons_lib.toy_data import mixture_1d
from lessons_lib.training import train

seed_everything(0)
torch.set_num_threads(1)
p = mixture_1d()
sigmas = geometric_sigmas(sigma_max=5.0, sigma_min=0.02, n=30)
model = ScoreMLP(1, hidden=32, sigma_conditioned=True)
_ = train(model, lambda m, x, g: ncsn_loss(m, x, sigmas, generator=g), p.sample, n_steps=300, batch_size=128,
          lr=3e-3, progress=False)""",
    """explorer = SigmaExplorer(p, model, sigma=0.3, sigma_range=(0.02, 5.0))
explorer""",
]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server whose root holds the σ-explorer notebook; yields (base url, token)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS])
    # (no "Jupyter news?" toast either: `make setup` switches it off for the environment)
    try:
        with serve_notebook(nb, "sigma_explorer.ipynb", tmp_path) as server:
            yield server
    finally:
        shutil.copy(tmp_path / "jupyterlab.log", _artifacts() / "browser_jupyterlab.log")


def _artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _pixels(png: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png")


def _settled_screenshot(page, figure, path: Path, polls: int = 150) -> bytes:
    """A screenshot of ``figure`` once its image and position have stopped changing.

    While the notebook is still laying out, Playwright's element screenshot can find the image
    "not stable" or detached. Instead, poll the image's source and box every 0.2 s; when two
    polls agree, capture that region of the page (which needs no element handle). The image is
    scrolled to the middle of the notebook with plain DOM calls, which do not wait for stability."""
    last = None
    for _ in range(polls):
        try:
            figure.evaluate("img => img.scrollIntoView({block: 'center'})", timeout=2_000)
            state = (figure.get_attribute("src", timeout=2_000), figure.bounding_box(timeout=2_000))
        except sync_api.Error:  # replaced between two calls: poll again
            state = None
        if state is not None and state[1] is not None and state == last:
            return page.screenshot(path=str(path), clip=state[1])
        last = state
        page.wait_for_timeout(200)
    raise AssertionError(f"the figure kept changing for {polls * 0.2:.0f} s; last box {last and last[1]}")


def test_sigma_slider_redraws_the_figure_in_jupyterlab(jupyterlab):
    url, token = jupyterlab
    out = _artifacts()
    with sync_api.sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            page.set_default_timeout(60_000)
            open_and_run(page, url, token, "sigma_explorer.ipynb")
            cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
            figure = cell.locator(FIGURE).first
            figure.wait_for(state="visible", timeout=90_000)
            readout = cell.locator(".widget-readout").first
            message = cell.locator(".widget-html-content").first
            assert readout.inner_text() == "0.300"
            page.wait_for_function(
                "() => document.querySelector('.widget-html-content')?.textContent.includes('σ = 0.300')")
            before = _settled_screenshot(page, figure, out / "browser_sigma_before.png")
            page.screenshot(path=str(out / "browser_page_before.png"))

            # a fast drag: 30 key presses, each moving log10 σ by 0.01, as fast as the browser takes them
            drag = fast_drag(page, cell, presses=30)
            shown = float(drag["readout"])
            assert shown == pytest.approx(0.3 * 10**0.3, rel=0.03)
            # no backlog: ipywidgets sends a value only when the kernel is done with the one before,
            # so after the last press at most the update in flight and the last value are drawn ...
            assert 1 <= drag["after_last"] <= 2, drag
            # ... and the figure and the message that end the drag are those of the value the slider shows
            assert f"σ = {shown:.3f}" in message.inner_text()
            after = _settled_screenshot(page, figure, out / "browser_sigma_after.png")
            page.screenshot(path=str(out / "browser_page_after.png"))
            assert "blur TV" in message.inner_text()
        except Exception:
            page.screenshot(path=str(out / "browser_failure.png"))
            raise
        finally:
            browser.close()

    a, b = _pixels(before), _pixels(after)
    assert a.shape == b.shape, "the figure changed size"
    changed = np.abs(a - b).max(axis=-1) > 0.1
    assert changed.mean() > 0.005, f"only {changed.mean():.2%} of the figure's pixels changed"


def test_every_explorer_redraws_on_each_key_press_and_its_felt_latency_is_recorded():
    # each press waits (in the page) for a new figure, decoded and painted, or fails after 30 s;
    # the times go to artifacts/ and, through benchmarks/ux/felt_latency.py, to the benchmarks, never into an assert
    felt = felt_latency(presses=3, screenshot=_artifacts() / "browser_explorers.png")
    assert list(felt) == [case.name for case in EXPLORER_CASES]
    for name, times in felt.items():
        assert len(times) == 3 and all(t > 0 for t in times), (name, times)
    (_artifacts() / "browser_felt_latency.json").write_text(json.dumps(felt, indent=1))
