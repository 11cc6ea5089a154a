"""Each notebook's jupytext source (.py) and its committed .ipynb hold the same cells.

Contents are compared, not timestamps (a git checkout sets timestamps arbitrarily)."""

import re
from pathlib import Path

import jupytext
import pytest
from jupytext.compare import compare_notebooks

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_py_and_ipynb_in_sync(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `make notebooks NB={source.stem}`"
    compare_notebooks(jupytext.read(ipynb), jupytext.read(source), fmt="py:percent")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_has_outputs(source):
    nb = jupytext.read(source.with_suffix(".ipynb"))
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), (
        f"{source.stem}.ipynb was not executed top to bottom: run `make notebooks NB={source.stem}`"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_lesson_titles_share_one_style(source):
    """'# Lesson N — Title' as the first heading of every lesson (the book's sidebar lists them)."""
    first_heading = next(line for line in source.read_text(encoding="utf-8").splitlines() if line.startswith("# # "))
    assert re.fullmatch(rf"# # Lesson {int(source.stem[:2])} — \S.*", first_heading), first_heading


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_lesson_text_has_no_control_characters(source):
    """A LaTeX command written into a non-raw Python string loses its backslash: \\theta becomes
    a tab and "heta", \\frac a form feed and "rac"; the rendered maths then breaks silently."""
    text = source.read_text(encoding="utf-8")
    bad = sorted({(n, repr(c)) for n, line in enumerate(text.splitlines(), 1) for c in line
                  if ord(c) < 32 or ord(c) == 127})
    assert not bad, f"{source.name}: control characters at (line, char) {bad[:10]}"
