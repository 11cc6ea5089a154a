"""End to end in a real browser: JupyterLab + headless Chromium + the σ explorer of lesson 04.

Starts JupyterLab on 127.0.0.1 (random port and token, temporary root, HOME and runtime
directory), opens a small notebook that trains a σ-conditioned score network briefly and shows
the :class:`~lessons_lib.widgets.SigmaExplorer`, runs all cells, moves the σ slider with the
keyboard and checks that the figure changed and that the kernel saw the value the slider shows.
Screenshots go to ``artifacts/`` (git-ignored).

Needs Debian's ``chromium`` (apt) and the ``playwright`` Python package (no browser download).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from _jupyterlab import jupyterlab_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")

NOTEBOOK_CELLS = [
    """import torch
from lessons_lib import seed_everything
from lessons_lib.data import mixture_1d
from lessons_lib.losses import ncsn_loss
from lessons_lib.nets import ScoreMLP
from lessons_lib.noise import geometric_sigmas
from lessons_lib.training import train
from lessons_lib.widgets import SigmaExplorer

seed_everything(0)
torch.set_num_threads(1)
p = mixture_1d()
sigmas = geometric_sigmas(5.0, 0.02, 30)
model = ScoreMLP(1, hidden=32, sigma_conditioned=True)
_ = train(model, lambda m, x, g: ncsn_loss(m, x, sigmas, generator=g), p.sample, n_steps=300, batch_size=128, lr=3e-3, progress=False)""",
    """explorer = SigmaExplorer(p, model, sigma=0.3, sigma_range=(0.02, 5.0))
explorer""",
]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server whose root holds the σ-explorer notebook; yields (base url, token)."""
    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "sigma_explorer.ipynb")
    # every cell attached and laid out once: no virtualised cells moving or re-attaching under the test
    # (no "Jupyter news?" toast either: `make setup` switches it off for the environment)
    settings = tmp_path / "home" / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    try:
        with jupyterlab_server(tmp_path, root, {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}) as server:
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


def _run_all_cells(page, timeout_error, attempts: int = 3) -> None:
    """Run > Run All Cells, until the first cell's prompt shows it is queued or has run."""
    prompt = page.locator(".jp-Cell .jp-InputPrompt").first
    for _ in range(attempts):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function("el => /\\[(\\*|\\d+)\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=10_000)
            return
        except timeout_error:  # the menu was not ready yet: try again
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells did not start the notebook")


def test_sigma_slider_redraws_the_figure_in_jupyterlab(jupyterlab):
    url, token = jupyterlab
    out = _artifacts()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            page.set_default_timeout(60_000)
            page.goto(f"{url}/lab/tree/sigma_explorer.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", state="visible")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached")

            _run_all_cells(page, sync_api.TimeoutError)

            figure = page.locator(".widget-output img").first
            figure.wait_for(state="visible", timeout=90_000)
            readout = page.locator(".widget-readout").first
            message = page.locator(".widget-html-content").first
            assert readout.inner_text() == "0.300"
            page.wait_for_function("() => document.querySelector('.widget-html-content')?.textContent.includes('σ = 0.300')")
            before = _settled_screenshot(page, figure, out / "browser_sigma_before.png")
            source_before = figure.get_attribute("src")
            page.screenshot(path=str(out / "browser_page_before.png"))

            handle = page.locator(".widget-slider .noUi-handle").first
            handle.focus()
            for _ in range(30):  # each key press moves log10 σ by one step of 0.01
                handle.press("ArrowRight")
            shown = float(readout.inner_text())
            assert shown == pytest.approx(0.3 * 10**0.3, rel=0.03)
            # the kernel redraws for the value the slider shows: wait for its message, then the new image
            page.wait_for_function(
                "text => document.querySelector('.widget-html-content')?.textContent.includes(text)",
                arg=f"σ = {shown:.3f}", timeout=90_000,
            )
            page.wait_for_function(
                "old => { const img = document.querySelector('.widget-output img'); return img && img.src !== old; }",
                arg=source_before,
            )
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
