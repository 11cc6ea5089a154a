"""The student edition: the instructor notebooks with every solution replaced by a stub.

    python -m lessons_lib.course.student_edition notebooks student      # (make student)

In each notebook (the marks are those of :mod:`lessons_lib.course.markers`):

* each code solution region becomes ``# YOUR CODE HERE`` and the stub, indented like the
  region; the lines around it (the signature, the docstring, the ``# Hint:`` comments) stay;
* markdown solution regions and the Think model answers are removed (a cell left empty is
  dropped); a written answer cell (model answer and rubric) becomes the empty answer cell
  ``*Your answer (graded by hand, N points):*``;
* the first notebook of each problem set opens with the set's introduction (what it covers,
  its points, how long it should take, what "not attempted yet" means), generated from the
  registry; jupytext's pairing metadata is dropped;
* the outputs of the cells that held a solution, and of the check cells, are cleared; every
  other cell, its outputs included (figures), is unchanged.

Every ``*.ipynb`` at the top of the source folder is converted; the other files there (data,
images), except the notebooks' jupytext ``.py`` sources, are copied along, so that relative
paths keep working. The edition is generated, never committed (``student/`` is git-ignored).
For nbgrader, :mod:`lessons_lib.course.homework` writes the problem sets as an nbgrader course.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

from .markers import (
    MarkerError,
    answer_stub,
    cell_source,
    drop_model_answers,
    is_check_cell,
    split_written,
    strip_markdown,
    stub_code,
    written_answer,
)

__all__ = ["student_notebook", "generate", "copy_companions", "clear_outputs", "strip_pairing", "intro_cell",
           "main"]


def clear_outputs(cell: dict) -> None:
    cell["outputs"] = []
    cell["execution_count"] = None


def strip_pairing(nb: dict) -> None:
    """Drop jupytext's pairing metadata: a student's JupyterLab would otherwise write a ``.py``
    (with their answers) next to the notebook on every save."""
    nb.get("metadata", {}).pop("jupytext", None)


def intro_cell(stem: str) -> dict | None:
    """The markdown cell that opens the problem set whose first lesson is ``stem``, else None."""
    from .problem_sets import PROBLEM_SETS, intro_markdown

    name = next((n for n, (_, stems) in PROBLEM_SETS.items() if stems[0] == stem), None)
    if name is None:
        return None
    return {"cell_type": "markdown", "id": f"intro-{name}", "metadata": {},
            "source": intro_markdown(name).splitlines(keepends=True)}


def student_notebook(nb: dict, name: str = "notebook", intro: bool = False) -> tuple[dict, int]:
    """The student edition of a notebook (its JSON as a dict); returns (notebook, n_exercises).

    ``name`` is used in error messages (a file name: its stem says which lesson it is). With
    ``intro``, a notebook that opens a problem set starts with the set's introduction
    (:func:`intro_cell`). The input is not modified.
    """
    nb = json.loads(json.dumps(nb))
    strip_pairing(nb)
    cells = []
    n_exercises = 0
    for index, cell in enumerate(nb.get("cells", []), start=1):
        source = cell_source(cell)
        first = next((line for line in source.split("\n") if line.strip()), "")
        where = f"{name}, cell {index} ({cell.get('cell_type')} cell starting {first[:60]!r})"
        answer = written_answer(source, where) if cell.get("cell_type") == "markdown" else None
        if answer is not None:  # the markdown around it, if any, as any markdown cell
            before, after = (drop_model_answers(strip_markdown(text, where)[0], where)[0]
                             for text in (answer.before, answer.after))
            answer = dataclasses.replace(answer, before=before, after=after)
            cells += split_written(cell, answer, answer_stub(answer.points))
            n_exercises += 1
            continue
        if cell.get("cell_type") == "code":
            new, n = stub_code(source, where)
            if n or is_check_cell(cell):
                clear_outputs(cell)
        elif cell.get("cell_type") == "markdown":
            new, n = strip_markdown(source, where)
            new, n_answers = drop_model_answers(new, where)
            if (n or n_answers) and not new.strip():
                n_exercises += n
                continue
            if n_answers:
                cell["source"] = new.splitlines(keepends=True)
        else:
            new, n = source, 0
        n_exercises += n
        if n:
            cell["source"] = new.splitlines(keepends=True)  # the layout nbformat writes
        cells.append(cell)
    if intro and (first_cell := intro_cell(Path(name).stem)) is not None:
        if nb.get("nbformat", 4) == 4 and nb.get("nbformat_minor", 5) < 5:
            first_cell.pop("id")  # cell ids arrived with nbformat 4.5
        cells.insert(0, first_cell)
    nb["cells"] = cells
    return nb, n_exercises


def _is_jupytext_source(path: Path) -> bool:
    return path.suffix == ".py" and path.with_suffix(".ipynb").exists()


def generate(src: Path | str, dst: Path | str) -> list[Path]:
    """Write the student edition of every notebook in ``src`` into ``dst``; return the paths.

    ``dst`` is created (emptied first if it exists: the edition is generated, never edited);
    files in ``src`` that are neither notebooks nor their jupytext sources are copied along.
    """
    src, dst = Path(src), Path(dst)
    notebooks = sorted(src.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {src}")
    if dst.resolve() == src.resolve():
        raise ValueError("the student edition must go to a folder of its own, not over the instructor notebooks")
    # Convert everything first, so that a malformed notebook leaves no half-written edition.
    editions = []
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        editions.append((path.name, *student_notebook(nb, path.name, intro=True)))
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    written = []
    for filename, nb, n in editions:
        out = dst / filename
        out.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        written.append(out)
        print(f"{out}: {n} solution region(s) replaced")
    copy_companions(src, dst)
    return written


def copy_companions(src: Path, dst: Path) -> None:
    """Copy what the notebooks in ``src`` may read (data, images) to ``dst``: every file and
    folder except the notebooks, their jupytext sources, hidden files and caches."""
    for path in sorted(Path(src).iterdir()):
        if path.suffix == ".ipynb" or _is_jupytext_source(path) or path.name.startswith("."):
            continue
        if path.name == "__pycache__":
            continue
        target = Path(dst) / path.name
        if path.is_dir():
            shutil.copytree(path, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        else:
            shutil.copy2(path, target)


def main(argv: list[str]) -> None:
    if len(argv) != 2 or any(a.startswith("-") for a in argv):
        raise SystemExit(
            "usage: python -m lessons_lib.course.student_edition SOURCE_DIR DEST_DIR\n"
            "(for nbgrader: python -m lessons_lib.course.homework NOTEBOOKS_DIR COURSE_DIR)"
        )
    try:
        generate(*argv)
    except (MarkerError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main(sys.argv[1:])
