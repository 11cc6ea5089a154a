"""The course book, built from the committed notebooks and opened from disk in headless Chromium
with every request off the disk refused: each page has its title, its figures load, the maths is
rendered (no raw TeX delimiters left in the visible text), and no solution code shows before its
toggle is clicked. Screenshots go to ``artifacts/`` (git-ignored)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import build_book
from tools.browser import CHROMIUM, launch_chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")

LESSONS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _solutions(stem: str) -> list[str]:
    """The first line of code of each solution region of a lesson."""
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8"))
    found = []
    for cell in nb["cells"]:
        lines = "".join(cell["source"]).split("\n") if cell["cell_type"] == "code" else []
        for i, line in enumerate(lines):
            if line.strip() == build_book.BEGIN_CODE:
                found.append(lines[i + 1].strip())
    return found


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    return build_book.build(tmp_path_factory.mktemp("book") / "html")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        browser = launch_chromium(pw)
        yield browser
        browser.close()


def _open(browser, path: Path, refused: list[str]):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})

    def local_only(route):
        if route.request.url.startswith("file://"):
            return route.continue_()
        refused.append(route.request.url)
        return route.abort()

    page.route("**/*", local_only)
    page.goto(path.as_uri())
    # MathJax (on pages with maths) has typeset everything once its queue has run dry
    page.wait_for_function(
        "() => !document.querySelector('script[src*=\"MathJax.js\"]') || (window.MathJax && MathJax.isReady)",
        timeout=120_000)
    page.evaluate("() => new Promise(done => window.MathJax && MathJax.Hub ? MathJax.Hub.Queue(done) : done())")
    return page


@pytest.mark.parametrize("page_name", ["index", "teaching", *LESSONS])
def test_book_page_renders_offline(book, browser, page_name):
    ARTIFACTS.mkdir(exist_ok=True)
    refused: list[str] = []
    page = _open(browser, book.parent / f"{page_name}.html", refused)
    try:
        text = page.locator("article").inner_text()
        title = page.locator("article h1").first.inner_text()
        assert title.strip(), "no title"
        if page_name.startswith("0"):
            assert title.startswith(f"Lesson {int(page_name[:2])} — "), title
        for raw in ("\\(", "\\)", "\\[", "$$"):
            assert raw not in text, f"raw TeX {raw!r} left in the visible text"
        if page_name != "teaching":
            assert page.locator("mjx-container, .MathJax_CHTML, .MathJax").count() > 0, "no rendered maths"
        images = page.eval_on_selector_all("article img",
                                           "imgs => imgs.map(i => [i.currentSrc, i.complete, i.naturalWidth])")
        if page_name.startswith("0") or page_name == "index":
            assert images, "no figures"
        for src, complete, width in images:
            assert complete and width > 0, f"image did not load: {src[:80]}"
        for solution in _solutions(page_name) if page_name.startswith("0") else []:
            assert solution not in text, f"solution visible before its toggle: {solution!r}"
        page.screenshot(path=str(ARTIFACTS / f"book_{page_name}.png"))
        toggles = page.locator("details.solution > summary")
        if toggles.count():
            toggles.first.click()
            assert _solutions(page_name)[0] in page.locator("article").inner_text(), "the toggle shows no solution"
            toggles.first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"book_{page_name}_solution.png"))
        assert not refused, f"the page asked the network for {refused[:3]}"
    finally:
        page.close()
