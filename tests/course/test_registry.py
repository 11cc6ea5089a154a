"""The exercise registry is the one list of exercises: everything else is derived from it and
a test fails when a copy drifts (the guide's table, the notebooks' check cells), and a new
exercise, registered in one file as docs/contributing.md says, is checked, listed and graded."""

import re
from pathlib import Path

import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from lessons_lib.course import checks, homework
from lessons_lib.course.checks import Exercise, Written, register
from lessons_lib.course.checks.__main__ import (
    BEGIN,
    END,
    SETS_BEGIN,
    SETS_END,
    main,
    marked_block,
    problem_set_table,
    rewrite_table,
)
from lessons_lib.course.checks.engine import Case, Mistake, seeded
from lessons_lib.course.markers import is_check_cell

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "teaching.md"


def test_the_derived_maps_are_the_registry():
    registry = checks.exercises()
    assert registry == [ex for ex in checks.REGISTRY.values() if isinstance(ex, Exercise)]
    assert dict(checks.REFERENCES) == {ex.name: ex.reference for ex in registry}
    assert dict(checks.FORBIDDEN_CALLS) == {ex.name: ex.forbidden for ex in registry}
    assert dict(homework.POINTS) == {
        (f"check_{ex.name}" if isinstance(ex, Exercise) else f"answer_{ex.name}"): ex.points
        for ex in checks.REGISTRY.values()
    }
    assert [n for n in checks.__all__ if n.startswith("check_")] == [f"check_{ex.name}" for ex in registry]
    assert all(callable(getattr(checks, f"check_{ex.name}")) for ex in registry)


def test_the_teaching_guide_shows_the_registrys_exercise_table():
    shown = marked_block(GUIDE.read_text(encoding="utf-8"))
    assert shown == checks.exercise_table(), (
        "docs/teaching.md's exercise table differs from the registry: run "
        "python -m lessons_lib.course.checks --table docs/teaching.md"
    )
    assert checks.exercise_table() in checks.__doc__


def test_the_teaching_guide_shows_the_registrys_problem_set_table():
    shown = marked_block(GUIDE.read_text(encoding="utf-8"), SETS_BEGIN, SETS_END)
    assert shown == problem_set_table(), (
        "docs/teaching.md's problem-set table differs from the registry: run "
        "python -m lessons_lib.course.checks --table docs/teaching.md"
    )


def test_the_tables_show_both_kinds_of_exercise():
    table = checks.exercise_table()
    for ex in checks.REGISTRY.values():
        kind = "check" if isinstance(ex, Exercise) else "by hand"
        gid = f"check_{ex.name}" if isinstance(ex, Exercise) else f"answer_{ex.name}"
        assert f"| {kind} | `{gid}` | {ex.points} |" in table
    from lessons_lib.course.problem_sets import PROBLEM_SETS, entries

    rows = problem_set_table().splitlines()[2:]
    for row, name in zip(rows, PROBLEM_SETS, strict=True):
        listed = entries(name)
        auto = sum(ex.points for ex in listed if isinstance(ex, Exercise))
        hand = sum(ex.points for ex in listed if isinstance(ex, Written))
        assert row.startswith(f"| `{name}` |") and row.endswith(f"| {auto} | {hand} | {auto + hand} |")


def test_a_drifted_table_is_caught_and_rewritten(tmp_path):
    guide = tmp_path / "guide.md"
    stale = checks.exercise_table().replace("| 5 |", "| 4 |")
    guide.write_text(f"# Guide\n\n{BEGIN}\n{stale}\n{END}\n\nafter\n", encoding="utf-8")
    assert marked_block(guide.read_text(encoding="utf-8")) != checks.exercise_table()
    rewrite_table(guide)
    text = guide.read_text(encoding="utf-8")
    assert marked_block(text) == checks.exercise_table()
    assert text.startswith("# Guide\n\n") and text.endswith("\n\nafter\n")


@pytest.mark.parametrize("exercise", list(checks.REGISTRY.values()), ids=lambda ex: ex.name)
def test_every_exercise_is_written_and_checked_in_its_lesson(exercise):
    source = (ROOT / "notebooks" / f"{exercise.lesson}.py").read_text(encoding="utf-8")
    if isinstance(exercise, Written):
        assert f"<!-- BEGIN WRITTEN ANSWER {exercise.name} -->" in source, (
            f"no written answer cell {exercise.name} in {exercise.lesson}")
        return
    assert re.search(rf"^def {exercise.name}\(", source, re.MULTILINE), f"no def {exercise.name} in {exercise.lesson}"
    assert re.search(rf"^check_{exercise.name}\({exercise.name}\)", source, re.MULTILINE)


def test_every_check_a_lesson_calls_is_registered():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        called = set(re.findall(r"^check_(\w+)\(", path.read_text(encoding="utf-8"), re.MULTILINE))
        names = {ex.name for ex in checks.exercises()}
        assert called <= names, f"{path.name}: {called - names} not registered"


