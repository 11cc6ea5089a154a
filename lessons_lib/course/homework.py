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

import dataclasses
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from .checks import POINTS
from .markers import (
    BEGIN_CODE,
    BEGIN_MARKDOWN,
    END_MARKDOWN,
    MarkerError,
    WrittenAnswer,
    answer_stub,
    cell_source,
    check_called,
    code_solutions,
    drop_model_answers,
    split_written,
    written_answer,
    written_answers,
)
from .problem_sets import PROBLEM_SETS
from .student_edition import clear_outputs, copy_companions, intro_cell, strip_pairing, student_notebook

__all__ = ["PROBLEM_SETS", "POINTS", "CELL_TIMEOUT", "QUICKSTART_DEMO", "nbgrader_source", "make_course",
           "nbgrader_config", "release_config", "rubrics_markdown", "stamp_submissions", "solution_lines", "main"]

QUICKSTART_DEMO = frozenset({"problem1.ipynb", "problem2.ipynb", "jupyter.png"})
"""The files ``nbgrader quickstart`` puts in ``source/ps1`` (its demo assignment): removed when
they are all that folder holds, so that they never mix into problem set 1."""

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
    A written answer cell (:func:`~lessons_lib.course.markers.written_answer`) becomes a manually
    graded markdown answer cell, grade id ``answer_<name>``, holding the empty answer line and a
    solution region that names the rubric file: the model answer and the rubric are not in the
    source (``make_course`` writes them to ``rubrics/<set>.md``), and nbgrader releases the line
    with its "YOUR ANSWER HERE" stub.
    """
    student_notebook(nb, name)  # validates every marker
    nb = json.loads(json.dumps(nb))
    strip_pairing(nb)
    kept = []
    for index, cell in enumerate(nb.get("cells", []), start=1):  # nbgrader would release the model answers
        if cell.get("cell_type") == "markdown":
            answer = written_answer(cell_source(cell), f"{name}, cell {index}")
            if answer is not None:
                cell.setdefault("metadata", {})["nbgrader"] = {
                    "schema_version": 3, "task": False, "solution": True, "grade": True, "locked": False,
                    "grade_id": answer.entry.grade_id, "points": answer.points,
                }
                after = drop_model_answers(answer.after, name)[0]
                before = drop_model_answers(answer.before, name)[0]
                kept += split_written(cell, dataclasses.replace(answer, before=before, after=after),
                                      _written_source(answer))
                continue
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

    for cell in nb.get("cells", []):
        if "nbgrader" in cell.get("metadata", {}):
            used.add(cell["metadata"]["nbgrader"]["grade_id"])
    for index, cell in enumerate(nb.get("cells", []), start=1):
        source = cell_source(cell)
        kind = cell.get("cell_type")
        if "nbgrader" in cell.get("metadata", {}):  # a written answer, marked above
            n_cells += 1
            continue
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


def _written_source(answer: WrittenAnswer) -> str:
    return "\n".join([answer_stub(answer.points), "", BEGIN_MARKDOWN,
                      f"(Graded by hand: the model answer and the rubric are in rubrics/, grade id "
                      f"{answer.entry.grade_id}.)", END_MARKDOWN])


def rubrics_markdown(name: str, answers: list[tuple[str, WrittenAnswer]]) -> str:
    """The grader's sheet of a problem set: each written answer's model answer and rubric."""
    title = PROBLEM_SETS[name][0] if name in PROBLEM_SETS else name
    lines = [f"# Rubrics: {title}", "",
             "The written answers of this problem set, graded by hand in Formgrader (\"Manual Grading\"): "
             "for each, the model answer and the rubric, points per criterion. This file is the "
             "teacher's: it is not in source/, so nbgrader never releases it.", ""]
    for notebook, answer in answers:
        lines += [f"## `{answer.entry.grade_id}` ({answer.points} points): {answer.entry.summary}", "",
                  f"Notebook `{notebook}`.", "", "**Model answer.**" if "Model answer" not in answer.model_answer
                  else "", answer.model_answer, "", "**Rubric.**", "", answer.rubric_markdown(), ""]
    return "\n".join(line for line in lines if line is not None)


def release_config() -> str:
    """``nbgrader_config.py`` shipped with each problem set's release: what the students'
    ``nbgrader validate`` (run in the set's folder) and the Validate button (JupyterLab started
    there) read, so that they use the course's cell timeout, not nbgrader's 30 s."""
    return "\n".join([
        "# Shipped with the problem set: nbgrader validate, run in this folder, reads it.",
        "c = get_config()  # noqa: F821 (nbgrader provides get_config)",
        f"c.Execute.timeout = {CELL_TIMEOUT}  # nbgrader's default of 30 s per cell interrupts the training cells",
        "try:  # Output widgets without the echo that can stall a headless run (jupyter/nbclient#312)",
        "    from lessons_lib.course.nbclient_compat import one_way_output_widgets",
        "    one_way_output_widgets()",
        "except ImportError:",
        "    pass",
        "",
    ])


def nbgrader_config(course_id: str | None = None) -> str:
    """The block of nbgrader settings this course needs, between its marker lines; with
    ``course_id``, also ``c.CourseDirectory.course_id`` (release and collect need one)."""
    return "\n".join([
        _BEGIN,
        "# nbgrader's default of 30 s per cell interrupts the lessons' training cells and leaves",
        "# CellTimeoutError / NameError chains in correct work.",
        "c = get_config()  # noqa: F821 (nbgrader provides get_config)",
        *([f"c.CourseDirectory.course_id = {course_id!r}  # release_assignment and collect need one"]
          if course_id else []),
        f"c.Execute.timeout = {CELL_TIMEOUT}",
        "# Keep the lessons' figures in the release (answer and check cells carry no output).",
        "c.ClearOutput.enabled = False",
        "# Output widgets without the echo that can stall a headless run (jupyter/nbclient#312).",
        "from lessons_lib.course.nbclient_compat import one_way_output_widgets",
        "one_way_output_widgets()",
        _END,
        "",
    ])


_COURSE_ID = re.compile(r"^\s*c\.CourseDirectory\.course_id\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


def _write_config(course: Path, course_id: str | None) -> tuple[Path, str]:
    """Write the block into ``course/nbgrader_config.py``; return (path, the course id in force).
    A course id the teacher set outside the block (``nbgrader quickstart`` writes one) is kept
    unless ``course_id`` is given; without either, the folder's name is the course id."""
    path = course / "nbgrader_config.py"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if _BEGIN in text and _END in text:
        before, rest = text.split(_BEGIN, 1)
        after = rest.split(_END, 1)[1].lstrip("\n")
    else:
        before, after = (text.rstrip("\n") + "\n\n" if text.strip() else ""), ""
    theirs = _COURSE_ID.findall(before + after)
    if course_id is None and theirs:
        block, in_force = nbgrader_config(), theirs[-1]
    else:
        in_force = course_id or re.sub(r"[^A-Za-z0-9_-]+", "_", course.resolve().name)
        block = nbgrader_config(in_force)
    path.write_text(before + block + after, encoding="utf-8")
    return path, in_force


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


