"""Homework with nbgrader: the course's problem sets, their points, and an nbgrader course folder.

    python -m lessons_lib.homework notebooks COURSE            # (make homework COURSE=...)
    python -m lessons_lib.homework notebooks COURSE --force    # rewrite, keeping changed points

writes, for each problem set of :data:`PROBLEM_SETS` whose notebooks exist, nbgrader's *source*
version of its lessons to ``COURSE/source/<set>/`` (solutions kept, cells marked for nbgrader by
:func:`lessons_lib.student_edition.nbgrader_source`, Think model answers dropped, each check
worth its :data:`POINTS`), and the settings the course needs to ``COURSE/nbgrader_config.py``
(a marked block, added to the file when it exists, replaced when it is there already):

* ``c.Execute.timeout``: nbgrader's default of 30 s per cell interrupts the lessons' training
  cells (up to about 2 minutes on 2 CPU cores) and leaves ``CellTimeoutError`` and chains of
  ``NameError`` in correct work. :data:`CELL_TIMEOUT` covers the slowest cell with room;
* ``c.ClearOutput.enabled = False``: ``generate_assignment`` would clear every output, and the
  students would get the lessons without their figures. The source notebooks carry no output
  of an answer or a check cell, so nothing of a solution is released;
* :func:`one_way_output_widgets`: nbclient (which nbgrader runs notebooks with) echoes what an
  ipywidgets Output widget captured back to the kernel from inside its output handler, which
  can stall a headless run for good (jupyter/nbclient#312). The explorers show their figures
  in Image widgets now, but a teacher's own cells may still use an Output widget, and grading
  never needs the echo; the course's own executor (``tools/build_notebooks.py``) leaves it out
  the same way.

Then nbgrader's own cycle: ``nbgrader generate_assignment ps1``, release, collect,
``nbgrader autograde ps1``. Under nbgrader the checks grade by themselves (nbgrader sets
``NBGRADER_EXECUTION`` in the kernel), so an exercise left undone fails Validate and scores 0,
and an answer that calls the library's own implementation is refused (see
:mod:`lessons_lib.checks`).

A course folder is never overwritten by accident: when ``COURSE/source/<set>`` holds anything,
nothing is written unless ``force=True`` (``--force``). Points changed since (in Formgrader's
"Edit assignment" view or by hand) live in the source notebooks' metadata; with ``force`` the
new notebooks take them over, cell by cell (matched by grade id), and the command says so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .student_edition import MarkerError, code_solutions, copy_companions, nbgrader_source

__all__ = ["PROBLEM_SETS", "POINTS", "CELL_TIMEOUT", "make_course", "nbgrader_config", "solution_lines",
           "one_way_output_widgets", "main"]

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

POINTS: dict[str, int] = {
    "check_gaussian_score": 2,
    "check_ism_loss": 3,
    "check_ssm_loss": 3,
    "check_dsm_loss": 2,
    "check_langevin_step": 2,
    "check_ncsn_loss": 3,
    "check_reverse_sde_step": 2,
    "check_probability_flow_step": 2,
    "check_annealed_langevin": 5,
}
"""What each exercise's check is worth (its grade id is the check's name): one-liners 2, short
loops and reductions 3, the annealed sampler (a loop over levels and steps) 5. A check not
listed here is worth 1."""

CELL_TIMEOUT = 900
"""Seconds nbgrader may spend on one cell (``c.Execute.timeout``)."""

_BEGIN = "# --- lessons_lib homework settings: begin (python -m lessons_lib.homework writes this block) ---"
_END = "# --- lessons_lib homework settings: end ---"


def one_way_output_widgets() -> None:
    """Make nbclient's stand-in for Output widgets keep what it captures instead of sending it
    back to the kernel (jupyter/nbclient#312: that echo can block a headless run). Called from
    the ``nbgrader_config.py`` block, in nbgrader's process."""
    from nbclient.output_widget import OutputWidget

    OutputWidget.sync_state = lambda self: None


def nbgrader_config() -> str:
    """The block of nbgrader settings this course needs, between its marker lines."""
    return "\n".join([
        _BEGIN,
        "# nbgrader's default of 30 s per cell interrupts the lessons' training cells (up to about",
        "# 2 minutes on 2 CPU cores) and leaves CellTimeoutError / NameError chains in correct work.",
        "c = get_config()  # noqa: F821 (nbgrader provides get_config)",
        f"c.Execute.timeout = {CELL_TIMEOUT}",
        "# Keep the lessons' figures in the release (answer and check cells carry no output).",
        "c.ClearOutput.enabled = False",
        "# Output widgets without the echo that can stall a headless run (jupyter/nbclient#312).",
        "from lessons_lib.homework import one_way_output_widgets",
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
    ``force`` is false; :class:`~lessons_lib.student_edition.MarkerError` for malformed markers.
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
        raise SystemExit("usage: python -m lessons_lib.homework NOTEBOOKS_DIR COURSE_DIR [--force]")
    try:
        make_course(*args, force=force)
    except (MarkerError, FileNotFoundError, FileExistsError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main(sys.argv[1:])
