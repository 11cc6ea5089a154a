"""Felt slider latency: every explorer in a real JupyterLab, moved by key presses in headless Chromium.

    python -m benchmarks.felt_latency [--presses 15]

A notebook shows the explorers of :mod:`benchmarks.widgets` (the same objects its headless
table times), one per cell. For each, the first slider's handle gets ``--presses`` arrow-key
presses, one at a time; each is timed in the page from the key's ``keydown`` until the
explorer's figure shows a new image, decoded, and two animation frames have passed (so it has
been painted). That is what a student waits for: the kernel's update, the PNG, the transfer
through the websocket, the decode and the layout. Between presses the page rests
``rest_ms``, so no press waits for the one before.

:func:`fast_drag` presses a key ``n`` times as fast as the browser takes them and records every
figure change after the last press: ipywidgets sends a slider's value only once the kernel has
finished with the one before (its message throttle), so a drag costs at most the update in
flight plus one, whatever its length.

Needs Debian's ``chromium`` and the ``playwright`` package (no browser download), like
``tests/test_browser.py``, which runs these functions.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from pathlib import Path

import nbformat

from benchmarks.jupyterlab_server import jupyterlab_server

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
FIGURE = ".widget-output img, img.widget-image"  # the explorer's figure, however it is displayed
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def explorer_notebook() -> nbformat.NotebookNode:
    """A notebook with every explorer of :func:`benchmarks.widgets._cases`, one per cell."""
    from benchmarks.widgets import _cases

    names = [name for name, *_ in _cases()]
    setup = (f"import sys\nsys.path.insert(0, {str(REPO)!r})\nfrom benchmarks.widgets import _cases\n"
             "cases = list(_cases())")
    cells = [nbformat.v4.new_code_cell(setup)]
    cells += [nbformat.v4.new_code_cell(f"# {name}\ncases[{i}][1]()") for i, name in enumerate(names)]
    return nbformat.v4.new_notebook(cells=cells)


def launch_chromium(pw):
    """Debian's Chromium, headless, through Playwright (which downloads no browser)."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@contextlib.contextmanager
def jupyterlab_with(notebook: nbformat.NotebookNode, name: str, tmp: Path):
    """JupyterLab serving ``notebook`` (on the python3 kernel) as ``name`` from a folder in ``tmp``,
    with every cell attached and laid out once (no virtualised cells moving under the test);
    yields (url, token)."""
    root = tmp / "root"
    root.mkdir(parents=True)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / name)
    settings = tmp / "home" / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    with jupyterlab_server(tmp, root, {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}) as server:
        yield server


def open_and_run(page, url: str, token: str, name: str, timeout_error, attempts: int = 3) -> None:
    """Open notebook ``name`` and Run > Run All Cells, until the first cell's prompt shows it is
    queued or has run."""
    page.goto(f"{url}/lab/tree/{name}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", state="visible")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached")
    prompt = page.locator(".jp-Cell .jp-InputPrompt").first
    for _ in range(attempts):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function("el => /\\[(\\*|\\d+)\\]/.test(el.textContent)", arg=prompt.element_handle(),
                                   timeout=10_000)
            return
        except timeout_error:  # the menu was not ready yet: try again
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells did not start the notebook")


# Arms a timer on the next keydown and resolves, in window.__felt, with the milliseconds from it
# to the first new figure image in `cell`, decoded and two animation frames later (painted).
_ARM = """([cell, selector]) => {
  const figure = () => cell.querySelector(selector);
  const old = figure() && figure().src;
  let t0 = null;
  document.addEventListener('keydown', () => { t0 = performance.now(); }, {capture: true, once: true});
  window.__felt = new Promise((resolve, reject) => {
    const check = () => {
      const img = figure();
      if (t0 === null || !img || img.src === old) return;
      observer.disconnect();
      img.decode().catch(() => {}).then(() =>
        requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0))));
    };
    const observer = new MutationObserver(check);
    observer.observe(cell, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
    setTimeout(() => { observer.disconnect(); reject(new Error('the figure did not change within 30 s')); }, 30000);
  });
}"""