def _clear_demo(folder: Path) -> bool:
    """Remove ``nbgrader quickstart``'s demo assignment when it is all ``folder`` holds."""
    files = {p.name for p in folder.iterdir() if not p.name.startswith(".")} if folder.is_dir() else set()
    if not files or not files <= QUICKSTART_DEMO or not any(f.endswith(".ipynb") for f in files):
        return False
    for filename in files:
        (folder / filename).unlink()
    return True


def make_course(notebooks: Path | str, course: Path | str, force: bool = False, sets=None,
                course_id: str | None = None) -> dict[str, list[Path]]:
    """Write the problem sets as an nbgrader course in ``course``; return {set: notebooks written}.

    ``sets``: the names of :data:`PROBLEM_SETS` to write (default: all whose notebooks exist; a
    lesson that does not exist yet is skipped with a note). ``course_id``: written to the config
    (default: the one already there, else the folder's name). The course folder is created if
    needed (``nbgrader quickstart`` is not needed; after it, its demo assignment in
    ``source/ps1`` is removed). Each set also gets ``rubrics/<set>.md`` (the written answers'
    model answers and rubrics, beside ``source/``, never released) and a ``nbgrader_config.py``
    in its source folder that the release carries to the students (:func:`release_config`).
    Everything is converted before anything is written. Raises ``FileExistsError`` when a set's
    source folder is not empty and ``force`` is false (with ``force``, notebooks there that are
    not the set's are removed); :class:`~lessons_lib.course.markers.MarkerError` for malformed
    markers.
    """
    notebooks, course = Path(notebooks), Path(course)
    chosen = list(PROBLEM_SETS) if sets is None else list(sets)
    unknown = [s for s in chosen if s not in PROBLEM_SETS]
    if unknown:
        raise ValueError(f"unknown problem set(s) {unknown}; the course has {list(PROBLEM_SETS)}")
    plan: dict[str, list[tuple[str, dict, int]]] = {}
    answers: dict[str, list[tuple[str, WrittenAnswer]]] = {}
    for name in chosen:
        lessons, answers[name] = [], []
        for stem in PROBLEM_SETS[name][1]:
            path = notebooks / f"{stem}.ipynb"
            if not path.exists():
                print(f"{name}: {path} does not exist, skipped")
                continue
            instructor = json.loads(path.read_text(encoding="utf-8"))
            answers[name] += [(path.name, a) for a in written_answers(instructor, path.name)]
            nb, n = nbgrader_source(instructor, path.name, POINTS)
            if not lessons and (intro := intro_cell(stem)) is not None:
                nb["cells"].insert(0, intro)
            lessons.append((path.name, nb, n))
        if lessons:
            plan[name] = lessons
    if not plan:
        raise FileNotFoundError(f"none of the problem sets' notebooks is in {notebooks}")
    for name in plan:
        folder = course / "source" / name
        if _clear_demo(folder):
            print(f"{folder}: removed nbgrader quickstart's demo assignment ({', '.join(sorted(QUICKSTART_DEMO))})")
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
        mine = {filename for filename, _, _ in lessons}
        for stray in sorted(folder.glob("*.ipynb")):
            if stray.name not in mine:
                stray.unlink()
                print(f"{stray}: removed (not a notebook of {name})")
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
        (folder / "nbgrader_config.py").write_text(release_config(), encoding="utf-8")
        rubric = course / "rubrics" / f"{name}.md"
        rubric.parent.mkdir(parents=True, exist_ok=True)
        rubric.write_text(rubrics_markdown(name, answers[name]), encoding="utf-8")
        print(f"{rubric}: {len(answers[name])} written answer(s) to grade by hand")
    path, in_force = _write_config(course, course_id)
    print(f"{path}: course id {in_force!r}, c.Execute.timeout = {CELL_TIMEOUT} s per cell")
    return written


