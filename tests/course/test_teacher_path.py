"""The teacher's path, tested as written: the commands of docs/teaching.md's block "teacher path",
run as they stand on problem set 1 in a temporary folder (a local exchange), with four
submissions: correct, wrong (one named slip: partial credit), untouched, and one that only calls
the library (placed by hand, so it needs the --timestamps line). A written answer is graded by
hand through nbgrader's gradebook API; every total, the feedback and its release are checked.

The points expected come from the registry. While problem set 1 has no written answer in its
notebooks yet, a toy one is added to a copy of lesson 01 (its ``Written`` registered in each
process through a ``sitecustomize`` on PYTHONPATH when the registry has none for ps1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lessons_lib.course.checks import REGISTRY, Exercise, Written
from lessons_lib.course.markers import cell_source, written_answers
from lessons_lib.course.problem_sets import PROBLEM_SETS, entries

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "teaching.md"
MARK = "<!-- teacher path: the commands tests/course/test_teacher_path.py runs -->"
PS, COURSE_ID = "ps1", "sm101"
STUDENTS = ("correct", "wrong", "untouched")  # through the exchange; "library" is placed by hand

LIBRARY_CALLS = {
    "gaussian_score": "def gaussian_score(x, mean, cov):\n    from lessons_lib.densities import Gaussian\n"
                      "    return Gaussian(mean, cov).score(x)\n",
    "ism_loss": "from lessons_lib import losses as L\nmine = L.ism_loss\n\n"
                "def ism_loss(score_fn, x):\n    return mine(score_fn, x)\n",
    "ssm_loss": "from lessons_lib.course.checks import REFERENCES as R\n"
                "ssm_loss = lambda *args: R['ssm_loss'](*args)\n",
}
TOY = "toy_teacher_path"


def teacher_block(text: str) -> list[str]:
    """The lines of the fenced block right after the marker comment."""
    assert MARK in text, f"docs/teaching.md lacks the marker {MARK!r}"
    after = text.split(MARK, 1)[1].lstrip("\n")
    assert after.startswith("```bash\n"), "the marker must be followed by a ```bash block"
    return after[len("```bash\n"):].split("\n```", 1)[0].split("\n")


def segments(lines: list[str]) -> list[tuple[str, list[str]]]:
    """The block cut at its ``# students:`` / ``# teacher:`` lines: [(who acts next, commands)]."""
    out, current = [], []
    for line in lines:
        match = re.match(r"#\s*(students|teacher):", line.strip())
        if match:
            out.append((match.group(1), current))
            current = []
        elif line.strip() and not line.strip().startswith("#"):
            current.append(line)
    out.append(("end", current))
    return out


def test_the_guide_has_the_teacher_path_block():
    parts = segments(teacher_block(GUIDE.read_text(encoding="utf-8")))
    commands = [c.split("#")[0].split() for _, seg in parts for c in seg]
    assert ["make", "homework", "COURSE=$COURSE", "COURSE_ID=$COURSE_ID"] in commands
    for step in ("generate_assignment", "release_assignment", "collect", "autograde", "generate_feedback",
                 "release_feedback"):
        assert ["nbgrader", step, PS] in commands, step
    assert [who for who, _ in parts] == ["students", "teacher", "students", "end"]


