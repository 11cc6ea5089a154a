"""Headless Chromium and JupyterLab for the browser tests and the felt-latency benchmark.

* :func:`launch_chromium`: Debian's ``/usr/bin/chromium`` through Playwright (which downloads
  no browser), with the arguments a sandboxless headless run needs.
* :func:`jupyterlab_server`: JupyterLab of this Python environment on 127.0.0.1, a free port, a
  random token, HOME and runtime directory inside a temporary folder (nothing of the user's is
  read); :func:`serve_notebook` puts one notebook in its root.
* :func:`open_and_run`, :func:`timed_presses`, :func:`fast_drag`: drive a notebook's explorers
  with the keyboard; :func:`felt_latency` does it for every case of
  :data:`lessons_lib.explorers.cases.EXPLORER_CASES`.

A press is timed in the page from the key's ``keydown`` until the explorer's figure shows a new
image, decoded, and two animation frames have passed (so it has been painted): the kernel's
update, the PNG, the transfer through the websocket, the decode and the layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
FIGURE = ".widget-output img, img.widget-image"  # an explorer's figure, however it is displayed


def launch_chromium(pw):
    """Debian's Chromium, headless, from a ``sync_playwright()`` context ``pw``."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


# --- JupyterLab ---


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, token: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer {url}/api/status within {timeout:.0f} s")


def get_json(url: str, token: str):
    """GET ``url`` from the server with its token; the decoded JSON."""
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@contextlib.contextmanager
def jupyterlab_server(tmp_path: Path, root: Path, extra_env: dict | None = None):
    """JupyterLab of this Python environment serving ``root``; yields (base url, token).

    HOME is ``tmp_path / "home"``; the server's log is at ``tmp_path / "jupyterlab.log"``."""
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ, HOME=str(tmp_path / "home"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               **(extra_env or {}))
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, token, proc)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def serve_notebook(notebook: nbformat.NotebookNode, name: str, tmp: Path):
    """JupyterLab serving ``notebook`` (on the python3 kernel, inline matplotlib) as ``name`` from a
    folder in ``tmp``, with every cell attached and laid out once (no virtualised cells moving
    under the test); yields (url, token)."""
    root = tmp / "root"
    root.mkdir(parents=True)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / name)
    settings = tmp / "home" / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    with jupyterlab_server(tmp, root, {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}) as server:
        yield server


# --- driving a notebook's explorers ---


def open_and_run(page, url: str, token: str, name: str, attempts: int = 3) -> None:
    """Open notebook ``name`` and Run > Run All Cells, until the first cell's prompt shows it is
    queued or has run."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

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
        except PlaywrightTimeout:  # the menu was not ready yet: try again
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
    """Milliseconds from each key press on ``cell``'s first slider to its new figure on screen;
    between presses the page rests ``rest_ms``, so no press waits for the one before."""
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
    changed for ``quiet_ms``. Returns the number of figure changes (``figures``), those after the
    last press (``after_last``), the milliseconds from the last press to the last figure
    (``settle_ms``) and the slider's readout.

    ipywidgets sends a slider's value only once the kernel has finished with the one before (its
    message throttle), so a drag costs at most the update in flight plus one, whatever its length."""
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


def explorer_notebook() -> nbformat.NotebookNode:
    """A notebook that shows every explorer of ``EXPLORER_CASES``, one per cell after a set-up cell."""
    from lessons_lib.explorers.cases import EXPLORER_CASES

    cells = [nbformat.v4.new_code_cell("from lessons_lib.explorers.cases import EXPLORER_CASES")]
    cells += [nbformat.v4.new_code_cell(f"# {case.name}\nEXPLORER_CASES[{i}].build()")
              for i, case in enumerate(EXPLORER_CASES)]
    return nbformat.v4.new_notebook(cells=cells)


def felt_latency(presses: int = 7, screenshot: Path | None = None) -> dict[str, list[float]]:
    """Case name → felt milliseconds of ``presses`` key presses on its explorer's first slider, in
    a fresh JupyterLab; a screenshot of the page at the end goes to ``screenshot``, if given."""
    from playwright.sync_api import sync_playwright

    from lessons_lib.explorers.cases import EXPLORER_CASES

    with tempfile.TemporaryDirectory() as tmp, serve_notebook(explorer_notebook(), "explorers.ipynb",
                                                              Path(tmp)) as (url, token):
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(90_000)
            try:
                open_and_run(page, url, token, "explorers.ipynb")
                cells = page.locator(".jp-Notebook .jp-Cell")
                for i in range(len(EXPLORER_CASES)):  # every cell has run: the kernel is idle before the first press
                    cells.nth(i + 1).locator(FIGURE).first.wait_for(state="visible", timeout=180_000)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached")
                result = {}
                for i, case in enumerate(EXPLORER_CASES):
                    cell = cells.nth(i + 1)
                    cell.scroll_into_view_if_needed()
                    result[case.name] = timed_presses(page, cell, presses)
                return result
            finally:
                if screenshot:
                    page.screenshot(path=str(screenshot))
                browser.close()
