"""Homework with nbgrader: the course's problem sets and an nbgrader course folder.

    python -m lessons_lib.course.homework notebooks COURSE            # (make homework COURSE=...)
    python -m lessons_lib.course.homework notebooks COURSE --force    # rewrite, keeping changed points

writes, for each problem set of :data:`PROBLEM_SETS` whose notebooks exist, nbgrader's *source*
version of its lessons to ``COURSE/source/<set>/`` (:func:`nbgrader_source`: solutions kept,
cells marked for nbgrader, Think model answers dropped, each check worth its exercise's points,
:data:`POINTS`), and the settings the course needs to ``COURSE/nbgrader_config.py`` (a marked
block, added to the file when it exists, replaced when it is there already):

* ``c.Execute.timeout``: nbgrader's default of 30 s per cell interrupts the lessons' training
  cells and leaves ``CellTimeoutError`` and chains of ``NameError`` in correct work;
  :data:`CELL_TIMEOUT` covers the slowest cell with room;
* ``c.ClearOutput.enabled = False``: ``generate_assignment`` would clear every output, and the
  students would get the lessons without their figures. The source notebooks carry no output
  of an answer or a check cell, so nothing of a solution is released;
* :func:`lessons_lib.course.nbclient_compat.one_way_output_widgets` (jupyter/nbclient#312).

Then nbgrader's own cycle: ``nbgrader generate_assignment ps1``, release, collect,
``nbgrader autograde ps1``. Under nbgrader the checks grade by themselves (nbgrader sets
``NBGRADER_EXECUTION`` in the kernel), so an exercise left undone fails Validate and scores 0,
and an answer that calls the library's own implementation is refused (see
:mod:`lessons_lib.course.checks`).

A course folder is never overwritten by accident: when ``COURSE/source/<set>`` holds anything,
nothing is written unless ``force=True`` (``--force``). Points changed since (in Formgrader's
"Edit assignment" view or by hand) live in the source notebooks' metadata; with ``force`` the
new notebooks take them over, cell by cell (matched by grade id), and the command says so.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from .checks import POINTS
from .markers import (
    BEGIN_CODE,
    BEGIN_MARKDOWN,
    MarkerError,
    cell_source,
    check_called,
    code_solutions,
    drop_model_answers,
)
from .student_edition import clear_outputs, copy_companions, student_notebook

__all__ = ["PROBLEM_SETS", "POINTS", "CELL_TIMEOUT", "nbgrader_source", "make_course", "nbgrader_config",
           "solution_lines", "main"]

PROBLEM_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ps1": (
        "Problem set 1: the score, explicit and implicit score matching, sliced score matching",
        ("01_score_function", "02_explicit_implicit_score_matching", "03_sliced_score_matching"),
    ),
    "ps2": (
        "Problem set 2: denoising score matching and Langevin dynamics",
        ("04_denoising_score_matching", "05_langevin_dynamics"),
    ),
    "ps3": (
        "Problem set 3: a noise-conditional score network on MNIST, and score SDEs",
        ("06_mnist_ncsn", "07_score_sde"),
    ),
}
"""Problem set name → (title, the lessons it hands out, in order)."""

CELL_TIMEOUT = 900
"""Seconds nbgrader may spend on one cell (``c.Execute.timeout``)."""

_BEGIN = "# --- lessons_lib homework settings: begin (python -m lessons_lib.course.homework writes this block) ---"
_END = "# --- lessons_lib homework settings: end ---"
_DEF = re.compile(r"^\s*def\s+(\w+)", re.MULTILINE)


def nbgrader_source(nb: dict, name: str = "notebook", points: int | Mapping[str, int] = 1) -> tuple[dict, int]:
    """The instructor notebook with the cell metadata nbgrader needs; returns (notebook, n_cells).

    Solutions and checks are left as they are; nbgrader's ``generate_assignment`` then makes
    the student version and ``autograde`` runs the checks:

    * a code cell with a solution region: an answer cell (``solution``), its grade id the name
      of the function it defines;
    * a check cell: a locked autograded test, its grade id the check's name (``check_...``);
    * a markdown cell with a solution region: a manually graded answer.

    ``points`` is what each graded cell is worth: one number for all, or a mapping from grade id
    to points (cells it does not name are worth 1); :func:`make_course` passes :data:`POINTS`.

    The model answers to the Think questions are dropped (nbgrader would release them), and so
    are the outputs of answer and check cells; every other output stays, so that the release
    shows the lessons' figures (with ``c.ClearOutput.enabled = False``, which the config block
    sets). Malformed markers raise :class:`~lessons_lib.course.markers.MarkerError`.
    """
    student_notebook(nb, name)  # validates every marker
    nb = json.loads(json.dumps(nb))
    kept = []
    for cell in nb.get("cells", []):  # nbgrader would release the model answers: drop them here
        if cell.get("cell_type") == "markdown":
            new, n_answers = drop_model_answers(cell_source(cell), name)
            if n_answers and not new.strip():
                continue
            if n_answers:
                cell["source"] = new.splitlines(keepends=True)
        kept.append(cell)
    nb["cells"] = kept
    used: set[str] = set()
    n_cells = 0

    def worth(grade_id: str) -> int:
        return points.get(grade_id, 1) if isinstance(points, Mapping) else points

    def unique(grade_id: str) -> str:
        candidate, k = grade_id, 2
        while candidate in used:
            candidate, k = f"{grade_id}_{k}", k + 1
        used.add(candidate)
        return candidate

    for index, cell in enumerate(nb.get("cells", []), start=1):
        source = cell_source(cell)
        kind = cell.get("cell_type")
        has_region = (kind == "code" and BEGIN_CODE in source) or (kind == "markdown" and BEGIN_MARKDOWN in source)
        check = check_called(cell)
        meta = {"schema_version": 3, "task": False}
        if kind == "code" and has_region:
            function = _DEF.search(source)
            meta |= {"solution": True, "grade": False, "locked": False}
            meta["grade_id"] = unique(function.group(1) if function else f"cell{index}")
        elif check:
            meta |= {"solution": False, "grade": True, "locked": True}
            meta["grade_id"] = unique(check)
            meta["points"] = worth(meta["grade_id"])
        elif has_region:
            meta |= {"solution": True, "grade": True, "locked": False}
            meta["grade_id"] = unique(f"answer_cell{index}")
            meta["points"] = worth(meta["grade_id"])
        else:
            continue
        if kind == "code":  # as in the student edition: no solution's or check's output is released
            clear_outputs(cell)
        cell.setdefault("metadata", {})["nbgrader"] = meta
        n_cells += 1
    return nb, n_cells


def nbgrader_config() -> str:
    """The block of nbgrader settings this course needs, between its marker lines."""
    return "\n".join([
        _BEGIN,
        "# nbgrader's default of 30 s per cell interrupts the lessons' training cells and leaves",
        "# CellTimeoutError / NameError chains in correct work.",
        "c = get_config()  # noqa: F821 (nbgrader provides get_config)",
        f"c.Execute.timeout = {CELL_TIMEOUT}",
        "# Keep the lessons' figures in the release (answer and check cells carry no output).",
        "c.ClearOutput.enabled = False",
        "# Output widgets without the echo that can stall a headless run (jupyter/nbclient#312).",
        "from lessons_lib.course.nbclient_compat import one_way_output_widgets",
        "one_way_output_widgets()",
        _END,
        "",
    ])


def _write_config(course: Path) -> Path:
    path = course / "nbgrader_config.py"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if _BEGIN in text and _END in text:
        before, rest = text.split(_BEGIN, 1)
        after = rest.split(_END, 1)[1].lstrip("\n")
        text = before + nbgrader_config() + after
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + nbgrader_config()
    path.write_text(text, encoding="utf-8")
    return path


def _grade_points(nb: dict) -> dict[str, int | float]:
    return {
        meta["grade_id"]: meta["points"]
        for cell in nb.get("cells", [])
        if (meta := cell.get("metadata", {}).get("nbgrader", {})).get("grade") and "points" in meta
    }


def _keep_points(new: dict, old: dict) -> list[str]:
    """Give ``new``'s graded cells the points ``old`` has for the same grade id; return what changed."""
    kept = []
    old_points = _grade_points(old)
    for cell in new.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if meta.get("grade") and grade_id in old_points and old_points[grade_id] != meta.get("points"):
            kept.append(f"{grade_id}: {old_points[grade_id]} (default {meta.get('points')})")
            meta["points"] = old_points[grade_id]
    return kept


