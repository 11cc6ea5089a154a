"""The student edition: the instructor notebooks with every solution replaced by a stub.

    python -m lessons_lib.student_edition notebooks student      # (make student)

(For nbgrader, :mod:`lessons_lib.homework` writes the problem sets as an nbgrader course.)

Solutions are marked as nbgrader marks them, on lines of their own:

* in code cells, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become
  ``# YOUR CODE HERE`` and ``raise NotImplementedError(...)``, indented like the
  ``### BEGIN SOLUTION`` line; the lines around the region (the signature, the docstring, the
  ``# Hint:`` comments above it) stay;
* in markdown cells, the lines between ``<!-- BEGIN SOLUTION -->`` and
  ``<!-- END SOLUTION -->`` are removed (a cell left empty is dropped).

The model answers to the "Think" questions are collapsed blocks in markdown cells, from a line
``<details><summary>Model answer</summary>`` to the next line ``</details>`` (each alone on
its line). The instructor edition keeps them; the student edition, and nbgrader's source
version, drop them. Other ``<details>`` blocks (hints) stay.

The outputs of the cells that held a solution, and of the check cells (code cells that call a
``check_...(...)`` function), are cleared; every other cell, its outputs included (figures),
is unchanged. A marker without its partner, a nested one, or a misspelt one (``## BEGIN
SOLUTION``, text on the marker's line) raises :class:`MarkerError` naming the notebook and the
cell.

Every ``*.ipynb`` at the top of the source folder is converted; the other files there (data,
images), except the notebooks' jupytext ``.py`` sources, are copied along, so that relative
paths keep working. The student edition is generated, never committed (``student/`` is
git-ignored).

:func:`nbgrader_source` gives nbgrader's source version of a notebook instead: the solutions
stay, and the cells gain the metadata nbgrader needs (answer cells, autograded check cells).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MarkerError", "student_notebook", "nbgrader_source", "generate", "copy_companions", "code_solutions", "is_check_cell",
           "stub_code", "STUB"]

BEGIN_CODE, END_CODE = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_MARKDOWN, END_MARKDOWN = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
STUB = 'raise NotImplementedError("Replace this line with your solution.")'
BEGIN_ANSWER, END_ANSWER = "<details><summary>Model answer</summary>", "</details>"

# Anything that looks like a marker, so that a misspelt one fails instead of leaking a solution.
_CODE_MARKER = re.compile(r"#+\s*(BEGIN|END)\s+SOLUTION", re.IGNORECASE)
_MARKDOWN_MARKER = re.compile(r"<!--\s*(BEGIN|END)\s+SOLUTION\s*-->", re.IGNORECASE)
_CHECK_CALL = re.compile(r"(?<!\w)(check_\w+)\s*\(")
_ANSWER_MARKER = re.compile(r"<summary>\s*model answer", re.IGNORECASE)


class MarkerError(ValueError):
    """A solution region is malformed: BEGIN without END, END without BEGIN, nested, misspelt."""


@dataclass(frozen=True)
class _Region:
    begin: int  # index of the BEGIN line
    end: int  # index of the END line


def _find_regions(
    lines: list[str], begin: str, end: str, pattern: re.Pattern, where: str, stray_end: bool = False
) -> list[_Region]:
    """The regions from a line ``begin`` to the next line ``end``; a malformed marker (nested,
    unclosed, misspelt per ``pattern``, or an ``end`` alone unless ``stray_end``) raises."""
    regions: list[_Region] = []
    opened: int | None = None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == begin:
            if opened is not None:
                raise MarkerError(
                    f"{where}: '{begin}' on line {i + 1} inside the region opened on line "
                    f"{opened + 1}; solution regions cannot be nested"
                )
            opened = i
        elif text == end:
            if opened is None:
                if stray_end:  # e.g. the </details> of a hint
                    continue
                raise MarkerError(f"{where}: '{end}' on line {i + 1} without a '{begin}' before it")
            regions.append(_Region(opened, i))
            opened = None
        elif pattern.search(text):
            raise MarkerError(
                f"{where}: line {i + 1} looks like a marker but is not one: {text!r}; "
                f"write '{begin}' or '{end}' alone on its line"
            )
    if opened is not None:
        raise MarkerError(f"{where}: '{begin}' on line {opened + 1} has no '{end}' after it")
    return regions


def stub_code(source: str, where: str) -> tuple[str, int]:
    """Replace each solution region of a code cell by the stub; return (source, n_regions)."""
    lines = source.split("\n")
    regions = _find_regions(lines, BEGIN_CODE, END_CODE, _CODE_MARKER, where)
    for region in reversed(regions):
        marker = lines[region.begin]
        indent = marker[: len(marker) - len(marker.lstrip())]
        lines[region.begin : region.end + 1] = [f"{indent}# YOUR CODE HERE", f"{indent}{STUB}"]
    return "\n".join(lines), len(regions)


def _strip_markdown(source: str, where: str) -> tuple[str, int]:
    """Remove each solution region of a markdown cell; return (source, n_regions)."""
    lines = source.split("\n")
    regions = _find_regions(lines, BEGIN_MARKDOWN, END_MARKDOWN, _MARKDOWN_MARKER, where)
    for region in reversed(regions):
        del lines[region.begin : region.end + 1]
    return "\n".join(lines).strip("\n") if regions else source, len(regions)


def _drop_model_answers(source: str, where: str) -> tuple[str, int]:
    """Remove each model-answer block of a markdown cell; return (source, n_blocks)."""
    lines = source.split("\n")
    blocks = [(r.begin, r.end) for r in _find_regions(lines, BEGIN_ANSWER, END_ANSWER, _ANSWER_MARKER, where, stray_end=True)]
    for begin, end in reversed(blocks):
        del lines[begin : end + 1]
        if 0 < begin < len(lines) and not lines[begin].strip() and not lines[begin - 1].strip():
            del lines[begin]  # one blank line where the block was, not two
    return ("\n".join(lines).strip("\n") if blocks else source), len(blocks)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def code_solutions(nb: dict, name: str = "notebook") -> list[list[str]]:
    """The lines inside each code solution region of a notebook (markers checked as always)."""
    found = []
    for index, cell in enumerate(nb.get("cells", []), start=1):
        if cell.get("cell_type") == "code":
            lines = _source(cell).split("\n")
            for region in _find_regions(lines, BEGIN_CODE, END_CODE, _CODE_MARKER, f"{name}, cell {index}"):
                found.append(lines[region.begin + 1 : region.end])
    return found


def is_check_cell(cell: dict) -> bool:
    """A code cell that calls an exercise check, ``check_<something>(...)``."""
    return cell.get("cell_type") == "code" and bool(_CHECK_CALL.search(_source(cell)))


def _clear_outputs(cell: dict) -> None:
    cell["outputs"] = []
    cell["execution_count"] = None


def student_notebook(nb: dict, name: str = "notebook") -> tuple[dict, int]:
    """The student edition of a notebook (its JSON as a dict); returns (notebook, n_exercises).

    ``name`` is used in error messages. The input is not modified.
    """
    nb = json.loads(json.dumps(nb))
    cells = []
    n_exercises = 0
    for index, cell in enumerate(nb.get("cells", []), start=1):
        source = _source(cell)
        first = next((line for line in source.split("\n") if line.strip()), "")
        where = f"{name}, cell {index} ({cell.get('cell_type')} cell starting {first[:60]!r})"
        if cell.get("cell_type") == "code":
            new, n = stub_code(source, where)
            if n or is_check_cell(cell):
                _clear_outputs(cell)
        elif cell.get("cell_type") == "markdown":
            new, n = _strip_markdown(source, where)
            new, n_answers = _drop_model_answers(new, where)
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
    nb["cells"] = cells
    return nb, n_exercises


_DEF = re.compile(r"^\s*def\s+(\w+)", re.MULTILINE)


def nbgrader_source(nb: dict, name: str = "notebook", points: int | dict[str, int] = 1) -> tuple[dict, int]:
    """The instructor notebook with the cell metadata nbgrader needs; returns (notebook, n_cells).

    Solutions and checks are left as they are; nbgrader's ``generate_assignment`` then makes
    the student version and ``autograde`` runs the checks:

    * a code cell with a solution region: an answer cell (``solution``), its grade id the name
      of the function it defines;
    * a check cell: a locked autograded test, its grade id the check's name (``check_...``);
    * a markdown cell with a solution region: a manually graded answer.

    ``points`` is what each graded cell is worth: one number for all, or a dict from grade id to
    points (cells it does not name are worth 1).

    The model answers to the Think questions are dropped (nbgrader would release them), and so
    are the outputs of answer and check cells; every other output stays, so that the release
    shows the lessons' figures (with ``c.ClearOutput.enabled = False``, which
    :mod:`lessons_lib.homework` sets).

    Malformed markers raise :class:`MarkerError` as for the student edition.
    """
    student_notebook(nb, name)  # validates every marker
    nb = json.loads(json.dumps(nb))
    kept = []
    for cell in nb.get("cells", []):  # nbgrader would release the model answers: drop them here
        if cell.get("cell_type") == "markdown":
            new, n_answers = _drop_model_answers(_source(cell), name)
            if n_answers and not new.strip():
                continue
            if n_answers:
                cell["source"] = new.splitlines(keepends=True)
        kept.append(cell)
    nb["cells"] = kept
    used: set[str] = set()
    n_cells = 0
    worth = (lambda grade_id: points.get(grade_id, 1)) if isinstance(points, dict) else (lambda grade_id: points)

    def unique(grade_id: str) -> str:
        candidate, k = grade_id, 2
        while candidate in used:
            candidate, k = f"{grade_id}_{k}", k + 1
        used.add(candidate)
        return candidate

    for index, cell in enumerate(nb.get("cells", []), start=1):
        source = _source(cell)
        kind = cell.get("cell_type")
        has_region = (kind == "code" and BEGIN_CODE in source) or (kind == "markdown" and BEGIN_MARKDOWN in source)
        meta = {"schema_version": 3, "task": False}
        if kind == "code" and has_region:
            function = _DEF.search(source)
            meta |= {"solution": True, "grade": False, "locked": False}
            meta["grade_id"] = unique(function.group(1) if function else f"cell{index}")
        elif is_check_cell(cell):
            meta |= {"solution": False, "grade": True, "locked": True}
            meta["grade_id"] = unique(_CHECK_CALL.search(source).group(1))
            meta["points"] = worth(meta["grade_id"])
        elif has_region:
            meta |= {"solution": True, "grade": True, "locked": False}
            meta["grade_id"] = unique(f"answer_cell{index}")
            meta["points"] = worth(meta["grade_id"])
        else:
            continue
        if kind == "code":  # as in the student edition: no solution's or check's output is released
            _clear_outputs(cell)
        cell.setdefault("metadata", {})["nbgrader"] = meta
        n_cells += 1
    return nb, n_cells


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
        editions.append((path.name, *student_notebook(nb, path.name)))
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
            "usage: python -m lessons_lib.student_edition SOURCE_DIR DEST_DIR\n"
            "(for nbgrader: python -m lessons_lib.homework NOTEBOOKS_DIR COURSE_DIR)"
        )
    try:
        generate(*argv)
    except (MarkerError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main(sys.argv[1:])
