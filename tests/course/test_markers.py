"""The marker grammar: solution regions and model answers are found exactly, malformed markers
fail naming the place, and only the checks of registered exercises make check cells."""

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from lessons_lib.course.markers import (
    BEGIN_CODE,
    END_CODE,
    STUB,
    MarkerError,
    cell_source,
    check_called,
    code_solutions,
    drop_model_answers,
    is_check_cell,
    strip_markdown,
    stub_code,
)


def test_cell_source_joins_a_list_of_lines():
    assert cell_source({"source": ["a\n", "b"]}) == "a\nb"
    assert cell_source({"source": "a\nb"}) == "a\nb"
    assert cell_source({}) == ""


def test_a_region_becomes_the_stub_indented_like_its_marker():
    source = f"def f():\n    # Hint: add one\n    {BEGIN_CODE}\n    return 1\n    {END_CODE}"
    assert stub_code(source, "here") == (f"def f():\n    # Hint: add one\n    # YOUR CODE HERE\n    {STUB}", 1)


def test_code_solutions_are_the_lines_inside_each_region():
    nb = {"cells": [new_code_cell(f"def f():\n    {BEGIN_CODE}\n    a = 1\n    return a\n    {END_CODE}")]}
    assert code_solutions(nb) == [["    a = 1", "    return a"]]


def test_markdown_regions_and_model_answers_are_removed():
    assert strip_markdown("Q?\n<!-- BEGIN SOLUTION -->\nA.\n<!-- END SOLUTION -->", "here") == ("Q?", 1)
    think = "1. Q?\n\n<details><summary>Model answer</summary>\n\nA.\n\n</details>\n\n2. Next."
    assert drop_model_answers(think, "here") == ("1. Q?\n\n2. Next.", 1)
    hint = "<details><summary>Hint</summary>\n\nLook.\n\n</details>"
    assert drop_model_answers(hint, "here") == (hint, 0)


@pytest.mark.parametrize(
    "source, message",
    [
        (f"def f():\n    {BEGIN_CODE}\n    return 1", "has no '### END SOLUTION' after it"),
        (f"def f():\n    return 1\n    {END_CODE}", "without a '### BEGIN SOLUTION' before it"),
        (f"{BEGIN_CODE}\n{BEGIN_CODE}\nx = 1\n{END_CODE}\n{END_CODE}", "cannot be nested"),
        ("## BEGIN SOLUTION\nx = 1\n## END SOLUTION", "looks like a marker but is not one"),
        (f"{BEGIN_CODE}  # start\nx = 1\n{END_CODE}", "looks like a marker but is not one"),
    ],
    ids=["begin-without-end", "end-without-begin", "nested", "misspelt", "text-on-marker-line"],
)
def test_malformed_code_markers_fail_naming_the_place(source, message):
    with pytest.raises(MarkerError, match="nb, cell 3") as info:
        stub_code(source, "nb, cell 3")
    assert message in str(info.value)


def test_check_cells_are_the_calls_of_registered_checks():
    assert is_check_cell(new_code_cell("check_dsm_loss(dsm_loss)"))
    assert is_check_cell(new_code_cell("# try it\nchecks.check_ism_loss(ism_loss)"))
    assert check_called(new_code_cell("check_sigmas(s)\ncheck_ssm_loss(ssm_loss)")) == "check_ssm_loss"
    assert not is_check_cell(new_code_cell("from lessons_lib.course.checks import check_dsm_loss"))
    assert not is_check_cell(new_markdown_cell("call check_dsm_loss(dsm_loss)"))
    assert not is_check_cell(new_code_cell("check_sigmas(sigmas)"))  # not an exercise: an ordinary cell
    assert not is_check_cell(new_code_cell("recheck_dsm_loss(dsm_loss)"))



# ------------------------------------------------------------------------ written answers
import pytest  # noqa: E402

from lessons_lib.course import checks  # noqa: E402
from lessons_lib.course.checks import Written, register  # noqa: E402
from lessons_lib.course.markers import answer_stub, written_answer  # noqa: E402

WRITTEN = """<!-- BEGIN WRITTEN ANSWER toy_essay -->
**Model answer.** Because $Z$ does not depend on $x$.

<!-- RUBRIC -->
- 1 point: states that the normaliser is constant in x
- 2 points: differentiates log p and shows the constant vanishes
<!-- END WRITTEN ANSWER -->"""


@pytest.fixture
def toy_written():
    entry = register(Written(name="toy_essay", lesson="99_toy", summary="why Z drops out", points=3))
    yield entry
    del checks.REGISTRY["toy_essay"]


def test_a_written_answer_is_parsed(toy_written):
    answer = written_answer(WRITTEN, "toy.ipynb, cell 3")
    assert answer.entry is toy_written and answer.points == 3
    assert answer.model_answer.startswith("**Model answer.** Because")
    assert answer.rubric == ((1, "states that the normaliser is constant in x"),
                             (2, "differentiates log p and shows the constant vanishes"))
    assert written_answer("Just a question about a WRITTEN essay.", "x") is None
    assert answer_stub(3) == "*Your answer (graded by hand, 3 points):*"


@pytest.mark.parametrize("broken, message", [
    (WRITTEN.replace("<!-- END WRITTEN ANSWER -->", ""), "has no '<!-- END WRITTEN ANSWER -->' after it"),
    (WRITTEN.replace("<!-- RUBRIC -->", "<!-- RUBRICS -->"), "looks like a written-answer marker"),
    (WRITTEN.replace("<!-- RUBRIC -->", ""), "exactly one '<!-- RUBRIC -->'"),
    (WRITTEN.replace("BEGIN WRITTEN ANSWER", "BEGIN WRITTEN  ANSWER"), "looks like a written-answer marker"),
    (WRITTEN.replace("<!-- END WRITTEN ANSWER -->", "<!-- END WRITTEN ANSWER-->"), "looks like a written-answer"),
    (WRITTEN.replace("toy_essay", "no_such_answer"), "'no_such_answer' is not registered"),
    (WRITTEN.replace("toy_essay", "gaussian_score"), "a checked exercise, not a Written"),
    (WRITTEN.replace("- 2 points:", "- 3 points:"), "gives 4 points, the registry 3"),
    (WRITTEN.replace("- 1 point:", "* 1 point:"), "is not '- N point\\(s\\): criterion'"),
    (WRITTEN + "\n\n" + WRITTEN, "2 written answers in one cell"),
    ("Text, then <!-- END WRITTEN ANSWER -->", "looks like a written-answer marker"),
    ("<!-- END WRITTEN ANSWER -->", "without the line"),
])
def test_a_malformed_written_answer_names_the_place(toy_written, broken, message):
    with pytest.raises(MarkerError, match=message) as info:
        written_answer(broken, "toy.ipynb, cell 7")
    assert str(info.value).startswith("toy.ipynb, cell 7")


def test_markdown_around_a_written_answer_is_kept_apart(toy_written):
    answer = written_answer("The question's last words.\n\n" + WRITTEN + "\n\n## Think\n1. Why?", "toy.ipynb, cell 3")
    assert answer.before == "The question's last words." and answer.after == "## Think\n1. Why?"
    from lessons_lib.course.markers import split_written

    cells = split_written({"cell_type": "markdown", "id": "abc", "metadata": {}, "source": ""}, answer, "STUB")
    assert [c["source"] for c in cells] == ["The question's last words.", "STUB", "## Think\n1. Why?"]
    assert [c.get("id") for c in cells] == ["abc-before", "abc", "abc-after"]