def stamp_submissions(course: Path | str, assignment: str, now=None) -> list[Path]:
    """Write ``timestamp.txt`` and ``submission_secret.txt`` into each
    ``submitted/<student>/<assignment>/`` that lacks them (submissions placed by hand, not by
    ``nbgrader collect``): ``release_feedback`` reads both for every submission and stops at the
    first without them. Returns the timestamps written."""
    import datetime
    import secrets

    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    written = []
    for folder in sorted(Path(course, "submitted").glob(f"*/{assignment}")):
        if folder.is_dir() and not (folder / "timestamp.txt").exists():
            (folder / "timestamp.txt").write_text(stamp, encoding="utf-8")
            written.append(folder / "timestamp.txt")
        if folder.is_dir() and not (folder / "submission_secret.txt").exists():
            (folder / "submission_secret.txt").write_text(secrets.token_hex(64), encoding="utf-8")
    print(f"{len(written)} submission(s) of {assignment} given a timestamp.txt ({stamp})")
    return written


USAGE = ("usage: python -m lessons_lib.course.homework NOTEBOOKS_DIR COURSE_DIR [--force] [--course-id ID]\n"
         "       python -m lessons_lib.course.homework --timestamps COURSE_DIR ASSIGNMENT")


def main(argv: list[str]) -> None:
    argv = list(argv)
    if argv[:1] == ["--timestamps"]:
        if len(argv) != 3:
            raise SystemExit(USAGE)
        stamp_submissions(argv[1], argv[2])
        return
    course_id = None
    if "--course-id" in argv:
        i = argv.index("--course-id")
        if i + 1 >= len(argv) or not argv[i + 1] or argv[i + 1].startswith("-"):
            raise SystemExit(USAGE)
        course_id = argv[i + 1]
        del argv[i:i + 2]
    force = "--force" in argv
    args = [a for a in argv if a != "--force"]
    if len(args) != 2 or any(a.startswith("-") for a in args):
        raise SystemExit(USAGE)
    try:
        make_course(*args, force=force, course_id=course_id)
    except (MarkerError, FileNotFoundError, FileExistsError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main(sys.argv[1:])