def solution_lines(nb: dict) -> list[int]:
    """The number of non-blank lines of each code solution region of a notebook."""
    return [sum(1 for line in region if line.strip()) for region in code_solutions(nb)]


def make_course(notebooks: Path | str, course: Path | str, force: bool = False, sets=None) -> dict[str, list[Path]]:
    """Write the problem sets as an nbgrader course in ``course``; return {set: notebooks written}.

    ``sets``: the names of :data:`PROBLEM_SETS` to write (default: all whose notebooks exist; a
    lesson that does not exist yet is skipped with a note). Everything is converted before
    anything is written. Raises ``FileExistsError`` when a set's source folder is not empty and
    ``force`` is false; :class:`~lessons_lib.course.markers.MarkerError` for malformed markers.
    """
    notebooks, course = Path(notebooks), Path(course)
    chosen = list(PROBLEM_SETS) if sets is None else list(sets)
    unknown = [s for s in chosen if s not in PROBLEM_SETS]
    if unknown:
        raise ValueError(f"unknown problem set(s) {unknown}; the course has {list(PROBLEM_SETS)}")
    plan: dict[str, list[tuple[str, dict, int]]] = {}
    for name in chosen:
        lessons = []
        for stem in PROBLEM_SETS[name][1]:
            path = notebooks / f"{stem}.ipynb"
            if not path.exists():
                print(f"{name}: {path} does not exist, skipped")
                continue
            nb, n = nbgrader_source(json.loads(path.read_text(encoding="utf-8")), path.name, POINTS)
            lessons.append((path.name, nb, n))
        if lessons:
            plan[name] = lessons
    if not plan:
        raise FileNotFoundError(f"none of the problem sets' notebooks is in {notebooks}")
    for name in plan:
        folder = course / "source" / name
        if folder.exists() and any(folder.iterdir()) and not force:
            raise FileExistsError(
                f"{folder} is not empty. Re-run with --force (force=True) to rewrite it: points "
                "changed in Formgrader (or in the notebooks' metadata) are kept, cell by cell; "
                "anything else edited there is replaced."
            )
    written: dict[str, list[Path]] = {}
    for name, lessons in plan.items():
        folder = course / "source" / name
        folder.mkdir(parents=True, exist_ok=True)
        written[name] = []
        for filename, nb, n in lessons:
            out = folder / filename
            kept = _keep_points(nb, json.loads(out.read_text(encoding="utf-8"))) if out.exists() else []
            out.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
            written[name].append(out)
            total = sum(_grade_points(nb).values())
            print(f"{out}: {n} cell(s) marked for nbgrader, {total} points"
                  + (f"; kept points {', '.join(kept)}" if kept else ""))
        copy_companions(notebooks, folder)
    print(f"{_write_config(course)}: c.Execute.timeout = {CELL_TIMEOUT} s per cell")
    return written


def main(argv: list[str]) -> None:
    force = "--force" in argv
    args = [a for a in argv if a != "--force"]
    if len(args) != 2 or any(a.startswith("-") for a in args):
        raise SystemExit("usage: python -m lessons_lib.course.homework NOTEBOOKS_DIR COURSE_DIR [--force]")
    try:
        make_course(*args, force=force)
    except (MarkerError, FileNotFoundError, FileExistsError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main(sys.argv[1:])