def test_the_list_command_prints_the_registry(capsys):
    main(["--list"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(checks.REGISTRY)
    line = next(line for line in lines if line.startswith("annealed_langevin_loop "))
    assert "5 points" in line and "lessons_lib.samplers.annealed_langevin" in line
    for ex in checks.REGISTRY.values():
        if isinstance(ex, Written):
            assert any(line.startswith(ex.name + " ") and "by hand" in line for line in lines)
    with pytest.raises(SystemExit, match="usage"):
        main([])


def test_register_refuses_a_second_exercise_of_the_same_name():
    with pytest.raises(ValueError, match="registered twice"):
        register(checks.REGISTRY["dsm_loss"])


# ------------------------------------------------------------------------ a new exercise
def _double(x):
    """The library function a toy exercise forbids."""
    return 2 * x


def _toy_cases() -> list[Case]:
    return [Case(f"x of shape ({n}, 2)", seeded(n, lambda g, n=n: (torch.randn(n, 2, generator=g),))) for n in (3, 5)]


@pytest.fixture
def toy():
    """A toy exercise registered as docs/contributing.md says, removed afterwards."""
    exercise = register(Exercise(
        name="toy_double",
        lesson="99_toy",
        signature="(x)",
        summary="twice x",
        formula="2x",
        reference=lambda x: 2 * x,
        forbidden=(_double,),
        points=4,
        cases=_toy_cases,
        mistakes=[Mistake("it forgot the factor 2", lambda x: x)],
        description="Check ``toy_double(x)`` = 2x.",
    ))
    yield exercise
    del checks.REGISTRY["toy_double"]
    vars(checks).pop("check_toy_double", None)


def test_a_registered_exercise_is_listed_worth_its_points_and_graded(toy, capsys):
    assert checks.REGISTRY["toy_double"] is toy
    main(["--list"])
    assert "toy_double" in capsys.readouterr().out
    assert homework.POINTS["check_toy_double"] == 4
    assert "`toy_double(x)`: twice x | check | `check_toy_double` | 4 |" in checks.exercise_table()

    from lessons_lib.course.checks import check_toy_double

    check_toy_double(lambda x: x + x)
    assert capsys.readouterr().out.startswith("✓ toy_double matches the reference on 2 test cases")
    with pytest.raises(AssertionError, match="it forgot the factor 2"):
        check_toy_double(lambda x: x)
    with pytest.raises(checks.NotOwnWorkError, match="calls .*_double"):
        check_toy_double(lambda x: _double(x))

    cell = new_code_cell("check_toy_double(toy_double)")
    assert is_check_cell(cell)
    nb = new_notebook(cells=[new_code_cell("def toy_double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                                           "    ### END SOLUTION"), cell])
    source, _ = homework.nbgrader_source(nb, "99_toy", homework.POINTS)
    assert source["cells"][1]["metadata"]["nbgrader"]["points"] == 4


def test_an_unregistered_check_call_is_an_ordinary_cell():
    assert not is_check_cell(new_code_cell("check_toy_double(toy_double)"))
    assert not is_check_cell(new_code_cell("validate_sigmas(s); check_sigmas(s)"))


def test_a_written_answer_registers_with_its_grade_id_and_points():
    entry = register(Written(name="toy_essay", lesson="99_toy", summary="why it works", points=3))
    try:
        assert entry.grade_id == "answer_toy_essay" and homework.POINTS["answer_toy_essay"] == 3
        assert "toy_essay" not in checks.REFERENCES and not hasattr(checks, "check_toy_essay")
        assert "| toy_essay: why it works (written) | by hand | `answer_toy_essay` | 3 |" in checks.exercise_table()
        assert not is_check_cell(new_code_cell("check_toy_essay(x)"))
        with pytest.raises(ValueError, match="registered twice"):
            register(Written(name="toy_essay", lesson="99_toy", summary="again", points=1))
    finally:
        del checks.REGISTRY["toy_essay"]
    for points in (0, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            register(Written(name="toy_bad", lesson="99_toy", summary="s", points=points))
    assert "toy_bad" not in checks.REGISTRY


_HEADING = re.compile(r"^# ### Exercise (\d+) \((written, )?(\d+) points?\)", re.MULTILINE)


@pytest.mark.parametrize("lesson", sorted({entry.lesson for entry in checks.REGISTRY.values()}))
def test_exercise_headings_show_the_registrys_points_in_its_order(lesson):
    """Each lesson's "### Exercise N (… points)" headings, in order, are its registered entries:
    numbered 1, 2, …, written ones marked so, each with the points nbgrader gives it."""
    headings = _HEADING.findall((ROOT / "notebooks" / f"{lesson}.py").read_text(encoding="utf-8"))
    entries = [e for e in checks.REGISTRY.values() if e.lesson == lesson]
    assert [int(n) for n, _, _ in headings] == list(range(1, len(entries) + 1))
    assert [(bool(w), int(p)) for _, w, p in headings] == [(isinstance(e, Written), e.points) for e in entries]
