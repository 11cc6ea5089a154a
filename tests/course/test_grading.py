"""What a check records and grades: partial credit for a named slip (nbgrader's rule: a test cell
whose result is a number scores that number), the outcome in the kernel (passed,
student_or_reference), and an answer copied from the library flagged to the teacher."""

from __future__ import annotations

import importlib.util
import inspect
import textwrap

import pytest
import torch

from lessons_lib import samplers
from lessons_lib.course import checks
from lessons_lib.course.checks import engine

GOOD = {"langevin_step": lambda x, score, step_size, z: x + step_size * score + (2 * step_size) ** 0.5 * z}
NO_SQRT2 = lambda x, score, step_size, z: x + step_size * score + step_size ** 0.5 * z  # noqa: E731 (a named slip)
UNEXPLAINED = lambda x, score, step_size, z: x + 3.0  # noqa: E731


def _stub(*args):
    raise NotImplementedError


@pytest.fixture
def grading(monkeypatch):
    monkeypatch.setattr(engine, "_GRADING_SEEN", True)


@pytest.fixture(autouse=True)
def fresh_outcomes(monkeypatch):
    monkeypatch.setattr(engine, "OUTCOMES", {})
    monkeypatch.delenv(checks.GRADING_ENV, raising=False)
    monkeypatch.delenv(checks.NBGRADER_ENV, raising=False)
    monkeypatch.setattr(engine, "_GRADING_SEEN", False)


def test_a_named_slip_earns_partial_credit_when_graded(grading, capsys):
    ex = checks.REGISTRY["langevin_step"]
    score = checks.check_langevin_step(NO_SQRT2)
    out = capsys.readouterr().out
    assert score == pytest.approx(ex.points * 0.5) and 0 < score < ex.points
    assert out.startswith(f"◐ partial credit, {score:g} of {ex.points} points: langevin_step is not right yet")
    assert "√2 is missing" in out
    assert engine.OUTCOMES["langevin_step"] == "partial" and not checks.passed("langevin_step")


def test_outside_grading_a_named_slip_still_raises_its_diagnosis():
    with pytest.raises(AssertionError, match="√2 is missing"):
        checks.check_langevin_step(NO_SQRT2)


def test_untouched_and_unexplained_answers_score_nothing(grading):
    with pytest.raises(AssertionError, match="not attempted"):
        checks.check_langevin_step(_stub)
    with pytest.raises(AssertionError, match="not right yet"):
        checks.check_langevin_step(UNEXPLAINED)


def test_a_correct_answer_scores_full_points(grading, capsys):
    assert checks.check_langevin_step(GOOD["langevin_step"]) is None  # no number: nbgrader gives full points
    assert capsys.readouterr().out.startswith("✓ langevin_step")


def test_the_ipython_kernel_gets_the_score_as_the_cells_result(grading, monkeypatch, capsys):
    """In IPython the score goes through sys.displayhook (an execute_result, wherever the call is)."""
    shown = []
    monkeypatch.setattr("IPython.get_ipython", lambda: object())
    monkeypatch.setattr("sys.displayhook", shown.append)
    assert checks.check_langevin_step(NO_SQRT2) is None
    assert shown == [checks.REGISTRY["langevin_step"].points * 0.5]


def test_passed_and_student_or_reference_follow_the_last_check(capsys):
    mine = GOOD["langevin_step"]
    assert not checks.passed("langevin_step")
    assert checks.student_or_reference(mine, "langevin_step") is checks.REFERENCES["langevin_step"]
    assert "library's langevin_step" in capsys.readouterr().out
    checks.check_langevin_step(mine)
    assert checks.passed("langevin_step")
    capsys.readouterr()
    assert checks.student_or_reference(mine, "langevin_step") is mine
    assert capsys.readouterr().out.strip() == "Using your langevin_step (its check passed)."
    with pytest.raises(AssertionError):
        checks.check_langevin_step(UNEXPLAINED)
    assert not checks.passed("langevin_step")  # the last outcome counts
    checks.check_langevin_step(_stub)
    assert not checks.passed("langevin_step")
    with pytest.raises(KeyError, match="no checked exercise"):
        checks.passed("no_such_exercise")


def _module_from(tmp_path, name: str, source: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_answer_copied_from_the_library_is_flagged_not_failed(tmp_path, capsys):
    ex = checks.REGISTRY["annealed_langevin_loop"]
    library = textwrap.dedent(inspect.getsource(samplers.annealed_langevin))
    header = "import math\nimport torch\nfrom lessons_lib.samplers import *\nfrom lessons_lib._sampling import *\n"
    copy = _module_from(tmp_path, "copied", header + library.replace("def annealed_langevin(", "def f(", 1))
    assert checks.copied_share(ex, copy.f) >= engine.COPY_THRESHOLD
    engine._flag_copy(ex, copy.f)
    assert "flagged for the teacher, not failed" in capsys.readouterr().out


def test_short_answers_and_own_work_are_not_flagged(tmp_path):
    own = _module_from(tmp_path, "own", textwrap.dedent('''
        import torch

        def annealed_langevin_loop(score_fn, x, sigmas, step_size, noise):
            """Mine, written from the formula."""
            for i, sigma in enumerate(sigmas):
                eps = step_size * (sigma / sigmas[-1]) ** 2
                for t in range(noise.shape[1]):
                    x = x + eps * score_fn(x, sigma) + torch.sqrt(2 * eps) * noise[i, t]
            return x
    '''))
    assert (checks.copied_share(checks.REGISTRY["annealed_langevin_loop"], own.annealed_langevin_loop) or 0) < 0.3
    assert checks.copied_share(checks.REGISTRY["langevin_step"], GOOD["langevin_step"]) is None  # too short to tell
    assert checks.copied_share(checks.REGISTRY["langevin_step"], torch.add) is None  # no source


def test_a_check_cell_returns_what_nbgrader_reads(grading):
    """nbgrader's own rule (nbgrader.utils.determine_grade) on the outputs a graded check cell gets."""
    from nbformat.v4 import new_code_cell, new_output
    from nbgrader.utils import determine_grade

    ex = checks.REGISTRY["langevin_step"]

    def cell(*outputs):
        c = new_code_cell("check_langevin_step(langevin_step)", outputs=list(outputs))
        c.metadata["nbgrader"] = {"grade": True, "solution": False, "points": ex.points, "grade_id": "x",
                                  "locked": True, "schema_version": 3}
        return c

    message = new_output("stream", name="stdout", text="◐ partial credit ...\n")
    score = new_output("execute_result", data={"text/plain": repr(ex.points * 0.5)}, execution_count=1)
    assert determine_grade(cell(message, score)) == (ex.points * 0.5, ex.points)
    assert determine_grade(cell(new_output("stream", name="stdout", text="✓\n"))) == (ex.points, ex.points)
    error = new_output("error", ename="AssertionError", evalue="not attempted", traceback=[])
    assert determine_grade(cell(error)) == (0, ex.points)
