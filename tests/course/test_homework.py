"""Homework with nbgrader: the problem sets, their points, the course folder the command writes,
and the real nbgrader cycle (generate → autograde → feedback) on four submissions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from lessons_lib.course import homework
from lessons_lib.course.checks import REGISTRY, Written
from lessons_lib.course.homework import POINTS, PROBLEM_SETS, make_course, nbgrader_source, solution_lines
from lessons_lib.course.markers import END_CODE, MarkerError, cell_source, is_check_cell
from lessons_lib.course.problem_sets import INTRO_MARK, entries

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
LESSONS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --- the problem sets -------------------------------------------------------------------------


def test_every_lesson_is_in_exactly_one_problem_set():
    handed_out = [stem for _, stems in PROBLEM_SETS.values() for stem in stems]
    assert len(handed_out) == len(set(handed_out))
    assert set(LESSONS) <= set(handed_out), f"lessons in no problem set: {set(LESSONS) - set(handed_out)}"


def test_every_check_has_its_points():
    checks = set()
    for stem in LESSONS:
        nb = _load(NOTEBOOKS / f"{stem}.ipynb")
        source, _ = nbgrader_source(nb, stem, POINTS)
        for cell in source["cells"]:
            if is_check_cell(cell):
                checks.add(cell["metadata"]["nbgrader"]["grade_id"])
    assert checks and checks <= set(POINTS), f"checks without points: {checks - set(POINTS)}"


@pytest.mark.parametrize("name", sorted(PROBLEM_SETS))
def test_every_problem_set_has_an_exercise_longer_than_one_line(name):
    present = [NOTEBOOKS / f"{stem}.ipynb" for stem in PROBLEM_SETS[name][1] if (NOTEBOOKS / f"{stem}.ipynb").exists()]
    assert present, f"{name} has no notebook yet"
    longest = max(n for path in present for n in solution_lines(_load(path)))
    assert longest >= 3, f"{name}: every exercise is a one- or two-liner"


# --- nbgrader's source version -------------------------------------------------------------


def test_nbgrader_source_marks_answer_check_and_question_cells(synthetic):
    instructor = synthetic
    instructor["cells"].append(new_code_cell("check_gaussian_score(gaussian_score)  # again"))
    source, n = nbgrader_source(instructor, "synthetic.ipynb", points=2)
    meta = [c["metadata"].get("nbgrader") for c in source["cells"]]
    assert n == 5
    assert meta[0] is None and meta[1] is None and meta[4] is None
    assert meta[2] == {
        "schema_version": 3, "task": False, "solution": True, "grade": False, "locked": False,
        "grade_id": "gaussian_score",
    }
    assert meta[3] == {
        "schema_version": 3, "task": False, "solution": False, "grade": True, "locked": True,
        "points": 2, "grade_id": "check_gaussian_score",
    }
    assert meta[7]["grade_id"] == "check_gaussian_score_2", "grade ids are unique"
    assert meta[5]["solution"] and meta[5]["grade"] and meta[5]["grade_id"] == "answer_cell6"
    # The solutions stay (nbgrader makes the student version itself); the outputs of answer and
    # check cells go, the others (figures) stay
    assert [cell_source(c) for c in source["cells"]] == [cell_source(c) for c in instructor["cells"]]
    assert source["cells"][2]["outputs"] == source["cells"][3]["outputs"] == []
    assert source["cells"][1]["outputs"] == instructor["cells"][1]["outputs"] != []
    # points: one number for all, or by grade id (1 for a cell not named)
    by_id, _ = nbgrader_source(instructor, "synthetic.ipynb", points={"check_gaussian_score": 5})
    graded = [c["metadata"]["nbgrader"] for c in by_id["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert [meta.get("points") for meta in graded] == [5, 1, 1, 1]


def test_nbgrader_source_rejects_malformed_markers():
    with pytest.raises(MarkerError, match="bad.ipynb, cell 1"):
        nbgrader_source(new_notebook(cells=[new_code_cell(END_CODE)]), "bad.ipynb")


# --- the course folder ------------------------------------------------------------------------


def _tiny_notebooks(folder: Path) -> Path:
    folder.mkdir(parents=True)
    exercise = new_code_cell(
        "def gaussian_score(x, mean, cov):\n    ### BEGIN SOLUTION\n    return -(x - mean)\n    ### END SOLUTION",
        outputs=[new_output("stream", name="stdout", text="answer output\n")],
    )
    check = new_code_cell("check_gaussian_score(gaussian_score)",
                          outputs=[new_output("stream", name="stdout", text="✓\n")])
    figure = new_code_cell("plot()", outputs=[new_output("display_data", data={"text/plain": "<Figure>"})])
    think = new_markdown_cell("## Think\n1. Why?\n\n<details><summary>Model answer</summary>\n\nBecause.\n\n</details>")
    nb = new_notebook(cells=[exercise, check, figure, think])
    (folder / "01_score_function.ipynb").write_text(json.dumps(nb))
    (folder / "01_score_function.py").write_text("# jupytext source: never copied\n")
    (folder / "data.txt").write_text("read by the notebook\n")
    return folder


def test_make_course_writes_sets_points_and_config(tmp_path, capsys):
    src = _tiny_notebooks(tmp_path / "notebooks")
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "sm101"\n')
    written = make_course(src, course)
    assert list(written) == ["ps1"]  # the other sets' lessons are not there: skipped, said so
    out = capsys.readouterr().out
    assert "02_explicit_implicit_score_matching.ipynb does not exist, skipped" in out
    nb = _load(course / "source" / "ps1" / "01_score_function.ipynb")
    assert cell_source(nb["cells"][0]).startswith(INTRO_MARK)  # the set opens with its introduction
    assert "graded" not in json.dumps(nb["cells"][0]["metadata"])
    del nb["cells"][0]
    meta = [c["metadata"].get("nbgrader", {}) for c in nb["cells"]]
    assert meta[1]["grade_id"] == "check_gaussian_score" and meta[1]["points"] == POINTS["check_gaussian_score"]
    assert nb["cells"][0]["outputs"] == [] and nb["cells"][1]["outputs"] == []  # nothing of a solution
    assert nb["cells"][2]["outputs"]  # figures stay
    assert "Because" not in json.dumps(nb)  # model answers are not released
    released = course / "source" / "ps1"
    assert (released / "data.txt").exists() and not (released / "01_score_function.py").exists()
    config = (course / "nbgrader_config.py").read_text()
    assert config.startswith('c = get_config()\nc.CourseDirectory.course_id = "sm101"\n')  # the user's settings stay
    assert "course_id = 'course'" not in config  # ... their course id included
    assert f"c.Execute.timeout = {homework.CELL_TIMEOUT}" in (released / "nbgrader_config.py").read_text()
    assert (course / "rubrics" / "ps1.md").exists()
    assert f"c.Execute.timeout = {homework.CELL_TIMEOUT}" in config and "c.ClearOutput.enabled = False" in config
    assert "one_way_output_widgets()" in config and "lessons_lib.course.nbclient_compat" in config

    # a second run refuses to overwrite ...
    with pytest.raises(FileExistsError, match="--force"):
        make_course(src, course)
    # ... and with force keeps the points a teacher changed, and writes the config block once
    path = course / "source" / "ps1" / "01_score_function.ipynb"
    nb = _load(path)
    nb["cells"][2]["metadata"]["nbgrader"]["points"] = 7
    path.write_text(json.dumps(nb))
    make_course(src, course, force=True)
    assert "kept points check_gaussian_score: 7 (default 2)" in capsys.readouterr().out
    assert _load(path)["cells"][2]["metadata"]["nbgrader"]["points"] == 7
    assert (course / "nbgrader_config.py").read_text() == config


def test_the_config_block_runs_and_silences_the_output_widget_echo(monkeypatch):
    from nbclient.output_widget import OutputWidget

    monkeypatch.setattr(OutputWidget, "sync_state", OutputWidget.sync_state)  # restored after the test
    sent = []
    widget = OutputWidget.__new__(OutputWidget)
    widget.outputs, widget.send = [{"output_type": "stream"}], sent.append
    exec(homework.nbgrader_config(), {"get_config": lambda: type("C", (), {"__getattr__": lambda self, k: self})()})
    widget.sync_state()
    assert sent == []


def test_command_line_reports_errors_without_a_traceback(tmp_path):
    src = _tiny_notebooks(tmp_path / "notebooks")
    homework.main([str(src), str(tmp_path / "course")])
    with pytest.raises(SystemExit, match="error: .* is not empty"):
        homework.main([str(src), str(tmp_path / "course")])
    homework.main([str(src), str(tmp_path / "course"), "--force"])
    with pytest.raises(SystemExit, match="usage"):
        homework.main([str(src)])


# --- the real nbgrader ------------------------------------------------------------------------

# Answers that only call the library, disguised as a student would
LIBRARY_CALLS = {
    "gaussian_score": "def gaussian_score(x, mean, cov):\n    from lessons_lib.densities import Gaussian\n"
                      "    return Gaussian(mean, cov).score(x)\n",
    "ism_loss": "from lessons_lib import losses as L\nmine = L.ism_loss\n\n"
                "def ism_loss(score_fn, x):\n    return mine(score_fn, x)\n",
    "ssm_loss": "from lessons_lib.course.checks import REFERENCES as R\n"
                "ssm_loss = lambda *args: R['ssm_loss'](*args)\n",
}


def _answers(nb: dict) -> dict[str, dict]:
    return {
        c["metadata"]["nbgrader"]["grade_id"]: c
        for c in nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def _submit(course: Path, ps: str, student: str, answer) -> None:
    """Copy the release into submitted/<student>/<ps>/, each answer cell's source replaced by
    ``answer(grade_id, solution source)`` (None: left untouched)."""
    for released in sorted((course / "release" / ps).glob("*.ipynb")):
        nb = _load(released)
        solutions = _answers(_load(course / "source" / ps / released.name))
        for grade_id, cell in _answers(nb).items():
            if grade_id.startswith("answer_"):  # written answers: graded by hand (test_teacher_path.py)
                continue
            text = answer(grade_id, cell_source(solutions[grade_id]))
            if text is not None:
                cell["source"] = text
        out = course / "submitted" / student / ps / released.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(nb))


def _sign_flip(grade_id: str, solution: str) -> str:
    if grade_id != "gaussian_score":
        return solution
    assert "return -torch.linalg.solve" in solution
    return solution.replace("return -torch.linalg.solve", "return torch.linalg.solve")


def _nbgrader(course: Path, *args: str, timeout: float = 3000) -> subprocess.CompletedProcess:
    # nbgrader runs `alembic` from PATH: the environment's bin folder must be on it
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_real_nbgrader_grades_four_submissions(tmp_path):
    ps = "ps1"
    course = tmp_path / "course"
    make_course(NOTEBOOKS, course, sets=[ps])
    generated = _nbgrader(course, "generate_assignment", ps, "--force")
    assert generated.returncode == 0, generated.stderr[-3000:]
    release = sorted((course / "release" / ps).glob("*.ipynb"))
    assert [p.stem for p in release] == list(PROBLEM_SETS[ps][1])
    assert any(o.get("output_type") == "display_data" for c in _load(release[0])["cells"] for o in c.get("outputs", []))

    # an untouched release fails nbgrader's Validate (what the students' button runs)
    validated = _nbgrader(course, "validate", str(release[0]))
    assert "VALIDATION FAILED" in validated.stdout + validated.stderr, validated.stdout[-2000:]

    _submit(course, ps, "untouched", lambda grade_id, solution: None)
    _submit(course, ps, "correct", lambda grade_id, solution: solution)
    _submit(course, ps, "wrong", _sign_flip)
    _submit(course, ps, "library", lambda grade_id, solution: LIBRARY_CALLS.get(grade_id))
    start = time.perf_counter()
    graded = _nbgrader(course, "autograde", ps, "--create", "--force")
    seconds = time.perf_counter() - start
    assert graded.returncode == 0, graded.stderr[-3000:]
    print(f"autograde: {seconds:.0f} s for 4 submissions of {ps}")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission(ps, s).score for s in ("untouched", "correct", "wrong", "library")}
        full = gradebook.find_assignment(ps).max_score
    listed = entries(ps)
    auto = sum(ex.points for ex in listed if not isinstance(ex, Written))
    assert full == auto + sum(ex.points for ex in listed if isinstance(ex, Written))
    gaussian = REGISTRY["gaussian_score"]
    slip = gaussian.points * gaussian.mistakes[0].credit  # the sign flip is a named slip: partial credit
    assert scores == pytest.approx({"untouched": 0, "correct": auto, "wrong": auto - gaussian.points + slip,
                                    "library": 0})  # the written answers wait for the teacher

    # a correct submission is graded without a single error output (no timeout, no NameError chain)
    for path in sorted((course / "autograded" / "correct" / ps).glob("*.ipynb")):
        errors = [o for c in _load(path)["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {[e['ename'] for e in errors]}"

    feedback = _nbgrader(course, "generate_feedback", ps, "--force")
    assert feedback.returncode == 0, feedback.stderr[-3000:]
    html = lambda student, stem: (course / "feedback" / student / ps / f"{stem}.html").read_text(encoding="utf-8")
    assert "wrong sign" in html("wrong", "01_score_function")
    assert "not your own work: calls lessons_lib.densities.Gaussian.score" in html("library", "01_score_function")
    lesson02 = "02_explicit_implicit_score_matching"
    assert "not your own work: calls lessons_lib.losses.ism_loss" in html("library", lesson02)
    assert "not attempted" in html("untouched", "03_sliced_score_matching")
    shutil.rmtree(course)


@pytest.mark.slow
@pytest.mark.parametrize("ps, students", [("ps2", ("untouched", "correct")), ("ps3", ("correct",))])
def test_real_nbgrader_grades_the_later_problem_sets(tmp_path, ps, students):
    """Problem sets 2 and 3 through real nbgrader: the correct submission gets every auto-graded
    point with no error output (ps3's includes lesson 06's capstone, which trains with the
    student's own loss, step and sampler), an untouched one none; the written answers wait for
    the teacher. (ps3 runs one submission: its notebooks take minutes.)"""
    course = tmp_path / "course"
    make_course(NOTEBOOKS, course, sets=[ps])
    generated = _nbgrader(course, "generate_assignment", ps, "--force")
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert [p.stem for p in sorted((course / "release" / ps).glob("*.ipynb"))] == list(PROBLEM_SETS[ps][1])
    answers = {"untouched": lambda grade_id, solution: None, "correct": lambda grade_id, solution: solution}
    for student in students:
        _submit(course, ps, student, answers[student])
    start = time.perf_counter()
    graded = _nbgrader(course, "autograde", ps, "--create", "--force")
    assert graded.returncode == 0, graded.stderr[-3000:]
    print(f"autograde: {time.perf_counter() - start:.0f} s for {len(students)} submission(s) of {ps}")

    from nbgrader.api import Gradebook

    listed = entries(ps)
    auto = sum(ex.points for ex in listed if not isinstance(ex, Written))
    hand = sum(ex.points for ex in listed if isinstance(ex, Written))
    assert hand > 0, f"{ps} has no written answer"
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission(ps, s).score for s in students}
        assert gradebook.find_assignment(ps).max_score == auto + hand
    assert scores == pytest.approx({"untouched": 0, "correct": auto} if "untouched" in students else {"correct": auto})
    for path in sorted((course / "autograded" / "correct" / ps).glob("*.ipynb")):
        errors = [o for c in _load(path)["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {[e['ename'] for e in errors]}"
    shutil.rmtree(course)


def test_each_problem_sets_points_are_the_registrys():
    """The points nbgrader's source carries for each set are the registry's (the guide's table is
    the registry's too: tests/course/test_registry.py)."""
    for name, (_, stems) in PROBLEM_SETS.items():
        total = 0
        for stem in stems:
            source, _ = nbgrader_source(_load(NOTEBOOKS / f"{stem}.ipynb"), stem, POINTS)
            total += sum(c["metadata"]["nbgrader"].get("points", 0) for c in source["cells"]
                         if c["metadata"].get("nbgrader", {}).get("grade"))
        registered = sum(ex.points for ex in entries(name))
        assert total == registered, f"{name}: the notebooks give {total} points, the registry {registered}"


def test_a_written_answer_becomes_a_manually_graded_cell_and_its_rubric_a_file(written_notebook, tmp_path):
    nb, answer = written_notebook
    source, _ = nbgrader_source(nb, "01_score_function.ipynb", POINTS)
    cell = next(c for c in source["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "answer_toy_essay")
    assert cell["cell_type"] == "markdown"
    assert cell["metadata"]["nbgrader"] == {"schema_version": 3, "task": False, "solution": True, "grade": True,
                                            "locked": False, "grade_id": "answer_toy_essay", "points": 3}
    text = json.dumps(source)
    assert "Model answer" not in text and "RUBRIC" not in text and "Z is constant" not in text
    assert cell_source(cell).startswith("*Your answer (graded by hand, 3 points):*")
    assert "jupytext" not in source["metadata"]

    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_score_function.ipynb").write_text(json.dumps(nb))
    make_course(folder, tmp_path / "course", course_id="sm101")
    rubric = (tmp_path / "course" / "rubrics" / "ps1.md").read_text()
    assert "answer_toy_essay" in rubric and "Z is constant in x" in rubric and "The normaliser $Z$" in rubric
    assert not list((tmp_path / "course" / "source").rglob("*.md")), "the rubric is never under source/"
    assert "c.CourseDirectory.course_id = 'sm101'" in (tmp_path / "course" / "nbgrader_config.py").read_text()


def test_quickstarts_demo_is_removed_and_never_mixes_into_ps1(tmp_path, capsys):
    src = _tiny_notebooks(tmp_path / "notebooks")
    course = tmp_path / "course"
    demo = course / "source" / "ps1"
    demo.mkdir(parents=True)
    for name in homework.QUICKSTART_DEMO:
        (demo / name).write_text("{}")
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "my_course"\n')
    make_course(src, course)
    assert sorted(p.name for p in demo.iterdir()) == ["01_score_function.ipynb", "data.txt", "nbgrader_config.py"]
    assert "removed nbgrader quickstart's demo assignment" in capsys.readouterr().out
    assert "CourseDirectory.course_id = 'course'" not in (course / "nbgrader_config.py").read_text()
    # with --force a stray notebook in the set's folder goes too
    (demo / "problem1.ipynb").write_text("{}")
    make_course(src, course, force=True)
    assert not (demo / "problem1.ipynb").exists()


def test_hand_placed_submissions_get_a_timestamp(tmp_path):
    for student in ("alice", "bob"):
        (tmp_path / "submitted" / student / "ps1").mkdir(parents=True)
    (tmp_path / "submitted" / "bob" / "ps1" / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
    written = homework.stamp_submissions(tmp_path, "ps1")
    assert written == [tmp_path / "submitted" / "alice" / "ps1" / "timestamp.txt"]
    from nbgrader.utils import parse_utc

    parse_utc(written[0].read_text())
    assert len((tmp_path / "submitted" / "alice" / "ps1" / "submission_secret.txt").read_text()) == 128
    assert (tmp_path / "submitted" / "bob" / "ps1" / "timestamp.txt").read_text().startswith("2026-01-01")


@pytest.mark.slow
def test_after_a_real_nbgrader_quickstart_ps1_holds_the_course_only(tmp_path):
    """The documented order with quickstart: its demo assignment never mixes into ps1, and its
    course id stays."""
    done = subprocess.run([sys.executable, "-m", "nbgrader", "quickstart", "my_course"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"))
    assert done.returncode == 0, done.stderr[-2000:]
    course = tmp_path / "my_course"
    assert (course / "source" / "ps1" / "problem1.ipynb").exists()
    make_course(_tiny_notebooks(tmp_path / "notebooks"), course)
    assert sorted(p.name for p in (course / "source" / "ps1").iterdir()) == [
        "01_score_function.ipynb", "data.txt", "nbgrader_config.py"]
    config = (course / "nbgrader_config.py").read_text()
    assert 'c.CourseDirectory.course_id = "my_course"' in config and "course_id = 'my_course'" not in config
