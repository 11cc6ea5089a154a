"""Build the course book: a static site from the committed, executed notebooks.

    python -m tools.build_book              # (make book) into _build/book
    python -m tools.build_book OUT_DIR

Nothing is executed: each page shows the outputs CI checked, so the build takes seconds. The
pages are made in a staging folder (``OUT_DIR/../book_src``) from ``book/`` (the Sphinx
configuration, the landing page, the style sheet) and the notebooks, each changed for a reader:

* an exercise appears as the student sees it: its solution region replaced by the stub, and
  the solution itself right after it, collapsed behind **Show solution**;
* the outputs of exercise and check cells are left out (as in the student edition);
* the Think model answers stay as they are in the notebooks: collapsed ``<details>`` blocks;
* an explorer's cell shows the PNG of its initial state that the explorer puts beside its
  widget view, with a note that the sliders work in JupyterLab;
* under each lesson's title, a box says how to run it: the two commands of the README, and a
  Binder link when ``BOOK_REPOSITORY=owner/name`` names the course's GitHub repository.

The landing page gets the table of lessons (titles from the notebooks, one line each from the
README's course table), the README's short benchmarks summary, and the σ explorer's figure from
lesson 04. MathJax comes from the ``jupyter-server-mathjax`` package and is served with the
site, so the maths renders from disk without the internet.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lessons_lib.course.markers import BEGIN_CODE, END_CODE, cell_source, is_check_cell, stub_code

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
EXPLORER_FIGURE = ("04_denoising_score_matching", "SigmaExplorer(")
RUN_BOX = """<div class="run-lesson">

**Run this lesson.** In a clone of the course: `make course` (sets everything up and opens
JupyterLab), then open `notebooks/{name}.ipynb`; `make test` runs every check. {binder}
The sliders of the explorers work only in a running notebook.

</div>"""
# Set BOOK_REPOSITORY=owner/name (the course's GitHub repository) to link each lesson to Binder.
BINDER = "https://mybinder.org/v2/gh/{repository}/HEAD?urlpath=lab/tree/notebooks/{name}.ipynb"
WIDGET_NOTE = (
    '<p class="widget-note">In JupyterLab this figure is a live explorer with sliders; '
    "here it shows its initial state.</p>"
)


def _markdown(text: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def _solution_block(source: str) -> str:
    lines = source.split("\n")
    body = [line for line in lines if line.strip() not in (BEGIN_CODE, END_CODE)]
    return (
        '<details class="solution"><summary>Show solution</summary>\n\n'
        "```python\n" + "\n".join(body).strip("\n") + "\n```\n\n</details>"
    )


def book_notebook(nb: dict, name: str) -> dict:
    """The notebook as the book shows it (see the module's docstring); the input is not changed."""
    nb = json.loads(json.dumps(nb))
    nb["metadata"].pop("widgets", None)  # no widget state: the page would load the widgets' JS from a CDN
    cells = []
    for index, cell in enumerate(nb["cells"]):
        source = cell_source(cell)
        if cell["cell_type"] == "code" and BEGIN_CODE in source:
            stub, _ = stub_code(source, f"{name}, cell {index + 1}")
            cell["source"], cell["outputs"] = stub, []
            cells += [cell, _markdown(_solution_block(source), f"book-solution-{index}")]
            continue
        if is_check_cell(cell):
            cell["outputs"] = []
        cells.append(cell)
        if cell["cell_type"] == "code" and any(WIDGET_MIME in o.get("data", {}) for o in cell.get("outputs", [])):
            cells.append(_markdown(WIDGET_NOTE, f"book-widget-note-{index}"))
        if index == 0 and cell["cell_type"] == "markdown":
            cells.append(_markdown(RUN_BOX.format(name=name, binder=_binder(name)), "book-run-lesson"))
    nb["cells"] = cells
    return nb


def _binder(name: str) -> str:
    repository = os.environ.get("BOOK_REPOSITORY", "").strip()
    if not repository:
        return "Binder builds the same environment from `environment.yml`."
    return f"Or [run it on Binder]({BINDER.format(repository=repository, name=name)}), built from `environment.yml`."


def _title(nb: dict) -> str:
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^#\s+(.+)$", cell_source(cell), re.MULTILINE)
            if match:
                return match.group(1).strip()
    raise ValueError("a lesson needs a '# Title' in its first markdown cell")


def _readme_descriptions() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\|\s*`(\d\d_\w+)`\s*\|\s*(.+?)\s*\|\s*$", readme, re.MULTILINE))


def _explorer_png(notebooks: dict[str, dict]) -> bytes:
    stem, marker = EXPLORER_FIGURE
    for cell in notebooks[stem]["cells"]:
        if cell["cell_type"] == "code" and marker in cell_source(cell):
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}):
                    return base64.b64decode(output["data"]["image/png"])
    raise ValueError(f"{stem}: no stored figure for the cell that makes the {marker[:-1]}; re-execute the notebook")


def _landing_page(notebooks: dict[str, dict]) -> str:
    text = (BOOK / "index.md").read_text(encoding="utf-8")
    described = _readme_descriptions()
    rows = ["| lesson | what you learn |", "| --- | --- |"]
    rows += [f"| [{_title(nb)}]({stem}) | {described.get(stem, '')} |" for stem, nb in notebooks.items()]
    toctree = "```{toctree}\n:hidden:\n:caption: Lessons\n\n" + "\n".join(notebooks) + "\n```"
    text = re.sub(r"<!-- LESSONS:.*?-->", "\n".join(rows), text)
    return re.sub(r"<!-- TOCTREE:.*?-->", toctree, text)


def stage(out: Path) -> Path:
    """Write the book's sources into a staging folder beside ``out``; return that folder."""
    staging = out.parent / "book_src"
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(BOOK, staging)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    notebooks = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in paths}
    for stem, nb in notebooks.items():
        page = json.dumps(book_notebook(nb, stem), ensure_ascii=False)
        (staging / f"{stem}.ipynb").write_text(page, encoding="utf-8")
    (staging / "index.md").write_text(_landing_page(notebooks), encoding="utf-8")
    (staging / "_static" / "sigma_explorer.png").write_bytes(_explorer_png(notebooks))
    (staging / "_readme.md").write_text((ROOT / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    teaching = (ROOT / "docs" / "teaching.md").read_text(encoding="utf-8")
    (staging / "teaching.md").write_text(teaching.replace("](../README.md)", "](index)"), encoding="utf-8")
    import jupyter_server_mathjax

    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", staging / "_static" / "mathjax")
    return staging


def build(out: Path | str = ROOT / "_build" / "book", timeout: float = 600) -> Path:
    """Stage and build the book into ``out`` (HTML); return the path of its landing page."""
    out = Path(out).resolve()
    staging = stage(out)
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", str(staging), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"sphinx-build failed ({done.returncode}):\n{done.stderr[-4000:]}")
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)
    return out / "index.html"


def main(argv: list[str]) -> None:
    index = build(*(Path(a) for a in argv[:1]))
    print(f"The book is at {index}")


if __name__ == "__main__":
    main(sys.argv[1:])