def _env(tmp: Path) -> dict[str, str]:
    config = tmp / "jupyter_config"
    config.mkdir(exist_ok=True)
    (tmp / "exchange").mkdir(exist_ok=True)
    (config / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.Exchange.root = {str(tmp / 'exchange')!r}\n"
        f"c.Exchange.cache = {str(tmp / 'cache')!r}\n", encoding="utf-8")
    env = dict(os.environ, COURSE=str(tmp / "course"), COURSE_ID=COURSE_ID, JUPYTER_CONFIG_DIR=str(config),
               NOTEBOOKS=str(tmp / "notebooks"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if (tmp / "site").exists():
        env["PYTHONPATH"] = os.pathsep.join([str(tmp / "site"), env.get("PYTHONPATH", "")])
    return env


def _bash(commands: list[str], replay: list[str], env: dict, cwd: Path, timeout: float = 3600):
    script = "\n".join(["set -euo pipefail", *replay, *commands])
    result = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{commands}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _nbgrader(env: dict, cwd: Path, *args: str):
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"nbgrader {args}: {result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _prepare_notebooks(tmp: Path) -> list[str]:
    """Copy problem set 1's notebooks; make sure one written answer is in them. Returns the grade
    ids of the written answers."""
    folder = tmp / "notebooks"
    folder.mkdir()
    for stem in PROBLEM_SETS[PS][1]:
        shutil.copy(ROOT / "notebooks" / f"{stem}.ipynb", folder)
    found = [a.entry.grade_id for p in sorted(folder.glob("*.ipynb")) for a in written_answers(_load(p), p.name)]
    if found:
        return found
    registered = [ex for ex in entries(PS) if isinstance(ex, Written)]
    if registered:
        entry = registered[0]
    else:  # register a toy one in every process nbgrader starts
        site = tmp / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            "from lessons_lib.course.checks import Written, register\n"
            f"register(Written(name={TOY!r}, lesson='01_score_function', summary='a toy written answer', points=2))\n")
        entry = Written(name=TOY, lesson="01_score_function", summary="a toy written answer", points=2)
    rubric = "\n".join(["- 1 point: a first criterion"] * (entry.points - 1) + ["- 1 point: a last criterion"])
    path = folder / f"{entry.lesson}.ipynb"
    nb = _load(path)
    nb["cells"] += [
        {"cell_type": "markdown", "id": "toy-question", "metadata": {},
         "source": f"### Exercise 99 (written, {entry.points} points): a question"},
        {"cell_type": "markdown", "id": "toy-answer", "metadata": {},
         "source": f"<!-- BEGIN WRITTEN ANSWER {entry.name} -->\n**Model answer.** The toy model answer.\n\n"
                   f"<!-- RUBRIC -->\n{rubric}\n<!-- END WRITTEN ANSWER -->"},
    ]
    path.write_text(json.dumps(nb), encoding="utf-8")
    return [entry.grade_id]


def _slip_target(source: Path) -> str:
    """The exercise the wrong submission gets wrong by a sign: the first of problem set 1 that
    has a 'wrong sign' mistake and that no other solution calls (so that one check alone
    loses points)."""
    solutions = {c["metadata"]["nbgrader"]["grade_id"]: cell_source(c) for p in sorted(source.glob("*.ipynb"))
                 for c in _load(p)["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    for ex in entries(PS):
        if not isinstance(ex, Exercise) or ex.name not in solutions:
            continue
        used = any(re.search(rf"\b{ex.name}\s*\(", text) for gid, text in solutions.items()
                   if gid != ex.name and not gid.startswith("answer_"))
        if not used and any(m.message.startswith("wrong sign") for m in ex.mistakes):
            return ex.name
    raise AssertionError("no exercise of ps1 to get wrong by a sign alone")


def _sign_flip(name: str, source: str) -> str:
    """The student's right function, then the same with its sign flipped (a named slip)."""
    return f"{source}\n\n_{name}_right = {name}\n\n\ndef {name}(*args):\n    return -_{name}_right(*args)\n"


SLIP: dict[str, str] = {}  # the exercise of the wrong submission's slip, set by the test


def _answer(student: str, grade_id: str, solution: str, written: list[str]) -> str | None:
    """What each student writes in an answer cell (None: leaves it as released)."""
    if student == "untouched":
        return None
    if grade_id in written:
        return None if student == "library" else f"*Your answer:* {student}'s derivation, in words."
    if student == "library":
        return LIBRARY_CALLS.get(grade_id)
    return _sign_flip(grade_id, solution) if student == "wrong" and grade_id == SLIP["name"] else solution


def _fill(folder: Path, source: Path, student: str, written: list[str]) -> None:
    for path in sorted(folder.glob("*.ipynb")):
        nb = _load(path)
        solutions = {c["metadata"]["nbgrader"]["grade_id"]: cell_source(c) for c in _load(source / path.name)["cells"]
                     if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution"):
                text = _answer(student, meta["grade_id"], solutions[meta["grade_id"]], written)
                if text is not None:
                    cell["source"] = text
        path.write_text(json.dumps(nb), encoding="utf-8")


@pytest.mark.slow
def test_the_teacher_path_as_written(tmp_path):
    written = _prepare_notebooks(tmp_path)
    env = _env(tmp_path)
    course = tmp_path / "course"
    parts = segments(teacher_block(GUIDE.read_text(encoding="utf-8")))
    replay: list[str] = []

    def run(commands):
        _bash(commands, replay, env, ROOT)
        replay.extend(c for c in commands if c.split()[:1] in (["cd"], ["source"]))

    # 1. the teacher: homework, generate, release
    (who, commands), *rest = parts
    run(commands)
    release = course / "release" / PS
    assert sorted(p.stem for p in release.glob("*.ipynb")) == sorted(PROBLEM_SETS[PS][1])  # no quickstart demo
    config = (release / "nbgrader_config.py").read_text()
    assert "c.Execute.timeout = 900" in config, "the students' validate timeout travels with the release"
    for path in release.glob("*.ipynb"):
        nb = _load(path)
        assert "jupytext" not in nb["metadata"]
        text = json.dumps(nb)
        assert "Model answer" not in text and "RUBRIC" not in text and "BEGIN SOLUTION" not in text
    assert (course / "rubrics" / f"{PS}.md").exists()

    SLIP["name"] = _slip_target(course / "source" / PS)
    slipped = REGISTRY[SLIP["name"]]

    # 2. the students fetch, work and submit; one submission arrives by hand
    for student in STUDENTS:
        home = tmp_path / "students" / student
        home.mkdir(parents=True)
        _nbgrader(env, home, "fetch_assignment", PS, "--course", COURSE_ID)
        _fill(home / PS, course / "source" / PS, student, written)
        _nbgrader(env, home, "submit", PS, "--course", COURSE_ID, "--student", student)
    by_hand = course / "submitted" / "library" / PS
    shutil.copytree(release, by_hand)
    _fill(by_hand, course / "source" / PS, "library", written)

    # 3. the teacher: collect, timestamps, autograde
    who, commands = rest[0]
    run(commands)
    assert (by_hand / "timestamp.txt").exists()

    # 4. hand grades, through the gradebook API
    from nbgrader.api import Gradebook

    auto = sum(ex.points for ex in entries(PS) if isinstance(ex, Exercise)
               if any(ex.lesson == s for s in PROBLEM_SETS[PS][1]))
    hand_points = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        assignment = gradebook.find_assignment(PS)
        cells = {c.name: c for nb in assignment.notebooks for c in nb.grade_cells}
        for grade_id in written:
            hand_points[grade_id] = cells[grade_id].max_score
        checked = sum(c.max_score for name, c in cells.items() if name.startswith("check_"))
        assert checked == auto, f"the release's checks are worth {checked}, the registry says {auto}"
        assert assignment.max_score == auto + sum(hand_points.values())
        given = {}
        for student, share in (("correct", 1.0), ("wrong", 0.5)):
            for grade_id, points in hand_points.items():
                notebook = next(nb.name for nb in assignment.notebooks if grade_id in {c.name for c in nb.grade_cells})
                grade = gradebook.find_grade(grade_id, notebook, PS, student)
                assert grade.auto_score is None and grade.needs_manual_grade
                grade.manual_score = points * share
                given[student] = given.get(student, 0) + points * share
        gradebook.db.commit()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission(PS, s).score for s in (*STUDENTS, "library")}
    slip = slipped.points * next(m for m in slipped.mistakes if m.message.startswith("wrong sign")).credit
    assert scores == pytest.approx({
        "correct": auto + given["correct"],
        "wrong": auto - slipped.points + slip + given["wrong"],
        "untouched": 0,
        "library": 0,
    })

    # 5. feedback, its release, and a student fetching it
    who, commands = rest[1]
    run(commands)
    html = lambda student, stem: (course / "feedback" / student / PS / f"{stem}.html").read_text(encoding="utf-8")
    first = PROBLEM_SETS[PS][1][0]
    assert "partial credit" in html("wrong", slipped.lesson) and "wrong sign" in html("wrong", slipped.lesson)
    assert "✓ gaussian_score" in html("correct", first)
    assert "not your own work: calls lessons_lib.densities.Gaussian.score" in html("library", first)
    assert "not attempted" in html("untouched", first)
    for grade_id, points in hand_points.items():
        stem = next(p.stem for p in (course / "source" / PS).glob("*.ipynb") if grade_id in p.read_text())
        assert grade_id in html("correct", stem)
        assert f"Written response</a> (Score: {float(points)} / {float(points)})" in html("correct", stem)
    home = tmp_path / "students" / "correct"
    _nbgrader(env, home, "fetch_feedback", PS, "--course", COURSE_ID, "--student", "correct")
    assert list((home / PS / "feedback").rglob(f"{first}.html")), "the student got the feedback"