# Records every keydown and every new figure image in `cell` (window.__log).
_LOG = """([cell, selector]) => {
  const log = {keys: [], figures: []};
  window.__log = log;
  let last = cell.querySelector(selector) && cell.querySelector(selector).src;
  document.addEventListener('keydown', () => log.keys.push(performance.now()), {capture: true});
  new MutationObserver(() => {
    const img = cell.querySelector(selector);
    if (img && img.src !== last) { last = img.src; log.figures.push(performance.now()); }
  }).observe(cell, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


def _key(handle) -> str:
    """ArrowRight, unless the slider is at its maximum."""
    now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    return "ArrowLeft" if now is not None and top is not None and float(now) >= float(top) else "ArrowRight"


def timed_presses(page, cell, presses: int = 7, rest_ms: int = 400) -> list[float]:
    """Milliseconds from each key press on ``cell``'s first slider to its new figure on screen."""
    handle = cell.locator(".noUi-handle").first
    handle.focus()
    times = []
    for _ in range(presses):
        page.evaluate(_ARM, [cell.element_handle(), FIGURE])
        handle.press(_key(handle))
        times.append(float(page.evaluate("() => window.__felt")))
        page.wait_for_timeout(rest_ms)
    return times


def fast_drag(page, cell, presses: int = 10, quiet_ms: int = 2000) -> dict:
    """Press ArrowRight ``presses`` times as fast as possible, then wait until the figure has not
    changed for ``quiet_ms``. Returns the figure changes after the last press (``after_last``),
    the milliseconds from the last press to the last figure (``settle_ms``) and the slider's
    readout."""
    handle = cell.locator(".noUi-handle").first
    handle.focus()
    page.evaluate(_LOG, [cell.element_handle(), FIGURE])
    for _ in range(presses):
        handle.press("ArrowRight")
    page.wait_for_function(
        f"() => {{ const l = window.__log; const t = Math.max(l.keys.at(-1), l.figures.at(-1) || 0); "
        f"return l.keys.length === {presses} && l.figures.length > 0 && performance.now() - t > {quiet_ms}; }}",
        timeout=60_000)
    log = page.evaluate("() => window.__log")
    last_key = log["keys"][-1]
    after = [t for t in log["figures"] if t > last_key]
    return {"figures": len(log["figures"]), "after_last": len(after),
            "settle_ms": (after[-1] - last_key) if after else 0.0,
            "readout": cell.locator(".widget-readout").first.inner_text()}


def felt_latency(presses: int = 7, screenshot=None) -> dict[str, list[float]]:
    """Explorer name → felt milliseconds of ``presses`` key presses, in a fresh JupyterLab."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from benchmarks.widgets import _cases

    names = [name for name, *_ in _cases()]
    with tempfile.TemporaryDirectory() as tmp, jupyterlab_with(explorer_notebook(), "explorers.ipynb",
                                                               Path(tmp)) as (url, token):
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(90_000)
            try:
                open_and_run(page, url, token, "explorers.ipynb", PlaywrightTimeout)
                cells = page.locator(".jp-Notebook .jp-Cell")
                for i in range(len(names)):  # every cell has run: the kernel is idle before the first press
                    cells.nth(i + 1).locator(FIGURE).first.wait_for(state="visible", timeout=180_000)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached")
                result = {}
                for i, name in enumerate(names):
                    cell = cells.nth(i + 1)
                    cell.scroll_into_view_if_needed()
                    result[name] = timed_presses(page, cell, presses)
                return result
            finally:
                if screenshot:
                    page.screenshot(path=str(screenshot))
                browser.close()


def latency_table(presses: int = 15) -> str:
    """Felt medians beside the headless ones of :func:`benchmarks.widgets.headless_latency`."""
    from benchmarks.widgets import headless_latency

    headless = headless_latency()
    felt = felt_latency(presses) if CHROMIUM.exists() else {}
    rows = ["| explorer | headless update incl. PNG, median (ms) | felt in JupyterLab, median (ms) | felt, max (ms) |",
            "| --- | ---: | ---: | ---: |"]
    for name, times in headless.items():
        f = felt.get(name)
        felt_cells = f"{statistics.median(f):.0f} | {max(f):.0f}" if f else "– | –"
        rows.append(f"| {name} | {statistics.median(times) * 1e3:.0f} | {felt_cells} |")
    note = (f"Felt: {presses} arrow-key presses per explorer in JupyterLab in headless Chromium, each from keydown "
            "to the new figure decoded and painted (`benchmarks/felt_latency.py`)."
            if felt else "Felt: not measured (needs /usr/bin/chromium and playwright).")
    return "\n".join(rows) + "\n\n" + note


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=15)
    args = parser.parse_args(argv)
    print(latency_table(args.presses))


if __name__ == "__main__":
    main()
